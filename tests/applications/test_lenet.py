import keras
import numpy as np
import pytest

from keras_imbalance.applications import LeNet
from tests.harness import run_model_test


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _expected_params(h, w, channels=1, num_classes=10, filters=(32, 64), k=3, dense=128, padding="valid"):
    """Counted by hand: conv k*k*in*out + out (bias) per stage; "valid" convs shrink by k - 1 and the
    2x2 "same" pools halve rounding up; then flatten -> dense + bias -> predictions + bias."""
    total, prev = 0, channels
    for f in filters:
        total += k * k * prev * f + f
        prev = f
        if padding == "valid":
            h, w = h - k + 1, w - k + 1
        h, w = -(-h // 2), -(-w // 2)
    return total + h * w * prev * dense + dense + dense * num_classes + num_classes


def test_default_parameter_count_is_pinned():
    # conv1 3*3*1*32+32 = 320, conv2 3*3*32*64+64 = 18,496, fc 6*6*64*128+128 = 295,040, out 128*10+10 = 1,290
    model = LeNet()
    assert _trainable(model) == 320 + 18_496 + 295_040 + 1_290 == 315_146 == _expected_params(28, 28)
    assert model.count_params() == 315_146  # no non-trainable weights (no BatchNormalization)


@pytest.mark.parametrize("shape, classes, kwargs", [
    ((28, 28, 1), 10, {}),
    ((32, 32, 3), 7, {}),
    ((17, 23, 2), 4, {}),
    ((28, 28, 1), 3, {"kernel_size": 5, "padding": "same", "filters": (6, 16), "dense_units": 84}),
])
def test_parameter_count_formula(shape, classes, kwargs):
    model = LeNet(shape, classes, **kwargs)
    spec = {"filters": kwargs.get("filters", (32, 64)), "k": kwargs.get("kernel_size", 3),
            "dense": kwargs.get("dense_units", 128), "padding": kwargs.get("padding", "valid")}
    assert _trainable(model) == _expected_params(shape[0], shape[1], shape[2], classes, **spec)
    assert model.output_shape == (None, classes)


def test_layer_spec_and_shapes():
    model = LeNet()
    assert [tuple(model.get_layer(n).output.shape[1:]) for n in ("conv1", "pool1", "conv2", "pool2", "flatten", "fc")] == [
        (26, 26, 32), (13, 13, 32), (11, 11, 64), (6, 6, 64), (2304,), (128,)]
    assert not any(isinstance(layer, (keras.layers.BatchNormalization, keras.layers.GlobalAveragePooling2D))
                   for layer in model.layers)
    x = np.zeros((2, 28, 28, 1), "float32")
    assert np.asarray(model(x)).shape == (2, 10)
    assert LeNet(include_top=False).output_shape == (None, 128)
    assert LeNet(include_top=False, dense_units=0).output_shape == (None, 2304)
    assert LeNet(dropout=0.5).get_layer("dropout").rate == 0.5


def test_logits_by_default_softmax_on_request():
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    probs = np.asarray(LeNet(num_classes=3, classifier_activation="softmax")(x))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert LeNet(num_classes=3).layers[-1].activation.__name__ == "linear"


def test_bad_inputs():
    with pytest.raises(ValueError, match="too small"):
        LeNet((6, 6, 1))  # 6 -> 4 -> 2 -> 0 with two 3x3 valid convs
    assert LeNet((7, 7, 1)).output_shape == (None, 10)  # the smallest that fits: 7 -> 5 -> 3 -> 1 -> 1
    with pytest.raises(ValueError, match="height, width, channels"):
        LeNet((28, 28))
    with pytest.raises(ValueError, match="known height and width"):
        LeNet((None, None, 1))
    with pytest.raises(ValueError, match="channel"):
        LeNet((28, 28, 0))
    with pytest.raises(ValueError, match="num_classes"):
        LeNet(num_classes=0)
    with pytest.raises(ValueError, match="padding"):
        LeNet(padding="causal")
    with pytest.raises(ValueError, match="filters"):
        LeNet(filters=())
    with pytest.raises(ValueError, match="never downloads"):
        LeNet(weights="imagenet")


def test_local_weights(tmp_path):
    source = LeNet(num_classes=3)
    path = tmp_path / "lenet.weights.h5"
    source.save_weights(path)
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(LeNet(num_classes=3, weights=str(path))(x)), np.asarray(source(x)))
    with pytest.raises(ValueError, match="not found"):
        LeNet(weights=str(tmp_path / "missing.weights.h5"))


@pytest.mark.slow
def test_harness_fit_round_trip_and_savedmodel(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=4)
    run_model_test(lambda: LeNet(), x, y,
                   compile_kwargs={"optimizer": "adam", "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
                   tmp_path=tmp_path, expected_output_shape=(4, 10))
