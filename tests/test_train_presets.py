"""saved_models/train_presets.py: a preset from a comparison carries that comparison's seeds and statistics."""

import json
import os

import numpy as np
import pytest

import keras_imbalance as ki
from keras_imbalance import statistics
from tests.fixtures import train_presets_script


@pytest.fixture()
def train_presets(monkeypatch):
    module = train_presets_script()
    # A comparison small enough for the default suite: digits, 1 epoch, 2 seeds, two re-weighting baselines.
    monkeypatch.setattr(module, "COMPARISONS", {"tiny": {
        "dataset": "digits", "profile": "exp", "imbalance_ratio": 10.0, "test_per_class": 50, "seeds": 2,
        "epochs": 1, "batch_size": 32, "methods": ("erm", "rw", "drw")}})
    monkeypatch.setattr(module, "REWEIGHTING", ("rw", "drw"))
    return module


def test_a_preset_is_seed_0_of_its_comparison_with_its_interval(train_presets, tmp_path):
    root, runs = str(tmp_path / "presets"), str(tmp_path / "runs")
    os.makedirs(root)
    train_presets.train_from_comparison("best-tiny", "tiny", train_presets.BEST_REWEIGHTING, "best of rw, drw",
                                        root=root, runs_root=runs)
    results = json.load(open(os.path.join(runs, "tiny", "results.json")))
    meta = ki.presets.metadata("best-tiny", root)
    means = {m: results["summary"][m]["balanced_accuracy"]["mean"] for m in ("rw", "drw")}
    assert meta["chosen_among"] == means and meta["method"] == max(means, key=means.get)
    values = [r["report"]["balanced_accuracy"] for r in results["runs"][meta["method"]]]
    across = meta["across_seeds"]["balanced_accuracy"]
    assert across["values"] == values and meta["across_seeds"]["seeds"] == [0, 1]
    expected = statistics.mean_interval(values)
    assert (across["ci_low"], across["ci_high"]) == (pytest.approx(expected["ci_low"]), pytest.approx(expected["ci_high"]))
    # The saved model is seed 0's, and `presets.test_split` rebuilds the split it was scored on.
    x_test, y_test = ki.presets.test_split("best-tiny", root)
    model = ki.presets.load("best-tiny", root)
    report = ki.metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10,
                                              class_counts=meta["imbalance_profile"]["class_counts"])
    assert report["balanced_accuracy"] == pytest.approx(values[0], abs=1e-9) == meta["metrics"]["balanced_accuracy"]
    assert [row["reference"] for row in meta["paired_differences"]] == ["erm"]
    assert meta["comparison_command"] == ("keras-imbalance compare --dataset digits --profile exp --imbalance-ratio 10.0 "
                                          "--test-per-class 50 --seeds 2 --epochs 1 --batch-size 32 --methods erm,rw,drw "
                                          "--save-models --out runs/presets/tiny")
    assert meta["size_bytes"] == train_presets.model_files_size(os.path.join(root, "best-tiny")) > 0
    # A second preset from the same comparison reuses its runs; an existing preset is never overwritten.
    train_presets.train_from_comparison("erm-tiny", "tiny", "erm", "erm", root=root, runs_root=runs)
    assert ki.presets.metadata("erm-tiny", root)["metrics"]["balanced_accuracy"] == results["runs"]["erm"][0]["report"][
        "balanced_accuracy"]
    with pytest.raises(FileExistsError, match="already exists"):
        train_presets.train_from_comparison("erm-tiny", "tiny", "erm", "erm", root=root, runs_root=runs)
    assert np.array_equal(ki.presets.test_split("erm-tiny", root)[1], y_test)
    table = train_presets.markdown_table(root).splitlines()
    best_row = next(line for line in table if line.startswith("| `best-tiny` |"))
    d = meta["paired_differences"][0]["balanced_accuracy"]
    assert f"vs erm: {d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], not shown (2 seeds < 5)" in best_row
    assert "(reference)" in next(line for line in table if line.startswith("| `erm-tiny` |"))


def test_test_split_refuses_an_unknown_loader(tmp_path, train_presets):
    folder = tmp_path / "odd"
    folder.mkdir()
    ki.presets.write_manifest(str(folder), {"name": "odd", "test_split": {"loader": "os.system", "seed": 0,
                                                                         "test_per_class": 1}})
    with pytest.raises(ki.presets.PresetError, match="test split loader 'os.system'"):
        ki.presets.test_split("odd", str(tmp_path))
