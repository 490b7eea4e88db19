"""Intervals and tests against scipy and hand-computed values; false-positive rate and coverage by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from rftbench.stats import (
    agresti_min,
    holm,
    mcnemar_exact,
    mean_interval,
    newcombe_unpaired,
    paired_difference,
    wilson,
)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (483, 1000), (7, 1000), (999, 1000), (3, 7)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(ci.low, abs=1e-9) and high == pytest.approx(ci.high, abs=1e-9)


def test_wilson_by_hand():
    # 50/100, z = 1.96: centre 0.5, half-width 1.96*sqrt(0.25/100 + 1.96²/40000)/(1 + 1.96²/100)
    z = 1.959963984540054
    half = z * math.sqrt(0.0025 + z * z / 40000) / (1 + z * z / 100)
    assert wilson(50, 100) == pytest.approx((0.5 - half, 0.5 + half))
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 5), (5, 0), (3, 9), (40, 25), (120, 80), (7, 7), (2, 3)])
def test_mcnemar_exact_matches_binomtest_and_hand(b, c):
    if b + c == 0:
        assert mcnemar_exact(b, c) == 1.0
        return
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    # by hand: 2 * P(X <= min(b, c)), X ~ Bin(b + c, 1/2), capped at 1
    m, k = b + c, min(b, c)
    hand = min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2**m)
    assert mcnemar_exact(b, c) == pytest.approx(hand)


@pytest.mark.parametrize(("b", "c"), [(4000, 4200), (480, 520), (1, 300), (3000, 3001), (0, 40)])
def test_mcnemar_exact_on_large_tables(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)


def test_compare_does_not_import_scipy_stats():
    """compare answers fast from a fresh process: neither test needs scipy.stats (1.5 s to import) nor scipy.special (0.3 s)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from rftbench.stats import paired_difference, recipe_difference; "
            "paired_difference(np.ones(10, bool), np.zeros(10, bool)); "
            "recipe_difference(np.eye(3, 10, dtype=bool), np.eye(2, 10, dtype=bool)); import rftbench.comparison, rftbench.cli; "
            "import rftbench.groups; print('scipy.stats' in sys.modules, 'scipy.special' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


def test_mcnemar_hand_case():
    # b = 0, c = 5: 2 * 0.5**5 = 0.0625
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)


def test_agresti_min_by_hand():
    # b = 10, c = 4, n = 100: b* = 10.5, c* = 4.5, n* = 102
    d = 6 / 102
    se = math.sqrt(15 - 36 / 102) / 102
    low, high = agresti_min(10, 4, 100)
    assert (low, high) == pytest.approx((d - 1.959963984540054 * se, d + 1.959963984540054 * se))


def test_paired_difference_counts_the_2x2_table():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    d = paired_difference(a, b, "linf")
    assert (d.only_a, d.only_b, d.n) == (3, 1, 8)
    assert d.diff == pytest.approx(5 / 8 - 3 / 8)
    assert d.p_value == pytest.approx(binomtest(3, 4, 0.5).pvalue)
    assert d.test == "mcnemar-exact" and d.ci_low < d.diff < d.ci_high


def test_fractional_outcomes_use_the_sign_test():
    a = np.array([1.0, 0.5, 0.25, 1.0], dtype=np.float16)
    b = np.array([0.5, 0.5, 0.0, 1.0], dtype=np.float16)
    d = paired_difference(a, b, "corruptions:3")
    assert d.test == "sign-test" and d.diff == pytest.approx(0.1875)
    assert d.p_value == pytest.approx(binomtest(2, 2, 0.5).pvalue)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 → 3*0.01, 2*0.02, 1*0.04 → 0.03, 0.04, 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_mean_interval_is_a_t_interval():
    r = mean_interval([0.5, 0.6, 0.7])
    assert r["mean"] == pytest.approx(0.6) and r["std"] == pytest.approx(0.1)
    assert r["ci_high"] - r["mean"] == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))
    assert mean_interval([0.4], (0.3, 0.5))["ci_low"] == 0.3


def test_newcombe_contains_zero_for_equal_accuracies():
    low, high = newcombe_unpaired(0.5, 1000, 0.5, 1000)
    assert low < 0 < high and high == pytest.approx(-low)
    low, high = newcombe_unpaired(0.6, 1000, 0.5, 1000)
    assert low > 0


def _correlated_pair(rng, n, p_a, p_b, rho=0.6):
    """Two models' correctness on n points, correlated through a shared per-point difficulty."""
    u = rng.random(n)
    shared = rng.random(n) < rho
    ua = np.where(shared, u, rng.random(n))
    ub = np.where(shared, u, rng.random(n))
    return ua < p_a, ub < p_b


def test_false_positive_rate_stays_near_nominal():
    """Two models with the same true accuracy: McNemar rejects at most about 5% of the time (exact: conservative)."""
    rng = np.random.default_rng(0)
    trials, rejections = 2000, 0
    for _ in range(trials):
        a, b = _correlated_pair(rng, 1000, 0.5, 0.5)
        rejections += paired_difference(a, b).p_value < 0.05
    rate = rejections / trials
    # nominal 0.05; with 2,000 trials the standard error is 0.005
    assert 0.025 <= rate <= 0.06, rate


def test_interval_covers_the_known_difference():
    """True difference 0.03 on correlated points: the 95% interval covers it about 95% of the time, and the test has power."""
    rng = np.random.default_rng(1)
    trials, covered, rejected = 2000, 0, 0
    for _ in range(trials):
        a, b = _correlated_pair(rng, 1000, 0.53, 0.50)
        d = paired_difference(a, b)
        covered += d.ci_low <= 0.03 <= d.ci_high
        rejected += d.p_value < 0.05
    assert 0.93 <= covered / trials <= 0.97, covered / trials
    assert rejected / trials > 0.5  # paired: far more power than the unpaired intervals, which overlap


# ---------------------------------------------------------------------------- Student's t and recipes


@pytest.mark.parametrize("df", [0.7, 1.0, 2.0, 2.6, 3.0, 4.4, 8.0, 30.0, 217.5, 5000.0])
def test_t_distribution_matches_scipy(df):
    from scipy import special, stats

    from rftbench.stats import betainc, t_quantile, t_two_sided

    for t in (0.0, 0.3, 1.0, 1.96, 2.776, 4.303, 12.7, 60.0):
        assert t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-8, abs=1e-300)
    for q in (0.5, 0.75, 0.9, 0.975, 0.995, 0.99995):
        assert t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-9, abs=1e-12)
    for x in (1e-6, 0.2, 0.5, 0.93):
        assert betainc(df / 2, 0.5, x) == pytest.approx(special.betainc(df / 2, 0.5, x), rel=1e-9)
    assert t_two_sided(1.96, math.inf) == pytest.approx(0.05, abs=1e-4)


def test_recipe_interval_is_the_group_by_interval():
    from rftbench.stats import recipe_interval

    accs, n = [0.70, 0.64, 0.67], 1000
    mean, sd = np.mean(accs), np.std(accs, ddof=1)
    half = math.hypot(4.302652729911275 * sd / math.sqrt(3), 1.959963984540054 * math.sqrt(mean * (1 - mean) / n))
    assert recipe_interval(accs, n) == pytest.approx((mean - half, mean + half))
    assert recipe_interval([0.5], 100) == pytest.approx(wilson(50, 100))
    assert recipe_interval([], 100) is None


def test_recipe_difference_by_hand():
    """The two-part variance and Satterthwaite df computed step by step on a 3 × 6 and a 2 × 6 table."""
    from rftbench.stats import recipe_difference

    a = np.array([[1, 1, 0, 1, 0, 1], [1, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 0]], dtype=bool)
    b = np.array([[0, 1, 0, 1, 0, 0], [1, 0, 1, 0, 0, 0]], dtype=bool)
    fa, fb = a.astype(float), b.astype(float)
    acc_a, acc_b = fa.mean(1), fb.mean(1)

    def ms(y):  # run × point residual mean square
        k, n = y.shape
        r = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
        return (r**2).sum() / ((k - 1) * (n - 1))

    seed_a, seed_b = acc_a.var(ddof=1) / 3, acc_b.var(ddof=1) / 2
    assert seed_a > 0 and seed_b == 0  # b's two runs have the same accuracy: its seed part is 0, not an error
    point = max(0.0, (fa.mean(0) - fb.mean(0)).var(ddof=1) - ms(fa) / 3 - ms(fb) / 2) / 6
    var = seed_a + seed_b + point
    df = var**2 / (seed_a**2 / 2 + seed_b**2 / 1 + point**2 / 5)
    d = recipe_difference(a, b, "clean")
    from scipy.stats import t as student

    diff = acc_a.mean() - acc_b.mean()
    assert (d.runs_a, d.runs_b, d.n, d.test) == (3, 2, 6, "welch-t")
    assert d.diff == pytest.approx(diff) and d.se == pytest.approx(math.sqrt(var)) and d.df == pytest.approx(df)
    assert d.point_se == pytest.approx(math.sqrt(point))
    assert d.p_value == pytest.approx(2 * student.sf(abs(diff) / math.sqrt(var), df))
    half = student.ppf(0.975, df) * math.sqrt(var)
    assert (d.ci_low, d.ci_high) == pytest.approx((diff - half, diff + half))
    # paired: the same-seed differences, k − 1 degrees of freedom
    p = recipe_difference(a[:2], b, paired=True)
    z = fa[:2] - fb
    seed = z.mean(1).var(ddof=1) / 2
    point = max(0.0, z.mean(0).var(ddof=1) - ms(z) / 2) / 6
    assert p.test == "paired-t" and p.se == pytest.approx(math.sqrt(seed + point))
    assert p.df == pytest.approx((seed + point) ** 2 / (seed**2 / 1 + point**2 / 5))
    # one run on a side borrows the other side's variances
    one = recipe_difference(a, b[:1])
    assert one.seed_sd_b is None and one.se**2 == pytest.approx(acc_a.var(ddof=1) * (1 / 3 + 1) + one.point_se**2)
    with pytest.raises(ValueError, match="one run on each side"):
        recipe_difference(a[:1], b[:1])
    with pytest.raises(ValueError, match="same seeds"):
        recipe_difference(a, b, paired=True)


def _seeded_runs(rng, trials, k, n, seed_sd, *, shift=0.0, shared=None, noise=0.8):
    """trials × k × n outcomes of one recipe: correct when μ + seed effect + point easiness + run noise > 0.

    The point easiness (sd 1.5) is drawn once per trial and shared by both recipes' runs (the same
    test points); the seed effect shifts a whole run (sd ``seed_sd`` on the latent scale, about
    ``25 × seed_sd`` accuracy points here); ``shared`` seed effects make two recipes' same-seed runs correlated.
    """
    easiness = rng.normal(0, 1.5, (trials, 1, n)) if shared is None else shared[0]
    seeds = rng.normal(0, seed_sd, (trials, k, 1)) if shared is None or shared[1] is None else shared[1]
    return (0.8 + shift + seeds + easiness + rng.normal(0, noise, (trials, k, n))) > 0, easiness


def test_recipe_level_test_is_calibrated_with_a_seed_effect_where_mcnemar_is_not():
    """Same recipe on both sides, 3 seeds each, seeds moving accuracy by ~3.5 points (sd): what the calibration guarantees.

    2,000 trials with a fixed seed: the Monte-Carlo standard error of a 5% rate is 0.5 points, so
    the bound nominal + 2 points sits 4 standard errors above nominal; the lower bound says the
    test is not trivially conservative (measured: McNemar 46%, recipe-level 4.0%; Welch's t is
    slightly conservative with 3 + 3 runs).
    """
    from rftbench.stats import recipe_difference

    rng = np.random.default_rng(2022)
    trials, n = 2000, 600
    a, easiness = _seeded_runs(rng, trials, 3, n, 0.15)
    b, _ = _seeded_runs(rng, trials, 3, n, 0.15, shared=(easiness, None))
    seed_sd = float(np.median(a.mean(2).std(1, ddof=1)))
    assert 0.02 < seed_sd < 0.05  # the seed effect this test is about: 2–5 accuracy points
    model = np.mean([paired_difference(a[i, 0], b[i, 0]).p_value < 0.05 for i in range(trials)])
    recipe = np.mean([recipe_difference(a[i], b[i]).p_value < 0.05 for i in range(trials)])
    assert model > 0.3, model  # two models of one recipe "differ" most of the time
    assert 0.025 <= recipe <= 0.07, recipe


def test_recipe_level_pairing_by_seed_is_calibrated_and_has_power():
    """Same seeds on both sides with correlated seed effects: the paired test holds its level and beats the unpaired one."""
    from rftbench.stats import recipe_difference

    rng = np.random.default_rng(7)
    trials, n = 1000, 600
    common = rng.normal(0, 0.15, (trials, 3, 1))  # same-seed runs of two recipes share most of their seed effect
    a, easiness = _seeded_runs(rng, trials, 3, n, 0.0, shared=None)
    seeds_a = 0.9 * common + 0.44 * rng.normal(0, 0.15, (trials, 3, 1))
    seeds_b = 0.9 * common + 0.44 * rng.normal(0, 0.15, (trials, 3, 1))
    a, _ = _seeded_runs(rng, trials, 3, n, 0.0, shared=(easiness, seeds_a))
    b, _ = _seeded_runs(rng, trials, 3, n, 0.0, shared=(easiness, seeds_b))
    null = np.mean([recipe_difference(a[i], b[i], paired=True).p_value < 0.05 for i in range(trials)])
    assert null <= 0.07, null  # Monte-Carlo standard error 0.7 points
    better, _ = _seeded_runs(rng, trials, 3, n, 0.0, shift=0.3, shared=(easiness, seeds_a))
    paired = np.mean([recipe_difference(better[i], b[i], paired=True).p_value < 0.05 for i in range(trials)])
    unpaired = np.mean([recipe_difference(better[i], b[i]).p_value < 0.05 for i in range(trials)])
    assert paired > unpaired + 0.1 and paired > 0.5, (paired, unpaired)
