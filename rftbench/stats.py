"""Intervals and tests for accuracies: Wilson, paired differences, exact McNemar, Holm.

- :func:`wilson` — the Wilson score interval of one accuracy ``k/n`` (what scipy's
  ``binomtest(k, n).proportion_ci(method="wilson")`` returns, in closed form so that tables of
  thousands of accuracies stay fast).
- :func:`paired_difference` — two classifiers on the same points: the difference of their
  accuracies with the Agresti–Min (2005) interval for matched proportions (Wald after adding
  ½ to each cell of the 2×2 table; good coverage down to a handful of discordant points) and
  the exact McNemar p-value: a two-sided binomial test of the ``b`` points only A gets right
  against the ``c`` only B gets right, ``scipy.stats.binomtest(b, b + c, 0.5)``.
- :func:`holm` — Holm's step-down adjustment of several p-values (family-wise error ≤ α).
- :func:`mean_interval` — mean, standard deviation and a t-interval over seeds.

Fractional outcomes (a point correct under 7 of 11 corruptions counts 7/11) have no 2×2 table:
their paired difference gets a normal interval of the mean per-point difference and an exact
sign test on the points that differ (McNemar's test is the sign test of binary outcomes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ._lazy import lazy_import

np = lazy_import("numpy")  # imported on first use: `rftbench run --help` and the listing commands stay light

#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``k / n`` (``(0, 1)`` when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(k / n, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(acc: float, n: int | None) -> tuple[float, float] | None:
    """The Wilson 95% interval of an accuracy measured on ``n`` points (``None`` when ``n`` is unknown)."""
    if n is None or n <= 0 or acc is None or not math.isfinite(acc):
        return None
    return wilson(acc * n, int(n))


def format_accuracy(acc: float | None, n: int | None) -> str:
    """``48.3% [45.2, 51.4]``: an accuracy with its Wilson 95% interval in %, or ``-``."""
    if not isinstance(acc, (int, float)) or isinstance(acc, bool):
        return "-"
    ci = accuracy_interval(float(acc), n)
    text = f"{100 * acc:.1f}%"
    return text if ci is None else f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


@dataclass(frozen=True)
class PairedDifference:
    """A minus B on the same points, for one threat model (accuracies in [0, 1])."""

    threat: str
    n: int
    acc_a: float
    acc_b: float
    diff: float
    ci_low: float
    ci_high: float
    only_a: float  # points A gets right and B wrong (b of the 2×2 table; a sum for fractional outcomes)
    only_b: float  # points B gets right and A wrong (c)
    p_value: float
    test: str  # "mcnemar-exact" or "sign-test"
    p_holm: float | None = None

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the (Holm-adjusted, when set) p-value is below ``alpha``."""
        return (self.p_holm if self.p_holm is not None else self.p_value) < alpha

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c`` (1 when both are 0).

    ``min(1, 2·P(X ≤ min(b, c)))`` with ``X ~ Binomial(b + c, ½)``: what
    ``scipy.stats.binomtest(b, b + c, 0.5).pvalue`` returns (the binomial is symmetric at ½),
    summed in log space with numpy so that ``rftbench compare`` does not pay for importing
    ``scipy.stats`` (about 1.5 s); the tests compare the two.
    """
    b, c = int(b), int(c)
    m, k = b + c, min(b, c)
    if m == 0 or b == c:
        return 1.0
    j = np.arange(1, k + 1, dtype=np.float64)
    # log C(m, i) for i = 0…k, as running sums of log((m − j + 1) / j)
    log_comb = np.concatenate(([0.0], np.cumsum(np.log((m - j + 1) / j))))
    log_terms = log_comb - m * math.log(2.0)
    top = float(log_terms.max())
    log_cdf = top + math.log(float(np.exp(log_terms - top).sum()))
    return min(1.0, 2.0 * math.exp(log_cdf))


def agresti_min(b: float, c: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Agresti–Min interval of the matched-pairs difference ``(b − c) / n``, clipped to [−1, 1]."""
    if n <= 0:
        return -1.0, 1.0
    bs, cs, ns = b + 0.5, c + 0.5, n + 2
    d = (bs - cs) / ns
    se = math.sqrt(max((bs + cs) - (bs - cs) ** 2 / ns, 0.0)) / ns
    return max(-1.0, d - z * se), min(1.0, d + z * se)


def paired_difference(a: np.ndarray, b: np.ndarray, threat: str = "") -> PairedDifference:
    """Compare per-point outcomes ``a`` and ``b`` (bool, or fractions in [0, 1]) of the same points."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"outcomes of shapes {a.shape} and {b.shape}: expected two vectors over the same points")
    n = len(a)
    binary = a.dtype == np.bool_ and b.dtype == np.bool_
    if binary:
        only_a = int(np.count_nonzero(a & ~b))
        only_b = int(np.count_nonzero(b & ~a))
        acc_a, acc_b = float(np.count_nonzero(a)) / max(n, 1), float(np.count_nonzero(b)) / max(n, 1)
        low, high = agresti_min(only_a, only_b, n)
        return PairedDifference(threat, n, acc_a, acc_b, acc_a - acc_b, low, high, only_a, only_b,
                                mcnemar_exact(only_a, only_b), "mcnemar-exact")
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    d = fa - fb
    mean = float(d.mean()) if n else 0.0
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n) if n > 1 else 1.0
    wins, losses = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    return PairedDifference(threat, n, float(fa.mean()) if n else 0.0, float(fb.mean()) if n else 0.0, mean,
                            max(-1.0, mean - half), min(1.0, mean + half), float(np.clip(d, 0, None).sum()),
                            float(np.clip(-d, 0, None).sum()), mcnemar_exact(wins, losses), "sign-test")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order (each ≤ 1, monotone in the sorted order)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def mean_interval(values: Sequence[float], z_if_single: tuple[float, float] | None = None) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and 95% t-interval of ``values`` (e.g. one accuracy over seeds).

    With a single value the interval is ``z_if_single`` (e.g. its Wilson interval) when given.
    """
    from scipy.stats import t

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    k = len(x)
    if k == 0:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None, "k": 0}
    mean = float(x.mean())
    if k == 1:
        low, high = z_if_single if z_if_single is not None else (None, None)
        return {"mean": mean, "std": None, "ci_low": low, "ci_high": high, "k": 1}
    std = float(x.std(ddof=1))
    half = float(t.ppf(0.975, k - 1)) * std / math.sqrt(k)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "k": k}


def newcombe_unpaired(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for ``p1 − p2`` of two independent accuracies."""
    l1, u1 = wilson(p1 * n1, n1)
    l2, u2 = wilson(p2 * n2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


__all__ = [
    "PairedDifference",
    "Z95",
    "accuracy_interval",
    "format_accuracy",
    "agresti_min",
    "holm",
    "mcnemar_exact",
    "mean_interval",
    "newcombe_unpaired",
    "paired_difference",
    "wilson",
]
