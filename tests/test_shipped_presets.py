"""Every preset in saved_models/ loads, verifies, and reproduces its recorded test metrics."""

import os

import numpy as np
import pytest
import tensorflow as tf

import keras_imbalance as ki
from keras_imbalance import presets

NAMES = presets.list_presets()


def test_presets_are_shipped():
    methods = {presets.metadata(n)["method"] for n in NAMES}
    assert {"gamo", "m2m", "polarity-gan", "imbalance-cyclegan"} <= methods, f"missing presets: shipped {sorted(methods)}"


@pytest.mark.parametrize("name", NAMES)
def test_preset_reproduces_its_recorded_metrics(name):
    meta = presets.metadata(name)
    split = meta["test_split"]
    assert split["loader"] == "keras_imbalance.datasets.load_digits"
    _, (x_test, y_test) = ki.datasets.load_digits(seed=split["seed"], test_per_class=split["test_per_class"])
    classes = split.get("classes")
    if classes:  # a binary preset: the listed digits, relabelled 0, 1, ... in that order
        keep = np.isin(y_test, classes)
        x_test, y_test = x_test[keep], np.array([classes.index(int(v)) for v in y_test[keep]])
    num_classes = len(meta["imbalance_profile"]["class_counts"])
    model = presets.load(name)
    report = ki.metrics.classification_report(y_test, model.predict(x_test, verbose=0), num_classes,
                                              class_counts=meta["imbalance_profile"]["class_counts"])
    for key in ("balanced_accuracy", "geometric_mean", "macro_f1"):
        assert abs(report[key] - meta["metrics"][key]) <= 0.01, (key, report[key], meta["metrics"][key])
    model_class = getattr(ki.models, meta["model_class"], None)
    if model_class is not None:
        assert isinstance(model_class.from_preset(name), model_class)
    # The model carries the range it was trained in, recorded in the metadata too.
    assert model.pixel_range == tuple(meta["pixel_range"]) == (0.0, 1.0)
    # The serving folder and the .keras model itself give the same classes on raw uint8 pixels.
    served = tf.saved_model.load(os.path.join(presets.default_root(), name, str(meta["serving_version"])))
    pixels = np.round(x_test[:20] * 255).astype(np.uint8)
    out = served.signatures["serving_default"](images=tf.constant(pixels))
    expected = np.asarray(model.predict(pixels.astype("float32") / 255.0, verbose=0)).argmax(1)
    np.testing.assert_array_equal(out["class_id"].numpy(), expected)
    np.testing.assert_array_equal(np.asarray(model.predict(pixels, verbose=0)).argmax(1), expected)


def test_preset_sizes_stay_small():
    for name in NAMES:
        folder = os.path.join(presets.default_root(), name)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
        assert size < 5 * 2**20, f"{name} is {size / 2**20:.1f} MiB"


def test_from_preset_checks_the_class(tmp_path):
    if not NAMES:
        pytest.skip("no presets")
    gamo = [n for n in NAMES if presets.metadata(n)["method"] == "gamo"]
    if gamo:
        with pytest.raises(presets.PresetError, match="not a M2m"):
            ki.models.M2m.from_preset(gamo[0])
