import numpy as np
import pytest

from keras_imbalance.datasets.validation import collect_batches


def test_collect_batches_concatenates_in_order_and_flattens_labels():
    rng = np.random.default_rng(0)
    x = rng.random((7, 4, 4, 1)).astype("float32")
    y = rng.integers(0, 3, size=7)
    batches = [(x[i : i + 3], y[i : i + 3, None]) for i in range(0, 7, 3)]  # labels as (b, 1), last batch of 1
    got_x, got_y = collect_batches(batches, "adapt")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert got_y.shape == (7,)


def test_collect_batches_names_the_caller_in_its_errors():
    with pytest.raises(ValueError, match="ImbalanceCycleGAN.fit got an empty dataset"):
        collect_batches([], "ImbalanceCycleGAN.fit")
    with pytest.raises(ValueError, match=r"adapt needs \(x, y\) data"):
        collect_batches([np.zeros((2, 3))], "adapt")


# ---------------------------------------------------------------- one fit-data path: arrays and tf.data

import tensorflow as tf  # noqa: E402

from keras_imbalance.datasets import to_dataset  # noqa: E402
from keras_imbalance.datasets.validation import (  # noqa: E402
    FIRST_BATCHES,
    check_fit_data,
    check_image_file,
    check_value_range,
    checked_dataset,
    input_check_errors,
)


def _images(n=24, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.sort(np.arange(n) % c)  # class-sorted: the last class shows up in the last batches only
    return rng.random((n, 4, 4, 1)).astype("float32"), y


def _read_all(ds):
    with input_check_errors():
        return [tuple(np.asarray(t) for t in batch) for batch in ds]


def _checked(x, y, batch=4, **kwargs):
    return checked_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch), (4, 4, 1), 3, (0.0, 1.0), **kwargs)


@pytest.mark.parametrize("fault, message", [
    ("a label equal to num_classes, in the last batch", r"the dataset's labels have class id 3 out of range for num_classes=3"),
    ("all labels shifted by one", r"the dataset's labels have class id 3 out of range for num_classes=3"),
    ("negative labels", r"the dataset's labels have negative class ids \(min -1\)"),
    ("float labels that are not integers", r"the dataset's labels must be integer class ids, got non-integer values such as 0.5"),
    ("float images 0-255", r"the dataset's x has values in \[\S+, \S+\] but the model expects images in \[0, 1\]; pixels in 0..255\? divide them by 255"),
    ("uint8 images 0-255", r"the dataset's x \(uint8\) has values in \[\d+, \d+\] but the model expects images in \[0, 1\]; uint8 pixels in 0..255\?"),
    ("NaN pixels in the first batch", r"the dataset's x contains NaN or inf values"),
    ("images in [-1, 1] for a [0, 1] model", r"the dataset's x has values in \[-\S+, \S+\] but the model expects images in \[0, 1\] \(set the model's value_range"),
])
def test_checked_dataset_refuses_each_fault_with_a_named_error(fault, message):
    x, y = _images()
    if fault.startswith("a label equal"):
        y = np.where(y == 2, 3, y)
    elif fault.startswith("all labels"):
        y = y + 1
    elif fault.startswith("negative"):
        y = y - 1
    elif fault.startswith("float labels"):
        y = y.astype("float32") + 0.5
    elif fault.startswith("float images"):
        x = x * 255
    elif fault.startswith("uint8"):
        x = (x * 255).astype("uint8")
    elif fault.startswith("NaN"):
        x[1, 0, 0, 0] = np.nan
    else:
        x = x * 2 - 1
    with pytest.raises(ValueError, match=message):
        _read_all(_checked(x, y))


def test_checked_dataset_passes_good_data_unchanged_and_casts_integer_float_labels():
    x, y = _images()
    plain = [tuple(np.asarray(t) for t in b) for b in tf.data.Dataset.from_tensor_slices((x, y)).batch(5)]
    checked = _read_all(_checked(x, y, batch=5))
    assert len(checked) == len(plain)
    for (px, py), (cx, cy) in zip(plain, checked):
        np.testing.assert_array_equal(px, cx)
        np.testing.assert_array_equal(py, cy)
    floats = _read_all(_checked(x, y.astype("float32"), batch=5))
    assert floats[0][1].dtype == np.int64 and np.concatenate([b[1] for b in floats]).tolist() == y.tolist()


@pytest.mark.parametrize("balanced", [False, True])
def test_checked_dataset_keeps_the_epoch_order_of_seeded_pipelines(balanced):
    # A peek at the first batch (an extra iteration) would advance the per-pass seed of
    # shuffle(reshuffle_each_iteration=True) / Dataset.random and change every epoch's order.
    x, y = _images(40)
    reference = to_dataset(x, y, 8, balanced=balanced, seed=3)
    checked = checked_dataset(to_dataset(x, y, 8, balanced=balanced, seed=3), (4, 4, 1), 3, (0.0, 1.0))
    for _epoch in range(2):
        want = [np.asarray(b[1]) for b in reference]
        got = [b[1] for b in _read_all(checked)]
        assert [w.tolist() for w in want] == [g.tolist() for g in got]


def test_checked_dataset_checks_images_of_the_first_batches_only():
    x, y = _images()
    x[-1] = 255.0  # a bad image past the first FIRST_BATCHES batches of 4 is not read by the check
    assert len(x) // 4 > FIRST_BATCHES
    _read_all(_checked(x, y))
    x[4 * FIRST_BATCHES - 1] = 255.0  # inside the checked batches
    with pytest.raises(ValueError, match="has values in"):
        _read_all(_checked(x, y))


def test_checked_dataset_static_checks():
    x, y = _images()
    with pytest.raises(ValueError, match="the dataset is empty"):
        _checked(x, y).take(0) and checked_dataset(tf.data.Dataset.from_tensor_slices((x, y)).take(0).batch(4))
    with pytest.raises(ValueError, match="the dataset's labels must be integer class ids, got dtype string"):
        checked_dataset(tf.data.Dataset.from_tensor_slices((x, y.astype(str))).batch(4))
    with pytest.raises(ValueError, match="the dataset's x has 3 channels but the classifier takes 1"):
        checked_dataset(tf.data.Dataset.from_tensor_slices((np.repeat(x, 3, -1), y)).batch(4), (4, 4, 1))


def test_value_range_rule():
    x = np.full((2, 4, 4, 1), 1.0 + 0.5 * 0.01, "float32")  # inside the 1 % tolerance
    check_value_range(x)
    with pytest.raises(ValueError, match=r"x has values in \[1.02, 1.02\]"):
        check_value_range(x + 0.015)
    check_value_range(np.full((2, 5), 255.0))  # vectors (N, D) are features: not range-checked
    check_value_range(np.full((2, 4, 4, 1), 255.0), None)  # value_range=None: off
    check_value_range(np.ones((2, 4, 4, 1), "uint8"))  # integer images inside the range pass
    with pytest.raises(ValueError, match=r"x \(uint8\) has values in \[0, 255\].*uint8 pixels in 0..255\? divide them by 255"):
        check_value_range(np.array([0, 255], "uint8").reshape(2, 1, 1, 1))
    with pytest.raises(ValueError, match=r"b has values in \[255, 255\]"):
        check_fit_data(np.zeros((2, 4, 4, 1)), np.full((2, 4, 4, 1), 255.0), (4, 4, 1), value_range=(0, 1), pairs=True)


def test_input_check_errors_leaves_other_errors_alone():
    with pytest.raises(tf.errors.InvalidArgumentError, match="something else"):
        with input_check_errors():
            raise tf.errors.InvalidArgumentError(None, None, "something else")


@pytest.mark.parametrize("content, message", [
    (b"", r"is not a readable image: the file is empty"),
    (b"hello, not an image at all", r"is not a readable image: not a PNG, JPEG, GIF, BMP file \(it starts with b'hello, n'\)"),
    ("truncated png", r"is not a readable image: a truncated PNG file \(no end marker\)"),
    ("truncated jpeg", r"is not a readable image: a truncated JPEG file \(no end marker\)"),
])
def test_check_image_file_names_the_file(tmp_path, content, message):
    import keras

    path = tmp_path / "bad.png"
    if isinstance(content, str):
        ext = "png" if "png" in content else "jpg"
        good = tmp_path / f"good.{ext}"
        keras.utils.save_img(str(good), np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype("uint8"))
        check_image_file(str(good))  # whole: passes
        content = good.read_bytes()[: good.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\") + " " + message):
        check_image_file(str(path))
    with pytest.raises(FileNotFoundError, match="no image file"):
        check_image_file(str(tmp_path / "missing.png"))
