"""``tune_trial(config, report)``: the engine's trial function for ``rftbench tune`` (Ray Tune, ASHA).

A trial trains a config exactly as :func:`rftbench.run` does (same components, model, data,
seeding and training loop) and reports, after every epoch, the clean validation loss ASHA
compares (the reference study tuned on the validation loss) and the validation accuracy. It
writes nothing: no checkpoint, weights or result record, and runs no final evaluation, so a
trial that ASHA stops at any report (Ray ends its thread there) leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import RunConfig, resolve_config
from ..errors import ConfigError
from ..plugins import PluginManager, get_manager
from .trainer import Trainer

#: What a trial reports after each epoch (``val_loss`` is what ``rftbench tune`` minimises by default).
REPORTED = ("epoch", "val_loss", "val_acc", "train_loss", "train_acc")
#: Also reported when the config has a ``monitor:`` section: the latest in-training evaluation point's validation
#: robust (and corruption) accuracy and the Pareto AUC of the points so far (``--metric val_robust_acc --mode max``).
MONITORED = ("val_robust_acc", "val_corruption_acc", "val_pareto_auc")


def _no_val(dataset: str) -> ConfigError:
    return ConfigError(
        f"dataset {dataset!r} has no val split, and tuning needs one: each trial reports its validation loss "
        "(the test split is kept for the final evaluation). Tune on a dataset whose card defines a val split "
        "(splits: {train: …, val: …, test: …})."
    )


def tune_trial(
    config: RunConfig,
    report: Callable[[dict[str, float]], Any],
    *,
    manager: PluginManager | None = None,
) -> None:
    """Train ``config``; after each epoch call ``report({"epoch", "val_loss", "val_acc", "train_loss", "train_acc"})``.

    ``val_loss`` is the mean clean cross-entropy on the val split (fp32), ``val_acc`` the clean
    accuracy there. The config is resolved against ``manager`` (default: the global one).

    :raises ConfigError: the dataset has no val split (before anything is built), or bad input
        as for :func:`rftbench.run`.
    """
    from ..runner import prepare  # runner imports the engine: import it when a trial runs

    manager = manager or get_manager()
    config = resolve_config(config, manager)
    if "val" not in manager.get("dataset", config.dataset).splits:
        raise _no_val(config.dataset)
    import torch

    torch.manual_seed(config.seed)  # a trial trains like `run`: seeded CPU and CUDA streams, continuing the build's
    setup = prepare(config, manager)
    torch.set_rng_state(setup.rng_state)
    if setup.data.val is None:  # the card promised one, its source returned none
        raise _no_val(config.dataset)

    def on_epoch(trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        values = {key: (int(row[key]) if key == "epoch" else float(row[key])) for key in REPORTED}
        values.update({key: float(row[key]) for key in MONITORED if row.get(key) is not None})
        report(values)

    trainer = Trainer(
        config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
        channels_last=setup.channels_last, run_dir=None, progress=False, on_epoch=on_epoch, manager=manager,
    )
    trainer.fit()


__all__ = ["MONITORED", "REPORTED", "tune_trial"]
