"""Smoke test of `benchmarks/vs_pytorch.py --quick` (Keras vs PyTorch train steps, issue 21).

Runs only where PyTorch is installed (`pip install -e .[bench]`): torch is
never a dependency of the package or of `make test`, so CI and the default
suite skip this file. The quick mode builds every step in both frameworks
(ResNet-8, batch 8, 16x16 images, T = 2), checks their equal parameter
counts, times two steps of each and prints the table.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "vs_pytorch.py")


def test_quick_mode_times_every_step_in_both_frameworks():
    out = subprocess.run([sys.executable, SCRIPT, "--quick"], capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "parameters (equal in both)" in out.stdout
    for step in ("erm", "m2m-all", "m2m-candidates", "cyclegan"):
        row = [line for line in out.stdout.splitlines() if line.startswith(f"| {step} |")]
        assert row, f"no summary row for {step}:\n{out.stdout}"
        ratio = float(row[0].split("|")[-2])
        assert ratio > 0
    assert "CycleGAN count" in out.stdout


def test_profile_mode_shows_where_each_framework_spends_its_time():
    out = subprocess.run([sys.executable, SCRIPT, "--quick", "--steps", "erm,cyclegan", "--profile", "2", "--top", "5"],
                         capture_output=True, text=True, timeout=900, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-3000:]
    for step in ("erm", "cyclegan"):
        assert f"## {step}: 2 profiled steps per framework" in out.stdout
    # Both frameworks spend most of a convolutional step in convolutions.
    rows = [line for line in out.stdout.splitlines() if line.startswith("| convolution")]
    assert len(rows) == 2, out.stdout
    for row in rows:
        keras_ms, torch_ms = (float(v) for v in row.split("|")[2:4])
        assert keras_ms > 0 and torch_ms > 0
    assert out.stdout.count("| all ops |") == 2
