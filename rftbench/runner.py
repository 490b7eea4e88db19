"""``run(config) -> ResultRecord``: one configuration trained, evaluated and recorded; ``load_model(run_dir)``.

Layout under ``config.output_dir``::

    <hash>.json                 the result record (written atomically, only when complete)
    <hash>/config.yaml          the resolved config
    <hash>/checkpoints/         per-epoch checkpoints (removed once the record is written)
    <hash>/model.safetensors    the trained classifier's weights
    <hash>/model.json           what load_model needs to rebuild it (representation, classes, sha256)
    <hash>/outcomes-<sha>.npz   per-example outcomes (rftbench.outcomes), named and sealed in the record
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError
from rich.console import Console
from torch import nn

from .cards import format_validation_error
from .config import RunConfig, load_config, resolve_config
from .engine import MemoryFormat, Trainer, describe_device, save_weights
from .engine.threads import as_first_start, set_threads
from .errors import ConfigError, RftbenchError
from .model import Classifier
from .plugins import PluginManager, get_manager
from .prepare import Setup, build_components, check_data_settings, distributed_rank_world, init_distributed, prepare
from .results import ResultRecord, atomic_write_text, read_record, write_record
from .trained import MODEL_FILE, MODEL_INFO, add_protocol_layers, build_trained_classifier, load_model, read_model_info

log = logging.getLogger("rftbench")


def _as_config(config: RunConfig | dict | str | Path | None, overrides: list[str] | None, manager: PluginManager) -> RunConfig:
    if isinstance(config, RunConfig):
        if overrides:
            raise ConfigError("overrides apply to a config file or dict; apply them before building the RunConfig")
        return resolve_config(config, manager)
    if isinstance(config, dict):
        from .config import apply_overrides

        data = dict(config)
        apply_overrides(data, overrides)
        try:
            validated = RunConfig.model_validate(data)
        except ValidationError as err:
            raise ConfigError(f"invalid run config:\n{format_validation_error(err)}") from None
        return resolve_config(validated, manager)
    if config is not None and not isinstance(config, (str, Path)):
        raise ConfigError(f"run(config): expected a RunConfig, a dict, a YAML path or None, got {type(config).__name__}")
    return load_config(config, overrides, manager=manager)


class RunLocked(RftbenchError):
    """Another process is running the same configuration into the same folder."""


_wait_for_lock: ContextVar[bool] = ContextVar("rftbench_wait_for_run_lock", default=True)


@contextmanager
def wait_for_run_lock(wait: bool) -> Iterator[None]:
    """Within the block, :func:`run` waits for a run lock held elsewhere (``True``) or raises :class:`RunLocked`."""
    token = _wait_for_lock.set(wait)
    try:
        yield
    finally:
        _wait_for_lock.reset(token)


@contextmanager
def run_lock(run_dir: Path, console: Console | None = None) -> Iterator[None]:
    """Hold ``<run_dir>/run.lock`` (an OS file lock, released even if the process is killed).

    A second run of the same config waits, saying who holds the lock, or (in a sweep worker)
    raises :class:`RunLocked`.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.lock"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            message = f"{run_dir}: this configuration is being run by {holder}"
            if not _wait_for_lock.get():
                raise RunLocked(message) from None
            log.warning("%s; waiting for it to finish (Ctrl-C to stop waiting)", message)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        handle.write(f"host {platform.node()} pid {os.getpid()} since {started}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _existing_record(record_path: Path) -> ResultRecord | None:
    """The record at ``record_path``; an unreadable one is moved aside (kept, with a warning) and ``None`` returned."""
    if not record_path.is_file():
        return None
    try:
        return read_record(record_path)
    except RftbenchError as err:
        aside = record_path.with_name(f"{record_path.name}.corrupt-{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%S}")
        try:
            os.replace(record_path, aside)
        except FileNotFoundError:
            return None
        log.warning("%s; moved to %s, the run is done again", str(err).splitlines()[0], aside)
        return None


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak memory of this process so far: ``peak_host_memory_mb`` (resident set, ``getrusage``) and on CUDA
    ``peak_device_memory_mb`` (``torch.cuda.max_memory_allocated``)."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    out = {"peak_host_memory_mb": round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)}
    if device.type == "cuda":
        out["peak_device_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def _plugin_versions(config: RunConfig, manager: PluginManager) -> dict[str, Any]:
    used: dict[str, Any] = {}

    def note(field: str, kind: str, name: str) -> None:
        try:
            plugin = manager.plugin_of(kind, name)
        except Exception:  # noqa: BLE001 - provenance is best effort
            return
        info = manager.plugins.get(plugin)
        used[field] = {"name": name, "plugin": plugin, "distribution": getattr(info, "distribution", None),
                       "version": getattr(info, "version", None)}

    note("representation", "representation", config.representation)
    note("dataset", "dataset", config.dataset)
    card = manager.get("representation", config.representation)
    note("architecture", "architecture", card.source)
    note("dataset_source", "dataset_source", manager.get("dataset", config.dataset).source)
    for field in ("protocol", "loss", "eps_schedule", "lr_schedule"):
        note(field, "schedule" if field.endswith("schedule") else field, getattr(config, field).name)
    note("threat", "threat_model", config.threat.name)
    for i, component in enumerate(config.evaluation):
        kind = "threat_model" if component.name in manager.names("threat_model") else "metric"
        note(f"evaluation.{i}", kind, component.name)
    return used


def _provenance(config: RunConfig, manager: PluginManager, model: Classifier, device: torch.device, precision: str,
                memory_format: MemoryFormat) -> dict[str, Any]:
    from . import __version__

    card = manager.get("representation", config.representation)
    weights = card.weights.model_dump(mode="json")
    weights["built_sha256"] = getattr(model.backbone, "weights_sha256", None)
    return {
        "rftbench": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": describe_device(device),
        "device_type": device.type,
        "precision": precision,
        "channels_last": memory_format.channels_last,
        "channels_last_reason": memory_format.reason,
        "guards": [memory_format.guard] if memory_format.guard else [],
        "cpu_capability": _cpu_capability(),
        "threads": torch.get_num_threads(),
        "plugins": _plugin_versions(config, manager),
        "weights": {"representation": card.id, **weights},
    }


def _cpu_capability() -> dict[str, Any]:
    from .engine.guards import onednn_isa_cap

    return {"aten": torch.backends.cpu.get_cpu_capability(), "onednn_max_isa": onednn_isa_cap()}


def _evaluate(model: nn.Module, data: Any, config: RunConfig, device: torch.device, manager: PluginManager,
              run_dir: Path, progress: bool, cost: Any = None) -> dict[str, Any]:
    from .evaluation import evaluate
    from .outcomes import points_for

    points = points_for(config.dataset, manager)
    metrics = evaluate(model, data.test, config.evaluation, batch_size=config.eval_batch_size, n_examples=config.n_eval, device=device,
                       seed=config.seed, manager=manager, output_dir=run_dir, progress=progress, points=points, cost=cost)
    if "outcomes" in metrics:  # the file's path relative to the record's folder
        metrics["outcomes"]["file"] = f"{run_dir.name}/{metrics['outcomes']['file']}"
    # plots likewise: a record names no folder of the machine it ran on (output_dir and run_dir say where it ran)
    metrics["plots"] = [Path(os.path.relpath(p, run_dir.parent)).as_posix() for p in metrics.get("plots", [])]
    return metrics


def _prune_outcomes(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Once the record is written, remove per-example files of earlier evaluations of this run."""
    from .outcomes import prune

    ref = metrics.get("outcomes") or {}
    prune(run_dir, Path(ref["file"]).name if ref.get("file") else None)


def run_paths(config: RunConfig) -> tuple[Path, Path]:
    """``(record path, run folder)`` of a resolved config."""
    out = Path(config.output_dir)
    digest = config.config_hash()
    return out / f"{digest}.json", out / digest


def run(
    config: RunConfig | dict | str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    resume: bool = True,
    rerun: bool = False,
    progress: bool = False,
    console: Console | None = None,
    manager: PluginManager | None = None,
    callback: Any = None,
) -> ResultRecord:
    """Train and evaluate one configuration; write and return its result record.

    :param config: a :class:`RunConfig`, a dict or YAML file of one, or ``None`` for the
        offline default; ``overrides`` are ``key=value`` strings as for ``--set``.
    :param resume: continue from the run folder's last checkpoint when there is one (the
        result equals an uninterrupted run's); ``False`` starts over.
    :param rerun: run even when a complete record exists (else that record is returned).
    :param progress: show a progress bar (loss, accuracy, current ε and LR) on ``console``.
    :raises ConfigError: bad input, naming the field; nothing is written.
    :raises RunInterrupted: Ctrl-C; a checkpoint was saved, calling again resumes.
    """
    manager = manager or get_manager()
    config = _as_config(config, overrides, manager)
    record_path, run_dir = run_paths(config)
    rank, _ = init_distributed(config.device)
    import contextlib

    with run_lock(run_dir, console) if rank == 0 else contextlib.nullcontext():  # torchrun: rank 0 holds the lock
        existing = _existing_record(record_path)
        if existing is not None and not rerun and existing.status in ("complete", "stopped"):
            log.info("%s: already complete (pass rerun=True / --rerun to run again)", record_path)
            return existing
        return _run_locked(config, manager, record_path, run_dir, resume=resume, progress=progress, console=console,
                           callback=callback)


def _run_locked(config: RunConfig, manager: PluginManager, record_path: Path, run_dir: Path, **kwargs: Any) -> ResultRecord:
    """Train and evaluate with torch's RNG seeded by ``config.seed``, restoring the caller's RNG state afterwards."""
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)  # CPU and CUDA: the run's random stream (random starts, dropout…)
        return _run_seeded(config, manager, record_path, run_dir, **kwargs)


def _run_seeded(config: RunConfig, manager: PluginManager, record_path: Path, run_dir: Path, *, resume: bool,
                progress: bool, console: Console | None, callback: Any) -> ResultRecord:
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()

    setup = prepare(config, manager)
    torch.set_rng_state(setup.rng_state)  # training continues the seeded stream of the build, as it always did
    rep, data_card, model, data = setup.representation, setup.dataset, setup.model, setup.data
    device, precision, channels_last = setup.device, setup.precision, setup.channels_last
    check_data_settings(config, data, manager)
    t_setup = time.perf_counter() - t0

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    rank, world = distributed_rank_world()
    trainer = Trainer(config, model, data, setup.parts, device=device, precision=precision, channels_last=channels_last,
                      run_dir=run_dir, progress=progress and rank == 0, console=console, callback=callback, manager=manager)
    threads = setup.threads
    if resume:
        if trainer.resume() and threads is not None:
            threads = set_threads(as_first_start(threads, trainer.resumed_threads))
    elif rank == 0:
        trainer.store.clear()
    state = trainer.fit()
    if rank != 0:  # torchrun: rank 0 evaluates and writes the record; the others return it
        torch.distributed.barrier()
        return read_record(record_path)

    model.to(memory_format=torch.contiguous_format)
    weights_sha = save_weights(model, run_dir / MODEL_FILE, metadata={"config_hash": config.config_hash()})
    info = {"representation": rep.id, "num_classes": data_card.num_classes, "config_hash": config.config_hash(),
            "sha256": weights_sha}
    if hasattr(setup.parts.protocol, "prepare"):  # the weights hold added layers: load_model adds them first
        info["protocol"] = config.protocol.as_config()
    atomic_write_text(run_dir / MODEL_INFO, json.dumps(info, indent=2))

    from .engine import cost as _cost

    t_eval = time.perf_counter()
    eval_cost = _cost.EvalCost(model, device, trainer.eval_image_flops())
    try:
        metrics = _evaluate(model, data, config, device, manager, run_dir, progress, cost=eval_cost)
    finally:
        eval_phases = eval_cost.close()
    eval_seconds = time.perf_counter() - t_eval
    provenance = _provenance(config, manager, model, device, precision.name, setup.memory_format)
    provenance["threads_reason"] = threads.reason if threads else None
    provenance["model_sha256"] = weights_sha
    provenance["resumed_from_steps"] = state.resumed_from
    if world > 1:
        provenance["world_size"] = world  # torchrun processes, each on batch_size / world_size of every batch
    record = ResultRecord(
        id=config.config_hash(),
        config=config.to_dict(),
        metrics=metrics,
        curves=state.curves,
        timings={
            "setup_seconds": round(t_setup, 3),
            "train_seconds": round(state.train_seconds, 3),
            "eval_seconds": round(eval_seconds, 3),
            "total_seconds": round(time.perf_counter() - t0, 3),
            "train_images_per_s": round(state.images / state.train_seconds, 2) if state.train_seconds else 0.0,
            **peak_memory_mb(device),
        },
        provenance=provenance,
        parameters=trainer.parameter_counts,
        created=started.isoformat(timespec="seconds"),
        run_dir=str(run_dir),
        status="stopped" if state.stopped is not None else "complete",
        monitor=_monitor_summary(config, trainer) if config.monitor is not None else None,
        warnings=state.warnings,
        stopped=state.stopped,
        cost=_cost_summary(state, eval_phases, trainer, device),
    )
    write_record(record, record_path)
    _prune_outcomes(run_dir, metrics)
    trainer.store.clear()
    if world > 1:
        torch.distributed.barrier()
    return record


def _monitor_summary(config: RunConfig, trainer: Trainer) -> dict[str, Any]:
    """The record's ``monitor``: the curve, its Pareto AUC, the threat and subset, what ``keep`` kept."""
    from .evaluation.pareto import pareto_auc

    state, monitor = trainer.state, trainer.monitor
    points = state.monitor
    assert config.monitor is not None and monitor is not None
    auc = pareto_auc(points.get("clean_acc") or [], points.get("robust_acc") or [])
    kept: dict[str, Any] = {"keep": config.monitor.keep}
    if config.monitor.keep == "best-robust" and state.best is not None:
        kept.update(state.best)
    else:
        kept["keep"] = "last"
    return {
        "threat": monitor.label, "corruption": monitor.corruption_label, "n": len(monitor.y), "seed": config.monitor.seed,
        "every_steps": config.monitor.every_steps, "points": points, "pareto_auc": auc, "kept": kept,
    }


def _cost_summary(state: Any, eval_phases: dict[str, dict[str, Any]], trainer: Trainer, device: torch.device) -> dict[str, Any]:
    """The record's ``cost`` (rftbench.engine.cost): per phase, and totals (``flops``, ``device_seconds``, peaks)."""
    from .engine.cost import device_peak, host_peak_bytes

    train = dict(state.cost.get("train") or {})
    steps = int(train.get("steps") or 0)
    train["flops_per_step"] = int(train["flops"]) // steps if steps else None
    train["peak_device_memory_bytes"] = device_peak(device)
    phases = {"train": train, **({"monitor": state.cost["monitor"]} if trainer.monitor is not None else {})}
    evaluation = {"phases": eval_phases,
                  "flops": sum(int(p.get("flops") or 0) for p in eval_phases.values()),
                  "device_seconds": round(sum(float(p.get("device_seconds") or 0) for p in eval_phases.values()), 6)}
    peaks = [p.get("peak_device_memory_bytes") for p in [train, *eval_phases.values()] if p.get("peak_device_memory_bytes")]
    return {
        "device_type": device.type, "device_seconds_unit": trainer.clock.unit,
        **phases, "evaluation": evaluation, "flops_per_image": trainer.eval_image_flops(),
        "flops": int(train.get("flops") or 0) + int(phases.get("monitor", {}).get("flops") or 0) + evaluation["flops"],
        "device_seconds": round(float(train.get("device_seconds") or 0) + float(phases.get("monitor", {}).get("device_seconds") or 0)
                                + evaluation["device_seconds"], 3),
        "peak_device_memory_bytes": max(peaks) if peaks else None,
        "peak_host_memory_bytes": host_peak_bytes(),
    }


__all__ = ["RunLocked", "Setup", "add_protocol_layers", "build_components", "build_trained_classifier", "check_data_settings", "load_model", "prepare", "read_model_info", "run",
           "run_lock", "run_paths", "wait_for_run_lock"]
