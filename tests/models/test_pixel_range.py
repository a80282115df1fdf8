"""models.pixel_range: the range a model was trained in, carried by the model; uint8 input scaled inside it."""

import warnings

import keras
import numpy as np
import pytest

from keras_imbalance.models.pixel_range import DEFAULT_PIXEL_RANGE
from keras_imbalance.models.pixel_range import PixelRangeClassifier
from keras_imbalance.models.pixel_range import check_pixel_range
from keras_imbalance.models.pixel_range import raw_pixel_input
from keras_imbalance.models.pixel_range import scale_pixels
from keras_imbalance.models.pixel_range import with_pixel_range
from tests.models.test_base import TwoPlayers

PIXELS = np.array([[0, 51, 255]], np.uint8)


def test_scale_pixels_by_dtype():
    np.testing.assert_allclose(np.asarray(scale_pixels(PIXELS, (-1.0, 1.0))), [[-1.0, -0.6, 1.0]], atol=1e-6)
    floats = np.array([[0.5, 7.0]], np.float32)
    assert scale_pixels(floats, (-1.0, 1.0)) is floats  # preprocessed already: untouched
    assert scale_pixels([[1, 2]], (0.0, 1.0)) == [[1, 2]]  # no dtype: passed on as it is
    with pytest.raises(TypeError, match="int64 are ambiguous"):
        scale_pixels(PIXELS.astype(np.int64), (0.0, 1.0))


@pytest.mark.parametrize("bad", [(1.0, 0.0), (0.0,), "01", None])
def test_check_pixel_range_refuses(bad):
    with pytest.raises(ValueError, match="pixel_range must be"):
        check_pixel_range(bad)


def test_method_model_carries_its_range_through_the_keras_file(tmp_path):
    model = TwoPlayers(seed=0, pixel_range=(-1, 1))
    x = np.array([[0, 128, 255]], np.uint8)
    scaled = x.astype("float32") / 255.0 * 2 - 1
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(scaled)), atol=1e-6)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.pixel_range == (-1.0, 1.0) and reloaded.get_config()["pixel_range"] == [-1.0, 1.0]
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), np.asarray(model(scaled)), atol=1e-6)
    # A config saved before models carried a range loads with the loaders' range.
    config = model.get_config()
    del config["pixel_range"]
    assert TwoPlayers.from_config(config).pixel_range == DEFAULT_PIXEL_RANGE


def test_setting_the_range_reaches_a_traced_predict():
    model = TwoPlayers(seed=0)
    x = np.array([[0, 128, 255]], np.uint8)
    first = model.predict(x, verbose=0)
    model.pixel_range = (-1, 1)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(model(x.astype("float32") / 255.0 * 2 - 1)),
                               atol=1e-6)
    assert not np.allclose(first, model.predict(x, verbose=0))


def test_with_pixel_range_wraps_a_plain_classifier_and_keeps_compile():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile("adam", "mse")
    wrapped = with_pixel_range(plain, (-1, 1))
    assert isinstance(wrapped, PixelRangeClassifier) and wrapped.classifier is plain
    # Compiled with a built copy of the optimizer: the .keras file then holds both optimizers' variables and
    # loads without Keras' "Skipping variable loading for optimizer" warning.
    assert wrapped.compiled and type(wrapped.optimizer) is type(plain.optimizer)
    assert wrapped.optimizer is not plain.optimizer and wrapped.optimizer.built
    assert wrapped.optimizer.get_config()["learning_rate"] == plain.optimizer.get_config()["learning_rate"]
    assert with_pixel_range(wrapped) is wrapped and wrapped.pixel_range == (-1.0, 1.0)
    np.testing.assert_allclose(np.asarray(wrapped(PIXELS)), np.asarray(plain(PIXELS / 255.0 * 2 - 1)), atol=1e-6)
    # A plain model does not scale: raw pixels are scaled for it to the loaders' range.
    np.testing.assert_allclose(raw_pixel_input(plain, PIXELS), PIXELS / 255.0, atol=1e-6)
    assert raw_pixel_input(wrapped, PIXELS) is PIXELS
    with pytest.raises(ValueError, match="not built"):
        with_pixel_range(keras.Sequential([keras.layers.Dense(2)]))


def test_a_wrapped_trained_classifier_reloads_without_optimizer_warnings(tmp_path):
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile("sgd", "mse")
    plain.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    path = str(tmp_path / "wrapped.keras")
    with_pixel_range(plain, (0, 1)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(np.ones((1, 3), "float32"))), np.asarray(plain(np.ones((1, 3)))), atol=1e-6)
