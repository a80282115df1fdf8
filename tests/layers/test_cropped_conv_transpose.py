"""CroppedConv2DTranspose: the values and gradients of Conv2DTranspose("valid") + Cropping2D, in one op."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance.layers import CroppedConv2DTranspose


def _two_layer_reference(layer, x):
    """The full "valid" transposed convolution with the same kernel and bias, then the crop, in NumPy."""
    kernel, bias = (np.asarray(w, np.float64) for w in (layer.kernel, layer.bias))
    (kh, kw, _, _), (sh, sw) = kernel.shape, layer.strides
    b, h, w, _ = x.shape
    full = np.zeros((b, (h - 1) * sh + kh, (w - 1) * sw + kw, kernel.shape[2]))
    for i in range(h):
        for j in range(w):
            # Input pixel (i, j) adds kernel^T x[i, j] to the kh x kw window at (i s_h, j s_w).
            full[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += np.einsum("bc,uvoc->buvo", x[:, i, j, :], kernel)
    (top, bottom), (left, right) = layer.cropping
    return full[:, top:full.shape[1] - bottom, left:full.shape[2] - right, :] + bias


@pytest.mark.parametrize("kernel_size, strides, cropping", [
    (3, 2, ((1, 0), (1, 0))),  # CycleGAN's uk: PyTorch ConvTranspose2d(3, 2, padding=1, output_padding=1)
    (3, 2, 0),
    (4, 2, ((1, 1), (2, 0))),
    ((3, 2), (1, 2), ((0, 2), (1, 1))),
])
def test_values_match_the_full_output_cropped(kernel_size, strides, cropping):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    layer = CroppedConv2DTranspose(6, kernel_size, strides=strides, cropping=cropping,
                                   bias_initializer=keras.initializers.RandomNormal(seed=1))
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y, _two_layer_reference(layer, x.astype(np.float64)), atol=1e-4)
    assert y.shape == layer.compute_output_shape(x.shape)


def test_gradients_match_the_two_layer_form():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(3, 5, 5, 4)).astype("float32"))
    layer = CroppedConv2DTranspose(2, 3, strides=2, cropping=((1, 0), (1, 0)))
    layer.build(x.shape)
    full = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="valid")
    full.build(x.shape)
    full.set_weights(layer.get_weights())
    weights = tf.constant(rng.normal(size=(3, 10, 10, 2)).astype("float32"))
    grads = []
    for forward, variables in ((layer, layer.trainable_variables),
                               (lambda t: full(t)[:, 1:, 1:, :], full.trainable_variables)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(weights * forward(x) ** 2)
        grads.append(tape.gradient(loss, [x, *variables]))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_symbolic_shape_round_trip_and_errors(tmp_path):
    model = keras.Sequential([keras.Input((None, 6, 2)), CroppedConv2DTranspose(3, 3, strides=2, cropping=((1, 0), (1, 0)))])
    assert tuple(model.output_shape) == (None, None, 12, 3)
    x = np.random.default_rng(3).normal(size=(2, 5, 6, 2)).astype("float32")
    assert model(x).shape == (2, 10, 12, 3)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(path, safe_mode=True)(x)), np.asarray(model(x)), atol=1e-6)
    with pytest.raises(ValueError, match="takes padding 'valid' only"):
        CroppedConv2DTranspose(3, 3, padding="same")
    with pytest.raises(ValueError, match="takes dilation_rate 1 only"):
        CroppedConv2DTranspose(3, 3, dilation_rate=2)
    with pytest.raises(ValueError, match="leaves nothing"):
        CroppedConv2DTranspose(3, 3, cropping=((2, 1), (0, 0)))(np.zeros((1, 1, 4, 1), "float32"))
