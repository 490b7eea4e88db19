"""Result records: one JSON file per run, named by the hash of its resolved config, written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cards import format_validation_error
from ._fs import atomic_write_text, file_mode  # noqa: F401 - the one atomic write; re-exported here
from .errors import RftbenchError

SCHEMA_VERSION = 1


class ResultRecord(BaseModel):
    """What one run produced; the file ``<output_dir>/<id>.json``.

    Fields:

    - ``id``: ``RunConfig.config_hash()`` of the resolved config; ``config``: ``RunConfig.to_dict()``.
    - ``status``: ``complete`` (records are only written for finished runs) or ``failed``.
    - ``metrics``: what :func:`rftbench.evaluation.evaluate` returned: ``clean_acc``,
      ``threats`` (label such as ``linf:4/255`` → ``{"acc": …, "n": …, "seconds": …}``),
      ``metrics`` (metric label → its record), ``flags``, ``reliable``, ``n_examples``, ``seed``.
    - ``curves``: per-epoch lists of equal length: ``epoch``, ``train_loss``, ``train_acc``
      (accuracy on the batches trained on: adversarial ones for adversarial losses),
      ``val_loss`` (mean clean cross-entropy, fp32) and ``val_acc`` (clean accuracy) on the
      val split (``None`` without one), ``eps`` and ``lr_factor`` (at the
      epoch's last step), ``seconds`` and ``images_per_s`` (training only).
    - ``timings``: ``setup_seconds``, ``train_seconds``, ``eval_seconds``, ``total_seconds``,
      ``train_images_per_s``, ``peak_host_memory_mb`` (and ``peak_device_memory_mb`` on CUDA).
    - ``provenance``: versions of rftbench, torch and Python; platform; ``device``,
      ``device_type``, ``precision``, ``channels_last``, ``threads``; ``plugins`` (per config
      field: the contribution's name, plugin, distribution and version); ``weights`` (the
      representation card's pin: hub_id/revision, url/sha256 or recipe, and ``built_sha256``
      for locally built weights); ``model_sha256`` of the trained weights; ``resumed_from_steps``.
    - ``parameters``: ``trainable`` (parameters that learn in some epoch), ``total`` (all of the
      trained model's, adapters and head included), ``added`` (by the protocol: LoRA, adapters),
      ``share`` (trainable / total); absent from records of older versions.
    - ``created``: ISO start time (UTC); ``run_dir``: the run folder (``load_model`` reads it).
    - ``monitor`` (with a ``monitor:`` section): ``threat``, ``corruption``, ``n``, ``seed``,
      ``every_steps``, ``points`` (``step``, ``epoch`` — fractional, ``clean_acc``,
      ``robust_acc``, ``corruption_acc``, ``seconds`` per evaluation point), ``pareto_auc``
      (:mod:`rftbench.evaluation.pareto`) and ``kept`` (``keep``: ``last`` or ``best-robust``
      with the kept point's step, epoch and accuracies).
    - ``warnings``: early warnings (``name``, ``epoch``, ``step``, ``message``); ``stopped``: the
      warning that ended a ``--stop-on-warning`` run (whose ``status`` is then ``stopped``).
    - ``cost``: :mod:`rftbench.engine.cost` — ``train``/``monitor``/``evaluation`` phases
      (FLOPs, forward/backward passes and images, device-seconds, peak device memory),
      totals ``flops``, ``device_seconds`` (``device_seconds_unit``), ``peak_*_memory_bytes``.
      Empty in records made without it: unknown, not zero.
    """

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="the config hash")
    status: Literal["complete", "failed", "stopped"] = "complete"
    config: dict[str, Any]
    metrics: dict[str, Any] = Field(default_factory=dict)
    curves: dict[str, list[Any]] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    created: str | None = None
    run_dir: str | None = Field(None, description="the run folder: trained weights, resolved config")
    monitor: dict[str, Any] | None = Field(None, description="in-training evaluation: curve, Pareto AUC, kept point")
    warnings: list[dict[str, Any]] = Field(default_factory=list, description="early warnings raised during training")
    stopped: dict[str, Any] | None = Field(None, description="the warning that ended the run (status `stopped`)")
    cost: dict[str, Any] = Field(default_factory=dict, description="FLOPs, passes, device-seconds, peak memory (empty: unknown)")


#: Checked before every record is written (a sweep worker sets it: only a claim's owner writes).
_write_guard: ContextVar[Callable[[Path], None] | None] = ContextVar("rftbench_record_guard", default=None)


@contextmanager
def guard_record_writes(check: Callable[[Path], None]) -> Iterator[None]:
    """Within the block, ``check(path)`` runs before each :func:`write_record` (it raises to refuse)."""
    token = _write_guard.set(check)
    try:
        yield
    finally:
        _write_guard.reset(token)


def write_record(record: ResultRecord, path: str | Path) -> Path:
    """Write a record atomically as indented JSON; returns the path."""
    check = _write_guard.get()
    if check is not None:
        check(Path(path))
    atomic_write_text(path, record.model_dump_json(indent=2))
    return Path(path)


def read_record(path: str | Path) -> ResultRecord:
    """Read and validate a record; a broken file raises a :class:`RftbenchError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RftbenchError(f"{path}: no result record there") from None
    except json.JSONDecodeError as err:
        raise RftbenchError(f"{path}: not a valid JSON result record ({err})") from None
    try:
        return ResultRecord.model_validate(data)
    except ValidationError as err:
        raise RftbenchError(f"{path}: invalid result record:\n{format_validation_error(err)}") from None
