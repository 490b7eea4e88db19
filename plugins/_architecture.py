"""What every zoo architecture's spec shares, importable without torch (plugin discovery reads it).

:class:`ArchitectureParams` is public as ``rftbench.ArchitectureParams``; this name is kept for old imports.
"""

from __future__ import annotations

from rftbench.specs import ArchitectureParams

__all__ = ["ArchitectureParams"]
