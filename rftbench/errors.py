"""Errors rftbench raises on purpose: each one names the kind, the value and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RftbenchError(Exception):
    """Base class: an error meant for the user, printed without a traceback by the CLI."""


class PluginError(RftbenchError):
    """A plugin could not be loaded, or contributed something invalid or ambiguous."""


class DuplicateNameError(PluginError):
    """Two plugins contribute the same name for the same kind."""


class PluginRuntimeError(PluginError):
    """A plugin's code raised while rftbench used it; the message names the plugin, what was called and its distribution."""

    def __init__(self, message: str, *, plugin: str | None = None, distribution: str | None = None):
        super().__init__(message)
        self.plugin, self.distribution = plugin, distribution


class UnknownNameError(RftbenchError, LookupError):
    """A name that no plugin or card provides."""

    def __init__(self, kind: str, name: str, available: Iterable[str], *, hint: str = ""):
        self.kind, self.name = kind, name
        self.available = sorted(available)
        self.matches = close_matches(name, self.available)
        lines = [f"Unknown {kind} {name!r}."]
        if self.matches:
            lines.append(f"Did you mean: {', '.join(self.matches)}?")
        shown = ", ".join(self.available[:30]) + (" …" if len(self.available) > 30 else "")
        lines.append(f"Available: {shown or '(none)'} ({len(self.available)} total).")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class CardError(RftbenchError):
    """A zoo card (representation or dataset) failed validation."""


class DatasetError(RftbenchError):
    """A dataset is missing, incomplete, or does not match its card."""


class ConfigError(RftbenchError):
    """A run configuration is invalid; the message names the field and the allowed values."""


#: Names longer than this are never compared by edit distance (difflib is quadratic in the length).
MAX_SUGGEST_LENGTH = 200
#: At most this many distinct candidates are compared.
MAX_SUGGEST_CANDIDATES = 10_000


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Names in ``candidates`` close to ``name`` (prefix matches first, then edit distance).

    Bounded for hostile input: a ``name`` or candidate over :data:`MAX_SUGGEST_LENGTH`
    characters gets no suggestion / is skipped, and at most :data:`MAX_SUGGEST_CANDIDATES`
    distinct candidates are read.
    """
    if not isinstance(name, str) or len(name) > MAX_SUGGEST_LENGTH:
        return []
    unique: dict[str, None] = {}
    for c in candidates:
        if isinstance(c, str) and len(c) <= MAX_SUGGEST_LENGTH:
            unique[c] = None
            if len(unique) >= MAX_SUGGEST_CANDIDATES:
                break
    candidates = list(unique)
    prefix = [c for c in candidates if name and (c.startswith(name) or name.startswith(c.split(".")[0]))]
    fuzzy = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    out: list[str] = []
    for c in prefix + fuzzy:
        if c not in out and c != name:
            out.append(c)
    return out[:n]
