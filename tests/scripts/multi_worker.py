"""One worker of a 2-process MultiWorkerMirroredStrategy run on localhost, or its single-process reference.

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]}, "task": {"type": "worker", "index": I}}' \
        python tests/scripts/multi_worker.py METHOD OUT.npz
    python tests/scripts/multi_worker.py METHOD OUT.npz --reference WORKER0.npz

Trains METHOD (see models_zoo) for 2 epochs with a global batch of 8 and SGD
(the learning rates of the mirrored comparison, `zoo.comparison_lr`), and
writes to OUT.npz: every weight (`w/<name>`), every player's optimizer
variables including the step counters (`opt/<name>`), the seed-generator
state, the start weights (`start/<i>`), the largest change of a weight,
the logged losses and the replica count. With `--reference`, the same training runs in this one process
(no strategy, one device) from the start weights a worker wrote, so a test
can compare 2 workers x 1 replica with 1 device on the same global batches.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.scripts import models_zoo as zoo  # noqa: E402
import keras  # noqa: E402

keras.config.disable_traceback_filtering()
tf.debugging.disable_traceback_filtering()

GLOBAL_BATCH = 8
EPOCHS = 2


def main(method, out, reference_init=None):
    # Created first thing: it reads TF_CONFIG and sets up the collectives.
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if reference_init is None else tf.distribute.get_strategy()
    x, y = zoo.data_for(method)
    data = zoo.fit_data(method, x, y, GLOBAL_BATCH)
    if isinstance(data, tf.data.Dataset) and method not in zoo.BINARY:
        # Each worker builds the same global batches; DATA sharding gives
        # worker i the i-th slice of each (what AUTO falls back to for
        # in-memory data). With sharding OFF both workers would get the
        # *first* slice of every batch: bit-identical workers, but trained on
        # half of the data (the reference comparison catches it).
        # ImbalanceCycleGAN.fit builds its own pair stream from (x, y), which
        # AUTO shards the same way.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = data.with_options(options)
    with strategy.scope():
        model = zoo.compile_model(zoo.build(method, x, y), lr=zoo.comparison_lr(method), optimizer="sgd")
    if reference_init is not None:
        with np.load(reference_init) as init:
            model.set_weights([init[f"start/{i}"] for i in range(len(model.weights))])
    start = model.get_weights()
    if isinstance(data, tuple):  # CycleGAN: fit(a, b, batch_size) pairs the arrays
        history = model.fit(*data, batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0)
    else:
        history = model.fit(data, epochs=EPOCHS, verbose=0)
    arrays = {f"w/{k}": v for k, v in zoo.weights(model).items()}
    arrays.update({f"opt/{k}": v for k, v in zoo.optimizer_variables(model).items()})
    arrays.update({f"start/{i}": w for i, w in enumerate(start)})
    moved = max(float(np.abs(a - b).max()) for a, b in zip(start, model.get_weights()) if a.dtype.kind == "f")
    np.savez(out, **arrays, seed_state=zoo.seed_state(model), replicas=strategy.num_replicas_in_sync,
             max_weight_change=moved,
             logs=json.dumps({k: [float(v) for v in vals] for k, vals in history.history.items()}))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 4 and args[2] == "--reference":
        main(args[0], args[1], reference_init=args[3])
    elif len(args) == 2:
        main(*args)
    else:
        sys.exit(__doc__)
