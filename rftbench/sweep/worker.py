"""What a worker does with one run, wherever it runs (in-process, a pool process, a Ray task, a SLURM job).

:func:`execute` is the whole protocol: skip a run whose record exists, claim it, run it with a
heartbeat, write its record or its failure, release the claim. The worker reads and writes the
results directory itself, so a sweep survives the death of the process that drives it.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import RunConfig
from ..errors import RftbenchError
from ..results import ResultRecord
from .store import HOST, Store

RunFunction = Callable[[RunConfig], Any]
#: The run function of real sweeps: ``rftbench.run(config) -> ResultRecord``.
DEFAULT_RUN = "rftbench.runner:run"

Status = Literal["done", "skipped", "busy", "failed", "exhausted"]


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run; picklable, so any executor can ship it."""

    root: str
    hash: str
    config: RunConfig
    label: str = ""
    run: RunFunction | str = DEFAULT_RUN
    claim_timeout: float = 3600.0
    max_attempts: int = 2
    #: Processes for this one run: above 1, the run is launched with torchrun (one per GPU).
    nproc: int = 1


@dataclass(frozen=True)
class Outcome:
    """What became of one task: ``done`` (ran now), ``skipped`` (a record existed), ``busy`` (claimed
    by a live worker), ``failed`` (raised; its failure record has ``attempts`` entries) or
    ``exhausted`` (failed ``max_attempts`` times before)."""

    hash: str
    status: Status
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 0
    host: str = field(default_factory=lambda: HOST)
    pid: int = field(default_factory=os.getpid)


def resolve_run_function(ref: RunFunction | str) -> RunFunction:
    """A run function from a callable or a ``module:attribute`` reference."""
    if callable(ref):
        return ref
    module, sep, attr = str(ref).partition(":")
    if not sep:
        raise RftbenchError(f"run function {ref!r} must look like 'module:function' (e.g. {DEFAULT_RUN!r})")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise RftbenchError(f"cannot import the run function {ref!r}: {err}") from None
    if not callable(target):
        raise RftbenchError(f"run function {ref!r} is not callable")
    return target


def execute(task: RunTask) -> Outcome:
    """Run one task under the store's protocol; never raises for a failure of the run itself."""
    store = Store(task.root, claim_timeout=task.claim_timeout)
    if store.is_done(task.hash):
        return Outcome(task.hash, "skipped")
    attempts = store.attempts(task.hash)
    if attempts >= task.max_attempts:
        return Outcome(task.hash, "exhausted", attempts=attempts)
    claim = store.claim(task.hash)
    if claim is None:
        return Outcome(task.hash, "busy")
    with claim:
        if store.is_done(task.hash):  # finished by another worker between the check and the claim
            return Outcome(task.hash, "skipped")
        start = time.perf_counter()
        try:
            if task.nproc > 1:
                returned = _run_distributed(task, store)
            else:
                returned = resolve_run_function(task.run)(task.config)
            record = _as_record(returned, task, store)
            store.write_result(record)
        except Exception as err:  # noqa: BLE001 - a run's failure is recorded, never fatal to the sweep
            seconds = time.perf_counter() - start
            count = store.record_failure(task.hash, task.config.to_dict(), err, seconds=seconds)
            return Outcome(task.hash, "failed", seconds, f"{type(err).__name__}: {err}", count)
        return Outcome(task.hash, "done", time.perf_counter() - start, attempts=attempts)


def _run_distributed(task: RunTask, store: Store) -> None:
    """Launch one run as ``task.nproc`` processes with torchrun; rank 0 writes the record.

    The run function is called on every rank with torch.distributed's environment set (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``); it initialises the process group
    itself. This worker keeps the claim (and its heartbeat) while torchrun runs.
    """
    import pickle
    import subprocess
    import sys

    path = store.claims / f"{task.hash}.task"
    path.write_bytes(pickle.dumps(task))
    try:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={task.nproc}",
            "-m", "rftbench.sweep.launch", str(path),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        path.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-30:])
        raise RftbenchError(f"torchrun ({task.nproc} processes) exited with status {done.returncode}:\n{tail}")
    return None


def _as_record(returned: Any, task: RunTask, store: Store) -> ResultRecord:
    if returned is None:  # the run function wrote the record itself
        path = store.result_path(task.hash)
        if not store.is_done(task.hash):
            raise RftbenchError(f"the run function returned nothing and wrote no complete record at {path}")
        from ..results import read_record

        return read_record(path)
    record = returned if isinstance(returned, ResultRecord) else ResultRecord.model_validate(returned)
    if record.id != task.hash:
        raise RftbenchError(f"the run returned a record with id {record.id!r}; expected the config hash {task.hash!r}")
    if record.status != "complete":
        raise RftbenchError(f"the run returned a record with status {record.status!r}")
    return record
