"""The CPUs this process may run on: one implementation, below :mod:`rftbench.config` and :mod:`rftbench.engine.threads`."""

from __future__ import annotations

import os


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where the OS has no affinity call), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


__all__ = ["affinity_cpus"]
