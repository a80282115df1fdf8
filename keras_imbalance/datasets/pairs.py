"""Unpaired (a, b) batches for CycleGAN-style training: the pair pipelines.

`unpaired_dataset` is CycleGAN's "unaligned" loader (Zhu et al. 2017): the
larger set seen once per epoch in a fresh order, the smaller one cycled to
pair with it. With an epoch variable (`PairEpochs`), the order of an epoch
is a function of (seed, epoch) only, so a resumed run sees the same pairs.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.datasets.validation import check_images


def unpaired_dataset(a, b, batch_size=1, seed=0, epoch=None):
    """A `tf.data.Dataset` of unpaired (a, b) batches, CycleGAN's "unaligned" loader.

    One epoch is ceil(max(N_A, N_B) / batch_size) batches: the larger set is
    seen once in a fresh random order, the smaller one is cycled (reshuffled
    at each pass) to pair with it, so every minority image is reused about
    N_A / N_B times per epoch.

    Args:
        a, b: arrays (N_A, H, W, C) and (N_B, H, W, C), float.
        batch_size: pairs per batch (1 in the CycleGAN paper).
        seed: shuffling seed.
        epoch: None, or an integer `tf.Variable` holding the epoch index
            (`PairEpochs` sets it): then the order of an epoch is a function
            of (seed, epoch) only, read when the epoch's iterator opens, so a
            run resumed in a new process (`BackupAndRestore`) sees the batches
            the uninterrupted run saw. With None, `tf.data`'s reshuffling
            derives the order from the iterations of this process.
    """
    a = check_images(a, name="a", min_rank=4)
    b = check_images(b, name="b", min_rank=4)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"a and b images differ in shape: {a.shape[1:]} vs {b.shape[1:]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return pair_stream(a, b, batch_size, seed, epoch)


def pair_stream(a, b, batch_size, seed=0, epoch=None):
    """`unpaired_dataset` on inputs already checked (non-empty finite images of one shape, batch_size >= 1).

    For callers that validated their data at their own boundary
    (`ImbalanceCycleGAN.fit`): the arrays are not scanned again.
    """
    a = np.asarray(a).astype("float32", copy=False)
    b = np.asarray(b).astype("float32", copy=False)
    n = max(len(a), len(b))
    if epoch is not None:
        return _epoch_seeded_pairs(a, b, int(batch_size), int(seed), epoch)

    def stream(x, s):
        return tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=s, reshuffle_each_iteration=True).repeat()

    pairs = tf.data.Dataset.zip((stream(a, int(seed)), stream(b, int(seed) + 1))).take(n)
    return pairs.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def _cycled_order(m, n, seed):
    """n indices: ceil(n / m) stateless permutations of range(m), concatenated, cut to n."""
    passes = -(-n // m)
    keys = tf.random.stateless_uniform((passes, m), seed)
    return tf.reshape(tf.argsort(keys, axis=1), (-1,))[:n]


def _epoch_seeded_pairs(a, b, batch_size, seed, epoch):
    n = max(len(a), len(b))
    a_t, b_t = tf.constant(a), tf.constant(b)

    def one_epoch(_):
        e = tf.cast(epoch.read_value(), tf.int64)
        ia = _cycled_order(len(a), n, tf.stack([tf.constant(seed, tf.int64), e]))
        ib = _cycled_order(len(b), n, tf.stack([tf.constant(seed + 1, tf.int64), e]))
        return tf.data.Dataset.from_tensor_slices((ia, ib))

    ds = tf.data.Dataset.range(1).flat_map(one_epoch).batch(batch_size)
    ds = ds.map(lambda i, j: (tf.gather(a_t, i), tf.gather(b_t, j)))
    return ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n / batch_size))).prefetch(1)


class PairEpochs(keras.callbacks.Callback):
    """Holds the epoch index that an epoch-seeded `unpaired_dataset` reads; sets it at each epoch begin.

    `CycleGAN.fit(a, b)` and `ImbalanceCycleGAN.fit` add one by themselves.
    """

    def __init__(self):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="pair_epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(int(epoch))


def first_images(data):
    """The a / b images of a pair element (a zipped (x, y) dataset yields ((x_a, y_a), (x_b, y_b)))."""
    return data[0] if isinstance(data, (tuple, list)) else data


def unpack_pair(data):
    """(a, b) float32 images of a pair element: (a, b), or ((x_a, y_a), (x_b, y_b)) of a zipped (x, y) dataset."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("CycleGAN trains on (a, b) pairs: a dataset of (a_batch, b_batch), "
                         "or tf.data.Dataset.zip((dataset_a, dataset_b))")
    a, b = (first_images(d) for d in data)
    return ops.cast(a, "float32"), ops.cast(b, "float32")
