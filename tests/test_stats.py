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
    """compare answers fast from a fresh process: the exact test does not need scipy.stats (1.5 s to import)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from rftbench.stats import paired_difference; "
            "paired_difference(np.ones(10, bool), np.zeros(10, bool)); import rftbench.comparison, rftbench.cli; "
            "print('scipy.stats' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


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
