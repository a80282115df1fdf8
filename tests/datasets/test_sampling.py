import numpy as np
import pytest

from keras_imbalance.datasets import class_counts
from keras_imbalance.datasets import make_imbalanced


def _data(n_per_class=20, num_classes=4):
    y = np.repeat(np.arange(num_classes), n_per_class)
    x = np.arange(len(y), dtype=np.float32)[:, None]  # the value identifies the sample
    return x, y


def test_counts_seeded_without_replacement():
    x, y = _data()
    xs, ys = make_imbalanced(x, y, [20, 10, 3, 1], seed=1)
    assert np.bincount(ys).tolist() == [20, 10, 3, 1]
    assert len(np.unique(xs[:, 0])) == len(xs)  # no sample twice
    assert np.all(y[xs[:, 0].astype(int)] == ys)  # labels stay with their samples
    xs2, _ = make_imbalanced(x, y, [20, 10, 3, 1], seed=1)
    xs3, _ = make_imbalanced(x, y, [20, 10, 3, 1], seed=2)
    np.testing.assert_array_equal(xs, xs2)
    assert not np.array_equal(xs, xs3)


def test_not_enough_samples():
    x, y = _data()
    with pytest.raises(ValueError, match="class 1 has 20 samples, fewer than the 21"):
        make_imbalanced(x, y, [1, 21, 1, 1])


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((3, 2)), [0, 1], "different lengths"),
        (np.zeros((3, 2)), [0, 1, -1], "negative"),
        (np.zeros((3, 2)), [0, 1.5, 1], "integer"),
        (np.zeros((3, 2)), np.eye(3), "one-hot"),
        (np.array([[0.0, np.nan], [1, 1], [2, 2]]), [0, 1, 1], "NaN"),
        (np.zeros((0, 2)), np.zeros((0,), int), "empty"),
    ],
)
def test_bad_inputs(x, y, message):
    with pytest.raises(ValueError, match=message):
        make_imbalanced(x, y, [1, 1])


def test_class_counts_reports_missing_class():
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no samples"):
        class_counts([0, 0, 2])
    assert class_counts([0, 0, 2], require_all=False).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="out of range"):
        class_counts([0, 3], num_classes=3)


@pytest.mark.parametrize("counts, message", [
    ([0, 0, 0, 0], r"counts are all zero: the subset would be empty"),
    ([2.5, 1, 1, 1], r"counts must hold integer counts, got \[2.5, 1.0, 1.0, 1.0\]"),
    ([3, -1, 1, 1], r"counts must be non-negative, got \[3, -1, 1, 1\]"),
    ([1, float("nan"), 1, 1], r"counts must hold integer counts"),
    ([[1, 1], [1, 1]], r"counts must be a non-empty 1-D list of per-class counts, got shape \(2, 2\)"),
    (["1", "1", "1", "1"], r"counts must hold integer counts"),
    ([1, 1, 1], r"labels go up to 3 but counts has only 3 entries"),
    ([1, 1, 25, 1], r"class 2 has 20 samples, fewer than the 25 asked for"),
])
def test_bad_counts(counts, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        make_imbalanced(x, y, counts)


def test_integer_valued_float_counts_are_accepted():
    x, y = _data()
    _, ys = make_imbalanced(x, y, np.array([3.0, 2.0, 1.0, 0.0]))
    assert np.bincount(ys, minlength=4).tolist() == [3, 2, 1, 0]
