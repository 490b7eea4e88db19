"""The ``slurm`` executor: runs as SLURM jobs through submitit, batched into job arrays.

Every batch of runs the sweep runner submits becomes one job array (``sbatch --array``), at most
``array_parallelism`` of its tasks running at once, each asking for ``time_min`` minutes,
``gpus_per_run`` GPUs and ``cpus_per_run`` CPUs. ``cluster: local`` hands the same jobs to
submitit's local executor (subprocesses on this machine), which is how the tests run it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rftbench import Params
from rftbench.sweep.errors import ExecutorError

INSTALL_HINT = "install it with: pip install 'rftbench[scale]'"


class SlurmParams(Params):
    cluster: Literal["slurm", "local"] = Field("slurm", description="'local': submitit's local executor on this machine")
    partition: str | None = Field(None, description="SLURM partition (--partition)")
    account: str | None = Field(None, description="SLURM account (--account)")
    qos: str | None = Field(None, description="SLURM quality of service (--qos)")
    constraint: str | None = Field(None, description="SLURM node features (--constraint)")
    time_min: int = Field(60, ge=1, description="wall-time limit of each run, in minutes (--time)")
    gpus_per_run: int = Field(0, ge=0, le=16, description="GPUs per run (--gpus-per-node); 2 or more: torchrun, one process per GPU")
    cpus_per_run: int = Field(1, ge=1, le=512, description="CPUs per run (--cpus-per-task)")
    mem_gb: float | None = Field(None, gt=0, description="memory per run in GB (--mem)")
    array_parallelism: int = Field(64, ge=1, description="tasks of a job array running at once (--array=…%N)")
    max_in_flight: int | None = Field(None, ge=1, description="runs submitted at once (default: all, as one array)")
    folder: str | None = Field(None, description="where submitit keeps job scripts and logs (default: RESULTS_DIR/slurm/%j)")
    setup: list[str] = Field(default_factory=list, description="shell lines run before each job (module load …, source venv)")
    additional: dict[str, Any] = Field(default_factory=dict, description="other sbatch options, e.g. {mail-type: END}")


class SlurmExecutor:
    """Submits runs as submitit jobs; handles are ``submitit.Job`` objects."""

    def __init__(self, **params: Any):
        self.params = SlurmParams.model_validate(params)
        self.slots = self.params.max_in_flight
        self.procs_per_run = self.params.gpus_per_run if self.params.gpus_per_run >= 2 else 1
        self._executor: Any = None

    def start(self, results_dir: Path) -> None:
        try:
            import submitit
        except ImportError:
            raise ExecutorError(f"executor 'slurm' needs the submitit package; {INSTALL_HINT}") from None
        p = self.params
        if p.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ExecutorError(
                "executor 'slurm': `sbatch` is not on PATH, so jobs cannot be submitted from this machine.\n"
                "Run the sweep on a SLURM login node, use `executor: {name: slurm, cluster: local}` to try the jobs "
                "here, or another executor (local, ray)."
            )
        folder = Path(p.folder) if p.folder else Path(results_dir) / "slurm" / "%j"
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ExecutorError(f"executor 'slurm': cannot create the log folder {str(folder.parent)!r}: {err}") from None
        executor = submitit.AutoExecutor(folder=folder, cluster=p.cluster)
        values: dict[str, Any] = {
            "name": "rftbench-sweep",
            "timeout_min": p.time_min,
            "cpus_per_task": p.cpus_per_run,
            "gpus_per_node": p.gpus_per_run,
            "nodes": 1,
            "tasks_per_node": 1,
        }
        if p.mem_gb is not None:
            values["mem_gb"] = p.mem_gb
        if p.cluster == "slurm":
            values["slurm_array_parallelism"] = p.array_parallelism
            for key in ("partition", "account", "qos", "constraint"):
                if getattr(p, key) is not None:
                    values[f"slurm_{key}"] = getattr(p, key)
            if p.setup:
                values["slurm_setup"] = list(p.setup)
            if p.additional:
                values["slurm_additional_parameters"] = dict(p.additional)
        executor.update_parameters(**values)
        self._executor = executor

    def submit(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        assert self._executor is not None, "start() the executor first"
        if not items:
            return []
        return list(self._executor.map_array(fn, list(items)))  # one job array per batch

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            done = [job for job in handles if job.done()]
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def result(self, handle: Any) -> Any:
        return handle.result()

    def shutdown(self) -> None:
        self._executor = None
