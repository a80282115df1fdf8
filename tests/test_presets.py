import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_imbalance import applications
from keras_imbalance import presets


@pytest.fixture(scope="module")
def pristine_preset(tmp_path_factory):
    model = applications.SmallCNN((8, 8, 1), 3, filters=(4,), dense_units=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    root = tmp_path_factory.mktemp("pristine")
    presets.save_preset(model, "tiny", root, {"method": "erm", "dataset": "digits"})
    return root, model


@pytest.fixture
def preset_root(pristine_preset, tmp_path):
    """A fresh copy of one saved preset for each test to tamper with (saving and exporting once per module)."""
    root, model = pristine_preset
    shutil.copytree(root / "tiny", tmp_path / "tiny")
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


def _edit_metadata(root, change):
    path = os.path.join(root, "tiny", "metadata.json")
    meta = json.load(open(path))
    change(meta)
    json.dump(meta, open(path, "w"))


def test_extra_file_is_refused(preset_root):
    root, _ = preset_root
    open(os.path.join(root, "tiny", "1", "variables", "notes.txt"), "w").write("x")
    with pytest.raises(presets.PresetError, match="holds 1/variables/notes.txt, which its metadata.json manifest does not list"):
        presets.load("tiny", root)


@pytest.mark.parametrize("rel", ["tiny.keras", "1/variables/variables.data-00000-of-00001"])
def test_file_dropped_from_the_manifest_is_refused(preset_root, rel):
    root, _ = preset_root
    open(os.path.join(root, "tiny", rel), "ab").write(b"corrupt")
    _edit_metadata(root, lambda meta: meta["files"].pop(rel))
    with pytest.raises(presets.PresetError, match=f"{rel}.*which its (metadata.json )?manifest does not list"):
        presets.load("tiny", root)


def test_changed_savedmodel_variables_are_refused(preset_root):
    root, _ = preset_root
    open(os.path.join(root, "tiny", "1", "variables", "variables.index"), "ab").write(b"\0")
    with pytest.raises(presets.PresetError, match="1/variables/variables.index fails its checksum"):
        presets.verify("tiny", root)


def test_missing_savedmodel_file_is_refused(preset_root):
    root, _ = preset_root
    os.remove(os.path.join(root, "tiny", "1", "saved_model.pb"))
    with pytest.raises(presets.PresetError, match="missing 1/saved_model.pb"):
        presets.load_generator("tiny", root)


@pytest.mark.parametrize("keras_file", ["../elsewhere/model.keras", "/tmp/model.keras", "sub/../../model.keras"])
def test_keras_file_outside_the_folder_is_refused(preset_root, keras_file):
    root, model = preset_root
    # The redirection of issue 20: a model saved beside the preset, listed with its true checksum.
    os.makedirs(os.path.join(root, "elsewhere"), exist_ok=True)
    model.save(os.path.join(root, "elsewhere", "model.keras"))

    def redirect(meta):
        meta["keras_file"] = keras_file
        meta["files"][keras_file] = presets.sha256_of(os.path.join(root, "elsewhere", "model.keras"))

    _edit_metadata(root, redirect)
    with pytest.raises(presets.PresetError, match="must be a relative path inside the preset folder"):
        presets.load("tiny", root)


def test_keras_file_not_in_the_manifest_is_refused(preset_root):
    root, _ = preset_root
    _edit_metadata(root, lambda meta: meta.update(keras_file="other.keras"))
    with pytest.raises(presets.PresetError, match="'keras_file' names 'other.keras', which its manifest does not list"):
        presets.load("tiny", root)


def test_symlink_out_of_the_folder_is_refused(preset_root, tmp_path_factory):
    root, model = preset_root
    outside = tmp_path_factory.mktemp("outside")
    model.save(outside / "model.keras")
    folder = os.path.join(root, "tiny")
    os.remove(os.path.join(folder, "tiny.keras"))
    os.symlink(outside / "model.keras", os.path.join(folder, "tiny.keras"))
    _edit_metadata(root, lambda meta: meta["files"].update({"tiny.keras": presets.sha256_of(outside / "model.keras")}))
    with pytest.raises(presets.PresetError, match="tiny.keras.*outside the preset folder"):
        presets.load("tiny", root)


def test_symlinked_folder_out_of_the_preset_is_refused(preset_root, tmp_path_factory):
    root, _ = preset_root
    os.symlink(tmp_path_factory.mktemp("outside_dir"), os.path.join(root, "tiny", "extra"))
    with pytest.raises(presets.PresetError, match="extra is a symlink to .*outside the preset folder"):
        presets.verify("tiny", root)


@pytest.mark.parametrize("name", ["../tiny", "tiny/..", ".."])
def test_preset_name_is_a_folder_name(preset_root, name):
    root, _ = preset_root
    with pytest.raises(presets.PresetError, match="must be a folder name"):
        presets.load(name, root)


def test_write_manifest_lists_every_file(preset_root):
    root, _ = preset_root
    folder = os.path.join(root, "tiny")
    on_disk = sorted(os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
                     for d, _, fs in os.walk(folder) for f in fs)
    assert sorted(presets.metadata("tiny", root)["files"]) == [f for f in on_disk if f != "metadata.json"]
    assert any(f.startswith("1/variables/") for f in on_disk)
    open(os.path.join(folder, "README"), "w").write("notes")
    with pytest.raises(presets.PresetError, match="README"):
        presets.verify("tiny", root)
    meta = presets.write_manifest(folder)
    assert "README" in meta["files"] and meta["method"] == "erm"
    presets.verify("tiny", root)


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
