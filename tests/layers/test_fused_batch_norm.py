"""FusedBatchNormalization: Keras' BatchNormalization (values, gradients, moving statistics) by the fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance import compare
from keras_imbalance.layers import FusedBatchNormalization


def _pair(shape, **kwargs):
    """A Keras BatchNormalization and a FusedBatchNormalization with the same (random) variables."""
    keras_bn, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    keras_bn.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(0)
    fused.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in keras_bn.get_weights()])
    keras_bn.set_weights(fused.get_weights())
    return keras_bn, fused


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9, "epsilon": 1e-5}, {"center": False, "scale": False}])
def test_training_step_matches_keras(kwargs):
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, (6, 5, 4, 3)).astype("float32"))
    weights = tf.constant(np.random.default_rng(2).normal(size=(6, 5, 4, 3)).astype("float32"))
    results = []
    for layer in _pair(x.shape, **kwargs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(weights * y * y)
        results.append((y, tape.gradient(loss, [x, *layer.trainable_variables]), layer.moving_mean, layer.moving_variance))
    (y_k, g_k, mean_k, var_k), (y_f, g_f, mean_f, var_f) = results
    np.testing.assert_allclose(np.asarray(y_f), np.asarray(y_k), atol=1e-4)
    for a, b in zip(g_f, g_k, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-3)
    # Moving statistics updated with the batch mean and the biased variance, as Keras updates them.
    np.testing.assert_allclose(np.asarray(mean_f), np.asarray(mean_k), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(var_f), np.asarray(var_k), rtol=1e-5)
    batch_var = np.asarray(x).var(axis=(0, 1, 2))
    momentum = kwargs.get("momentum", 0.99)
    before = _pair(x.shape, **kwargs)[1].moving_variance
    np.testing.assert_allclose(np.asarray(var_f), np.asarray(before) * momentum + batch_var * (1 - momentum), rtol=1e-5)


def test_inference_frozen_fallback_and_round_trip(tmp_path):
    x = np.random.default_rng(3).normal(size=(4, 3, 3, 2)).astype("float32")
    keras_bn, fused = _pair(x.shape)
    np.testing.assert_allclose(np.asarray(fused(x, training=False)), np.asarray(keras_bn(x, training=False)), atol=1e-5)
    fused.trainable = keras_bn.trainable = False  # a frozen layer normalizes by its moving statistics, updates nothing
    np.testing.assert_allclose(np.asarray(fused(x, training=True)), np.asarray(keras_bn(x, training=True)), atol=1e-5)
    # Not a (B, H, W, C) map: Keras' own computation.
    flat = np.random.default_rng(4).normal(size=(5, 2)).astype("float32")
    keras_flat, fused_flat = _pair(flat.shape)
    np.testing.assert_allclose(np.asarray(fused_flat(flat, training=True)), np.asarray(keras_flat(flat, training=True)), atol=1e-5)
    model = keras.Sequential([keras.Input((3, 3, 2)), FusedBatchNormalization(momentum=0.9)])
    model.compile("sgd", "mse")
    model.fit(x, x, epochs=1, verbose=0)
    path = str(tmp_path / "bn.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(reloaded.layers[0], FusedBatchNormalization) and reloaded.layers[0].momentum == 0.9
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6)


def test_mixed_float16_normalizes_in_float32_statistics():
    x = np.random.default_rng(5).normal(1.0, 2.0, (8, 4, 4, 3)).astype("float32")
    with compare.precision_policy(True):
        layer = FusedBatchNormalization()
        y = layer(x, training=True)
    assert y.dtype == "float16" and layer.moving_mean.dtype == "float32"
    expected = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-3)
    np.testing.assert_allclose(np.asarray(y, "float32"), expected, atol=1e-2)
