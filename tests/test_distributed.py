"""tf.distribute: each method model on 2 mirrored logical CPUs equals one device; 2-worker runs equal one process.

Logical devices must be configured before TensorFlow initializes its
devices, so the training runs in fresh subprocesses (tests/scripts/*.py);
the rest of the suite keeps its single CPU device.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
FAST = ("gamo_pixel", "gamo_feature", "m2m")  # the methods: default suite, one process
SLOW = ("gamo_bounded", "gamo2pix")  # GAMO with max_bank_size, the GAMO2Pix VAEs: `-m slow`
GAN_FAST = ("icg_aug", "polarity")  # added to the default process
GAN_SLOW = ("cyclegan", "icg_alt")  # the CycleGAN game: `-m slow`
# Max |w_1 - w_2| allowed; the CycleGAN's pools hold generator outputs in [-1, 1]
# (measured 1.7e-5 / 3.3e-6, see docs/distributed.md).
WEIGHT_TOL = {"cyclegan": 1e-4, "icg_alt": 3e-5}


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **extra)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _mirrored(methods):
    proc = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "mirrored.py"), *methods],
        capture_output=True, text=True, timeout=600, env=_env(), cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {row["method"]: row for row in rows}


@pytest.fixture(scope="module")
def mirrored_results():
    # One process for the three methods: TF start-up and the strategy are shared.
    return _mirrored(FAST + GAN_FAST)


def _check(row, method):
    assert row["replicas"] == 2
    # Training moved the weights (2 epochs x 5 steps, SGD 0.05) ...
    assert row["max_weight_change"] > 0.05
    # ... and the 2-replica run lands on the same weights and optimizer state
    # up to float rounding (measured <= 3e-6; unscaled gradients, per-replica
    # random draws or per-replica BN statistics give differences of 1e-2..1).
    assert row["max_weight_diff"] < WEIGHT_TOL.get(method, 2e-5)
    assert row["max_optimizer_diff"] < 1e-6
    # Logged per-player losses are the global-batch means, as on one device.
    assert row["logs_one"].keys() == row["logs_two"].keys()
    for key, values in row["logs_one"].items():
        np.testing.assert_allclose(row["logs_two"][key], values, rtol=1e-5, atol=1e-7, err_msg=key)
    if method.startswith("m2m"):
        assert min(row["logs_one"]["acceptance_rate"]) > 0  # translations really entered the batches


@pytest.mark.parametrize("method", FAST + GAN_FAST)
def test_mirrored_two_devices_match_one_device(mirrored_results, method):
    _check(mirrored_results[method], method)


@pytest.mark.slow
def test_mirrored_two_devices_match_one_device_bounded_gamo_and_gamo2pix():
    rows = _mirrored(SLOW)
    for method in SLOW:
        _check(rows[method], method)


@pytest.mark.slow
def test_mirrored_two_devices_match_one_device_m2m_candidates_only():
    # M2m(translated_positions="candidates"): each replica translates its own,
    # data-dependent number of rows (slow: ~5 s more than the default process).
    _check(_mirrored(("m2m_compact",))["m2m_compact"], "m2m_compact")


@pytest.mark.slow
def test_mirrored_two_devices_match_one_device_cyclegan_and_alt_mode():
    rows = _mirrored(GAN_SLOW)
    for method in GAN_SLOW:
        _check(rows[method], method)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, env):
    return subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "multi_worker.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _finish(procs, timeout):
    errors = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        errors.append(err)
    for proc, err in zip(procs, errors):
        assert proc.returncode == 0, err[-4000:]


def _multi_worker(method, tmp_path):
    """Two workers on localhost, then the single-process reference from worker 0's start weights."""
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    outs = [str(tmp_path / f"worker{index}.npz") for index in range(2)]
    _finish([  # both workers run at once: they wait for each other at start-up and at every step
        _start([method, out], _env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})))
        for i, out in enumerate(outs)
    ], timeout=300)
    reference = str(tmp_path / "reference.npz")
    _finish([_start([method, reference, "--reference", outs[0]], _env())], timeout=300)
    return [np.load(out) for out in (*outs, reference)]


def _prefixed(npz, prefix):
    return {k: npz[k] for k in npz.files if k.startswith(prefix)}


def _max_diff(a, b):
    assert a and sorted(a) == sorted(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gamo_pixel", "m2m", "icg_aug", "icg_alt", "polarity"])
def test_two_worker_multi_worker_mirrored_strategy_on_localhost(method, tmp_path):
    a, b, reference = _multi_worker(method, tmp_path)
    assert int(a["replicas"]) == int(b["replicas"]) == 2 and int(reference["replicas"]) == 1
    # The two workers hold bit-identical weights (every player, pools, banks),
    # optimizer variables (step counters included) and seed state ...
    for prefix in ("w/", "opt/", "seed_state"):
        assert _max_diff(_prefixed(a, prefix), _prefixed(b, prefix)) == 0.0, prefix
    logs_a, logs_b = json.loads(str(a["logs"])), json.loads(str(b["logs"]))
    assert logs_a == logs_b
    assert all(np.isfinite(v).all() for v in logs_a.values())
    # ... and match one process on the same global batches, with the mirrored
    # comparison's tolerances (each worker really trained on its half).
    _check({
        "replicas": int(a["replicas"]),
        "max_weight_change": float(reference["max_weight_change"]),
        "max_weight_diff": _max_diff(_prefixed(a, "w/"), _prefixed(reference, "w/")),
        "max_optimizer_diff": _max_diff(_prefixed(a, "opt/"), _prefixed(reference, "opt/")),
        "logs_one": json.loads(str(reference["logs"])),
        "logs_two": logs_a,
    }, method)
    np.testing.assert_array_equal(a["seed_state"], reference["seed_state"])
