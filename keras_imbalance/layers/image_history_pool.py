"""CycleGAN's image history pool (Shrivastava et al. 2017; Zhu et al. 2017, Sec. 4)."""

import keras
import numpy as np
from keras import ops

from keras_imbalance.distribute import replica_all_gather, replica_layout
from keras_imbalance.layers.seed_state import SeedStateSaving


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ImageHistoryPool(SeedStateSaving, keras.layers.Layer):
    """CycleGAN's image buffer (Shrivastava et al. 2017; Zhu et al. 2017, Sec. 4): the
    discriminator sees a mix of current and earlier generated images.

    Fixed-shape state: `images` (pool_size, H, W, C) and a fill `count`, both
    non-trainable variables (saved with the model, so training resumes with
    the same pool). For each image of a batch, in order (the reference's
    per-image loop):

    - while the pool is not full, the image is stored and returned as it is;
    - then, with probability `swap_probability` (0.5), a uniformly chosen
      stored image is returned and replaced by the current one; otherwise the
      current image is returned and the pool is unchanged.

    The loop is computed for the whole batch at once (`swap_batch`), with the
    loop's results: a swapped image gets what its slot held at its turn, the
    image of the last earlier writer to that slot in the batch, or else the
    slot's content before the batch. (A per-image `fori_loop` copied the pool
    and the batch at every iteration: 2 x 64 sequential iterations per
    CycleGAN step of 64 pairs.)

    `pool_size=0` returns the batch unchanged. Outside training
    (`training=False`) the pool is neither read nor written.

    Under `tf.distribute` with R > 1 replicas the replicas' images are
    all-gathered and every replica runs the loop above on the GLOBAL batch
    with the same (mirrored) random draws, then keeps its own rows: the pool
    variables stay identical on all replicas and hold what one device's pool
    would hold for the same global batch (a per-replica pool would see only
    its replica's images, in a different order, and the replicas' copies of
    the variables would diverge).

    Args:
        pool_size: stored images (50).
        image_shape: (H, W, C); builds the layer at once (else at first call).
        swap_probability: chance of returning a stored image once full (0.5).
        seed: int or None, the layer's random draws (the generator's state
            is saved with the layer, so a resumed run makes the same swaps).

    Call: images (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self, pool_size=50, image_shape=None, swap_probability=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) or pool_size < 0:
            raise ValueError(f"pool_size must be an integer >= 0, got {pool_size!r}")
        if not 0.0 <= float(swap_probability) <= 1.0:
            raise ValueError(f"swap_probability must be in [0, 1], got {swap_probability}")
        self.pool_size = int(pool_size)
        self.swap_probability = float(swap_probability)
        self.seed = seed
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.seed_generator = keras.random.SeedGenerator(seed, name="pool_seed")
        if self.image_shape is not None:
            self.build((None, *self.image_shape))

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        if any(d is None for d in shape):
            raise ValueError(f"ImageHistoryPool needs a fixed image shape, got {input_shape}")
        self.image_shape = tuple(int(d) for d in shape)
        # "only_first_replica": every replica computes the same update (see the
        # class docstring), so any replica's value is the value.
        self.images = self.add_weight(shape=(max(self.pool_size, 1), *self.image_shape), initializer="zeros",
                                      trainable=False, name="images", aggregation="only_first_replica")
        self.count = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="count",
                                     aggregation="only_first_replica")
        self.built = True

    def call(self, images, training=True):
        if not training or self.pool_size == 0:
            return images
        local = ops.shape(images)[0]
        layout = replica_layout(local)
        if layout is not None:
            offset, _ = layout
            return self._swap(replica_all_gather(images))[offset : offset + local]
        return self._swap(images)

    def _swap(self, images):
        n = ops.shape(images)[0]
        u = keras.random.uniform((n,), seed=self.seed_generator)
        idx = keras.random.randint((n,), 0, self.pool_size, seed=self.seed_generator)
        out, pool, count = self.swap_batch(images, self.images, self.count, u, idx)
        self.images.assign(pool)
        self.count.assign(count)
        return out

    def swap_batch(self, images, pool, count, uniform, index):
        """The per-image pool loop over a batch, vectorized; returns (images out, new pool, new count).

        Image i (in batch order) finds count + i images in the pool while
        count + i < pool_size: it is written to slot count + i and returned.
        Otherwise it swaps when uniform[i] < swap_probability: it is written
        to slot index[i], and returned is what that slot held just before,
        the image of the last earlier writer to it in this batch, or else the
        slot's content in `pool`.

        Args:
            images: (n, H, W, C); pool: (pool_size, H, W, C); count: int scalar.
            uniform: (n,) in [0, 1); index: (n,) int in [0, pool_size).
        """
        images = ops.convert_to_tensor(images)
        pool = ops.convert_to_tensor(pool)
        n = ops.shape(images)[0]
        count = ops.convert_to_tensor(count, "int32")
        step = ops.arange(n, dtype="int32")
        position = count + step
        filling = position < self.pool_size
        swap = ops.logical_and(ops.logical_not(filling), ops.convert_to_tensor(uniform) < self.swap_probability)
        slot = ops.where(filling, position, ops.cast(index, "int32"))
        writes = ops.logical_or(filling, swap)
        image_axes = (1,) * (len(images.shape) - 1)

        def last_writer(targets, before):
            # (m,): the last image k < before[r] written to slot targets[r], or -1.
            hits = ops.logical_and(ops.equal(targets[:, None], slot[None, :]), writes[None, :])
            hits = ops.logical_and(hits, step[None, :] < before[:, None])
            return ops.max(ops.where(hits, step[None, :], -1), axis=1)

        def pick(writer, fallback):
            # The writer's image where there is one, else the fallback image.
            mask = ops.reshape(writer >= 0, (-1, *image_axes))
            return ops.where(mask, ops.take(images, ops.maximum(writer, 0), axis=0), fallback)

        held = pick(last_writer(slot, step), ops.take(pool, slot, axis=0))
        out = ops.where(ops.reshape(swap, (-1, *image_axes)), held, images)
        slots = ops.arange(ops.shape(pool)[0], dtype="int32")
        new_pool = pick(last_writer(slots, ops.full(ops.shape(slots), n, "int32")), pool)
        return out, new_pool, ops.minimum(count + n, self.pool_size)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "image_shape": self.image_shape,
                "swap_probability": self.swap_probability, "seed": self.seed}
