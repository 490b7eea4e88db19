"""What a worker does with one run, wherever it runs (in-process, a pool process, a Ray task, a SLURM job).

:func:`execute` is the whole protocol: skip a run whose record exists, claim it, run it with a
heartbeat, write its record or its failure, release the claim. The worker reads and writes the
results directory itself, so a sweep survives the death of the process that drives it.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import RunConfig
from ..errors import RftbenchError
from ..results import ResultRecord, guard_record_writes
from .store import HOST, ClaimLost, Store

RunFunction = Callable[[RunConfig], Any]
#: The run function of real sweeps: ``rftbench.run(config) -> ResultRecord``.
DEFAULT_RUN = "rftbench.runner:run"

Status = Literal["done", "skipped", "busy", "failed", "exhausted", "interrupted", "lost"]


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run; picklable for executors that ship Python objects
    between processes they start themselves; written to disk only as JSON (:func:`task_to_json`)."""

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
    by a live worker), ``failed`` (raised; its failure record has ``attempts`` entries),
    ``exhausted`` (failed ``max_attempts`` times before), ``interrupted`` (Ctrl-C or SIGTERM: a
    checkpoint was kept, no attempt counted) or ``lost`` (the claim went stale and another worker
    took the run over: nothing was written)."""

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
    """Run one task under the store's protocol; never raises for a failure of the run itself.

    An unreadable record is moved aside (with a warning) and the run done again. Ctrl-C or
    SIGTERM during the run gives ``interrupted`` and counts no attempt. The record is written
    only while this worker still owns the claim (re-checked just before every write).
    """
    from ..engine.trainer import RunInterrupted

    store = Store(task.root, claim_timeout=task.claim_timeout)
    state = store.record_state(task.hash)
    if state == "done":
        return Outcome(task.hash, "skipped")
    attempts = store.attempts(task.hash)
    if attempts >= task.max_attempts:
        return Outcome(task.hash, "exhausted", attempts=attempts)
    claim = store.claim(task.hash)
    if claim is None:
        return Outcome(task.hash, "busy")
    with claim:
        state = store.record_state(task.hash)
        if state == "done":  # finished by another worker between the check and the claim
            return Outcome(task.hash, "skipped")
        if state == "unreadable":
            store.quarantine(store.result_path(task.hash), "unreadable result record")
        start = time.perf_counter()
        try:
            with guard_record_writes(lambda path: claim.check()), _no_waiting_for_run_locks():
                if task.nproc > 1:
                    returned = _run_distributed(task, store, claim.token)
                else:
                    returned = resolve_run_function(task.run)(task.config)
                record = _as_record(returned, task, store)
                store.write_result(record, claim)
        except ClaimLost as err:
            return Outcome(task.hash, "lost", time.perf_counter() - start, str(err))
        except (RunInterrupted, KeyboardInterrupt) as err:
            return Outcome(task.hash, "interrupted", time.perf_counter() - start, str(err) or "interrupted")
        except Exception as err:  # noqa: BLE001 - a run's failure is recorded, never fatal to the sweep
            from ..runner import RunLocked

            seconds = time.perf_counter() - start
            if isinstance(err, RunLocked):  # another process runs this very config: not a failure
                return Outcome(task.hash, "busy", seconds, str(err))
            if not claim.still_mine():
                return Outcome(task.hash, "lost", seconds, f"{type(err).__name__}: {err}")
            count = store.record_failure(task.hash, task.config.to_dict(), err, seconds=seconds)
            return Outcome(task.hash, "failed", seconds, f"{type(err).__name__}: {err}", count)
        return Outcome(task.hash, "done", time.perf_counter() - start, attempts=attempts)


def _no_waiting_for_run_locks() -> Any:
    from ..runner import wait_for_run_lock

    return wait_for_run_lock(False)


def task_to_json(task: RunTask, claim_token: str) -> str:
    """The task as JSON (what a torchrun rank reads): data only, never code or pickles."""
    return json.dumps({
        "format": 1, "root": task.root, "hash": task.hash, "config": task.config.to_dict(), "label": task.label,
        "claim_timeout": task.claim_timeout, "max_attempts": task.max_attempts, "nproc": task.nproc,
        "claim_token": claim_token,
    })


def task_from_json(text: str | bytes, run: RunFunction | str) -> tuple[RunTask, str]:
    """``(task, claim token)`` from :func:`task_to_json`'s text, validated: the config must hash to the task's hash."""
    from pydantic import ValidationError

    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != 1:
            raise ValueError("not a task file of format 1")
        config = RunConfig.model_validate(data["config"])
        task = RunTask(str(data["root"]), str(data["hash"]), config, str(data.get("label", "")), run,
                       float(data["claim_timeout"]), int(data["max_attempts"]), int(data["nproc"]))
        token = str(data["claim_token"])
    except (ValueError, KeyError, TypeError, ValidationError) as err:
        raise RftbenchError(f"invalid task file: {err}") from None
    if config.config_hash() != task.hash:
        raise RftbenchError(f"invalid task file: its config hashes to {config.config_hash()}, not {task.hash}")
    return task, token


def _run_distributed(task: RunTask, store: Store, claim_token: str) -> None:
    """Launch one run as ``task.nproc`` processes with torchrun; rank 0 writes the record.

    The run function is called on every rank with torch.distributed's environment set (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``); it initialises the process group
    itself. This worker keeps the claim (and its heartbeat) while torchrun runs. The task goes to
    the ranks as a JSON file in a private temporary folder (never in the shared results folder,
    never pickled); the run function is named on the command line.
    """
    import subprocess
    import sys
    import tempfile

    ref = task.run if isinstance(task.run, str) else f"{task.run.__module__}:{task.run.__qualname__}"
    with tempfile.TemporaryDirectory(prefix="rftbench-task-") as folder:  # mode 0700
        path = os.path.join(folder, f"{task.hash}.json")
        with open(path, "w") as handle:
            handle.write(task_to_json(task, claim_token))
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={task.nproc}",
            "-m", "rftbench.sweep.launch", path, ref,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
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
    if record.status not in ("complete", "stopped"):  # stopped: ended early by --stop-on-warning, a finished outcome
        raise RftbenchError(f"the run returned a record with status {record.status!r}")
    return record
