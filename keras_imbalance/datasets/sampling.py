"""Seeded subsetting of a data set to given per-class counts."""

import numpy as np

from keras_imbalance.datasets.validation import check_xy


def make_imbalanced(x, y, counts, seed=0):
    """Take `counts[c]` samples of each class c, seeded, without replacement.

    Args:
        x: array (N, ...) of samples.
        y: sparse integer labels (N,) or (N, 1).
        counts: per-class counts, length C (e.g. from `long_tailed_counts`).
        seed: int; the same seed gives the same subset.

    Returns:
        `(x_subset, y_subset)` with `sum(counts)` samples, ordered by class,
        y as int64 (M,).
    """
    x, y = check_xy(x, y)
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must be non-negative, got {counts}")
    if y.max() >= len(counts):
        raise ValueError(f"labels go up to {y.max()} but counts has only {len(counts)} entries")
    rng = np.random.default_rng(seed)
    chosen = []
    for c, n in enumerate(counts):
        idx = np.flatnonzero(y == c)
        if len(idx) < n:
            raise ValueError(f"class {c} has {len(idx)} samples, fewer than the {n} asked for")
        chosen.append(np.sort(rng.choice(idx, size=n, replace=False)))
    chosen = np.concatenate(chosen) if chosen else np.zeros((0,), np.int64)
    return x[chosen], y[chosen]
