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


class PathEscapeError(ValueError):
    """A path from outside (a card, an entry, a results folder) tries to leave its root."""


def check_relative(value: str, what: str = "path") -> str:
    """``value`` if it is a plain relative path (no absolute, no ``..``, no ``~``, no NUL); else raise.

    Used by schemas (pydantic validators raise ``ValueError``) before any file is touched.
    """
    text = str(value)
    if not text or "\x00" in text:
        raise PathEscapeError(f"{what} {text!r}: empty or contains a NUL byte")
    if "\\" in text:
        raise PathEscapeError(f"{what} {text!r}: use '/' as the separator")
    parts = text.split("/")
    if text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":"):
        raise PathEscapeError(f"{what} {text!r}: must be relative (no leading '/', '~' or drive)")
    if any(p == ".." for p in parts):
        raise PathEscapeError(f"{what} {text!r}: must not contain '..'")
    return text


def confined(root: str | os.PathLike, relative: str, what: str = "path") -> Path:
    """``root / relative``, resolved, guaranteed inside ``root`` (symlinks included); else :class:`PathEscapeError`.

    The one helper every path from a card, an entry or a results folder goes through.
    """
    check_relative(relative, what)
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if target != base and not target.is_relative_to(base):
        raise PathEscapeError(f"{what} {relative!r} leads outside {base} (through a symbolic link)")
    return target
