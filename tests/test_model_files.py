"""load_keras_file: a damaged .keras file is "not a valid .keras file: PATH", not Keras' "File not found"."""

import os
import re
import warnings
import zipfile

import keras
import numpy as np
import pytest

from keras_imbalance.model_files import check_keras_file, load_keras_file


@pytest.fixture()
def saved(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / "ok.keras"
    model.save(path)
    return path


def _damaged(saved, kind):
    path = saved.parent / f"{kind.replace(' ', '_')}.keras"
    data = saved.read_bytes()
    if kind == "random bytes":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 2000).astype("uint8")))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zip without config.json":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    return path


@pytest.mark.parametrize("kind, reason", [
    ("random bytes", r"not a zip archive"),
    ("truncated", r"not a zip archive"),
    ("empty", r"the file is empty"),
    ("zip without config.json", r"the archive has no config.json"),
])
def test_a_damaged_keras_file_is_named(saved, kind, reason):
    path = _damaged(saved, kind)
    with pytest.raises(ValueError, match=r"^not a valid \.keras file: " + re.escape(str(path)) + r" \(" + reason):
        load_keras_file(path)


def test_a_valid_file_loads_and_a_missing_one_is_not_found(saved, tmp_path):
    model = load_keras_file(saved, compile=False)
    assert model.output_shape == (None, 2)
    check_keras_file(str(saved))
    with pytest.raises(FileNotFoundError, match="no .keras file at " + re.escape(str(tmp_path / "missing.keras"))):
        load_keras_file(tmp_path / "missing.keras")
    assert not os.path.exists(tmp_path / "missing.keras")


def test_inference_copy_keeps_the_weights_and_drops_every_optimizer(tmp_path):
    from keras_imbalance.model_files import inference_copy
    from keras_imbalance.models import with_pixel_range

    plain = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(3)])
    plain.compile("adam", "mse")
    plain.fit(np.ones((6, 64)), np.zeros((6, 3)), verbose=0)
    trained = with_pixel_range(plain, (0, 1))  # a compiled wrapper around a compiled classifier: two optimizers
    copy = inference_copy(trained)
    assert not copy.compiled and not copy.classifier.compiled and copy.pixel_range == (0.0, 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), trained.get_weights(), strict=True))
    full, light = str(tmp_path / "full.keras"), str(tmp_path / "light.keras")
    trained.save(full)
    copy.save(light)
    # Adam's two slots per weight, twice (classifier and wrapper): the copy's file is about a fifth of the size.
    assert os.path.getsize(light) < 0.5 * os.path.getsize(full)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = keras.saving.load_model(light, safe_mode=True)
    x = np.random.default_rng(0).random((5, 64)).astype("float32")
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(trained(x)), atol=1e-6)
