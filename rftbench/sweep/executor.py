"""The executor contract, and a base class for executors built on :mod:`concurrent.futures`.

An executor ships :class:`~rftbench.sweep.worker.RunTask` objects to wherever runs happen and
hands back their :class:`~rftbench.sweep.worker.Outcome`. It knows nothing of claims or results:
the worker function does that against the shared results directory. The full contract is the
docstring of :func:`rftbench.hookspecs.rftbench_add_executors`.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Executor(Protocol):
    """What the sweep runner drives (see ``rftbench_add_executors`` for the contract)."""

    #: How many runs the runner keeps submitted at once (``None``: all of them).
    slots: int | None

    def start(self, results_dir: Path) -> None: ...

    def submit(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> Any: ...

    def shutdown(self) -> None: ...


class FuturesExecutor:
    """An executor whose handles are :class:`concurrent.futures.Future` objects.

    Subclasses create ``self.pool`` (any ``concurrent.futures.Executor``) in :meth:`start`.
    """

    slots: int | None = 1
    pool: cf.Executor | None = None

    def start(self, results_dir: Path) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def submit(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[cf.Future]:
        assert self.pool is not None, "start() the executor first"
        return [self.pool.submit(fn, item) for item in items]

    def wait(self, handles: Sequence[cf.Future], timeout: float) -> list[cf.Future]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: cf.Future) -> Any:
        return handle.result()

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
