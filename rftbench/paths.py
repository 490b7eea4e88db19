"""Where rftbench keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RFTBENCH_CACHE"


def cache_dir() -> Path:
    """rftbench's cache (built offline weights, datasets): ``$RFTBENCH_CACHE`` or ``~/.cache/rftbench``."""
    root = os.environ.get(CACHE_ENV)
    path = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rftbench"
    path.mkdir(parents=True, exist_ok=True)
    return path
