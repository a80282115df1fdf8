"""Pretrained balancers stored in `saved_models/`, loaded with one call.

Each preset is a folder `saved_models/<name>/` holding:

- `<name>.keras`: the full model (all players and optimizer states), to
  continue training or to predict;
- `<version>/`: the SavedModel written by `serving.export_for_serving`, to serve;
- `metadata.json`: method, backbone, data set and imbalance profile, the
  command that trained it, the measured test metrics and the recorded test
  split, and a SHA-256 checksum of every file.

`load` verifies every checksum before it deserializes anything, and loads
`.keras` files with Keras `safe_mode=True`.
"""

import hashlib
import json
import os

import keras

METADATA = "metadata.json"
_ENV_ROOT = "KERAS_IMBALANCE_PRESETS"


class PresetError(ValueError):
    """A preset is unknown, incomplete, or fails its checksum."""


def default_root():
    """`$KERAS_IMBALANCE_PRESETS`, else `saved_models/` beside the package source."""
    if os.environ.get(_ENV_ROOT):
        return os.environ[_ENV_ROOT]
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(folder):
    """{relative path: sha256} of every file below `folder` except the metadata."""
    sums = {}
    for dirpath, _, filenames in os.walk(folder):
        for filename in filenames:
            full = os.path.join(dirpath, filename)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if rel != METADATA:
                sums[rel] = sha256_of(full)
    return dict(sorted(sums.items()))


def list_presets(root=None):
    """Names of the presets under `root` (default `default_root()`), sorted."""
    root = root or default_root()
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, METADATA)))


def metadata(name, root=None):
    """The `metadata.json` of a preset, as a dict."""
    folder = _folder(name, root)
    with open(os.path.join(folder, METADATA)) as f:
        return json.load(f)


def _folder(name, root):
    root = root or default_root()
    folder = os.path.join(root, name)
    if not os.path.isfile(os.path.join(folder, METADATA)):
        known = list_presets(root)
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(known) or '(none)'} in {root}")
    return folder


def verify(name, root=None):
    """Check every file listed in the metadata against its SHA-256; returns the metadata."""
    folder = _folder(name, root)
    meta = metadata(name, root)
    files = meta.get("files")
    if not files:
        raise PresetError(f"preset {name!r} lists no files with checksums in its {METADATA}")
    for rel, expected in files.items():
        full = os.path.join(folder, rel)
        if not os.path.isfile(full):
            raise PresetError(f"preset {name!r} is missing {rel} (expected at {full})")
        actual = sha256_of(full)
        if actual != expected:
            raise PresetError(
                f"preset {name!r}: {rel} fails its checksum (expected sha256 {expected[:12]}..., got {actual[:12]}...); "
                "the file is truncated or was modified"
            )
    return meta


def load(name, root=None, compile=True):
    """Load a preset's full model after verifying its checksums.

    Returns the `.keras` model (for a method model, its `call` is the
    classifier), compiled as it was saved unless `compile=False`.
    """
    import keras_imbalance  # noqa: F401  (registers every serializable class)

    meta = verify(name, root)
    path = os.path.join(_folder(name, root), meta.get("keras_file", f"{name}.keras"))
    return keras.saving.load_model(path, compile=compile, safe_mode=True)


def load_generator(name, root=None):
    """The generator player of a preset (GAMO, PolarityGAN, CycleGAN); an error if it has none."""
    model = load(name, root, compile=False)
    for attribute in ("generator", "generator_ab"):
        player = getattr(model, attribute, None)
        if player is not None:
            return player
    raise PresetError(f"preset {name!r} ({type(model).__name__}) has no generator")


def save_preset(model, name, root, metadata_fields, export_version=1, value_range=(0.0, 1.0)):
    """Write a preset folder: `.keras`, the SavedModel, and `metadata.json` with checksums.

    Refuses to overwrite an existing preset folder.
    """
    from keras_imbalance import serving

    folder = os.path.join(root, name)
    if os.path.exists(folder):
        raise FileExistsError(f"preset folder {folder} already exists; remove it first to replace the preset")
    os.makedirs(folder)
    keras_file = f"{name}.keras"
    model.save(os.path.join(folder, keras_file))
    serving.export_for_serving(model, folder, version=export_version, value_range=value_range)
    meta = {"name": name, **metadata_fields, "keras_file": keras_file, "serving_version": export_version,
            "files": file_checksums(folder)}
    with open(os.path.join(folder, METADATA), "w") as f:
        json.dump(meta, f, indent=2)
    return folder
