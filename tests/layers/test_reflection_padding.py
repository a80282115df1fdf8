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
