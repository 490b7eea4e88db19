"""Built-in plugin ``executors``: where the runs of a sweep happen.

- ``local``: in this process, one run after another (``processes: 0``, the default), or a small
  pool of worker processes on this machine (``processes: N``).
- ``ray``: tasks on a Ray cluster (``address``), with CPUs and GPUs per run (see ``_executor_ray``).
- ``slurm``: a SLURM job array through submitit, with time and GPU requests
  (see ``_executor_slurm``); ``cluster: local`` runs the same jobs with submitit's local executor.

The contract every executor follows is the docstring of ``rftbench_add_executors`` in
:mod:`rftbench.hookspecs`.
"""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rftbench import ExecutorSpec, Params, hookimpl
from rftbench.sweep.executor import FuturesExecutor

from ._executor_ray import RayExecutor, RayParams
from ._executor_slurm import SlurmExecutor, SlurmParams


class LocalParams(Params):
    processes: int = Field(
        0, ge=0, le=256, description="0: run in this process, one after another; N: a pool of N worker processes"
    )
    start_method: Literal["spawn", "forkserver", "fork"] = Field(
        "spawn", description="how pool processes start ('spawn' is the safe choice with torch and CUDA)"
    )
    procs_per_run: int = Field(1, ge=1, le=64, description="processes per run: above 1, each run is launched with torchrun (one per GPU)")


class _Inline(cf.Executor):
    """A concurrent.futures executor that runs each call at once, in the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - delivered through the future, like a pool would
            if not isinstance(err, Exception):
                raise
            future.set_exception(err)
        return future


class LocalExecutor(FuturesExecutor):
    """Runs in this process (sequentially) or in a process pool on this machine."""

    def __init__(self, processes: int = 0, start_method: str = "spawn", procs_per_run: int = 1):
        self.processes, self.start_method, self.procs_per_run = processes, start_method, procs_per_run
        self.slots = max(1, processes)

    def start(self, results_dir: Path) -> None:
        self.pool = self._new_pool()

    def _new_pool(self) -> cf.Executor:
        if self.processes == 0:
            return _Inline()
        context = multiprocessing.get_context(self.start_method)
        return cf.ProcessPoolExecutor(max_workers=self.processes, mp_context=context)

    def submit(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[cf.Future]:
        try:
            return super().submit(fn, items)
        except concurrent.futures.process.BrokenProcessPool:
            # a worker died (killed, out of memory): its runs are reported failed; go on with a new pool
            self.pool = self._new_pool()
            return super().submit(fn, items)


@hookimpl
def rftbench_add_executors() -> list[ExecutorSpec]:
    return [
        ExecutorSpec(
            name="local",
            description="This machine: in-process and sequential (processes: 0) or a pool of N worker processes.",
            params=LocalParams,
            factory=LocalExecutor,
        ),
        ExecutorSpec(
            name="ray",
            description="Tasks on a Ray cluster (address: None starts a local one, 'auto', 'host:port' or 'ray://…'), with CPUs/GPUs per run.",
            params=RayParams,
            factory=RayExecutor,
        ),
        ExecutorSpec(
            name="slurm",
            description="A SLURM job array through submitit, with time, partition and GPU requests; cluster: local runs it on this machine.",
            params=SlurmParams,
            factory=SlurmExecutor,
        ),
    ]
