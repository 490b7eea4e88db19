"""Hyper-parameter search with Ray Tune and ASHA, as the reference study tuned its runs.

The study (Heuillet et al. 2025) tuned the learning rate and weight decay of the backbone and of
the head separately, log-uniformly, LR in [1e-6, 1e-1] and WD in [1e-6, 1e-2], with ASHA
(``max_t`` = epochs, grace period 1, reduction factor 2) minimising the validation loss. Those
are the defaults here; the best configuration is written back as a run-config YAML file.

A *trial function* trains one sampled config and reports once per epoch::

    trial(config: RunConfig, report: Callable[[dict[str, float]], None]) -> None

``report({"val_loss": …, …})`` hands the epoch's metrics to Ray Tune, which may stop the trial
there (ASHA). rftbench's is ``rftbench.sweep.trial:tune_trial``; any importable function with that
signature works (``rftbench.sweep.synthetic:synthetic_trial`` for a demo without training).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig
from ..errors import ConfigError, RftbenchError, close_matches
from ..plugins import PluginManager, get_manager
from ..results import atomic_write_text
from .spec import assign
from .worker import resolve_run_function

#: The engine's trial function (trains a config, reporting validation metrics per epoch).
DEFAULT_TRIAL = "rftbench.sweep.trial:tune_trial"
#: Where the trial function was before it moved out of the engine (kept working for scripts that name it).
MOVED_TRIALS = {"rftbench.engine:tune_trial": DEFAULT_TRIAL}

#: The reference study's search space: log-uniform ranges, backbone and head tuned separately.
SEARCH_SPACE: dict[str, tuple[float, float]] = {
    "lr_backbone": (1e-6, 1e-1),
    "lr_head": (1e-6, 1e-1),
    "weight_decay_backbone": (1e-6, 1e-2),
    "weight_decay_head": (1e-6, 1e-2),
}


@dataclass
class TuneResult:
    """The best configuration found, its metric, and one row per trial."""

    best: RunConfig
    metric: str
    value: float
    trials: list[dict[str, Any]]
    path: Path | None = None

    def stopped_early(self) -> int:
        """How many trials ASHA stopped before their last epoch."""
        return sum(1 for t in self.trials if t["epochs"] < self.best.epochs)


def search_space(params: Sequence[str] | None = None, ranges: dict[str, tuple[float, float]] | None = None) -> dict[str, tuple[float, float]]:
    """The optimiser fields to tune with their log-uniform ranges (validated, with close matches)."""
    chosen = list(params) if params else list(SEARCH_SPACE)
    space = {}
    for name in chosen:
        if name not in SEARCH_SPACE:
            hint = close_matches(name, SEARCH_SPACE)
            raise ConfigError(
                f"cannot tune {name!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "") + f" Tunable: {', '.join(SEARCH_SPACE)}"
            )
        low, high = (ranges or {}).get(name, SEARCH_SPACE[name])
        if not 0 < low < high:
            raise ConfigError(f"range of {name}: need 0 < low < high for a log-uniform range, got [{low}, {high}]")
        space[name] = (low, high)
    return space


def tune(
    config: RunConfig,
    *,
    trial: Callable[..., Any] | str = DEFAULT_TRIAL,
    params: Sequence[str] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    num_samples: int = 16,
    metric: str = "val_loss",
    mode: str = "min",
    grace_period: int = 1,
    reduction_factor: float = 2,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    results_dir: str | Path = "runs/tune",
    seed: int = 0,
    manager: PluginManager | None = None,
) -> TuneResult:
    """Search the optimiser's LRs and weight decays with ASHA on Ray Tune; returns the best config.

    ``config`` is the resolved run config every trial starts from (``epochs`` is ASHA's
    ``max_t``). Ray is started (or reached at ``address``) through the ``ray`` executor, so a
    missing cluster fails with the same clear error as ``rftbench sweep``.
    """
    if isinstance(trial, str):
        trial = MOVED_TRIALS.get(trial, trial)
    if mode not in ("min", "max"):
        raise ConfigError(f"mode {mode!r}: use min or max")
    if num_samples < 1:
        raise ConfigError(f"num_samples {num_samples}: need at least 1 trial")
    if metric in ("val_robust_acc", "val_corruption_acc", "val_pareto_auc") and trial == DEFAULT_TRIAL:
        if config.monitor is None:
            raise ConfigError(f"--metric {metric}: the trials report it from the in-training evaluation; add a `monitor:` "
                              "section to the config (e.g. --set monitor.n=128), or tune on val_loss")
        if metric == "val_corruption_acc" and config.monitor.corruption is None:
            raise ConfigError("--metric val_corruption_acc: set monitor.corruption (e.g. {name: corruptions, severity: 3})")
        if mode != "max":
            raise ConfigError(f"--metric {metric} is an accuracy: use --mode max")
    space = search_space(params, ranges)
    trial_fn = resolve_run_function(trial)  # fails here, before Ray starts, if it cannot be imported
    try:
        from ray import tune as rtune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator
    except ImportError:
        raise RftbenchError("rftbench tune needs Ray Tune: pip install 'rftbench[scale]'") from None

    root = Path(results_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    executor = (manager or get_manager()).get("executor", "ray").build(address=address, num_cpus=num_cpus, cpus_per_run=cpus_per_trial, gpus_per_run=gpus_per_trial)
    executor.start(root)
    try:
        base = config.to_dict()
        trainable = rtune.with_resources(
            rtune.with_parameters(_trainable, base=base, trial=trial_fn if not isinstance(trial, str) else trial),
            {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
        )
        scheduler = ASHAScheduler(
            time_attr="training_iteration", max_t=config.epochs, grace_period=grace_period, reduction_factor=reduction_factor
        )
        tuner = rtune.Tuner(
            trainable,
            param_space={f"optimizer.{k}": rtune.loguniform(low, high) for k, (low, high) in space.items()},
            tune_config=rtune.TuneConfig(
                metric=metric,
                mode=mode,
                scheduler=scheduler,
                num_samples=num_samples,
                max_concurrent_trials=max_concurrent,
                search_alg=BasicVariantGenerator(random_state=seed),
            ),
            run_config=rtune.RunConfig(name="rftbench-tune", storage_path=str(root), verbose=0),
        )
        grid = tuner.fit()
    finally:
        executor.shutdown()

    trials = []
    for result in grid:
        if result.error is not None:
            trials.append({"values": {}, "epochs": 0, metric: None, "error": str(result.error).splitlines()[0]})
            continue
        history = result.metrics_dataframe
        values = {k.split(".", 1)[1]: v for k, v in result.config.items()}
        series = history[metric].tolist() if history is not None and metric in history else []
        trials.append({"values": values, "epochs": len(series), metric: series[-1] if series else None})
    finished = [t for t in trials if t.get(metric) is not None and not math.isnan(t[metric]) and t["epochs"] == config.epochs]
    if not finished:
        errors = {t.get("error") for t in trials if t.get("error")}
        raise RftbenchError(
            f"no trial reached epoch {config.epochs} with a {metric!r} metric"
            + (f"; errors: {'; '.join(sorted(errors))}" if errors else f"; does the trial function report {metric!r}?")
        )
    best_trial = (min if mode == "min" else max)(finished, key=lambda t: t[metric])
    data = config.to_dict()
    for key, value in best_trial["values"].items():
        assign(data, f"optimizer.{key}", float(value))
    best = RunConfig.model_validate(data)
    return TuneResult(best, metric, float(best_trial[metric]), trials)


def write_best(result: TuneResult, path: str | Path) -> Path:
    """Write the best configuration as a run-config YAML (without output_dir), with a comment header."""
    path = Path(path)
    data = {k: v for k, v in result.best.to_dict().items() if k != "output_dir"}
    header = (
        f"# rftbench tune: best of {len(result.trials)} trials by {result.metric} = {result.value:.6g}\n"
        f"# ({result.stopped_early()} trials stopped early by ASHA). Run it with: rftbench run {path.name}\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False))
    result.path = path
    return path


def _trainable(sampled: dict[str, Any], *, base: dict[str, Any], trial: Callable[..., Any] | str) -> None:
    """One Ray Tune trial: the base config with the sampled values, trained by the trial function."""
    from ray import tune as rtune

    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in sampled.items():
        assign(data, key, float(value))
    config = RunConfig.model_validate(data)
    resolve_run_function(trial)(config, lambda metrics: rtune.report(dict(metrics)))
