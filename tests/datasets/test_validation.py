import numpy as np
import pytest

from keras_imbalance.datasets.validation import collect_batches


def test_collect_batches_concatenates_in_order_and_flattens_labels():
    rng = np.random.default_rng(0)
    x = rng.random((7, 4, 4, 1)).astype("float32")
    y = rng.integers(0, 3, size=7)
    batches = [(x[i : i + 3], y[i : i + 3, None]) for i in range(0, 7, 3)]  # labels as (b, 1), last batch of 1
    got_x, got_y = collect_batches(batches, "adapt")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert got_y.shape == (7,)


def test_collect_batches_names_the_caller_in_its_errors():
    with pytest.raises(ValueError, match="ImbalanceCycleGAN.fit got an empty dataset"):
        collect_batches([], "ImbalanceCycleGAN.fit")
    with pytest.raises(ValueError, match=r"adapt needs \(x, y\) data"):
        collect_batches([np.zeros((2, 3))], "adapt")
