"""The ``ray`` executor: each run is a Ray task with its own CPU and GPU request.

Ray places a task with ``num_gpus=1`` on a node with a free GPU and sets ``CUDA_VISIBLE_DEVICES``
for it, so a run whose config says ``device: auto`` uses the GPU it was given.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import Field

from rftbench import Params
from rftbench.sweep.errors import ExecutorError

INSTALL_HINT = "install it with: pip install 'rftbench[scale]'"


class RayParams(Params):
    address: str | None = Field(
        None,
        description="None: start a Ray on this machine; 'auto': the cluster `ray start` made here; 'host:port' or 'ray://host:port'",
    )
    num_cpus: int | None = Field(None, ge=1, description="for a Ray started here: how many CPUs it may use (default: all)")
    cpus_per_run: float = Field(1.0, gt=0, description="CPUs Ray reserves for each run")
    gpus_per_run: float = Field(
        0.0, ge=0, description="GPUs Ray reserves for each run (fractions share a GPU; 2 or more: torchrun, one process per GPU)"
    )
    max_in_flight: int | None = Field(None, ge=1, description="runs submitted at once (default: all; Ray queues them)")
    connect_timeout: float = Field(5.0, gt=0, description="seconds to wait for the cluster's address to answer")


class RayExecutor:
    """Submits runs as Ray tasks; handles are Ray ``ObjectRef`` objects."""

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        max_in_flight: int | None = None,
        connect_timeout: float = 5.0,
    ):
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.slots = max_in_flight
        self.procs_per_run = int(gpus_per_run) if gpus_per_run >= 2 else 1
        self.connect_timeout = connect_timeout
        self._started_here = False
        self._remote: dict[Callable, Any] = {}

    def start(self, results_dir: Path) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError(f"executor 'ray' needs the ray package; {INSTALL_HINT}") from None
        if not ray.is_initialized():
            if self.address not in (None, "auto", "local"):
                _probe(self.address, self.connect_timeout)
            try:
                ray.init(
                    address=self.address,
                    num_cpus=self.num_cpus if self.address is None else None,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except Exception as err:  # noqa: BLE001 - any failure to connect is the user's to fix
                where = f"at {self.address!r}" if self.address else "on this machine"
                raise ExecutorError(
                    f"executor 'ray' could not start or reach a Ray cluster {where}: {type(err).__name__}: {err}\n"
                    "Start one with `ray start --head` (then address: auto), or leave address unset for a local Ray."
                ) from None
            self._started_here = True
        resources = ray.cluster_resources()
        for name, need, key in (("cpus_per_run", self.cpus_per_run, "CPU"), ("gpus_per_run", self.gpus_per_run, "GPU")):
            have = resources.get(key, 0.0)
            if need > have:
                self.shutdown()
                raise ExecutorError(
                    f"executor 'ray': {name}={need:g} but the cluster has {have:g} {key}s in all, so no run could ever be "
                    f"scheduled. Lower {name} or add nodes with {key}s."
                )

    def submit(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        import ray

        if fn not in self._remote:
            self._remote[fn] = ray.remote(max_retries=0)(fn)
        remote = self._remote[fn].options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run)
        return [remote.remote(item) for item in items]

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        import ray

        handles = list(handles)
        ready, rest = ray.wait(handles, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return ready

    def result(self, handle: Any) -> Any:
        import ray

        return ray.get(handle)

    def shutdown(self) -> None:
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False
        self._remote.clear()


def _probe(address: str, timeout: float) -> None:
    """Fail fast, with a clear message, when nothing listens at a Ray address."""
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise ExecutorError(
            f"executor 'ray': address {address!r} is not 'host:port', 'ray://host:port' or 'auto'"
        )
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ExecutorError(
            f"executor 'ray': no Ray cluster answers at {address!r} ({err.strerror or err}).\n"
            "Check the address (`ray status` on the head node prints it), start one with `ray start --head`, "
            "or leave address unset to start a Ray on this machine."
        ) from None
