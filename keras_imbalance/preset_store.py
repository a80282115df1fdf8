"""The files of a preset: folder layout, checksums, verified loading of its `.keras` model.

The storage floor under both `presets` (the registry: writing presets with
their SavedModel, loading generators) and `models` (`Model.from_preset`):
it imports only Keras and the standard library, so `models` can load a
verified preset without importing `presets`, which sits above `models` and
`serving`.

A preset is a folder `<root>/<name>/` with `metadata.json` (its `files`
entry maps every other file to its SHA-256) and the model's `.keras` file.
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
    folder = preset_folder(name, root)
    with open(os.path.join(folder, METADATA)) as f:
        return json.load(f)


def preset_folder(name, root=None):
    """The folder of preset `name` under `root`; a PresetError naming the known presets if absent."""
    root = root or default_root()
    folder = os.path.join(root, name)
    if not os.path.isfile(os.path.join(folder, METADATA)):
        known = list_presets(root)
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(known) or '(none)'} in {root}")
    return folder


def verify(name, root=None):
    """Check every file listed in the metadata against its SHA-256; returns the metadata."""
    folder = preset_folder(name, root)
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


def load_verified(name, root=None, compile=True):
    """The `.keras` model of preset `name`, loaded in safe mode after every checksum is verified.

    Deserializes through Keras' registry: the classes the file names must be
    registered, which importing `keras_imbalance` (or any of its modules)
    does.
    """
    meta = verify(name, root)
    path = os.path.join(preset_folder(name, root), meta.get("keras_file", f"{name}.keras"))
    return keras.saving.load_model(path, compile=compile, safe_mode=True)
