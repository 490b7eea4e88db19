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
- :func:`recipe_interval` — one recipe's accuracy over k seeds on the same n points: the t-interval
  over seeds with the test-point part added (what ``rftbench results --group-by`` shows).
- :func:`recipe_difference` — two *recipes*, each a group of runs (seeds) on the same points: the
  difference of their mean accuracies with a t-interval and test whose variance has a seed-to-seed
  part and a test-point part (see its docstring), calibrated with 3 runs per side.
- :func:`t_two_sided` / :func:`t_quantile` — Student's t tail and quantile for any real degrees of
  freedom, from the regularised incomplete beta function (so ``compare`` imports neither
  ``scipy.stats`` nor ``scipy.special``, 0.3–1.5 s on a loaded machine; the tests compare them with scipy).

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
    """Trained model A minus trained model B on the same points, for one threat model (accuracies in [0, 1]).

    The interval and test cover the test points only: another seed of either recipe is another
    model, and may differ from it as much (see :class:`RecipeDifference` for recipes).
    """

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

    #: What the interval and the test cover.
    covers = "test points"

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the (Holm-adjusted, when set) p-value is below ``alpha``."""
        return (self.p_holm if self.p_holm is not None else self.p_value) < alpha

    def to_dict(self) -> dict:
        return {**asdict(self), "covers": self.covers}


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


# ---------------------------------------------------------------------------- Student's t, without scipy


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes §6.4)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (``scipy.special.betainc``) for a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """P(|T| ≥ |t|) for Student's T with ``df`` > 0 degrees of freedom (any real; ``inf``: the normal)."""
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


def _t_density(t: float, df: float) -> float:
    if math.isinf(df):
        return math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))


def t_quantile(q: float, df: float) -> float:
    """The ``q``-quantile (0.5 ≤ q < 1) of Student's T with ``df`` degrees of freedom.

    Newton's method on :func:`t_two_sided` inside a bracket that it never leaves (a bisection
    step where Newton would), to 1e-12 relative.
    """
    if not 0.5 <= q < 1.0:
        raise ValueError(f"q = {q}: expected 0.5 ≤ q < 1")
    tail = 1.0 - q  # wanted: P(T > t) = tail
    if tail == 0.5:
        return 0.0
    low, high = 0.0, 2.0
    while t_two_sided(high, df) / 2 > tail:
        low, high = high, 2.0 * high
    t = 0.5 * (low + high)
    for _ in range(100):
        excess = t_two_sided(t, df) / 2 - tail  # > 0: t is too small
        if excess > 0:
            low = t
        else:
            high = t
        step = excess / _t_density(t, df)
        nxt = t + step
        if not low < nxt < high:
            nxt = 0.5 * (low + high)
        if abs(nxt - t) <= 1e-12 * max(1.0, abs(nxt)):
            return nxt
        t = nxt
    return t


# ---------------------------------------------------------------------------- recipes: groups of runs


def recipe_interval(accuracies: Sequence[float], n: int | None) -> tuple[float, float] | None:
    """95% interval of one recipe's accuracy from its runs' accuracies (k seeds) on the same ``n`` points.

    The half-width adds in quadrature the seed-to-seed part (t quantile with k − 1 degrees of
    freedom × s/√k) and the test-point part (1.96·√(p(1 − p)/n): the runs share the same points,
    so averaging seeds does not shrink it); clipped to [0, 1]. One run: its Wilson interval.
    ``None`` without any accuracy, or for one run when ``n`` is unknown.
    """
    x = [float(v) for v in accuracies if v is not None and math.isfinite(v)]
    if not x:
        return None
    if len(x) == 1:
        return accuracy_interval(x[0], n)
    k = len(x)
    mean = sum(x) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (k - 1))
    seeds = t_quantile(0.975, k - 1) * sd / math.sqrt(k)
    points = Z95 * math.sqrt(max(mean * (1 - mean), 0.0) / n) if n else 0.0
    half = math.hypot(seeds, points)
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass(frozen=True)
class RecipeDifference:
    """Recipe A minus recipe B (each a group of runs of one recipe) on the same points, for one threat model.

    ``acc_a``/``acc_b`` are the groups' mean accuracies, ``diff`` their difference; ``se`` its
    standard error (seed-to-seed and test-point parts), ``point_se`` the test-point part alone,
    ``df`` the Satterthwaite degrees of freedom, ``seed_sd_a``/``seed_sd_b`` the standard
    deviations of the runs' accuracies (``None`` for a group of one run); ``paired``: the same
    seeds on both sides, differenced seed by seed.
    """

    threat: str
    n: int
    runs_a: int
    runs_b: int
    acc_a: float
    acc_b: float
    diff: float
    ci_low: float
    ci_high: float
    se: float
    point_se: float
    df: float
    seed_sd_a: float | None
    seed_sd_b: float | None
    p_value: float
    test: str  # "welch-t" (independent seeds) or "paired-t" (the same seeds on both sides, paired)
    paired: bool = False
    p_holm: float | None = None

    #: What the interval and the test cover.
    covers = "seeds and test points"

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the (Holm-adjusted, when set) p-value is below ``alpha``."""
        return (self.p_holm if self.p_holm is not None else self.p_value) < alpha

    def to_dict(self) -> dict:
        return {**asdict(self), "covers": self.covers}


def _interaction_ms(y: np.ndarray) -> float:
    """The run × point residual mean square of a k × n table (two-way ANOVA without replication), k ≥ 2."""
    k, n = y.shape
    residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    return float(np.einsum("ij,ij->", residual, residual)) / ((k - 1) * (n - 1))


def recipe_difference(a: np.ndarray, b: np.ndarray, threat: str = "", *, paired: bool = False,
                      confidence: float = 0.95) -> RecipeDifference:
    """Compare two recipes from their runs' per-point outcomes: ``a`` is kA × n, ``b`` kB × n (rows: runs).

    The estimate is the difference of the groups' mean accuracies. Its variance has two parts,
    estimated by moments from the crossed run × point table (no normality of the points needed):

    - **seed-to-seed**: s²_A/kA + s²_B/kB, the sample variances of the runs' accuracies (which
      also carry each run's own point-by-point noise on these n points);
    - **test-point**: how the difference would change on other test points drawn from the task,
      (S²_D − MS_A/kA − MS_B/kB)/n, where S²_D is the variance over points of the per-point
      difference of the groups' mean outcomes and MS_g the run × point residual mean square of
      group g, which removes the part of S²_D the seed-to-seed term already counts (floored at 0).

    The test is Welch's t on that variance, with Satterthwaite's degrees of freedom (kA − 1 and
    kB − 1 for the seed parts, n − 1 for the point part), calibrated at 3 runs per side where a
    permutation test cannot reach p < 0.1. ``paired`` (both sides ran the same seeds, rows in
    the same seed order): the seed part is the variance of the same-seed differences over k,
    with k − 1 degrees of freedom, and MS is that of the difference table. A group of one run
    borrows the other group's seed variance and MS (equal variances assumed; the caller warns).

    :raises ValueError: shapes that do not match, or one run on both sides (no seed variance to
        estimate: use :func:`paired_difference`, the comparison of two trained models).
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"outcomes of shapes {a.shape} and {b.shape}: expected runs × points tables over the same points")
    (ka, n), kb = a.shape, b.shape[0]
    if ka + kb < 3:
        raise ValueError("one run on each side: a recipe-level test needs at least 2 runs on one side")
    if n < 2:
        raise ValueError(f"{n} point(s): a recipe-level test needs at least 2 test points")
    acc_a, acc_b = a.mean(axis=1), b.mean(axis=1)
    diff = float(acc_a.mean() - acc_b.mean())
    sd_a = float(acc_a.std(ddof=1)) if ka > 1 else None
    sd_b = float(acc_b.std(ddof=1)) if kb > 1 else None
    if paired:
        if ka != kb or ka < 2:
            raise ValueError(f"paired by seed needs the same seeds on both sides (got {ka} and {kb} runs)")
        z = a - b
        parts = [(float(z.mean(axis=1).var(ddof=1)) / ka, ka - 1)]
        noise = _interaction_ms(z) / ka
    elif ka > 1 and kb > 1:
        parts = [(sd_a**2 / ka, ka - 1), (sd_b**2 / kb, kb - 1)]
        noise = _interaction_ms(a) / ka + _interaction_ms(b) / kb
    else:  # one side has a single run: it borrows the other side's variances
        many, k_many = (a, ka) if ka > 1 else (b, kb)
        scale = 1.0 / ka + 1.0 / kb
        parts = [(float(many.mean(axis=1).var(ddof=1)) * scale, k_many - 1)]
        noise = _interaction_ms(many) * scale
    per_point = a.mean(axis=0) - b.mean(axis=0)
    point_var = max(0.0, float(per_point.var(ddof=1)) - noise) / n
    var = sum(v for v, _ in parts) + point_var
    denominator = sum(v * v / d for v, d in parts) + point_var * point_var / (n - 1)
    df = var * var / denominator if denominator > 0 else math.inf
    se = math.sqrt(var)
    if se == 0.0:
        p, half = (1.0 if diff == 0.0 else 0.0), 0.0
    else:
        p = t_two_sided(diff / se, df)
        half = t_quantile(0.5 + confidence / 2, df) * se
    return RecipeDifference(threat, n, ka, kb, float(acc_a.mean()), float(acc_b.mean()), diff, max(-1.0, diff - half),
                            min(1.0, diff + half), se, math.sqrt(point_var), df, sd_a, sd_b, p,
                            "paired-t" if paired else "welch-t", paired)


def newcombe_unpaired(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for ``p1 − p2`` of two independent accuracies."""
    l1, u1 = wilson(p1 * n1, n1)
    l2, u2 = wilson(p2 * n2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


__all__ = [
    "PairedDifference",
    "RecipeDifference",
    "Z95",
    "accuracy_interval",
    "format_accuracy",
    "agresti_min",
    "holm",
    "mcnemar_exact",
    "mean_interval",
    "newcombe_unpaired",
    "paired_difference",
    "recipe_difference",
    "recipe_interval",
    "t_quantile",
    "t_two_sided",
    "betainc",
    "wilson",
]
