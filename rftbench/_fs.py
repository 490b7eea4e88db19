"""File-system helpers every writer shares: one atomic write, one permission policy, one hash, one lock.

Kept free of rftbench imports so any layer can use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def umask() -> int:
    """The process's current umask (read without changing it for longer than a call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode new files get here (0666 less the umask), for files written through a temporary name."""
    return 0o666 & ~umask()


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], Any] | bytes | str, *, binary: bool | None = None) -> Path:
    """Write ``path`` so that readers see the old file or the new one, never a part; returns the path.

    ``write`` is the content (``bytes`` or ``str``) or a callable given the open temporary file
    (``binary`` then picks its mode, text by default). The temporary file sits beside ``path``,
    is flushed and fsynced, gets the usual permissions (0666 less the umask, as a plain ``open``
    would give; ``mkstemp`` alone creates 0600) and is renamed into place; on any error it is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if binary is None:
        binary = isinstance(write, bytes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            if callable(write):
                write(handle)
            else:
                handle.write(write)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, text, binary=False)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on ``path`` (created if missing) for the block.

    For read-modify-write of a shared file by several processes (sweep workers sharing a cache).
    Where ``fcntl`` is missing (Windows) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
