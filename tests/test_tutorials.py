"""Every tutorial in docs/tutorials runs in its fast mode, and its rendered .md is current."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "docs", "tutorials", "*.py")))


@pytest.mark.parametrize("path", TUTORIALS, ids=[os.path.basename(p)[:-3] for p in TUTORIALS])
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
