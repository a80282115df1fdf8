"""Determinism and fault tolerance: same seed -> bit-identical weights in fresh processes; SIGKILL + BackupAndRestore resume.

The training runs in subprocesses (tests/scripts/resume.py): determinism
needs fresh processes, and a real kill needs a process to kill.
"""

import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from keras_imbalance.reproducibility import EpochSeededDataset, set_seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "scripts", "resume.py")
METHODS = ("gamo_pixel", "m2m")


def _run(workdir, *extra, methods=METHODS):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    return subprocess.run([sys.executable, SCRIPT, str(workdir), *methods, *extra],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    # Two uninterrupted runs, each in a fresh process (the second of GAMO only:
    # the determinism test is about one method; M2m's is covered by A vs C).
    for name, methods in (("A", METHODS), ("B", ("gamo_pixel",))):
        proc = _run(root / name, methods=methods)
        assert proc.returncode == 0, proc.stderr[-4000:]
    # Killed with SIGKILL mid-epoch once per method, rerun until it completes.
    codes = []
    for _ in range(len(METHODS) + 1):
        proc = _run(root / "C", "--kill")
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    out["kill_codes"] = codes
    out["stderr"] = proc.stderr
    for name in ("A", "B", "C"):
        out[name] = {m: dict(np.load(root / name / m / "final.npz")) for m in METHODS if (root / name / m / "final.npz").exists()}
    out["epochs"] = {m: (root / "C" / m / "epochs.log").read_text().split("\n") for m in METHODS}
    return out


@pytest.mark.parametrize("method", ["gamo_pixel"])
def test_same_seed_in_two_fresh_processes_gives_bit_identical_weights(runs, method):
    a, b = runs["A"][method], runs["B"][method]
    assert a.keys() == b.keys() and any(k.startswith("opt/") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("method", METHODS)
def test_sigkilled_run_resumes_with_backup_and_restore_to_the_same_weights(runs, method):
    assert runs["kill_codes"] == [-9, -9, 0], runs["stderr"][-3000:]  # SIGKILL once per method, then done
    # The resumed process really resumed: it began at the killed epoch 1, not at 0.
    per_process = OrderedDict()
    for line in filter(None, runs["epochs"][method]):
        pid, epoch = line.split()
        per_process.setdefault(pid, []).append(int(epoch))
    assert list(per_process.values()) == [[0, 1], [1, 2]]
    a, c = runs["A"][method], runs["C"][method]
    assert a.keys() == c.keys()
    # Weights of every player, every player's optimizer slots and iterations,
    # and the seed-generator state: bit-identical to the uninterrupted run.
    for key in a:
        np.testing.assert_array_equal(c[key], a[key], err_msg=key)


def test_epoch_seeded_dataset_order_depends_only_on_seed_and_epoch():
    x = np.arange(20, dtype="float32").reshape(20, 1)
    y = np.array([0] * 15 + [1] * 5)
    data = EpochSeededDataset(x, y, batch_size=4, seed=3)
    orders = [data.epoch_indices(e) for e in range(3)]
    assert all(sorted(o.tolist()) == list(range(20)) for o in orders)  # each epoch a permutation
    assert not np.array_equal(orders[0], orders[1])
    # A fresh object (a resumed process) reproduces epoch 2 without iterating 0 and 1.
    np.testing.assert_array_equal(EpochSeededDataset(x, y, batch_size=4, seed=3).epoch_indices(2), orders[2])
    # The dataset reads the epoch set by the callback hook.
    data.on_epoch_begin(2)
    seen = np.concatenate([xb.numpy()[:, 0] for xb, _ in data.dataset()]).astype(int)
    np.testing.assert_array_equal(seen, orders[2])
    # Balanced: classes drawn uniformly (class-aware sampling), samples of the right class.
    bal = EpochSeededDataset(x, y, batch_size=4, seed=0, balanced=True)
    idx = np.concatenate([bal.epoch_indices(e) for e in range(200)])
    share = (y[idx] == 1).mean()
    assert abs(share - 0.5) < 0.02  # 4000 draws: sd 0.008
    assert set(idx[y[idx] == 1]) == set(range(15, 20))


def test_set_seed_validates_its_argument():
    with pytest.raises(ValueError, match="seed must be an integer"):
        set_seed(-1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        set_seed(1.5)


# CycleGAN, ImbalanceCycleGAN (AUG, ALT) and PolarityGAN -------------------------------
# The real kills take a TF start-up per process (CycleGAN 35 s, the other three
# 90 s): `-m slow`. The default suite checks the two pieces they rely on in-process.
GAN_FAST = ("cyclegan",)
GAN_SLOW = ("icg_aug", "icg_alt", "polarity")


def _kill_and_resume(root, methods):
    proc = _run(root / "A", methods=methods)
    assert proc.returncode == 0, proc.stderr[-4000:]
    codes = []
    for _ in range(len(methods) + 1):
        proc = _run(root / "C", "--kill", methods=methods)
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    assert codes == [-9] * len(methods) + [0], proc.stderr[-3000:]
    for method in methods:
        starts = OrderedDict()
        for line in filter(None, (root / "C" / method / "epochs.log").read_text().split("\n")):
            pid, epoch = line.split()
            starts.setdefault(pid, []).append(int(epoch))
        assert list(starts.values()) == [[0, 1], [1, 2]], method  # the rerun began at the killed epoch
        a = dict(np.load(root / "A" / method / "final.npz"))
        c = dict(np.load(root / "C" / method / "final.npz"))
        assert a.keys() == c.keys() and any(k.startswith("opt/") for k in a)
        for key in a:
            np.testing.assert_array_equal(c[key], a[key], err_msg=f"{method} {key}")


@pytest.mark.slow
def test_sigkilled_cyclegan_resumes_bit_identical(tmp_path):
    _kill_and_resume(tmp_path, GAN_FAST)


@pytest.mark.slow
def test_sigkilled_imbalance_cyclegan_and_polarity_gan_resume_bit_identical(tmp_path):
    _kill_and_resume(tmp_path, GAN_SLOW)


def test_cyclegan_pairs_depend_on_seed_and_epoch_and_pool_seed_state_is_saved(tmp_path):
    import tensorflow as tf

    from keras_imbalance.datasets.pairs import PairEpochs, unpaired_dataset
    from tests.scripts import models_zoo as zoo

    a = np.arange(7, dtype="float32").reshape(7, 1, 1, 1)
    b = 100 + np.arange(3, dtype="float32").reshape(3, 1, 1, 1)

    def epoch_pairs(epoch, fresh=True):
        counter = PairEpochs()
        ds = unpaired_dataset(a, b, batch_size=2, seed=4, epoch=counter.epoch)
        counter.on_epoch_begin(epoch)
        return [(x.numpy().ravel().tolist(), y.numpy().ravel().tolist()) for x, y in ds]

    e0, e1 = epoch_pairs(0), epoch_pairs(1)
    assert len(e0) == 4  # ceil(7 / 2) batches
    assert sorted(v for x, _ in e0 for v in x) == list(range(7))  # the majority once per epoch
    bs = [v for _, y in e0 for v in y]
    assert sorted(bs[:3]) == sorted(bs[3:6]) == [100, 101, 102]  # the minority cycled, each pass a permutation
    assert e0 != e1 and epoch_pairs(1) == e1  # a fresh pipeline (a resumed process) replays epoch 1 exactly

    # The pools' swap draws come from their own seed generators: saved with the weights.
    x, y = zoo.data_for("cyclegan")
    model = zoo.compile_model(zoo.build("cyclegan", x, y))
    model.fit(*zoo.fit_data("cyclegan", x, y, 8), batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    fresh = zoo.compile_model(zoo.build("cyclegan", x, y))
    assert not np.array_equal(np.asarray(fresh.pool_a.seed_generator.state), np.asarray(model.pool_a.seed_generator.state))
    fresh.load_weights(path)
    for name in ("pool_a", "pool_b"):
        np.testing.assert_array_equal(np.asarray(getattr(fresh, name).seed_generator.state),
                                      np.asarray(getattr(model, name).seed_generator.state))
        np.testing.assert_array_equal(np.asarray(getattr(fresh, name).images), np.asarray(getattr(model, name).images))
