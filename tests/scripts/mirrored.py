"""Train each method on 1 device and under MirroredStrategy on 2 logical CPUs; print the differences as JSON.

Run in a fresh process (logical devices must be configured before TF starts):
    python tests/scripts/mirrored.py [method ...]
Prints one JSON line per method: max |w_1dev - w_2dev| over every weight,
the per-player loss logs of both runs, and the replica count.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from tests.scripts import models_zoo as zoo  # noqa: E402

GLOBAL_BATCH = 8
OPTIMIZER = os.environ.get("MIRRORED_OPTIMIZER", "sgd")
EPOCHS = 2


def run(method, strategy, init=None):
    x, y = zoo.data_for(method)
    ds = zoo.fit_data(method, x, y, GLOBAL_BATCH)
    with strategy.scope():
        # SGD: Adam divides by sqrt(v), which turns a gradient that is 0 on one
        # device and 1e-9 (rounding) on the other into a full lr step; with
        # SGD the comparison shows the actual computation's agreement.
        model = zoo.compile_model(zoo.build(method, x, y), lr=zoo.comparison_lr(method), optimizer=OPTIMIZER)
    if init is not None:
        model.set_weights(init)
    start = model.get_weights()
    if isinstance(ds, tuple):  # CycleGAN: fit(a, b, batch_size) pairs the arrays
        history = model.fit(*ds, batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0)
    else:
        history = model.fit(ds, epochs=EPOCHS, verbose=0)
    return model, start, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def main(methods):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    # One strategy object for the whole process: several MirroredStrategy
    # instances in one process reuse collective instance keys and clash.
    mirrored = tf.distribute.MirroredStrategy(devices[:2])
    single = tf.distribute.OneDeviceStrategy(devices[0])
    for method in methods:
        one, start, logs_one = run(method, single)
        two, _, logs_two = run(method, mirrored, init=start)
        w1, w2 = zoo.weights(one), zoo.weights(two)
        assert set(w1) == set(w2), (set(w1) ^ set(w2))
        moved = max(float(np.abs(a - b).max()) for a, b in zip(start, one.get_weights()) if a.dtype.kind == "f")
        diff, worst = max((float(np.abs(w1[k] - w2[k]).max()), k) for k in w1)
        if os.environ.get("MIRRORED_DEBUG"):
            for k in w1:
                print("DBG", k, float(np.abs(w1[k] - w2[k]).max()), np.unravel_index(np.abs(w1[k] - w2[k]).argmax(), w1[k].shape), file=sys.stderr)
        o1, o2 = zoo.optimizer_variables(one), zoo.optimizer_variables(two)
        opt_diff = max(float(np.abs(o1[k] - o2[k]).max()) for k in o1)
        print(json.dumps({
            "method": method,
            "replicas": mirrored.num_replicas_in_sync,
            "max_weight_diff": diff,
            "worst_weight": worst,
            "max_optimizer_diff": opt_diff,
            "max_weight_change": moved,
            "logs_one": logs_one,
            "logs_two": logs_two,
        }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(zoo.METHODS))
