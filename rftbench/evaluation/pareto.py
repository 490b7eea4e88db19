"""The clean–robust Pareto frontier of a run's evaluation points and the area under it (Pareto AUC).

Definition (``docs/monitor.md``): each evaluation point during training gives a pair
``(a_i, r_i)`` = (clean accuracy, robust accuracy) on the monitor's validation subset, both
fractions in [0, 1]. The Pareto frontier is the set of points no other point dominates (at
least as good on both axes, better on one). The Pareto AUC is the area of the region of
[0, 1]² that the frontier dominates,

    AUC = Σ_k (a_(k) − a_(k−1)) · r_(k),   a_(0) = 0,

over the frontier points sorted by clean accuracy ascending (robust accuracy then descends),
i.e. the area under the frontier's staircase from the origin. The unit square has area 1, so
AUC ∈ [0, 1] with no further normalisation; a single point (a, r) gives a · r, and a perfect
model 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pareto_front(clean: Sequence[float], robust: Sequence[float]) -> list[tuple[float, float]]:
    """The non-dominated ``(clean, robust)`` points, sorted by clean accuracy ascending (duplicates once)."""
    if len(clean) != len(robust):
        raise ValueError(f"clean and robust have different lengths ({len(clean)} and {len(robust)})")
    points = sorted({(float(a), float(r)) for a, r in zip(clean, robust)}, key=lambda p: (-p[0], -p[1]))
    front: list[tuple[float, float]] = []
    best_robust = -math.inf
    for a, r in points:  # clean descending: a point is on the front when it beats every cleaner point's robustness
        if r > best_robust:
            front.append((a, r))
            best_robust = r
    return front[::-1]


def pareto_auc(clean: Sequence[float], robust: Sequence[float]) -> float | None:
    """The area under the clean–robust Pareto frontier (see the module docstring); ``None`` without points.

    :raises ValueError: a value outside [0, 1] or not finite, or lengths that differ.
    """
    for name, values in (("clean", clean), ("robust", robust)):
        for v in values:
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} accuracy {v!r} is not a fraction in [0, 1]")
    front = pareto_front(clean, robust)
    if not front:
        return None
    area, previous = 0.0, 0.0
    for a, r in front:
        area += (a - previous) * r
        previous = a
    return area


__all__ = ["pareto_auc", "pareto_front"]
