"""Where rftbench keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RFTBENCH_CACHE"


def cache_path() -> Path:
    """Where rftbench's cache is: ``$RFTBENCH_CACHE`` or ``~/.cache/rftbench`` (not created)."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rftbench"


def cache_dir() -> Path:
    """rftbench's cache (built offline weights, datasets), created if missing (see :func:`cache_path`)."""
    path = cache_path()
    path.mkdir(parents=True, exist_ok=True)
    return path
