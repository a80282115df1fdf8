"""Paired comparisons over seeds: does a method beat its reference, and can the seeds show it?

In `keras-imbalance compare` every method trains on the same long-tailed subset
for a given seed, so the per-seed results of two methods are paired: the
difference d_s = metric(method, s) - metric(reference, s) removes the variation
that comes from which images the seed drew. `paired_difference` reports the mean
of d, its 95 % Student-t confidence interval, mean +- t_{0.975, n-1} s_d / sqrt(n),
and the two-sided paired t-test p-value (Student 1908; the interval and the test
are the same statistic, so the interval excludes 0 exactly when p < 0.05).

`verdict` turns that into words under the project's evidence rule: a claim needs
at least `MIN_SEEDS` (5) paired seeds and an interval that excludes 0; anything
else is "not shown".
"""

import math

import numpy as np
from scipy import stats

MIN_SEEDS = 5


def _t_half_width(sd, n, confidence):
    """Half-width t_{(1+c)/2, n-1} sd / sqrt(n) of the two-sided Student-t interval of a mean of n values."""
    return float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)


def paired_difference(values, reference, confidence=0.95):
    """Mean paired difference `values - reference` with its t confidence interval and p-value.

    Args:
        values, reference: per-seed results (n,), paired by position.
        confidence: two-sided confidence level of the interval (0.95).

    Returns:
        dict: "n", "mean", "std" (sample std of the differences, ddof 1),
        "ci_low", "ci_high", "p_value" (paired t-test, two-sided), "confidence".
        With n < 2 the interval and p-value are None; with zero spread they
        collapse to the mean (p 0 if the mean is not 0, else 1).
    """
    values = np.asarray(values, np.float64).reshape(-1)
    reference = np.asarray(reference, np.float64).reshape(-1)
    if values.shape != reference.shape:
        raise ValueError(f"paired results need the same number of seeds, got {values.size} and {reference.size}")
    if values.size == 0:
        raise ValueError("no paired results")
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(reference))):
        raise ValueError("paired results contain NaN or inf")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diff = values - reference
    n = int(diff.size)
    mean = float(diff.mean())
    result = {"n": n, "mean": mean, "std": None, "ci_low": None, "ci_high": None, "p_value": None,
              "confidence": confidence}
    if n < 2:
        return result
    sd = float(diff.std(ddof=1))
    result["std"] = sd
    if sd == 0.0:
        result.update(ci_low=mean, ci_high=mean, p_value=0.0 if mean != 0.0 else 1.0)
        return result
    half = _t_half_width(sd, n, confidence)
    t_value = mean / (sd / math.sqrt(n))
    result.update(ci_low=mean - half, ci_high=mean + half, p_value=float(2.0 * stats.t.sf(abs(t_value), n - 1)))
    return result


def mean_interval(values, confidence=0.95):
    """The mean of per-seed results with its Student-t confidence interval, mean +- t_{(1+c)/2, n-1} s / sqrt(n).

    Args:
        values: per-seed results (n,), finite.
        confidence: two-sided confidence level (0.95).

    Returns:
        dict: "n", "mean", "std" (sample std, ddof 1; None for n < 2),
        "ci_low", "ci_high" (None for n < 2), "confidence".
    """
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("no results")
    if not np.all(np.isfinite(values)):
        raise ValueError("results contain NaN or inf")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n, mean = int(values.size), float(values.mean())
    result = {"n": n, "mean": mean, "std": None, "ci_low": None, "ci_high": None, "confidence": confidence}
    if n >= 2:
        sd = float(values.std(ddof=1))
        half = _t_half_width(sd, n, confidence)
        result.update(std=sd, ci_low=mean - half, ci_high=mean + half)
    return result


def verdict(difference, min_seeds=MIN_SEEDS):
    """"gain shown", "loss shown", or "not shown (...)" for a `paired_difference` result."""
    n = difference["n"]
    if n < min_seeds:
        return f"not shown ({n} seeds < {min_seeds})"
    low, high = difference["ci_low"], difference["ci_high"]
    if low is not None and low > 0:
        return "gain shown"
    if high is not None and high < 0:
        return "loss shown"
    return "not shown (interval holds 0)"
