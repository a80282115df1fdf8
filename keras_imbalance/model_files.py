"""Loading a `.keras` file with errors that name the file and the problem.

Keras 3.15 reports a file that is not a zip archive (random bytes, a
truncated download, an empty file) as "File not found: filepath=..." although
the file exists, and a zip without `config.json` as a bare KeyError. A
`.keras` file is a zip archive holding `config.json` (the model's
configuration), `metadata.json` and `model.weights.h5`; `check_keras_file`
checks that layout first, so such files fail with "not a valid .keras file:
PATH" and the reason.

Ground floor: imports nothing from the package, so `cli` (predict, export)
and the model classes can both use it.
"""

import os
import zipfile
import zlib

import keras

_REQUIRED_MEMBERS = ("config.json",)


def check_keras_file(path):
    """Raise unless `path` exists and is a readable `.keras` zip archive with a `config.json`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: "not a valid .keras file: PATH (reason)" for a file that
            is not a zip archive (random bytes, truncated, empty) or lacks
            `config.json`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no .keras file at {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"not a valid .keras file: {path} (the file is empty)")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"not a valid .keras file: {path} (not a zip archive: truncated, or not a Keras model file)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"not a valid .keras file: {path} (unreadable zip archive: {error})") from None
    missing = [m for m in _REQUIRED_MEMBERS if m not in names]
    if missing:
        raise ValueError(f"not a valid .keras file: {path} (the archive has no {', '.join(missing)})")


def load_keras_file(path, compile=True, safe_mode=True):
    """`keras.saving.load_model(path)` after `check_keras_file`, in safe mode by default.

    Args:
        path: a `.keras` file (other formats, e.g. `.h5`, go to Keras unchecked).
        compile: restore the compiled state.
        safe_mode: refuse lambdas and other arbitrary code (Keras' safe mode).

    Raises:
        FileNotFoundError, ValueError: see `check_keras_file`; a damaged
            member inside a valid archive (bad CRC) is also "not a valid
            .keras file: PATH".
    """
    path = os.fspath(path)
    if path.endswith(".keras") or zipfile.is_zipfile(path):
        check_keras_file(path)
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
    except (zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"not a valid .keras file: {path} (damaged archive member: {error})") from None


__all__ = ["check_keras_file", "load_keras_file"]


def _without_key(config, key):
    if isinstance(config, dict):
        return {k: _without_key(v, key) for k, v in config.items() if k != key}
    if isinstance(config, list):
        return [_without_key(v, key) for v in config]
    return config


def inference_copy(model):
    """An uncompiled copy of `model` with the same weights: no optimizer, no optimizer state, nothing to train with.

    For files meant for prediction and sampling (the presets in
    `saved_models/`): a trained model's `.keras` file holds each compiled
    optimizer's slots too (Adam: twice the weights, per player), which the
    copy leaves out. Every "compile_config" in the serialized model (the
    model's own and those of nested networks) is dropped before
    deserializing, so no optimizer is rebuilt either. Compile the copy to
    train it further.

    Returns:
        A built model of the same class whose `get_weights()` equal `model`'s.
    """
    config = _without_key(keras.saving.serialize_keras_object(model), "compile_config")
    copy = keras.saving.deserialize_keras_object(config)
    if not copy.built:
        copy.build(model.input_shape)
    copy.set_weights(model.get_weights())
    return copy
