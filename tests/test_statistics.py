"""statistics: the paired difference against scipy's paired t-test and the t-interval formula."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from keras_imbalance import statistics


@pytest.mark.parametrize("seed", range(4))
def test_paired_difference_matches_scipy_and_the_formula(seed):
    rng = np.random.default_rng(seed)
    n = 3 + seed * 2
    reference = rng.uniform(0.7, 0.9, n)
    values = reference + rng.normal(0.01, 0.02, n)
    d = statistics.paired_difference(values, reference)
    diff = values - reference
    assert d["n"] == n and d["mean"] == pytest.approx(diff.mean())
    assert d["p_value"] == pytest.approx(scipy_stats.ttest_rel(values, reference).pvalue, rel=1e-9)
    half = scipy_stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n)
    assert d["ci_low"] == pytest.approx(diff.mean() - half) and d["ci_high"] == pytest.approx(diff.mean() + half)
    # The interval excludes 0 exactly when the test rejects at 5 %.
    assert (d["ci_low"] > 0 or d["ci_high"] < 0) == (d["p_value"] < 0.05)


def test_verdicts_follow_the_evidence_rule():
    base = np.array([0.80, 0.82, 0.78, 0.81, 0.79])
    assert statistics.verdict(statistics.paired_difference(base + [0.03, 0.04, 0.02, 0.05, 0.03], base)) == "gain shown"
    assert statistics.verdict(statistics.paired_difference(base - [0.03, 0.04, 0.02, 0.05, 0.03], base)) == "loss shown"
    assert statistics.verdict(statistics.paired_difference(base + [0.03, -0.04, 0.02, -0.05, 0.01], base)).startswith(
        "not shown (interval holds 0")
    # A large, consistent gain over 3 seeds is still not shown: fewer than 5 seeds.
    assert statistics.verdict(statistics.paired_difference(base[:3] + 0.1, base[:3])) == "not shown (3 seeds < 5)"
    one = statistics.paired_difference([0.9], [0.8])
    assert one["ci_low"] is None and one["p_value"] is None


def test_bad_inputs():
    with pytest.raises(ValueError, match="same number of seeds"):
        statistics.paired_difference([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        statistics.paired_difference([np.nan, 1], [1, 1])
    with pytest.raises(ValueError, match="no paired"):
        statistics.paired_difference([], [])


@pytest.mark.parametrize("n", [2, 5, 9])
def test_mean_interval_matches_scipy(n):
    values = np.random.default_rng(n).uniform(0.6, 0.9, n)
    m = statistics.mean_interval(values, confidence=0.95)
    low, high = scipy_stats.t.interval(0.95, n - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    assert m["n"] == n and m["mean"] == pytest.approx(values.mean()) and m["std"] == pytest.approx(values.std(ddof=1))
    assert (m["ci_low"], m["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    single = statistics.mean_interval([0.8])
    assert single["mean"] == 0.8 and single["ci_low"] is None
    with pytest.raises(ValueError, match="NaN"):
        statistics.mean_interval([0.8, np.nan])
    with pytest.raises(ValueError, match="no results"):
        statistics.mean_interval([])
