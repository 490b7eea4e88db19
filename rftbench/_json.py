"""One strict JSON reader for files that come from outside (entries, records, outbox items).

The standard library accepts ``NaN``/``Infinity`` (not JSON) and raises ``RecursionError`` on
deep nesting; both reached users as bug messages. :func:`loads` turns each into a
:class:`json.JSONDecodeError` (a ``ValueError``), which every reader already reports by name.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number (non-finite values are not allowed)", name, 0)


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity`` and too-deep nesting with ``JSONDecodeError``."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError("nested too deeply to be read", doc[:0], 0) from None
