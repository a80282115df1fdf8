"""One worker of a 2-process MultiWorkerMirroredStrategy run on localhost.

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]}, "task": {"type": "worker", "index": I}}' \
        python tests/scripts/multi_worker.py METHOD OUT.npz

Trains METHOD (see models_zoo) for 2 epochs with a global batch of 8 and
writes every weight and the logged losses to OUT.npz.
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


def main(method, out):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = zoo.data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)
    # Each worker reads the same global batches; Keras splits each one between the replicas.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ds.with_options(options)
    with strategy.scope():
        model = zoo.compile_model(zoo.build(method, x, y))
    history = model.fit(ds, epochs=2, verbose=0)
    weights = zoo.weights(model)
    np.savez(out, **{f"w{i}": w for i, w in enumerate(weights.values())},
             logs=json.dumps({k: [float(v) for v in vals] for k, vals in history.history.items()}),
             replicas=strategy.num_replicas_in_sync)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
