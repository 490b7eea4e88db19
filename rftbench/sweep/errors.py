"""Errors of sweeps: each one is raised before any run starts and names the field, the value and the fix."""

from __future__ import annotations

from ..errors import RftbenchError


class SweepError(RftbenchError):
    """A sweep file is invalid, or its results directory cannot be used."""


class ExecutorError(SweepError):
    """An executor cannot start (no Ray cluster at the address, no ``sbatch``, a missing package)."""
