import numpy as np
import pytest

from keras_imbalance.applications import SmallCNN


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_shapes(shape):
    model = SmallCNN(shape, num_classes=4, filters=(4, 8), dense_units=8)
    x = np.zeros((2, *shape), "float32")
    assert model(x).shape == (2, 4)
    features = SmallCNN(shape, include_top=False, filters=(4, 8), dense_units=0)
    assert features(x).shape == (2, 8)


def test_logits_by_default_softmax_on_request():
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype("float32")
    probs = np.asarray(SmallCNN(num_classes=3, classifier_activation="softmax")(x))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    logits = np.asarray(SmallCNN(num_classes=3)(x))
    assert not np.allclose(logits.sum(1), 1)


def test_parameter_count():
    # conv1 3*3*1*32 + bn 4*32, conv2 3*3*32*64 + bn 4*64, fc 64*128+128, out 128*10+10
    model = SmallCNN()
    expected = 288 + 128 + 18432 + 256 + 8320 + 1290
    assert model.count_params() == expected
