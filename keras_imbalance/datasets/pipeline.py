"""tf.data input pipelines, including class-aware (class-balanced) sampling and seeded augmentation."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_imbalance.datasets.validation import check_xy, class_counts


def default_pad(image_shape):
    """The translation of the papers' CIFAR recipe scaled to the image: 4 pixels for 32 x 32, round(4 * min(H, W) / 32) >= 1."""
    return max(1, int(round(4 * min(int(image_shape[0]), int(image_shape[1])) / 32)))


class Augmentation:
    """Seeded random translation (pad and crop) and horizontal flip of training images, resumable.

    The CIFAR recipe of the papers (M2m Sec. 3.1, Cao et al. 2019, as the
    reference code's `RandomCrop(32, padding=4)` and `RandomHorizontalFlip`):
    each image is padded by `pad` pixels of `fill` on every side and cropped
    back to its size at a uniformly random offset (a shift of -pad..pad pixels
    on each axis), then mirrored left-right with probability 1/2 when `flip`.

    Every draw is a pure function of (`seed`, the pipeline's seed, the epoch,
    the sample's index in the data): independent of the shuffling, of
    the batch a sample lands in and of earlier epochs, so the same seed and
    epoch give bit-identical images in any run, and a run resumed at epoch e
    augments as an uninterrupted one. The epoch is a variable the pipeline
    reads: `callback()` sets it at every epoch's start (the recipes pass it to
    `fit`); `set_epoch(e)` sets it by hand (without either, every epoch is epoch 0).

    Args:
        pad: pixels of translation, or None for `default_pad` of the image size
            (4 for 32 x 32, 1 for 8 x 8 digits, 4 for 28 x 28).
        flip: random horizontal flips (on for natural images such as CIFAR; off
            for digits and characters, where a mirror image is another shape).
        seed: int, the augmentation's own seed.
        fill: the padding value (0.0, the reference code's zero padding).
    """

    def __init__(self, pad=None, flip=False, seed=0, fill=0.0):
        if pad is not None and (isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0):
            raise ValueError(f"pad must be an integer >= 0 or None, got {pad!r}")
        self.pad = None if pad is None else int(pad)
        self.flip = bool(flip)
        self.seed = int(seed)
        self.fill = float(fill)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="augmentation_epoch")

    def pad_for(self, image_shape):
        """The translation in pixels for images of `image_shape` (H, W, C)."""
        return default_pad(image_shape) if self.pad is None else self.pad

    def set_epoch(self, epoch):
        self.epoch.assign(int(epoch))

    def callback(self):
        """A Keras callback that sets the epoch at `on_epoch_begin` (from Keras's epoch number, so resuming works)."""
        return _AugmentationEpoch(self)

    def _draws(self, n, data_seed):
        # One table of draws per (seed, data seed, epoch): row i belongs to sample i whatever its position.
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.constant(int(data_seed), tf.int64) * 1_000_003 + self.epoch])
        return tf.random.stateless_uniform([n, 3], seed=key, minval=0, maxval=2**31 - 1, dtype=tf.int64)

    def apply(self, images, indices, n, data_seed=0):
        """Augment a batch `images` (B, H, W, C) whose rows are samples `indices` (B,) of a data set of `n` samples."""
        shape = images.shape[1:]
        h, w = int(shape[0]), int(shape[1])
        p = self.pad_for(shape)
        draws = tf.gather(self._draws(n, data_seed), tf.cast(indices, tf.int64))
        out = images
        if p > 0:
            padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=self.fill)
            dy = draws[:, 0] % (2 * p + 1)
            dx = draws[:, 1] % (2 * p + 1)
            rows = dy[:, None] + tf.range(h, dtype=tf.int64)[None]
            cols = dx[:, None] + tf.range(w, dtype=tf.int64)[None]
            out = tf.gather(padded, rows, axis=1, batch_dims=1)
            out = tf.gather(out, cols, axis=2, batch_dims=1)
        if self.flip:
            mirror = tf.equal(draws[:, 2] % 2, 1)[:, None, None, None]
            out = tf.where(mirror, tf.reverse(out, axis=[2]), out)
        return out

    def get_config(self):
        return {"pad": self.pad, "flip": self.flip, "seed": self.seed, "fill": self.fill}

    def __repr__(self):
        return f"Augmentation({self.get_config()})"


class _AugmentationEpoch(keras.callbacks.Callback):
    def __init__(self, augmentation):
        super().__init__()
        self.augmentation = augmentation

    def on_epoch_begin(self, epoch, logs=None):
        self.augmentation.set_epoch(epoch)


def to_dataset(x, y, batch_size, shuffle=True, balanced=False, seed=0, drop_remainder=False, num_classes=None,
               augment=None):
    """A batched, prefetched `tf.data.Dataset` of `(x, y)`.

    With `balanced=False` every sample is seen once per epoch (shuffled each
    epoch when `shuffle=True`). With `balanced=True` the pipeline does
    class-aware sampling (Shen et al. 2016; the RS / DRS baselines and M2m's
    sampler): each element picks a class uniformly at random, then a sample of
    that class uniformly at random, so batches are class-balanced in
    expectation without materializing copies of the minority samples. An
    epoch of the balanced pipeline has as many samples as the data, and each
    epoch draws afresh.

    Args:
        x: array (N, ...) of samples.
        y: sparse integer labels (N,) or (N, 1).
        batch_size: int >= 1.
        shuffle: shuffle each epoch (ignored when `balanced=True`, which is random).
        balanced: class-aware sampling.
        seed: int seed for shuffling / sampling.
        drop_remainder: drop the last partial batch (fixed batch shape).
        num_classes: number of classes (default max(y) + 1); with
            `balanced=True` every class needs a sample.
        augment: None, or an `Augmentation` applied to every batch (images
            (N, H, W, C) only); its draws depend on `seed`, the epoch and
            each sample's index, not on the order. Pass `augment.callback()`
            to `fit` so that each epoch draws afresh.

    Returns:
        A `tf.data.Dataset` yielding `(x_batch, y_batch)` with y int64 (B,).
    """
    x, y = check_xy(x, y, num_classes)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n = len(y)
    if augment is not None and x.ndim != 4:
        raise ValueError(f"augment needs images (N, H, W, C); got samples of shape {x.shape[1:]}")

    def augmented(xb, yb, ib):
        return augment.apply(xb, ib, n, seed), yb

    if not balanced:
        if augment is None:
            ds = tf.data.Dataset.from_tensor_slices((x, y))
        else:
            # The sample indices travel with the samples, so the augmentation is keyed by sample, not position.
            ds = tf.data.Dataset.from_tensor_slices((x, y, np.arange(n, dtype=np.int64)))
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if augment is not None:
            ds = ds.map(augmented, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    counts = class_counts(y, num_classes)
    order = np.argsort(y, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    num_classes_ = len(counts)
    x_t = tf.constant(x)
    y_t = tf.constant(y)
    order_t = tf.constant(order, tf.int64)
    offsets_t = tf.constant(offsets)
    counts_t = tf.constant(counts)

    def draw(r):
        # One uniform 63-bit draw split into a class and an index within it;
        # the modulo bias is below 2^-40 for any realistic class size.
        r = tf.abs(r)
        c = r % num_classes_
        j = (r // num_classes_) % tf.gather(counts_t, c)
        i = tf.gather(order_t, tf.gather(offsets_t, c) + j)
        if augment is not None:
            return augmented(tf.gather(x_t, i), tf.gather(y_t, i), i)
        return tf.gather(x_t, i), tf.gather(y_t, i)

    num_batches = n // batch_size if drop_remainder else math.ceil(n / batch_size)
    ds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(num_batches * batch_size)
    # `draw` is elementwise, so it runs once per batch on a vector of random
    # numbers: the same batches as mapping per element, without a tf.data map
    # call per sample (10x cheaper, see docs/performance.md).
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(draw, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
