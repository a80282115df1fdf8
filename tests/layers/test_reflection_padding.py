import keras
import numpy as np
import pytest

from keras_imbalance.layers import ReflectionPadding2D


@pytest.mark.parametrize(
    "padding, np_pad",
    [
        (1, ((1, 1), (1, 1))),
        (3, ((3, 3), (3, 3))),
        ((2, 1), ((2, 2), (1, 1))),
        (((0, 2), (3, 1)), ((0, 2), (3, 1))),
    ],
)
def test_matches_numpy_reflect(padding, np_pad):
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    y = np.asarray(ReflectionPadding2D(padding)(x))
    expected = np.pad(x, ((0, 0), *np_pad, (0, 0)), mode="reflect")
    np.testing.assert_array_equal(y, expected)
    # Reflection does not repeat the edge: the first padded row mirrors row 1, not row 0.
    if np_pad[0][0] > 0:
        np.testing.assert_array_equal(y[:, np_pad[0][0] - 1, np_pad[1][0]:np_pad[1][0] + 6], x[:, 1])


def test_symbolic_shape_and_errors():
    out = ReflectionPadding2D(((1, 2), (3, 0)))(keras.Input((8, 9, 4)))
    assert tuple(out.shape) == (None, 11, 12, 4)
    with pytest.raises(ValueError, match="smaller than the input height"):
        ReflectionPadding2D(4)(np.zeros((1, 4, 8, 1), "float32"))
    with pytest.raises(ValueError, match="non-negative"):
        ReflectionPadding2D(-1)
    with pytest.raises(ValueError, match="B, H, W, C"):
        ReflectionPadding2D(1)(np.zeros((4, 8, 1), "float32"))


def test_keras_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 2)), ReflectionPadding2D(((1, 2), (2, 1))), keras.layers.Conv2D(3, 3)])
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.layers[0].padding == ((1, 2), (2, 1))
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.asarray(model(x)))


def test_gradient_matches_mirror_pad_and_unknown_sizes_fall_back():
    import tensorflow as tf

    layer = ReflectionPadding2D(((2, 1), (1, 3)))
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 5, 6, 3)).astype("float32"))
    weights = tf.constant(np.random.default_rng(3).normal(size=(2, 8, 10, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        fast = tf.reduce_sum(layer(x) * weights)  # static sizes: the gather path
        mirror = tf.reduce_sum(tf.pad(x, ((0, 0), (2, 1), (1, 3), (0, 0)), mode="REFLECT") * weights)
    np.testing.assert_allclose(tape.gradient(fast, x), tape.gradient(mirror, x), rtol=1e-6, atol=1e-6)
    # Unknown height and width (a traced function): ops.pad's reflect mode, same values.
    dynamic = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    np.testing.assert_array_equal(np.asarray(dynamic(x)), np.pad(np.asarray(x), ((0, 0), (2, 1), (1, 3), (0, 0)), mode="reflect"))
