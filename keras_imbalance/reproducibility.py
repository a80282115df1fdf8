"""Reproducible and resumable training: one seed call, epoch-seeded input pipelines.

- `set_seed(seed)` seeds Python, NumPy, Keras and TensorFlow and turns on
  TensorFlow op determinism, so two runs of the same script on the same
  machine end with bit-identical weights (tested for GAMO in fresh
  processes, `tests/test_reproducibility.py`).
- `EpochSeededDataset` is an input pipeline whose order in epoch e depends
  only on (seed, e), not on how many epochs this *process* has iterated.
  `tf.data`'s `shuffle(reshuffle_each_iteration=True)` and
  `Dataset.random(rerandomize_each_iteration=True)` derive each epoch's order
  from the iteration count, so a run resumed by
  `keras.callbacks.BackupAndRestore` in a new process would replay epoch 0's
  order in epoch e; with this pipeline a resumed run sees exactly the batches
  the uninterrupted run saw.
"""

import math
import os
import random

import keras
import numpy as np
import tensorflow as tf

from keras_imbalance.datasets.validation import check_xy, class_counts


def set_seed(seed, deterministic=True):
    """Seed every random number generator a training run uses.

    Seeds Python's `random`, NumPy's global generator, Keras
    (`keras.utils.set_random_seed`, which also seeds TensorFlow's global
    generator) and sets `PYTHONHASHSEED` for child processes. With
    `deterministic=True` (default) it also calls
    `tf.config.experimental.enable_op_determinism()`, which makes TF pick
    deterministic kernels (and raise on ops that have none) and run tf.data
    deterministically; this can slow GPU training, not CPU training here.

    Same seed + same machine + same software -> same weights. Across
    different hardware, thread counts or TF versions float results may differ.

    Args:
        seed: int >= 0.
        deterministic: enable TF op determinism (it cannot be turned off
            again in the same process).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return seed


class EpochSeededDataset(keras.callbacks.Callback):
    """A `tf.data` pipeline whose epoch-e order is a function of (seed, e) only; also the callback that sets e.

    >>> data = EpochSeededDataset(x, y, batch_size=32, seed=0)
    >>> model.fit(data.dataset(), epochs=10, callbacks=[data, keras.callbacks.BackupAndRestore(d)])

    Pass the object itself in `callbacks`: its `on_epoch_begin` writes the
    epoch index into a variable that the pipeline reads when Keras opens the
    epoch's iterator (Keras opens a fresh iterator per epoch for a dataset of
    known length, after `on_epoch_begin`). Without the callback every epoch
    uses the order of epoch 0.

    Args:
        x, y: samples (N, ...) and sparse labels (N,).
        batch_size: int >= 1.
        seed: int >= 0.
        balanced: False: each epoch is a permutation of all N samples.
            True: class-aware sampling as `datasets.to_dataset(balanced=True)`
            (each element picks a class uniformly, then a sample of that
            class uniformly), N elements per epoch.
        drop_remainder: drop the last partial batch.
        num_classes: C (default max(y) + 1).
    """

    def __init__(self, x, y, batch_size, seed=0, balanced=False, drop_remainder=False, num_classes=None):
        super().__init__()
        x, y = check_xy(x, y, num_classes)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.balanced = bool(balanced)
        self.drop_remainder = bool(drop_remainder)
        self.counts = class_counts(y, num_classes) if balanced else None
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_seeded_dataset_epoch")
        n = len(y)
        self.num_batches = n // self.batch_size if drop_remainder else math.ceil(n / self.batch_size)
        if self.num_batches == 0:
            raise ValueError(f"{n} samples make no full batch of {self.batch_size} with drop_remainder=True")

    def epoch_indices(self, epoch):
        """The sample indices of epoch `epoch`, in order (numpy; for tests and inspection)."""
        return np.asarray(self._indices(tf.constant(epoch, tf.int64)))

    def _indices(self, epoch):
        n = len(self.y)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64)])
        if not self.balanced:
            return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seed)
        counts = tf.constant(self.counts, tf.int64)
        order = tf.constant(np.argsort(self.y, kind="stable"), tf.int64)
        offsets = tf.constant(np.concatenate([[0], np.cumsum(self.counts)[:-1]]), tf.int64)
        cls = tf.random.stateless_uniform((n,), seed, 0, len(self.counts), dtype=tf.int64)
        u = tf.random.stateless_uniform((n,), seed + tf.constant([0, 1 << 32], tf.int64), dtype=tf.float64)
        within = tf.minimum(tf.cast(u * tf.cast(tf.gather(counts, cls), tf.float64), tf.int64), tf.gather(counts, cls) - 1)
        return tf.gather(order, tf.gather(offsets, cls) + within)

    def dataset(self):
        """The `tf.data.Dataset` of `(x, y)` batches (known length)."""
        x_t, y_t = tf.constant(self.x), tf.constant(self.y)
        epoch = self.epoch

        def one_epoch(_):
            return tf.data.Dataset.from_tensor_slices(self._indices(epoch.read_value()))

        ds = tf.data.Dataset.range(1).flat_map(one_epoch)
        ds = ds.batch(self.batch_size, drop_remainder=self.drop_remainder)
        ds = ds.map(lambda i: (tf.gather(x_t, i), tf.gather(y_t, i)))
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.num_batches))
        return ds.prefetch(1)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(int(epoch))

    def get_config(self):
        return {"batch_size": self.batch_size, "seed": self.seed, "balanced": self.balanced}


__all__ = ["EpochSeededDataset", "set_seed"]
