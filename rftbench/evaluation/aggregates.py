"""The reference study's aggregates of a result: ``sum`` and ``geom`` (the product) of its accuracies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .evaluate import EvaluationError

if TYPE_CHECKING:
    from .context import EvalContext


class Aggregates:
    """``sum`` and ``geom`` over clean accuracy and the threat models' accuracies.

    The study aggregates 5 accuracies (clean, L∞, L2, L1, common corruptions) by their sum and
    their product (it calls the product ``geom``); ``of`` picks the labels (default: clean and
    every threat model of the suite, in order).
    """

    def __init__(self, of: Sequence[str] | None):
        self.of = list(of) if of else None

    def label(self) -> str:
        return "aggregates"

    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        accs = {"clean": ctx.results["clean_acc"], **{k: v["acc"] for k, v in ctx.results["threats"].items()}}
        labels = self.of or list(accs)
        missing = [label for label in labels if label not in accs]
        if missing:
            raise EvaluationError(
                f"aggregates: {', '.join(map(repr, missing))} not measured in this evaluation; measured: {', '.join(accs)}. "
                "Add the threat model to the suite or remove it from `of`."
            )
        values = [accs[label] for label in labels]
        return {"sum": sum(values), "geom": math.prod(values), "of": labels}
