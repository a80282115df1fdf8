"""Every tutorial in docs/tutorials runs in its fast mode, and its rendered .md is current."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "docs", "tutorials", "*.py")))
# The two longest (a comparison of several methods; a CycleGAN stage then the classifier): `make test-slow` runs them,
# the default suite the others, which use the same models' fit, save and export paths.
SLOW_TUTORIALS = ("choosing_a_method", "imbalance_cyclegan")


def _tutorial_param(path):
    name = os.path.basename(path)[:-3]
    return pytest.param(path, id=name, marks=[pytest.mark.slow] if name in SLOW_TUTORIALS else [])


@pytest.mark.parametrize("path", [_tutorial_param(p) for p in TUTORIALS])
def test_tutorial_runs_in_fast_mode(path, tmp_path):
    env = {
        **os.environ,
        "KERAS_IMBALANCE_TUTORIAL_FAST": "1",
        "KERAS_IMBALANCE_TUTORIAL_OUT": str(tmp_path / "images"),
        "KERAS_IMBALANCE_TUTORIAL_RUNS": str(tmp_path / "runs"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": ROOT,
    }
    done = subprocess.run([sys.executable, path], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def test_rendered_markdown_is_current():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "docs", "render_tutorials.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
