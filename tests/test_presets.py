import json
import os

import keras
import numpy as np
import pytest

from keras_imbalance import applications
from keras_imbalance import presets


@pytest.fixture
def preset_root(tmp_path):
    model = applications.SmallCNN((8, 8, 1), 3, filters=(4,), dense_units=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    presets.save_preset(model, "tiny", tmp_path, {"method": "erm", "dataset": "digits"})
    return tmp_path, model


def test_round_trip_and_listing(preset_root):
    root, model = preset_root
    assert presets.list_presets(root) == ["tiny"]
    meta = presets.metadata("tiny", root)
    assert meta["method"] == "erm" and "tiny.keras" in meta["files"] and "1/saved_model.pb" in meta["files"]
    loaded = presets.load("tiny", root)
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert loaded.compiled


def test_unknown_missing_and_tampered(preset_root):
    root, _ = preset_root
    with pytest.raises(presets.PresetError, match="unknown preset 'nope'.*tiny"):
        presets.load("nope", root)
    keras_file = os.path.join(root, "tiny", "tiny.keras")
    data = open(keras_file, "rb").read()
    with open(keras_file, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated
    with pytest.raises(presets.PresetError, match="tiny.keras fails its checksum"):
        presets.load("tiny", root)
    os.remove(keras_file)
    with pytest.raises(presets.PresetError, match="missing tiny.keras"):
        presets.load("tiny", root)


def test_no_generator_and_no_overwrite(preset_root):
    root, model = preset_root
    with pytest.raises(presets.PresetError, match="has no generator"):
        presets.load_generator("tiny", root)
    with pytest.raises(FileExistsError):
        presets.save_preset(model, "tiny", root, {})


def test_unsafe_lambda_is_refused(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    folder = tmp_path / "lam"
    folder.mkdir()
    model.save(folder / "lam.keras")
    meta = {"name": "lam", "keras_file": "lam.keras", "files": presets.file_checksums(folder)}
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="(?i)unsafe|lambda"):
        presets.load("lam", tmp_path)
