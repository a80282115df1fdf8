import numpy as np
import pytest

from keras_imbalance.datasets import to_dataset


def _long_tailed(counts=(200, 40, 8, 2)):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = np.arange(len(y), dtype=np.float32)[:, None]
    return x, y


def test_plain_pipeline_sees_every_sample_once_per_epoch():
    x, y = _long_tailed()
    ds = to_dataset(x, y, batch_size=32, seed=3)
    for _ in range(2):
        seen = np.concatenate([b[0].numpy()[:, 0] for b in ds])
        assert sorted(seen.tolist()) == sorted(x[:, 0].tolist())
    epoch1 = np.concatenate([b[0].numpy()[:, 0] for b in ds])
    epoch2 = np.concatenate([b[0].numpy()[:, 0] for b in ds])
    assert not np.array_equal(epoch1, epoch2)  # reshuffled each epoch


def test_balanced_pipeline_is_class_balanced_in_expectation():
    x, y = _long_tailed()
    ds = to_dataset(x, y, batch_size=50, balanced=True, seed=0)
    labels, values = [], []
    for _ in range(20):
        for xb, yb in ds:
            labels.append(yb.numpy())
            values.append(xb.numpy()[:, 0])
    labels, values = np.concatenate(labels), np.concatenate(values)
    assert len(labels) == 20 * len(y)
    # Each class ~ 1/4 of the draws: binomial std ~ 0.004 at n = 5000.
    np.testing.assert_allclose(np.bincount(labels) / len(labels), 0.25, atol=0.02)
    # Samples keep their labels, and every sample of the smallest class is drawn.
    assert np.all(y[values.astype(int)] == labels)
    assert set(values[labels == 3].astype(int)) == set(np.flatnonzero(y == 3))
    # Within a class, draws are uniform over its samples.
    per_sample = np.bincount(values[labels == 1].astype(int) - 200, minlength=40)
    assert per_sample.min() > 0.5 * per_sample.mean()


def test_balanced_epochs_differ_and_are_seeded():
    x, y = _long_tailed()
    first = [b[1].numpy() for b in to_dataset(x, y, 16, balanced=True, seed=1)]
    again = [b[1].numpy() for b in to_dataset(x, y, 16, balanced=True, seed=1)]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
    ds = to_dataset(x, y, 16, balanced=True, seed=1)
    e1 = np.concatenate([b[1].numpy() for b in ds])
    e2 = np.concatenate([b[1].numpy() for b in ds])
    assert not np.array_equal(e1, e2)


def test_drop_remainder_gives_fixed_batch_shape():
    x, y = _long_tailed()
    ds = to_dataset(x, y, 64, balanced=True, drop_remainder=True)
    assert ds.element_spec[0].shape[0] == 64
    assert sum(1 for _ in ds) == len(y) // 64


def test_balanced_needs_every_class():
    x, y = _long_tailed()
    with pytest.raises(ValueError, match="no samples"):
        to_dataset(x, y, 8, balanced=True, num_classes=5)


def test_bad_batch_size():
    x, y = _long_tailed()
    with pytest.raises(ValueError, match="batch_size"):
        to_dataset(x, y, 0)
