"""Seeded subsetting of a data set to given per-class counts."""

import numpy as np

from keras_imbalance.datasets.validation import check_xy


def choose_per_class(y, sizes, seed, replace=False):
    """Seeded per-class sampling: for each (class c, n) of `sizes`, in order, n indices i with y[i] == c.

    One `np.random.default_rng(seed)` makes every draw (`seed` may be a
    Generator, used as is), so the same seed gives the same indices. Returns
    a list of index arrays, one per entry of `sizes`, in draw order
    (unsorted). The caller checks that each class has enough samples.
    """
    rng = np.random.default_rng(seed)
    return [rng.choice(np.flatnonzero(y == c), size=int(n), replace=replace) for c, n in sizes]


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
    for c, n in enumerate(counts):
        available = int(np.sum(y == c))
        if available < n:
            raise ValueError(f"class {c} has {available} samples, fewer than the {n} asked for")
    chosen = [np.sort(idx) for idx in choose_per_class(y, enumerate(counts), seed)]
    chosen = np.concatenate(chosen) if chosen else np.zeros((0,), np.int64)
    return x[chosen], y[chosen]
