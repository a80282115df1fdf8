"""`keras_imbalance_cli`: help without TensorFlow, every option documented, names in step with the registries,
usage errors (exit code 2) before anything runs, TensorFlow's stderr lines filtered."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import pytest

import keras_imbalance_cli as cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _python(code, **kwargs):
    return subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120, **kwargs)


def _subparsers(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_parser_and_usage_errors_do_not_import_tensorflow(tmp_path):
    out = tmp_path / "never"
    result = _python(
        "import sys, keras_imbalance_cli as k\n"
        "k.build_parser().format_help()\n"
        f"try:\n    k.main(['fit', 'gamo', '--epochs', '0', '--out', {str(out)!r}])\n"
        "except SystemExit as e:\n    assert e.code == 2, e.code\n"
        "assert 'tensorflow' not in sys.modules and 'keras_imbalance' not in sys.modules, 'imported'\n")
    assert result.returncode == 0, result.stderr
    assert "keras-imbalance fit: error: argument --epochs: must be >= 1, got 0" in result.stderr
    assert not out.exists()


def test_help_answers_within_a_second():
    # The median of 5 `--help` runs; a bound of 1 s with room for a loaded machine (about 0.2 s measured).
    def once(*args):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "keras_imbalance_cli", *args, "--help"], env=ENV,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage: keras-imbalance" in result.stdout, result.stderr
        return time.perf_counter() - start

    assert statistics.median(once() for _ in range(5)) < 1.0
    assert once("compare") < 2.0


def test_every_option_has_help_and_shows_its_default():
    parser = cli.build_parser()
    for name, sub in _subparsers(parser).items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            text = formatter._expand_help(action)
            if action.option_strings and not action.required:
                assert "default" in text, f"{name} {action.option_strings[0]} does not show its default: {text}"


def test_help_lists_methods_baselines_and_data_sets_one_line_each():
    parser = cli.build_parser()
    texts = {"": parser.format_help(), **{n: _subparsers(parser)[n].format_help() for n in ("compare", "fit")}}
    for name, text in texts.items():
        lines = text.splitlines()
        for entry in [*cli.BASELINES, *cli.METHODS, *cli.DATASETS]:
            assert sum(re.match(rf"  {re.escape(entry)}  +\S", line) is not None for line in lines) == 1, (name, entry)


def test_names_equal_the_registries():
    from keras_imbalance import baselines
    from keras_imbalance import compare
    from keras_imbalance import datasets
    from keras_imbalance import recipes  # noqa: F401  (registers the methods)

    assert list(cli.BASELINES) == baselines.registered_names("baseline")
    assert list(cli.METHODS) == baselines.registered_names("method")
    assert tuple(cli.DATASETS) == compare.DATASETS
    assert tuple(cli.BACKBONES) == compare.BACKBONES
    assert cli.PAPER_PROFILES == tuple(datasets.PAPER_PROFILES)
    assert set(cli.DEMO_METHODS) <= set(cli.BASELINES) | set(cli.METHODS)


def exit_code(argv):
    """`cli.main(argv)`'s exit code: its return value, or argparse's SystemExit."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


# (argv with {tmp} for a fresh folder, the message after "keras-imbalance <command>: error: ")
USAGE_ERRORS = [
    (["fit", "gamo", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["fit", "erm", "--epochs", "1.5"], "argument --epochs: '1.5' is not an integer"),
    (["fit", "m2m", "--batch-size", "-4"], "argument --batch-size: must be >= 1, got -4"),
    (["fit", "erm", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["fit", "nosuch"], "argument METHOD: unknown method 'nosuch'; known: erm"),
    (["fit", "erm", "--dataset", "imagenet"], "argument --dataset: unknown data set 'imagenet'"),
    (["fit", "erm", "--backbone", "vgg"], "argument --backbone: invalid choice: 'vgg'"),
    (["fit", "erm", "--image-size", "8", "8"], "argument --image-size: only for an image folder, not for digits"),
    (["fit", "erm", "--dataset", "{tmp}"], "argument --image-size: the image folder"),
    (["compare", "--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
    (["compare", "--n-max", "0"], "argument --n-max: must be >= 1, got 0"),
    (["compare", "--test-per-class", "0"], "argument --test-per-class: must be >= 1, got 0"),
    (["compare", "--imbalance-ratio", "0.5"], "argument --imbalance-ratio: must be >= 1 (largest / smallest"),
    (["compare", "--imbalance-ratio", "nan"], "argument --imbalance-ratio: 'nan' is not a finite number"),
    (["compare", "--profile", "zipf"], "argument --profile: invalid choice: 'zipf'"),
    (["compare", "--methods", "erm,bogus"], "argument --methods: unknown method 'bogus'"),
    (["compare", "--methods", " , "], "argument --methods: no method given"),
    (["compare", "--methods", "erm,gamo[loss=x,latent_dim=[1,2]],bogus[a=1]"], "argument --methods: unknown method 'bogus'"),
    (["compare", "--methods", "erm,m2m[gamma=0.5"], "argument --methods: unbalanced brackets in 'erm,m2m[gamma=0.5'"),
    (["compare", "--dataset", "mnist", "--data-path", "{tmp}/none.npz"], "argument --data-path: no such file or folder"),
    (["compare", "--data-path", "{tmp}"], "argument --data-path: only for mnist"),
    (["compare", "--paper-settings", "--classifier-optimizer", "adam"], "argument --paper-settings"),
    (["compare", "--verbose", "3"], "argument --verbose: invalid choice: 3"),
    (["demo", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["demo", "--seeds", "-1"], "argument --seeds: must be >= 1, got -1"),
    (["export", "{tmp}/missing", "--to", "{tmp}/s"], "argument RUN_DIR: no such file or folder: {tmp}/missing"),
    (["export", "{tmp}", "--to", "{tmp}/s"], "argument RUN_DIR: no model.keras in"),
    (["export", "{tmp}/m.keras", "--to", "{tmp}/s", "--version", "0"], "argument --version: must be >= 1, got 0"),
    (["export", "{tmp}/m.keras", "--to", "{tmp}/s", "--value-range", "1", "0"], "argument --value-range: LOW must be < HIGH"),
    (["export", "{tmp}/m.keras", "--to", "{tmp}"], "argument --to: {tmp}/1 already exists; pass --overwrite"),
    (["predict", "{tmp}/m.keras", "{tmp}/none.png"], "argument IMAGE: no such image file"),
    (["presets", "show"], "argument NAME: `presets show` needs a preset NAME"),
    (["presets", "remove"], "argument action: invalid choice: 'remove'"),
]


@pytest.mark.parametrize("argv,message", USAGE_ERRORS, ids=[" ".join(a[:3]) for a, _ in USAGE_ERRORS])
def test_usage_errors_exit_2_before_anything_runs(tmp_path, capsys, monkeypatch, argv, message):
    (tmp_path / "m.keras").write_bytes(b"not a model")  # the checks only look at the name
    (tmp_path / "1").mkdir()  # an existing version folder for `export --to {tmp}`
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] in ("fit", "compare", "demo"):
        argv += ["--out", str(tmp_path / "out")]
    ran = []
    monkeypatch.setattr("keras_imbalance.cli.run", lambda args: ran.append(args) or 0)
    assert exit_code(argv) == 2
    err = capsys.readouterr().err.replace(str(tmp_path), "{tmp}")
    assert f"keras-imbalance {argv[0]}: error: {message}" in err, err
    assert not ran and not (tmp_path / "out").exists()


def test_methods_with_recipe_options_pass_the_name_check():
    assert cli._method_names(" ERM, erm[epoch_multiplier=2], m2m[gamma=0.5,lam=1] ") == ["erm", "erm", "m2m"]


def test_stderr_filter_drops_tensorflow_lines_only():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796074506.626581   32318 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796074606.297864    1968 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
        "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers",
        "keras-imbalance fit: error: kept",
        "a last line without a newline",
    ]
    code = ("import os, sys, keras_imbalance_cli as k\n"
            "f = k._StderrFilter()\n"
            f"os.write(2, {chr(10).join(lines).encode()!r})\n"
            "print('from python', file=sys.stderr)\n"
            "f.close()\n"
            "print('after close', file=sys.stderr)\n")
    result = _python(code)
    assert result.returncode == 0
    assert result.stderr == "keras-imbalance fit: error: kept\na last line without a newlinefrom python\nafter close\n"


def test_classes_option_takes_two_or_more_different_ids():
    parser = cli.build_parser()
    assert parser.parse_args(["compare", "--classes", "3,8"]).classes == [3, 8]
    assert parser.parse_args(["fit", "erm", "--out", "o", "--classes", "1, 4,7"]).classes == [1, 4, 7]
    for bad in ("3", "3,3", "3,-1", "a,b"):
        with pytest.raises(SystemExit):
            parser.parse_args(["compare", "--classes", bad])
