"""Expected robustness (Epsilon-Scheduling, Ngnawé et al. 2025): mean accuracy over ε uniform on [0, ε_g].

``Acc_[0,ε_g] = (1/ε_g) ∫₀^{ε_g} Acc_ε dε``, by the trapezoid rule on a grid of step 1/255, with
the accuracy at each ε measured by an attack (APGD-CE, 10 steps, in the paper).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import EvalContext


def eps_grid(eps_max: float, step: float = 1 / 255) -> list[float]:
    """``0, step, 2·step, …`` up to ``eps_max``, which is always the last point (a shorter last step if needed)."""
    if eps_max <= 0 or step <= 0:
        raise ValueError(f"eps_max ({eps_max}) and step ({step}) must be positive")
    n = int(math.floor(eps_max / step + 1e-9))
    grid = [k * step for k in range(n + 1)]
    if eps_max - grid[-1] > 1e-9 * max(1.0, eps_max):
        grid.append(eps_max)
    else:
        grid[-1] = eps_max
    return grid


def expected_robustness(eps: Sequence[float], acc: Sequence[float]) -> float:
    """``(1/ε_g) Σ (ε_{k+1} − ε_k)(a_k + a_{k+1})/2`` over the grid (``eps[0] = 0``, ``eps[-1] = ε_g``)."""
    if len(eps) != len(acc) or len(eps) < 2:
        raise ValueError("need at least two (ε, accuracy) points of equal count")
    if eps[0] != 0:
        raise ValueError(f"the grid must start at ε = 0, got {eps[0]}")
    area = sum((eps[k + 1] - eps[k]) * (acc[k] + acc[k + 1]) / 2 for k in range(len(eps) - 1))
    return area / eps[-1]


def accuracy_curve(ctx: EvalContext, norm: str, grid: Sequence[float], threat_params: dict[str, Any]) -> list[float]:
    """Accuracy at each ε of ``grid`` (increasing); a point broken at ε stays broken at larger ε (nested balls),
    so each ε attacks only the points still robust at the previous one."""
    from .evaluate import robust_correct

    alive = ctx.clean_correct.clone()
    n = len(alive)
    acc = [float(alive.sum()) / n]
    for eps in grid[1:]:
        idx = alive.nonzero().flatten()
        if len(idx):
            threat = ctx.build_threat(norm, eps=eps, **threat_params)
            alive[idx] = robust_correct(ctx, threat, idx)
        acc.append(float(alive.sum()) / n)
    return acc


class ExpectedRobustness:
    """The ``expected_robustness`` metric: the curve Acc_ε on the grid and its normalised area."""

    def __init__(self, norm: str, eps: float, step: float, attack: str, steps: int):
        self.norm, self.eps, self.step, self.attack, self.steps = norm, float(eps), float(step), attack, steps

    def label(self) -> str:
        from ..specs import format_number

        return f"expected_robustness:{self.norm}:{format_number(self.eps)}"

    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        grid = eps_grid(self.eps, self.step)
        acc = accuracy_curve(ctx, self.norm, grid, {"attack": self.attack, "steps": self.steps})
        return {
            "value": expected_robustness(grid, acc),
            "eps_g": self.eps,
            "attack": self.attack,
            "steps": self.steps,
            "curve": {"eps": grid, "acc": acc},
        }

    def plot(self, record: dict[str, Any], directory: Any) -> list[Any]:
        from .plots import plot_expected_robustness

        name = self.label().replace(":", "_").replace("/", "-")
        return [plot_expected_robustness(record, directory / f"{name}.png", title=self.label())]

