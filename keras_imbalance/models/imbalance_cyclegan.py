"""ImbalanceCycleGAN: joint generation and classification (Sahoo, Singh, Panda, Feris, Das).

"Mitigating Dataset Imbalance via Joint Generation and Classification"
(ECCV workshops 2020). Binary problems: a majority class A and a minority
class B. Two stages, two models:

- `CycleGAN` (eqs. 1-3): unpaired translation A <-> B with two generators,
  two discriminators, least-squares adversarial loss, L1 cycle (weight
  beta = 10) and identity (alpha = 5) losses, discriminator loss halved, a
  history pool of 50 generated images per discriminator, four
  Adam(2e-4, beta_1=0.5) optimizers; `callbacks.LinearLRDecay` gives the
  constant-then-linear learning rate of Appendix A.2.
- `ImbalanceCycleGAN` (eqs. 4-7, Appendix A): a classifier trained on real
  a, b and translated G_AB(a) (minority label), G_BA(b) (majority label),
  in AUG mode (CycleGAN frozen) or ALT mode (alternating with CycleGAN
  training that includes the classifier's loss, classifier frozen).

The authors released no code; every reading of the paper that is a choice is
stated in the class docstrings.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.callbacks import AlternatingPhases
from keras_imbalance.datasets.validation import check_images, check_labels, check_sample_shape, check_xy, collect_batches, class_counts as _class_counts
from keras_imbalance.models.base import MultiPlayerModel, replica_all_gather, replica_layout

_GAN_PLAYERS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
_MODES = ("aug", "alt")


def _paper_adam():
    # Appendix A.1: "We follow [50] for the hyperparameters and choice of
    # optimizers": CycleGAN's Adam(2e-4, beta_1 = 0.5).
    return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


def _fixed_image_shape(model, what):
    shape = model.input_shape
    if isinstance(shape, list):
        raise ValueError(f"{what} must take a single image input, got input shapes {shape}")
    shape = tuple(shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise ValueError(f"{what} must take images of a fixed size (H, W, C), got input shape {model.input_shape}")
    return shape


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
    a = check_images(a, name="a", min_rank=4).astype("float32", copy=False)
    b = check_images(b, name="b", min_rank=4).astype("float32", copy=False)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"a and b images differ in shape: {a.shape[1:]} vs {b.shape[1:]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
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


def _first_images(data):
    """The a / b images of a pair element (a zipped (x, y) dataset yields ((x_a, y_a), (x_b, y_b)))."""
    return data[0] if isinstance(data, (tuple, list)) else data


def _unpack_pair(data):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("CycleGAN trains on (a, b) pairs: a dataset of (a_batch, b_batch), "
                         "or tf.data.Dataset.zip((dataset_a, dataset_b))")
    a, b = (_first_images(d) for d in data)
    return ops.cast(a, "float32"), ops.cast(b, "float32")


def _apply_joint(owner, names, tape, loss, tracked):
    """One gradient computation of `loss`, then one optimizer step per player in `names`.

    The players' variables are disjoint, so the gradient of the joint loss
    split by player equals each player's own gradient; `tracked[i]` is the
    value recorded in player i's loss tracker.
    """
    groups = [owner.player_variables(n) for n in names]
    flat = [v for g in groups for v in g]
    # The tape is closed: dividing `loss` here would not be recorded (every
    # gradient None under R > 1 replicas); divide the gradients, as
    # `MultiPlayerModel.apply_player_gradients` does.
    grads = tape.gradient(loss, flat)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        grads = [None if g is None else tf.convert_to_tensor(g) / replicas for g in grads]
    k = 0
    for name, variables, value in zip(names, groups, tracked):
        pairs = [(g, v) for g, v in zip(grads[k : k + len(variables)], variables) if g is not None]
        k += len(variables)
        if pairs:
            getattr(owner, f"{name}_optimizer").apply_gradients(pairs)
        owner.loss_trackers[name].update_state(value)


def mixes_batch_samples(model):
    """True when a layer of `model` (nested layers included) makes one sample's output depend on the others.

    `CycleGAN` calls a network once on the concatenation of two independent
    batches (e.g. G_AB on [a, b] for fake_b and the identity term) instead of
    twice: fewer, larger convolutions run faster on small networks
    (docs/performance.md). That equals the two calls only if no layer
    couples the samples of a batch. Found here: `BatchNormalization` (batch
    statistics in training; the concatenation would normalize a and b
    together) and dropout-like layers (any layer with a `noise_shape`) whose
    noise shape has 1 on the batch axis (one mask shared by all samples).
    Per-sample layers (convolutions, `GroupNormalization`, hence this
    package's `InstanceNormalization`, `LayerNormalization`, element-wise
    dropout) do not count. A custom layer that mixes samples in its own
    ops cannot be seen from outside; such a network should not be stacked
    (set the `CycleGAN.stack_*_calls` flags to False).
    """
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            return True
        noise_shape = getattr(layer, "noise_shape", None)
        if noise_shape is not None and len(noise_shape) > 0 and noise_shape[0] == 1:
            return True
    return False


def _call_on_each(network, inputs, training, stacked):
    """[network(x) for x in inputs]; one call on the concatenated inputs when `stacked`, split back by sizes."""
    if not stacked or len(inputs) == 1:
        return [network(x, training=training) for x in inputs]
    out = network(ops.concatenate(inputs, axis=0), training=training)
    parts, start = [], 0
    for x in inputs:
        end = start + ops.shape(x)[0]
        parts.append(out[start:end])
        start = end
    return parts


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ImageHistoryPool(keras.layers.Layer):
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
        seed: int or None, the layer's random draws.

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

    # The seed generator's state is not a layer variable, so Keras would not
    # save it; a run resumed from a checkpoint would redo earlier swap draws.

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_generator_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        if "seed_generator_state" in list(store.keys()):
            self.seed_generator.state.assign(store["seed_generator_state"])
            store = {k: store[k] for k in store.keys() if k != "seed_generator_state"}
        super().load_own_variables(store)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "image_shape": self.image_shape,
                "swap_probability": self.swap_probability, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_imbalance")
class CycleGAN(MultiPlayerModel):
    """CycleGAN (Zhu et al. 2017) as ImbalanceCycleGAN uses it (eqs. 1-3, Appendix A).

    Domain A is the majority class, B the minority class. One `train_step`
    on an (a, b) batch, as in the reference implementation:

    1. Generators (discriminators fixed), one joint loss
       L_G = L_adv(G_AB) + L_adv(G_BA) + beta (L_cyc(A) + L_cyc(B))
             + alpha (|G_AB(b) - b|_1 + |G_BA(a) - a|_1),
       least-squares adversarial terms L_adv(G_AB) = mean((D_B(G_AB(a)) - 1)^2)
       (the paper writes eq. 1 with logs; its recipe "follows [50]", whose
       training uses the least-squares loss), L1 as per-pixel means.
    2. Discriminators: L_D_B = 0.5 (mean((D_B(b) - 1)^2) + mean(D_B(pool_B(G_AB(a)))^2)),
       likewise D_A; `pool_*` are `ImageHistoryPool`s of `pool_size` images.

    Calls on independent inputs are stacked into one call (speed only, same
    values up to float rounding): G_AB on [a, b] gives G_AB(a) and the
    identity term's G_AB(b), G_BA on [b, a] likewise, and each
    discriminator's loss runs it once on [real, pooled fake]. Small networks
    run far below the CPU's peak on many small ops; one call on 2B images
    is cheaper than two on B (docs/performance.md). Only where
    `mixes_batch_samples` finds no layer that couples the samples
    (`stack_generator_calls`, `stack_discriminator_calls`, set at
    construction; a generator or discriminator with BatchNormalization is
    called once per input as before). The cycle terms G_BA(G_AB(a)),
    G_AB(G_BA(b)) and the adversarial terms (D_B(G_AB(a)), D_A(G_BA(b)):
    different discriminators) are not stackable.

    Each of the four players has its own optimizer (Adam(2e-4, beta_1=0.5)
    by default; Adam is per-parameter, so this equals the reference's one
    optimizer per pair). Both generators step on the joint L_G; the tracker
    `generator_ab_loss` records L_adv(G_AB) + beta L_cyc(A) + alpha |G_AB(b) - b|,
    `generator_ba_loss` the mirror terms (they sum to L_G).

    Images enter and leave in `value_range` (e.g. (0, 1) for this package's
    loaders) and are mapped linearly to the generators' [-1, 1] (tanh)
    range inside; the L1 terms are measured in [-1, 1].

    Args:
        generator_ab, generator_ba: Keras models (B, H, W, C) -> (B, H, W, C)
            in [-1, 1], e.g. `applications.ResnetGenerator`; fixed H, W, C.
        discriminator_a, discriminator_b: Keras models images -> patch logits,
            e.g. `applications.PatchGANDiscriminator`.
        cycle_weight: beta (10).
        identity_weight: alpha (5); 0 skips the identity term.
        pool_size: history pool size (50).
        value_range: (low, high) of the images given to `fit` and the translate methods.
        seed: int or None.

    Call: x (B, H, W, C) in `value_range` -> `translate_ab(x)`.
    `fit` takes a dataset of (a, b) batches (e.g. `unpaired_dataset(a, b)` or
    `tf.data.Dataset.zip((ds_a, ds_b))`; elements that are (x, y) tuples
    use x), or two arrays `fit(a, b, batch_size=...)` of any lengths, which
    are paired by `unpaired_dataset`.
    """

    player_names = _GAN_PLAYERS

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b, cycle_weight=10.0,
                 identity_weight=5.0, pool_size=50, value_range=(-1.0, 1.0), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.image_shape = _fixed_image_shape(generator_ab, "generator_ab")
        for model, what in ((generator_ba, "generator_ba"), (discriminator_a, "discriminator_a"),
                            (discriminator_b, "discriminator_b")):
            if _fixed_image_shape(model, what) != self.image_shape:
                raise ValueError(f"{what} takes {model.input_shape[1:]}, generator_ab takes {self.image_shape}; "
                                 "both domains must have the same image shape")
        for model, what in ((generator_ab, "generator_ab"), (generator_ba, "generator_ba")):
            if tuple(model.output_shape[1:]) != self.image_shape:
                raise ValueError(f"{what} outputs {model.output_shape[1:]}, expected images of shape {self.image_shape}")
        if float(cycle_weight) < 0 or float(identity_weight) < 0:
            raise ValueError(f"loss weights must be >= 0, got cycle_weight={cycle_weight}, identity_weight={identity_weight}")
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
        self.value_range = (low, high)
        self.pool_size = int(pool_size)
        # Checked once here, not per trace: stack each network's calls on
        # independent inputs only if it has no batch-coupled layer.
        self.stack_generator_calls = not (mixes_batch_samples(generator_ab) or mixes_batch_samples(generator_ba))
        self.stack_discriminator_calls = not (mixes_batch_samples(discriminator_a)
                                              or mixes_batch_samples(discriminator_b))
        self.pool_a = ImageHistoryPool(self.pool_size, self.image_shape, seed=None if seed is None else int(seed) + 1, name="pool_a")
        self.pool_b = ImageHistoryPool(self.pool_size, self.image_shape, seed=None if seed is None else int(seed) + 2, name="pool_b")
        self.mark_built(self.image_shape)

    def default_optimizer(self, name):
        return _paper_adam()

    def compile(self, generator_ab_optimizer=None, generator_ba_optimizer=None, discriminator_a_optimizer=None,
                discriminator_b_optimizer=None, **kwargs):
        """Four optimizers, Adam(2e-4, beta_1=0.5) each by default; other kwargs go to `keras.Model.compile`."""
        super().compile(optimizers={"generator_ab": generator_ab_optimizer, "generator_ba": generator_ba_optimizer,
                                    "discriminator_a": discriminator_a_optimizer,
                                    "discriminator_b": discriminator_b_optimizer}, **kwargs)

    # Value range ------------------------------------------------------------

    def to_generator_range(self, x):
        low, high = self.value_range
        return (ops.cast(x, "float32") - low) * (2.0 / (high - low)) - 1.0

    def from_generator_range(self, x):
        low, high = self.value_range
        return (x + 1.0) * ((high - low) / 2.0) + low

    # Translation -------------------------------------------------------------

    def translate_ab(self, x):
        """G_AB: majority (A) images -> minority (B) images, in `value_range`; a tensor (B, H, W, C)."""
        return self.from_generator_range(self.generator_ab(self.to_generator_range(x), training=False))

    def translate_ba(self, x):
        """G_BA: minority (B) images -> majority (A) images, in `value_range`."""
        return self.from_generator_range(self.generator_ba(self.to_generator_range(x), training=False))

    def call(self, x, training=False):
        return self.translate_ab(x)

    # Losses -------------------------------------------------------------------

    def generator_losses(self, a, b, training=True):
        """The generator objective on (a, b) in [-1, 1].

        Returns (terms, fake_a, fake_b): `terms` a dict of scalars with keys
        `adversarial_ab`, `adversarial_ba`, `cycle_a`, `cycle_b`, `identity_ab`
        (|G_AB(b) - b|), `identity_ba`, `generator_ab`, `generator_ba`, `total`;
        fake_b = G_AB(a) and fake_a = G_BA(b) in [-1, 1].
        """
        # G_AB(a) and the identity G_AB(b) in one call when stackable (class
        # docstring); likewise G_BA(b) and G_BA(a).
        identity = self.identity_weight > 0
        stack = self.stack_generator_calls
        fake_b, *same_b = _call_on_each(self.generator_ab, [a, b] if identity else [a], training, stack)
        fake_a, *same_a = _call_on_each(self.generator_ba, [b, a] if identity else [b], training, stack)
        rec_a = self.generator_ba(fake_b, training=training)
        rec_b = self.generator_ab(fake_a, training=training)
        d_b = self.discriminator_b(fake_b, training=training)
        d_a = self.discriminator_a(fake_a, training=training)
        t = {
            "adversarial_ab": ops.mean(ops.square(d_b - 1.0)),
            "adversarial_ba": ops.mean(ops.square(d_a - 1.0)),
            "cycle_a": ops.mean(ops.abs(rec_a - a)),
            "cycle_b": ops.mean(ops.abs(rec_b - b)),
        }
        if identity:
            t["identity_ab"] = ops.mean(ops.abs(same_b[0] - b))
            t["identity_ba"] = ops.mean(ops.abs(same_a[0] - a))
        else:
            t["identity_ab"] = t["identity_ba"] = ops.convert_to_tensor(0.0)
        t["generator_ab"] = t["adversarial_ab"] + self.cycle_weight * t["cycle_a"] + self.identity_weight * t["identity_ab"]
        t["generator_ba"] = t["adversarial_ba"] + self.cycle_weight * t["cycle_b"] + self.identity_weight * t["identity_ba"]
        t["total"] = t["generator_ab"] + t["generator_ba"]
        return t, fake_a, fake_b

    def discriminator_loss(self, discriminator, real, fake):
        """0.5 (mean((D(real) - 1)^2) + mean(D(fake)^2)): least squares, halved.

        D runs once on [real, fake] when `stack_discriminator_calls` (class docstring).
        """
        d_real, d_fake = _call_on_each(discriminator, [real, fake], True, self.stack_discriminator_calls)
        return 0.5 * (ops.mean(ops.square(d_real - 1.0)) + ops.mean(ops.square(d_fake)))

    def gan_step(self, a, b, owner=None, extra_generator_loss=None):
        """One generator step then one discriminator step on (a, b) in [-1, 1].

        `owner` is the model whose optimizers and loss trackers are used
        (self, or an `ImbalanceCycleGAN` training this CycleGAN in ALT mode).
        `extra_generator_loss(fake_a, fake_b)` (images in `value_range`)
        returns a scalar added to L_G (eq. 7's classifier terms).
        Calls on independent inputs are stacked (G_AB on [a, b], G_BA on
        [b, a], D_A on [a, pooled fake_a], D_B likewise) unless a network
        has a batch-coupled layer: see the class docstring.
        """
        owner = self if owner is None else owner
        with tf.GradientTape() as tape:
            terms, fake_a, fake_b = self.generator_losses(a, b, training=True)
            total = terms["total"]
            extra = None
            if extra_generator_loss is not None:
                extra = extra_generator_loss(self.from_generator_range(fake_a), self.from_generator_range(fake_b))
                total = total + extra
        tracked_ab, tracked_ba = terms["generator_ab"], terms["generator_ba"]
        _apply_joint(owner, ("generator_ab", "generator_ba"), tape, total, (tracked_ab, tracked_ba))
        fake_a = self.pool_a(ops.stop_gradient(fake_a), training=True)
        fake_b = self.pool_b(ops.stop_gradient(fake_b), training=True)
        with tf.GradientTape() as tape:
            loss_a = self.discriminator_loss(self.discriminator_a, a, fake_a)
            loss_b = self.discriminator_loss(self.discriminator_b, b, fake_b)
            loss_d = loss_a + loss_b  # inside the tape, or it has no gradient
        _apply_joint(owner, ("discriminator_a", "discriminator_b"), tape, loss_d, (loss_a, loss_b))
        return terms, extra

    def train_step(self, data):
        a, b = _unpack_pair(data)
        self.gan_step(self.to_generator_range(a), self.to_generator_range(b))
        return self.metrics_result()

    def test_step(self, data):
        """Generator losses on (a, b) pairs (no update), recorded in the generator trackers."""
        a, b = _unpack_pair(data)
        terms, _, _ = self.generator_losses(self.to_generator_range(a), self.to_generator_range(b), training=False)
        self.loss_trackers["generator_ab"].update_state(terms["generator_ab"])
        self.loss_trackers["generator_ba"].update_state(terms["generator_ba"])
        return {k: self.loss_trackers[k].result() for k in ("generator_ab", "generator_ba")}

    def fit(self, x=None, y=None, batch_size=None, shuffle_seed=None, **kwargs):
        """Train on (a, b) batches; `fit(a, b, batch_size=1)` with arrays pairs them with `unpaired_dataset`."""
        if x is not None and y is not None and not isinstance(x, tf.data.Dataset):
            for images, what in ((x, "a"), (y, "b")):
                images = check_images(images, name=what, min_rank=2)
                check_sample_shape(images.shape[1:], self.image_shape, name=what)
            seed = shuffle_seed if shuffle_seed is not None else (self.seed or 0)
            pair_epochs = PairEpochs()
            x, y = unpaired_dataset(x, y, batch_size or 1, seed=seed, epoch=pair_epochs.epoch), None
            batch_size = None
            kwargs["callbacks"] = [pair_epochs, *list(kwargs.get("callbacks") or [])]
        kwargs.setdefault("shuffle", False)  # the pair dataset shuffles itself
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    # Serialization -----------------------------------------------------------

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            **{name: ser(getattr(self, name)) for name in _GAN_PLAYERS},
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_size,
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in _GAN_PLAYERS:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        config["value_range"] = tuple(config.get("value_range", (-1.0, 1.0)))
        return cls(**config)


def binary_only_error(num_classes):
    """The ValueError for data that is not a two-class problem."""
    return ValueError(
        f"ImbalanceCycleGAN is a binary method (a majority class A and a minority class B, translated into each "
        f"other by a CycleGAN); the data has {num_classes} classes. Select two classes of your data first and "
        f"relabel them 0 and 1, e.g. keep = np.isin(y, [3, 8]); x, y = x[keep], (y[keep] == 8).astype(int)."
    )


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ImbalanceCycleGAN(MultiPlayerModel):
    """ImbalanceCycleGAN (Sahoo et al. 2020): a classifier trained jointly with a CycleGAN (eqs. 4-7).

    Labels are 0/1; the majority class A is the one with more training
    samples (a tie makes class 0 the majority), B the other, gamma = N_A / N_B.
    `cycle_gan` must translate A -> B in `generator_ab` (train it on
    (majority, minority) pairs). Every step takes an (a, b) batch pair made
    by `fit` from ordinary (x, y) data with `unpaired_dataset` (one epoch =
    ceil(N_A / batch_size) batches, minority images cycled), since eqs. 4-5
    pair an expectation over a with one over b.

    Classifier loss (eqs. 4-6), z(x) = P(minority | x) = softmax(logits)[B]:

        L^B = -E_b log z(b) - E_a log z(G_AB(a))              (minority label)
        L^A = -E_a log(1 - z(a)) - E_b log(1 - z(G_BA(b)))    (majority label)
        L_cls = L^B + (1 / gamma) L^A

    The paper (eq. 6 and the text after it) puts 1/gamma on L^A, the terms
    labelled majority, "to penalize the classifier much more when it
    misclassifies a minority class real image"; `majority_weight` overrides
    1/gamma. Each expectation is the mean over its half of the batch pair.

    Modes (Sec. 3, Appendix A):

    - `"aug"`: the (pre-trained) CycleGAN is frozen and only generates;
      the classifier minimizes L_cls. Only the classifier has an optimizer
      step; the CycleGAN's weights, pools and optimizers are untouched.
    - `"alt"`: `callbacks.AlternatingPhases(switch_every)` (added by `fit`)
      alternates every `switch_every` epochs (5 in Appendix A.1), starting
      with the classifier: phase 0 is the AUG step; phase 1 trains the
      CycleGAN (generators and discriminators, as `CycleGAN.train_step`)
      with the generators' objective extended by eq. 7's classifier terms
      `gan_classifier_weight` * (L^A + L^B) (eq. 7 adds both unweighted, so
      no 1/gamma there), through the frozen classifier (run with
      `training=False`: no dropout, as a fixed teacher). Only the translated
      images' terms depend on the generators.

    The classifier must output two logits (the paper's two neurons); class
    ids are the data's labels. Its optimizer defaults to Adam(2e-4,
    beta_1=0.5) (the paper gives only the CycleGAN's optimizer; we use it for
    every player); the CycleGAN's four players get fresh optimizers of the
    same kind here (warm start of the weights, Appendix A.1; its own
    optimizers from pre-training are not used).

    Args:
        classifier: Keras model, images -> (B, 2) logits (e.g.
            `applications.ImbalanceCycleGANClassifier`).
        cycle_gan: a `CycleGAN` (usually pre-trained on majority -> minority).
        mode: "aug" (default) or "alt".
        switch_every: epochs per phase in ALT mode (5).
        class_counts: training counts [N_0, N_1]; None: derived by `adapt`
            (called by `fit` on its data when unset).
        majority_weight: weight of L^A; None -> 1 / gamma.
        gan_classifier_weight: weight of L^A + L^B in the ALT CycleGAN phase (1).
        seed: int or None.

    Call: x (B, H, W, C) -> classifier logits (B, 2). Multi-class data
    raises a ValueError (the method is binary).
    """

    player_names = ("classifier",) + _GAN_PLAYERS

    def __init__(self, classifier, cycle_gan, mode="aug", switch_every=5, class_counts=None, majority_weight=None,
                 gan_classifier_weight=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not isinstance(cycle_gan, CycleGAN):
            raise ValueError(f"cycle_gan must be a keras_imbalance.models.CycleGAN, got {type(cycle_gan).__name__}")
        if isinstance(switch_every, bool) or not isinstance(switch_every, (int, np.integer)) or switch_every < 1:
            raise ValueError(f"switch_every must be an integer >= 1, got {switch_every!r}")
        out = classifier.output_shape
        if isinstance(out, list) or out[-1] != 2:
            raise ValueError(
                f"the classifier must output 2 logits (majority and minority), got output shape {out}"
                + (f"; {binary_only_error(out[-1])}" if not isinstance(out, list) and out[-1] and out[-1] > 2 else "")
            )
        self.classifier = classifier
        self.cycle_gan = cycle_gan
        self.mode = mode
        self.switch_every = int(switch_every)
        self.majority_weight = None if majority_weight is None else float(majority_weight)
        self.gan_classifier_weight = float(gan_classifier_weight)
        self.image_shape = _fixed_image_shape(classifier, "classifier")
        if self.image_shape != cycle_gan.image_shape:
            raise ValueError(f"the classifier takes {self.image_shape}, the CycleGAN translates {cycle_gan.image_shape}")
        self.alt_phase = keras.Variable(0, dtype="int32", trainable=False, name="alt_phase")
        self._traced_phase = 0
        self._phase_train_functions = {}  # phase -> compiled train function, reset by compile
        self.class_counts = None
        if class_counts is not None:
            self.set_class_counts(class_counts)
        self.mark_built(self.image_shape)

    # Players of the CycleGAN, seen as this model's players.
    @property
    def generator_ab(self):
        return self.cycle_gan.generator_ab

    @property
    def generator_ba(self):
        return self.cycle_gan.generator_ba

    @property
    def discriminator_a(self):
        return self.cycle_gan.discriminator_a

    @property
    def discriminator_b(self):
        return self.cycle_gan.discriminator_b

    def active_players(self):
        return list(self.player_names) if self.mode == "alt" else ["classifier"]

    def default_optimizer(self, name):
        return _paper_adam()

    def compile(self, classifier_optimizer=None, generator_ab_optimizer=None, generator_ba_optimizer=None,
                discriminator_a_optimizer=None, discriminator_b_optimizer=None, **kwargs):
        """One optimizer per player (Adam(2e-4, beta_1=0.5) by default); the CycleGAN's four are used in ALT mode only.

        Other kwargs (e.g. `metrics`) go to `keras.Model.compile`; metrics see
        the classifier's logits on the real a and b of each batch.
        """
        self._phase_train_functions = {}  # functions traced for the previous optimizers
        super().compile(optimizers={"classifier": classifier_optimizer, "generator_ab": generator_ab_optimizer,
                                    "generator_ba": generator_ba_optimizer,
                                    "discriminator_a": discriminator_a_optimizer,
                                    "discriminator_b": discriminator_b_optimizer}, **kwargs)

    # Classes -----------------------------------------------------------------

    def set_class_counts(self, counts):
        counts = np.asarray(counts).reshape(-1)
        if counts.size != 2:
            raise binary_only_error(counts.size)
        if np.any(counts < 1) or np.any(counts != np.round(counts)):
            raise ValueError(f"class_counts must be two positive integers, got {counts.tolist()}")
        self.class_counts = [int(c) for c in counts]
        self.majority_class = 0 if counts[0] >= counts[1] else 1
        self.minority_class = 1 - self.majority_class
        self.gamma = max(counts) / min(counts)

    def adapt(self, x, y=None):
        """Take the class counts (hence majority, minority and gamma) from (x, y) or a dataset of (x, y)."""
        if y is None:
            x, y = collect_batches(x, "ImbalanceCycleGAN.fit")
        y = check_labels(y)  # integer ids first: non-integer or string labels are not "more classes"
        labels = np.unique(y)
        if len(labels) > 2 or (y.size and (np.min(y) < 0 or np.max(y) > 1)):
            raise binary_only_error(len(labels) if len(labels) > 2 else int(np.max(y)) + 1)
        x, y = check_xy(x, y, num_classes=2)
        check_sample_shape(x.shape[1:], self.image_shape)
        self.set_class_counts(_class_counts(y, 2))
        return self

    @property
    def l_a_weight(self):
        """The weight of L^A in L_cls: `majority_weight`, or 1 / gamma."""
        return self.majority_weight if self.majority_weight is not None else 1.0 / self.gamma

    def set_phase(self, phase):
        """ALT phase: 0 trains the classifier, 1 the CycleGAN (called by `AlternatingPhases`)."""
        if int(phase) not in (0, 1):
            raise ValueError(f"phase must be 0 (classifier) or 1 (CycleGAN), got {phase!r}")
        if self.mode == "aug" and int(phase) != 0:
            raise ValueError("AUG mode has only the classifier phase; use mode='alt' to train the CycleGAN")
        self.alt_phase.assign(int(phase))
        if int(phase) != self._traced_phase:
            self._switch_train_function(int(phase))

    def _switch_train_function(self, phase):
        """Make the train function the one of `phase`, tracing it only the first time.

        The step is chosen in Python, one train function per phase: a
        tf.cond around optimizer steps fails under tf.distribute (a
        merge_call inside control flow). Both functions are kept until the
        next `compile`, so a switch back reuses the traced graph; retracing
        at every switch cost ~10 s per switch on a 2-core CPU, more than the
        steps of several digits epochs (docs/performance.md).
        """
        previous, self._traced_phase = self._traced_phase, phase
        current = getattr(self, "train_function", None)
        if current is None:
            return  # not made yet: fit makes the function of the current phase
        self._phase_train_functions[previous] = current
        cached = self._phase_train_functions.get(phase)
        if cached is not None:
            self.train_function = cached
        else:
            self.make_train_function(force=True)

    def load_own_variables(self, store):
        super().load_own_variables(store)
        phase = int(np.asarray(self.alt_phase))  # the restored phase picks the step
        if phase != self._traced_phase:
            self._switch_train_function(phase)

    # Forward -------------------------------------------------------------------

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def translate_ab(self, x):
        """Majority -> minority images (the CycleGAN's G_AB), in its value range."""
        return self.cycle_gan.translate_ab(x)

    def translate_ba(self, x):
        """Minority -> majority images (G_BA)."""
        return self.cycle_gan.translate_ba(x)

    # Training ------------------------------------------------------------------

    def classifier_losses(self, a, b, fake_a, fake_b, training=True):
        """(L^A, L^B, logits of the real a, logits of the real b); images in the data range.

        fake_b = G_AB(a) (labelled minority), fake_a = G_BA(b) (labelled majority).
        """
        n_a, n_b = ops.shape(a)[0], ops.shape(b)[0]
        logits = self.classifier(ops.concatenate([a, fake_a, b, fake_b], axis=0), training=training)
        log_p = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        log_major, log_minor = log_p[:, self.majority_class], log_p[:, self.minority_class]
        real_a, gen_a = -log_major[:n_a], -log_major[n_a : n_a + n_b]
        real_b, gen_b = -log_minor[n_a + n_b : n_a + 2 * n_b], -log_minor[n_a + 2 * n_b :]
        loss_a = ops.mean(real_a) + ops.mean(gen_a)
        loss_b = ops.mean(real_b) + ops.mean(gen_b)
        return loss_a, loss_b, logits[:n_a], logits[n_a + n_b : n_a + 2 * n_b]

    def _classifier_step(self, a, b):
        fake_b = ops.stop_gradient(self.cycle_gan.translate_ab(a))
        fake_a = ops.stop_gradient(self.cycle_gan.translate_ba(b))
        with tf.GradientTape() as tape:
            loss_a, loss_b, logits_a, logits_b = self.classifier_losses(a, b, fake_a, fake_b, training=True)
            loss = loss_b + self.l_a_weight * loss_a
        self.apply_player_gradients("classifier", tape, loss)
        y = ops.concatenate([ops.full((ops.shape(a)[0],), self.majority_class, "int32"),
                             ops.full((ops.shape(b)[0],), self.minority_class, "int32")], axis=0)
        self.update_compiled_metrics(y, ops.concatenate([logits_a, logits_b], axis=0))
        return ops.convert_to_tensor(0, "int32")

    def _gan_step(self, a, b):
        gan = self.cycle_gan

        def classifier_terms(fake_a, fake_b):
            loss_a, loss_b, _, _ = self.classifier_losses(a, b, fake_a, fake_b, training=False)
            return self.gan_classifier_weight * (loss_a + loss_b)

        gan.gan_step(gan.to_generator_range(a), gan.to_generator_range(b), owner=self,
                     extra_generator_loss=classifier_terms)
        return ops.convert_to_tensor(1, "int32")

    def train_step(self, data):
        if self.class_counts is None:
            raise ValueError("ImbalanceCycleGAN has no class counts: call adapt(x, y) or pass class_counts")
        a, b = _unpack_pair(data)
        if self.mode == "aug" or self._traced_phase == 0:
            self._classifier_step(a, b)
        else:
            self._gan_step(a, b)
        return self.metrics_result()

    def fit(self, x=None, y=None, batch_size=None, epochs=1, callbacks=None, shuffle_seed=None, **kwargs):
        """Train on ordinary (x, y) data (arrays or a finite dataset of (x, y) batches), y in {0, 1}.

        The data is read into memory once, split by class into a (majority,
        minority) pair stream (`unpaired_dataset`, `batch_size` pairs per
        step: the dataset's batch size, or 32 for arrays, when not given).
        Class counts come from this data unless set before. In ALT mode an
        `AlternatingPhases(switch_every)` callback is added when absent.
        """
        if isinstance(x, tf.data.Dataset) or y is None:
            if y is not None:
                raise ValueError("pass either arrays x, y or a dataset of (x, y) batches")
            first = next(iter(x))
            batch_size = batch_size or int(np.asarray(first[0]).shape[0])
            x, y = collect_batches(x, "ImbalanceCycleGAN.fit")
        if self.class_counts is None:
            self.adapt(x, y)
        else:
            labels = np.unique(check_labels(y))
            if len(labels) > 2:
                raise binary_only_error(len(labels))
        x, y = check_xy(x, y, num_classes=2)
        check_sample_shape(x.shape[1:], self.image_shape)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"images have shape {x.shape[1:]}, the model takes {self.image_shape}")
        a, b = x[y == self.majority_class], x[y == self.minority_class]
        if len(a) == 0 or len(b) == 0:
            raise ValueError(f"both classes need samples; got {len(a)} majority and {len(b)} minority images")
        seed = shuffle_seed if shuffle_seed is not None else (self.seed or 0)
        # Epoch-seeded: a run resumed by BackupAndRestore sees the same pairs.
        pair_epochs = PairEpochs()
        pairs = unpaired_dataset(a, b, batch_size or 32, seed=seed, epoch=pair_epochs.epoch)
        callbacks = [pair_epochs, *list(callbacks or [])]
        if self.mode == "alt" and not any(isinstance(c, AlternatingPhases) for c in callbacks):
            callbacks.insert(0, AlternatingPhases(self.switch_every))
        if self.mode == "aug":
            self.alt_phase.assign(0)
        kwargs.setdefault("shuffle", False)  # the pair dataset shuffles itself
        return super().fit(pairs, epochs=epochs, callbacks=callbacks, **kwargs)

    def epoch_steps(self, batch_size):
        """Batches per epoch of `fit`: ceil(N_A / batch_size)."""
        return math.ceil(max(self.class_counts) / batch_size)

    # Serialization -------------------------------------------------------------

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "classifier": ser(self.classifier),
            "cycle_gan": ser(self.cycle_gan),
            "mode": self.mode,
            "switch_every": self.switch_every,
            "class_counts": self.class_counts,
            "majority_weight": self.majority_weight,
            "gan_classifier_weight": self.gan_classifier_weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        config["cycle_gan"] = keras.saving.deserialize_keras_object(config["cycle_gan"])
        return cls(**config)
