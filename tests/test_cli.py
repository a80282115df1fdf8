"""`keras_imbalance.cli`, the commands: compare, fit, export, predict, presets; failures while running (exit code 1);
no TensorFlow log line in a command's output."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_imbalance import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A TensorFlow / absl log line ("I0000 00:00:17...  123 port.cc:153] ...", "2026-01-01 ...: E tensorflow/...] ...").
TF_LINE = re.compile(r"^\S+ \S+: [IWEF] |^[IWEF]\d{4} |cuInit|oneDNN|absl::InitializeLog", re.MULTILINE)


def exit_code(argv):
    """`cli.main(argv)`'s exit code: its return value, or argparse's SystemExit."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def _save_images(folder, values):
    paths = []
    for i, v in enumerate(values):
        path = str(folder / f"digit{i}.png")
        keras.utils.save_img(path, np.full((8, 8, 1), v, "uint8"))
        paths.append(path)
    return paths


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
    assert exit_code(["export", str(run), "--to", str(tmp_path / "served"), "--version", "2"]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err

    images = _save_images(tmp_path, [0, 40])
    capsys.readouterr()
    assert cli.main(["predict", str(run / "model.keras"), *images]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "class " in lines[0] and len(lines[0].split("probabilities")[1].split()) == 10

    # A file that is not an image: a failure while running, exit code 1, one line naming the file.
    (tmp_path / "notes.png").write_text("not an image")
    assert cli.main(["predict", str(run / "model.keras"), images[0], str(tmp_path / "notes.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"keras-imbalance predict: error: {tmp_path / 'notes.png'} is not a readable image")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# (argv with {tmp} for a fresh folder, the message after "keras-imbalance <command>: error: ", exit code)
RUNTIME_ERRORS = [
    (["export", "{tmp}/broken.keras", "--to", "{tmp}/served"], "{tmp}/broken.keras does not load as a Keras model", 1),
    (["predict", "{tmp}/broken.keras", "{tmp}/digit0.png"], "{tmp}/broken.keras does not load as a Keras model", 1),
    (["compare", "--methods", "erm,imbalance-cyclegan", "--epochs", "1", "--out", "{tmp}/cmp"], "binary", 1),
    (["fit", "erm", "--n-max", "100000", "--out", "{tmp}/fit"], "fewer pool samples than the profile asks", 1),
    (["compare", "--dataset", "mnist", "--data-path", "{tmp}/broken.keras", "--out", "{tmp}/cmp"], "{tmp}/broken.keras", 1),
    # Arguments only the library can check are still usage errors.
    (["presets", "show", "no-such-preset"], "argument NAME: unknown preset 'no-such-preset'", 2),
    (["predict", "no-such-preset", "{tmp}/digit0.png"], "argument MODEL: no file or preset named 'no-such-preset'", 2),
]


@pytest.mark.parametrize("argv,message,code", RUNTIME_ERRORS, ids=[" ".join(a[:2]) for a, _, _ in RUNTIME_ERRORS])
def test_failures_while_running(tmp_path, capsys, argv, message, code):
    (tmp_path / "broken.keras").write_bytes(b"PK not a zip archive")
    _save_images(tmp_path, [0])
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert exit_code(argv) == code
    err = capsys.readouterr().err.replace(str(tmp_path), "{tmp}")
    assert f"keras-imbalance {argv[0]}: error: " in err and message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "served").exists() and not (tmp_path / "fit").exists()


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"junk")
    with pytest.raises(Exception, match="does not load as a Keras model"):
        cli.main(["export", str(tmp_path / "broken.keras"), "--to", str(tmp_path / "s"), "--debug"])


def test_presets_list(capsys):
    from keras_imbalance import presets

    assert cli.main(["presets", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert sorted(lines) == presets.list_presets()
    for name, line in lines.items():
        meta = presets.metadata(name)
        assert f"balanced accuracy {meta['metrics']['balanced_accuracy']:.4f}" in line
        if "across_seeds" in meta:  # the 28x28 presets: the mean and 95 % interval over the comparison's seeds
            across = meta["across_seeds"]["balanced_accuracy"]
            assert f"({across['n']} seeds: {across['mean']:.4f} [{across['ci_low']:.4f}, " in line


def _command(*argv):
    """`keras-imbalance ARGV` in a fresh process, as the console script runs it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # conftest sets it; a user has not
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "keras_imbalance_cli", *argv], env=env, capture_output=True, text=True,
                          timeout=600)


def _assert_no_tf_lines(result):
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert not TF_LINE.search(stream), stream


def test_tensorflow_logging_is_quiet_unless_asked(monkeypatch):
    # Before the command imports TensorFlow; a user's own TF_CPP_MIN_LOG_LEVEL is kept.
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    assert cli.main(["presets", "list", "--tf-log"]) == 0 and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert cli.main(["presets", "list"]) == 0 and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert cli.main(["presets", "list"]) == 0 and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


@pytest.mark.slow
def test_a_command_prints_no_tensorflow_log_line():
    # `presets list` imports the package and TensorFlow, whose start-up writes oneDNN / cudart lines to stderr.
    _assert_no_tf_lines(_command("presets", "list"))
    shown = _command("presets", "list", "--tf-log")
    assert shown.returncode == 0 and TF_LINE.search(shown.stderr), shown.stderr


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = _command("fit", "erm", "--epochs", "1", "--out", str(out), "--verbose", "0")
    return out, result


@pytest.mark.slow
def test_fit_compare_export_predict_print_no_tensorflow_log_line(fitted, tmp_path):
    run, fit = fitted
    _assert_no_tf_lines(fit)
    _assert_no_tf_lines(_command("compare", "--methods", "erm", "--seeds", "1", "--epochs", "1", "--verbose", "0",
                                 "--no-plots", "--out", str(tmp_path / "cmp")))
    _assert_no_tf_lines(_command("export", str(run), "--to", str(tmp_path / "served")))
    _assert_no_tf_lines(_command("predict", str(run / "model.keras"), *_save_images(tmp_path, [0, 90])))
    # A failure while running, as the console script runs it: exit code 1, one line, no traceback.
    (tmp_path / "broken.keras").write_bytes(b"junk")
    failed = _command("export", str(tmp_path / "broken.keras"), "--to", str(tmp_path / "s"))
    assert failed.returncode == 1 and failed.stderr.startswith("keras-imbalance export: error: "), failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


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
    # (a failure while running: exit code 1)
    assert cli.main(["compare", "--methods", "erm", "--out", str(tmp_path / "cmp"), *flags]) == 1
    assert cli.main(["fit", "erm", "--out", str(tmp_path / "run"), *flags]) == 1
    assert "stopped by the test" in capsys.readouterr().err
    assert seen["compare"]["mixed_precision"] and seen["compare"]["jit_compile"]
    assert seen["compare"]["tensorboard"] == str(tmp_path / "tb")
    assert seen["fit"]["mixed_precision"] and seen["fit"]["jit_compile"]
    assert [type(c).__name__ for c in seen["fit"]["callbacks"]] == ["TensorBoard", "BalancerTensorBoard"]
    # Off by default.
    args = cli.build_parser().parse_args(["compare"])
    assert (args.mixed_precision, args.jit_compile, args.tensorboard) == (False, False, None)
