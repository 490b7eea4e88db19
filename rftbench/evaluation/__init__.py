"""The evaluator: clean accuracy, accuracy under each threat model of a suite, and metrics.

Public API: :func:`evaluate` (the suite runner), :class:`EvalContext` (what threat models
and metrics receive), :class:`Metric` (the protocol a metric spec's factory returns) and
:class:`EvaluationError`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

#: Public names and their modules, imported (with torch) on first access, so that light code
#: (plugin discovery, configs) can import ``rftbench.evaluation.<module>`` without torch.
_LAZY = {"EvalContext": "context", "Metric": "context", "EvaluationError": "evaluate", "evaluate": "evaluate",
         "resolve_suite": "evaluate", "check_inputs": "evaluate"}
__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["EvalContext", "EvaluationError", "Metric", "check_inputs", "evaluate", "resolve_suite"]
