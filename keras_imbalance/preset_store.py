"""The files of a preset: folder layout, checksums, verified loading of its `.keras` model.

The storage floor under both `presets` (the registry: writing presets with
their SavedModel, loading generators) and `models` (`Model.from_preset`):
it imports only Keras and the standard library, so `models` can load a
verified preset without importing `presets`, which sits above `models` and
`serving`.

A preset is a folder `<root>/<name>/` with `metadata.json`, the model's
`.keras` file and the SavedModel version folder. The `files` entry of the
metadata (the manifest) maps EVERY other file below the folder, recursively,
to its SHA-256. `verify` refuses a preset whose folder and manifest disagree
in any way: a listed file missing, a file on disk that the manifest does not
list (added, or dropped from the manifest to escape its check), a file whose
bytes changed, a manifest or metadata path that is absolute, contains "..",
or resolves (symlinks followed) outside the folder, and any symlink that
points outside it. So whatever `load_verified` deserializes is exactly what
`write_manifest` saw.
"""

import hashlib
import json
import os

from keras_imbalance.model_files import load_keras_file

METADATA = "metadata.json"
_ENV_ROOT = "KERAS_IMBALANCE_PRESETS"
# The metadata entries that name a file inside the preset folder.
_PATH_FIELDS = ("keras_file",)


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


def _inside(folder, path):
    """Whether `path`, symlinks resolved, is `folder` or below it."""
    real_folder = os.path.realpath(folder)
    return os.path.commonpath([real_folder, os.path.realpath(path)]) == real_folder


def confined_path(folder, rel, what):
    """`folder/rel` after checking that `rel` stays inside `folder`; a PresetError naming `what` otherwise.

    Refuses an absolute path, a ".." component, an empty or non-string path,
    and a path that symlinks lead outside the folder.
    """
    if not isinstance(rel, str) or not rel:
        raise PresetError(f"{what}: {rel!r} is not a relative file path")
    parts = rel.replace("\\", "/").split("/")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or os.path.splitdrive(rel)[0] or ".." in parts:
        raise PresetError(f"{what}: {rel!r} must be a relative path inside the preset folder (no absolute path, no '..')")
    full = os.path.join(folder, *parts)
    if not _inside(folder, full):
        raise PresetError(f"{what}: {rel!r} resolves to {os.path.realpath(full)}, outside the preset folder {folder}")
    return full


def _files_on_disk(folder):
    """Relative paths ('/'-separated) of every file below `folder` but the metadata; symlinks leaving it refused."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for entry in dirnames + filenames:
            full = os.path.join(dirpath, entry)
            if os.path.islink(full) and not _inside(folder, full):
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                raise PresetError(f"{rel} is a symlink to {os.path.realpath(full)}, outside the preset folder {folder}")
        for filename in filenames:
            rel = os.path.relpath(os.path.join(dirpath, filename), folder).replace(os.sep, "/")
            if rel != METADATA:
                found.append(rel)
    return sorted(found)


def file_checksums(folder):
    """{relative path: sha256} of every file below `folder` except the metadata (the manifest)."""
    return {rel: sha256_of(os.path.join(folder, rel)) for rel in _files_on_disk(folder)}


def write_manifest(folder, meta=None):
    """Write `folder/metadata.json`: `meta` (None: the metadata already there) with a fresh manifest.

    The one writer of manifests: `presets.save_preset` calls it for a new
    preset, and `saved_models/train_presets.py --upgrade` for the
    shipped ones after a change that keeps their weights (the manifest then
    describes the folder as it is now, so only run it on files you trust).
    Paths in the metadata are checked as `verify` checks them. Returns the
    metadata written.
    """
    path = os.path.join(folder, METADATA)
    if meta is None:
        with open(path) as f:
            meta = json.load(f)
    meta = {**meta, "files": file_checksums(folder)}
    _check_path_fields(folder, meta, os.path.basename(os.path.normpath(folder)))
    with open(path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def _check_path_fields(folder, meta, name):
    for field in _PATH_FIELDS:
        if field in meta:
            rel = meta[field]
            confined_path(folder, rel, f"preset {name!r}: {METADATA} {field!r}")
            if rel not in meta["files"]:
                raise PresetError(f"preset {name!r}: {METADATA} {field!r} names {rel!r}, which its manifest does not list")


def list_presets(root=None):
    """Names of the presets under `root` (default `default_root()`), sorted."""
    root = root or default_root()
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, METADATA)))


def metadata(name, root=None):
    """The `metadata.json` of a preset, as a dict (not verified: see `verify`)."""
    folder = preset_folder(name, root)
    with open(os.path.join(folder, METADATA)) as f:
        return json.load(f)


def preset_folder(name, root=None):
    """The folder of preset `name` under `root`; a PresetError naming the known presets if absent.

    `name` is a folder name, not a path: separators, "." and ".." are refused.
    """
    root = root or default_root()
    if not isinstance(name, str) or not name or name in (".", "..") or any(s in name for s in ("/", "\\", os.sep)):
        raise PresetError(f"preset name {name!r} must be a folder name under {root}, without path separators")
    folder = os.path.join(root, name)
    if not os.path.isfile(os.path.join(folder, METADATA)):
        known = list_presets(root)
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(known) or '(none)'} in {root}")
    return folder


def verify(name, root=None):
    """Check the preset folder against its manifest, file by file; returns the metadata.

    Raises:
        PresetError naming the file: a listed file missing, a file not listed
        (extra, or dropped from the manifest), a checksum mismatch, a path in
        the metadata that is absolute, has "..", or resolves outside the
        folder, a symlink out of the folder.
    """
    folder = preset_folder(name, root)
    meta = metadata(name, root)
    files = meta.get("files")
    if not files or not isinstance(files, dict):
        raise PresetError(f"preset {name!r} lists no files with checksums in its {METADATA}")
    for rel in files:
        confined_path(folder, rel, f"preset {name!r}: manifest entry")
    _check_path_fields(folder, meta, name)
    on_disk = _files_on_disk(folder)
    extra = sorted(set(on_disk) - set(files))
    if extra:
        raise PresetError(f"preset {name!r} holds {', '.join(extra)}, which its {METADATA} manifest does not list; "
                          "a preset folder may hold only the files it lists with their checksums")
    for rel, expected in files.items():
        full = os.path.join(folder, rel)
        if not os.path.isfile(full):
            raise PresetError(f"preset {name!r} is missing {rel} (expected at {full})")
        actual = sha256_of(full)
        if actual != expected:
            raise PresetError(
                f"preset {name!r}: {rel} fails its checksum (expected sha256 {str(expected)[:12]}..., got {actual[:12]}...); "
                "the file is truncated or was modified"
            )
    return meta


def load_verified(name, root=None, compile=True):
    """The `.keras` model of preset `name`, loaded in safe mode after the whole folder is verified.

    Deserializes through Keras' registry: the classes the file names must be
    registered, which importing `keras_imbalance` (or any of its modules)
    does.
    """
    meta = verify(name, root)
    folder = preset_folder(name, root)
    keras_file = meta.get("keras_file", f"{name}.keras")
    if keras_file not in meta["files"]:
        raise PresetError(f"preset {name!r}: its model file {keras_file!r} is not in its manifest")
    return load_keras_file(confined_path(folder, keras_file, f"preset {name!r}"), compile=compile, safe_mode=True)
