"""load_keras_file: a damaged .keras file is "not a valid .keras file: PATH", not Keras' "File not found"."""

import os
import re
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
