"""The CLI's one error path: every failure becomes one ``error:`` message and an exit status, never a traceback.

- An anticipated failure (an :class:`~rftbench.errors.RftbenchError`, a file or disk problem, bad
  text encoding, a network error) prints ``error: …`` and exits with status 2.
- Ctrl-C or SIGTERM prints what was kept and exits with 130.
- Anything else is a bug: a short message naming the exception and asking for a report with the
  output of ``rftbench doctor``; exit 1. ``RFTBENCH_DEBUG=1`` shows the traceback too. A bug raised
  in a plugin's code names the plugin, what raised and its distribution, after the traceback (for
  the plugin's authors).

Messages are printed as plain text (never parsed as Rich markup) and cut to a readable length.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

from rich.console import Console
from rich.text import Text

from ..errors import RftbenchError
from ._app import SafeConsole

#: Exit status of a user error (the README's promise), of an interrupted command, of a bug.
USER_ERROR, INTERRUPTED, BUG = 2, 130, 1
MAX_MESSAGE = 4000
DEBUG_ENV = "RFTBENCH_DEBUG"

_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space (or choose another output folder) and run the command again",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run the command again",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose another folder",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOTDIR: "a path component is a file, not a folder: choose another path",
    errno.EISDIR: "expected a file but found a folder",
    errno.ENAMETOOLONG: "the path is too long",
}


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters (lines to 500), saying how much was left out."""
    lines = [line if len(line) <= 500 else f"{line[:500]}… ({len(line) - 500} more characters)" for line in text.splitlines()]
    text = "\n".join(lines)
    return text if len(text) <= limit else f"{text[:limit]}\n… ({len(text) - limit} more characters)"


def describe(err: BaseException) -> tuple[int, str]:
    """``(exit status, message)`` for an exception that escaped a command."""
    from urllib.error import URLError

    import yaml
    from pydantic import ValidationError

    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(err, RftbenchError):
        from ..engine.trainer import RunInterrupted

        return (INTERRUPTED if isinstance(err, RunInterrupted) else USER_ERROR), str(err)
    if isinstance(err, URLError):
        return USER_ERROR, f"network error: {err.reason}. Check the connection (or work offline with data already fetched)."
    if isinstance(err, UnicodeDecodeError):
        return USER_ERROR, f"a file is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
    if isinstance(err, OSError):
        where = " → ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
        hint = _OS_HINTS.get(err.errno or -1, "")
        detail = err.strerror or str(err) or type(err).__name__
        return USER_ERROR, f"{where + ': ' if where else ''}{detail}" + (f" ({hint})" if hint and hint != detail.lower() else "")
    if isinstance(err, yaml.YAMLError):
        return USER_ERROR, f"not valid YAML: {err}"
    if isinstance(err, ValidationError):
        from ..cards import format_validation_error

        return USER_ERROR, f"invalid {err.title}:\n{format_validation_error(err)}"
    if isinstance(err, MemoryError):
        return USER_ERROR, "out of memory: use a smaller batch size or fewer examples"
    return BUG, (
        f"unexpected {type(err).__name__}: {err}\n"
        "This is a bug in rftbench or a plugin: please report this, with the output of `rftbench doctor` "
        f"(set {DEBUG_ENV}=1 to see the traceback)."
    )


def _blame(err: BaseException) -> Exception | None:
    """The plugin whose code raised ``err`` (a :class:`~rftbench.plugins.PluginRuntimeError`), if any."""
    try:
        from ..plugins import _default

        return _default.attribute(err) if _default is not None else None
    except Exception:  # noqa: BLE001 - blaming is best effort
        return None


def report(err: BaseException, console: Console | None = None) -> int:
    """Print ``err`` as the CLI's one error message; returns the exit status."""
    console = console or SafeConsole(stderr=True, highlight=False, markup=False, emoji=False)
    status, message = describe(err)
    blamed = _blame(err) if status == BUG else None
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    if blamed is not None:
        message = str(blamed) + ("" if debug else f"\n  For the plugin's authors: set {DEBUG_ENV}=1 to see the traceback.")
    if debug:  # a plugin's bug too: the traceback only when asked for, as the README says
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    label = "interrupted" if status == INTERRUPTED else "error"
    if status == INTERRUPTED and message == "interrupted":
        console.print(Text("interrupted", style="bold yellow"), soft_wrap=True)
        return status
    console.print(Text.assemble((f"{label}:", "bold red" if label == "error" else "bold yellow"), " ", shorten(message)), soft_wrap=True)
    return status
