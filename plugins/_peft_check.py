"""Whether the Hugging Face ``peft`` library is importable, checked without importing it (or torch)."""

from __future__ import annotations

import importlib.util
import sys

#: The command that installs what the peft-based protocols need.
PIP = "pip install 'peft>=0.13'"


def peft_missing() -> bool:
    """Whether ``import peft`` would fail (a ``None`` entry in ``sys.modules`` blocks it, as tests do)."""
    if "peft" in sys.modules:
        return sys.modules["peft"] is None
    try:
        return importlib.util.find_spec("peft") is None
    except (ImportError, ValueError):
        return True
