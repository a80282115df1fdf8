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


def check_counts(counts, name="counts"):
    """Per-class sample counts as a list of ints; a ValueError for anything but a 1-D list of integers >= 0, not all 0."""
    arr = np.asarray(counts)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list of per-class counts, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise ValueError(f"{name} must hold integer counts, got {arr.tolist()}")
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must hold integer counts, got {arr.tolist()} (round them, e.g. long_tailed_counts does)")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr.astype(np.int64).tolist()}")
    if not np.any(arr > 0):
        raise ValueError(f"{name} are all zero: the subset would be empty; ask for at least one sample")
    return [int(c) for c in arr]


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

    Raises:
        ValueError: counts that are not a 1-D list of non-negative integers
            (2.5, NaN, -1), all zero (an empty subset), shorter than the
            labels' classes, or larger than a class's pool.
    """
    x, y = check_xy(x, y)
    counts = check_counts(counts)
    if y.max() >= len(counts):
        raise ValueError(f"labels go up to {y.max()} but counts has only {len(counts)} entries")
    for c, n in enumerate(counts):
        available = int(np.sum(y == c))
        if available < n:
            raise ValueError(f"class {c} has {available} samples, fewer than the {n} asked for")
    chosen = [np.sort(idx) for idx in choose_per_class(y, enumerate(counts), seed)]
    chosen = np.concatenate(chosen) if chosen else np.zeros((0,), np.int64)
    return x[chosen], y[chosen]
