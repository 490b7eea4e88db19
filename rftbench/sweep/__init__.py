"""Sweeps: grids of runs over the registry, resumable by construction, on any executor.

- :mod:`~rftbench.sweep.spec`: the sweep file (axes, zoo filters, product and zip) and its expansion;
- :mod:`~rftbench.sweep.store`: the results directory (records by config hash, claims, failures);
- :mod:`~rftbench.sweep.worker`: what a worker does with one run;
- :mod:`~rftbench.sweep.runner`: drives an executor with live progress and a final summary;
- :mod:`~rftbench.sweep.export`: lists, filters and exports result records;
- :mod:`~rftbench.sweep.tune`: hyper-parameter search with Ray Tune (ASHA).
"""

from __future__ import annotations

from .errors import ExecutorError, SweepError
from .executor import Executor, FuturesExecutor
from .runner import SweepSummary, build_executor, run_sweep
from .spec import Sweep, SweepRun, SweepSpec, expand_sweep, load_sweep
from .store import Store
from .worker import DEFAULT_RUN, Outcome, RunTask, execute

__all__ = [
    "DEFAULT_RUN",
    "Executor",
    "ExecutorError",
    "FuturesExecutor",
    "Outcome",
    "RunTask",
    "Store",
    "Sweep",
    "SweepError",
    "SweepRun",
    "SweepSpec",
    "SweepSummary",
    "build_executor",
    "execute",
    "expand_sweep",
    "load_sweep",
    "run_sweep",
]
