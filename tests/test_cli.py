"""The `keras-imbalance` command: compare, fit, export, predict, presets, errors."""

import json
import os

import keras
import numpy as np

from keras_imbalance import cli


def test_compare_fit_export_predict(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--methods", "erm,rw", "--seeds", "1", "--epochs", "1", "--out", str(out), "--verbose", "0"]) == 0
    text = capsys.readouterr().out
    assert "(1/2) erm seed 0: training" in text and "| rw |" in text and (out / "report.md").exists()

    run = tmp_path / "run"
    assert cli.main(["fit", "rw", "--epochs", "1", "--out", str(run), "--verbose", "0"]) == 0
    meta = json.load(open(run / "run.json"))
    assert meta["method"] == "rw" and "balanced_accuracy" in meta["report"]
    # `fit` and `compare` train and score a run by the same function: same seed, same report.
    assert meta["report"] == json.load(open(out / "runs" / "rw" / "seed_0.json"))["report"]
    assert (run / "model.keras").exists() and (run / "serving" / "1" / "saved_model.pb").exists()

    assert cli.main(["export", str(run), "--to", str(tmp_path / "served"), "--version", "2"]) == 0
    assert (tmp_path / "served" / "2" / "saved_model.pb").exists()
    assert cli.main(["export", str(run), "--to", str(tmp_path / "served"), "--version", "2"]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err

    images = []
    for i in range(2):
        path = str(tmp_path / f"digit{i}.png")
        keras.utils.save_img(path, np.full((8, 8, 1), 40 * i, "uint8"))
        images.append(path)
    capsys.readouterr()
    assert cli.main(["predict", str(run / "model.keras"), *images]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "class " in lines[0] and len(lines[0].split("probabilities")[1].split()) == 10


def test_errors_are_clear(tmp_path, capsys):
    assert cli.main(["compare", "--methods", "erm,bogus", "--out", str(tmp_path)]) == 2
    assert "unknown method 'bogus'" in capsys.readouterr().err
    assert cli.main(["compare", "--dataset", "mnist", "--data-path", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    assert "none.npz" in capsys.readouterr().err
    assert cli.main(["compare", "--methods", "erm,imbalance-cyclegan", "--out", str(tmp_path)]) == 2
    assert "binary" in capsys.readouterr().err  # 10-class digits with the binary method
    assert cli.main(["presets", "show", "no-such-preset"]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_presets_list(capsys):
    assert cli.main(["presets", "list"]) == 0


def test_gpu_and_tensorboard_options_reach_compare_and_fit(tmp_path, monkeypatch, capsys):
    from keras_imbalance import compare

    seen = {}

    def record(name):
        def fake(*args, **kwargs):
            seen[name] = kwargs
            raise ValueError("stopped by the test")
        return fake

    monkeypatch.setattr(compare, "run_compare", record("compare"))
    monkeypatch.setattr(compare, "train_and_score", record("fit"))
    flags = ["--mixed-precision", "--jit-compile", "--tensorboard", str(tmp_path / "tb")]
    assert cli.main(["compare", "--methods", "erm", "--out", str(tmp_path / "cmp"), *flags]) == 2
    assert cli.main(["fit", "erm", "--out", str(tmp_path / "run"), *flags]) == 2
    assert "stopped by the test" in capsys.readouterr().err
    assert seen["compare"]["mixed_precision"] and seen["compare"]["jit_compile"]
    assert seen["compare"]["tensorboard"] == str(tmp_path / "tb")
    assert seen["fit"]["mixed_precision"] and seen["fit"]["jit_compile"]
    assert [type(c).__name__ for c in seen["fit"]["callbacks"]] == ["TensorBoard", "BalancerTensorBoard"]
    # Off by default.
    args = cli.build_parser().parse_args(["compare"])
    assert (args.mixed_precision, args.jit_compile, args.tensorboard) == (False, False, None)
