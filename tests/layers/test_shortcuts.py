import keras
import numpy as np
import pytest

from keras_imbalance.layers import SubsampleZeroPadShortcut


def _reference(x, filters, stride):
    sub = x[:, ::stride, ::stride, :]
    out = np.zeros(sub.shape[:3] + (filters,), sub.dtype)
    pad = (filters - x.shape[-1]) // 2
    out[..., pad : pad + x.shape[-1]] = sub
    return out


@pytest.mark.parametrize("shape, filters, stride", [((2, 8, 8, 16), 32, 2), ((1, 7, 5, 4), 8, 2), ((2, 4, 4, 6), 6, 1)])
def test_matches_subsample_and_symmetric_zero_pad(shape, filters, stride):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = SubsampleZeroPadShortcut(filters, stride)
    y = np.asarray(layer(x))
    np.testing.assert_array_equal(y, _reference(x, filters, stride))
    assert y.shape == layer.compute_output_shape(shape)
    assert not layer.trainable_weights


def test_16_to_32_keeps_input_in_the_middle_channels():
    x = np.ones((1, 4, 4, 16), "float32")
    y = np.asarray(SubsampleZeroPadShortcut(32)(x))
    # LDAM's reference pads planes // 4 = 8 zero channels on each side.
    assert np.all(y[..., :8] == 0) and np.all(y[..., 24:] == 0) and np.all(y[..., 8:24] == 1)


def test_errors():
    with pytest.raises(ValueError, match="even"):
        SubsampleZeroPadShortcut(7)(np.zeros((1, 4, 4, 4), "float32"))
    with pytest.raises(ValueError, match="even"):
        SubsampleZeroPadShortcut(2)(np.zeros((1, 4, 4, 4), "float32"))
    with pytest.raises(ValueError, match="strides"):
        SubsampleZeroPadShortcut(8, strides=0)


def test_keras_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 4))
    outputs = keras.layers.Add()([SubsampleZeroPadShortcut(8, 2)(inputs), keras.layers.Conv2D(8, 3, 2, "same")(inputs)])
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 4)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.asarray(model(x)))
