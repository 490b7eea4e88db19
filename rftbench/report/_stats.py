"""Small statistics the report needs, on top of scipy: Wilson intervals, sign tests, rank agreement, Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..leaderboard.build import pareto_front

__all__ = ["wilson", "sign_test", "rank_agreement", "pareto_front", "mean_sd"]


def wilson(acc: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of an accuracy measured on ``n`` points: :func:`rftbench.stats.wilson`
    (the one implementation; equal to scipy's ``binomtest(k, n).proportion_ci(method="wilson")``)
    at ``k = round(acc · n)`` correct points."""
    from statistics import NormalDist

    from ..stats import wilson as _wilson

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return _wilson(int(round(acc * n)), int(n), z)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test p-value of ``wins`` against ``losses`` (ties left out)."""
    from scipy.stats import binomtest

    n = wins + losses
    return float(binomtest(wins, n, 0.5).pvalue) if n else math.nan


def rank_agreement(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Kendall τ-b and Spearman ρ between two rankings of the same configurations (NaN when undefined)."""
    from scipy.stats import kendalltau, spearmanr

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan, math.nan
    return float(kendalltau(a, b).statistic), float(spearmanr(a, b).statistic)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd
