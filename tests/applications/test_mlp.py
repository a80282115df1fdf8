import numpy as np
import pytest

from keras_imbalance.applications import MLP


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("dim, classes", [(50, 23), (1000, 36)])
def test_m2m_two_layer_network(dim, classes):
    model = MLP(input_shape=(dim,), num_classes=classes)
    assert _trainable(model) == dim * 256 + 256 + 256 * classes + classes
    assert model.output_shape == (None, classes)
    x = np.random.default_rng(0).normal(size=(3, dim)).astype("float32")
    hidden = np.maximum(x @ np.asarray(model.get_layer("fc1").kernel) + np.asarray(model.get_layer("fc1").bias), 0)
    out = hidden @ np.asarray(model.get_layer("predictions").kernel) + np.asarray(model.get_layer("predictions").bias)
    np.testing.assert_allclose(np.asarray(model(x)), out, atol=1e-4)


def test_options_and_errors():
    assert MLP(input_shape=8, num_classes=3, include_top=False).output_shape == (None, 256)
    assert MLP(input_shape=(8,), hidden_units=(16, 4), num_classes=2).get_layer("fc2").units == 4
    with pytest.raises(ValueError, match="features"):
        MLP(input_shape=(4, 4))
