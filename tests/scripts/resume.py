"""Train method models with BackupAndRestore; optionally SIGKILL this process mid-epoch.

    python tests/scripts/resume.py WORKDIR METHOD [METHOD ...] [--kill]

For each METHOD in turn: `set_seed(0)`, build, compile, and `fit` 3 epochs
on an `EpochSeededDataset` with `keras.callbacks.BackupAndRestore(
WORKDIR/METHOD/backup, save_freq="epoch")`; at the end the weights, every
player's optimizer variables and the seed-generator state go to
WORKDIR/METHOD/final.npz. With `--kill`, the process kills itself with
SIGKILL at epoch 1 (0-based), batch 2 of a method that has not been killed
yet (marker file WORKDIR/METHOD/killed): rerunning the same command resumes
from the backup and moves on.
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_imbalance.reproducibility import EpochSeededDataset, set_seed  # noqa: E402
from tests.scripts import models_zoo as zoo  # noqa: E402

EPOCHS = 3
KILL_AT = (1, 2)  # (epoch, batch), 0-based


class KillAt(keras.callbacks.Callback):
    def __init__(self, marker):
        super().__init__()
        self.marker = marker
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == KILL_AT and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


class EpochLog(keras.callbacks.Callback):
    """Appends "<pid> <epoch>" per epoch begun, so a test can see where a process started."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()} {epoch}\n")


def train(workdir, method, kill):
    folder = os.path.join(workdir, method)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, "final.npz")
    if os.path.exists(final):
        return
    set_seed(0)
    x, y = zoo.data_for(method)
    model = zoo.compile_model(zoo.build(method, x, y))
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(folder, "backup"), save_freq="epoch"),
        EpochLog(os.path.join(folder, "epochs.log")),
    ]
    if kill:
        callbacks.append(KillAt(os.path.join(folder, "killed")))
    if method in zoo.BINARY:
        # CycleGAN.fit(a, b) and ImbalanceCycleGAN.fit(x, y) build their own
        # epoch-seeded (a, b) pair stream.
        args = zoo.fit_data(method, x, y, 8) if method == "cyclegan" else (x, y)
        model.fit(*args, batch_size=8, epochs=EPOCHS, callbacks=callbacks, verbose=0)
    else:
        # M2m's paper pipeline is class-aware sampling; GAMO reads the data as it is.
        data = EpochSeededDataset(x, y, batch_size=8, seed=5, balanced=method == "m2m")
        model.fit(data.dataset(), epochs=EPOCHS, callbacks=[data, *callbacks], verbose=0)
    arrays = {f"w/{k}": v for k, v in zoo.weights(model).items()}
    arrays.update({f"opt/{k}": v for k, v in zoo.optimizer_variables(model).items()})
    arrays["seed_state"] = zoo.seed_state(model)
    np.savez(final, **arrays)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--kill"]
    for name in args[1:]:
        train(args[0], name, "--kill" in sys.argv)
