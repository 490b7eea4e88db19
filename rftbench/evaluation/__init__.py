"""The evaluator: clean accuracy, accuracy under each threat model of a suite, and metrics.

Public API: :func:`evaluate` (the suite runner), :class:`EvalContext` (what threat models
and metrics receive), :class:`Metric` (the protocol a metric spec's factory returns) and
:class:`EvaluationError`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._lazy import protect_exports

#: Public names and their modules, imported (with torch) on first access, so that light code
#: (plugin discovery, configs) can import ``rftbench.evaluation.<module>`` without torch.
_LAZY = {"EvalContext": "context", "Metric": "context", "EvaluationError": "evaluate", "evaluate": "evaluate",
         "resolve_suite": "evaluate"}
protect_exports(__name__, _LAZY)  # `rftbench.evaluation.evaluate` stays the function once the submodule is imported


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["EvalContext", "EvaluationError", "Metric", "evaluate", "resolve_suite"]
