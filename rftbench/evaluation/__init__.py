"""The evaluator: clean accuracy, accuracy under each threat model of a suite, and metrics.

Public API: :func:`evaluate` (the suite runner), :class:`EvalContext` (what threat models
and metrics receive), :class:`Metric` (the protocol a metric spec's factory returns) and
:class:`EvaluationError`.
"""

from __future__ import annotations

from .context import EvalContext, Metric
from .evaluate import EvaluationError, evaluate, resolve_suite

__all__ = ["EvalContext", "EvaluationError", "Metric", "evaluate", "resolve_suite"]
