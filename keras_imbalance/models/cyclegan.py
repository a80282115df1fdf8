"""CycleGAN (Zhu et al. 2017) as ImbalanceCycleGAN uses it (Sahoo et al. 2020, eqs. 1-3, Appendix A).

Unpaired translation A <-> B with two generators, two discriminators,
least-squares adversarial loss, L1 cycle (weight beta = 10) and identity
(alpha = 5) losses, discriminator loss halved, a history pool of 50
generated images per discriminator (`layers.ImageHistoryPool`), four
Adam(2e-4, beta_1=0.5) optimizers; `callbacks.LinearLRDecay` gives the
constant-then-linear learning rate of Appendix A.2.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_imbalance.datasets.pairs import PairEpochs, unpack_pair, unpaired_dataset
from keras_imbalance.datasets.validation import check_fit_data
from keras_imbalance.layers.image_history_pool import ImageHistoryPool
from keras_imbalance.models.base import MultiPlayerModel, deserialize_networks, serialize_networks
from keras_imbalance.models.pixel_range import check_pixel_range

GAN_PLAYERS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")


# Appendix A.1: "We follow [50] for the hyperparameters and choice of
# optimizers": CycleGAN's Adam(2e-4, beta_1 = 0.5), for every player of both models.
PAPER_ADAM = {"learning_rate": 2e-4, "beta_1": 0.5}


def fixed_image_shape(model, what):
    """(H, W, C) of a single-image-input network; a ValueError naming `what` otherwise."""
    shape = model.input_shape
    if isinstance(shape, list):
        raise ValueError(f"{what} must take a single image input, got input shapes {shape}")
    shape = tuple(shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise ValueError(f"{what} must take images of a fixed size (H, W, C), got input shape {model.input_shape}")
    return shape


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


def call_on_each(network, inputs, training, stacked):
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

    player_names = GAN_PLAYERS
    network_names = GAN_PLAYERS
    default_adam = PAPER_ADAM

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b, cycle_weight=10.0,
                 identity_weight=5.0, pool_size=50, value_range=(-1.0, 1.0), seed=None, **kwargs):
        # uint8 pixels given to `call` are scaled to the images' range.
        kwargs.setdefault("pixel_range", check_pixel_range(value_range, "value_range"))
        super().__init__(seed=seed, **kwargs)
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.image_shape = fixed_image_shape(generator_ab, "generator_ab")
        for model, what in ((generator_ba, "generator_ba"), (discriminator_a, "discriminator_a"),
                            (discriminator_b, "discriminator_b")):
            if fixed_image_shape(model, what) != self.image_shape:
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
        fake_b, *same_b = call_on_each(self.generator_ab, [a, b] if identity else [a], training, stack)
        fake_a, *same_a = call_on_each(self.generator_ba, [b, a] if identity else [b], training, stack)
        # float32 losses under mixed precision, whatever dtype the networks end in.
        rec_a = ops.cast(self.generator_ba(fake_b, training=training), "float32")
        rec_b = ops.cast(self.generator_ab(fake_a, training=training), "float32")
        d_b = ops.cast(self.discriminator_b(fake_b, training=training), "float32")
        d_a = ops.cast(self.discriminator_a(fake_a, training=training), "float32")
        t = {
            "adversarial_ab": ops.mean(ops.square(d_b - 1.0)),
            "adversarial_ba": ops.mean(ops.square(d_a - 1.0)),
            "cycle_a": ops.mean(ops.abs(rec_a - a)),
            "cycle_b": ops.mean(ops.abs(rec_b - b)),
        }
        if identity:
            t["identity_ab"] = ops.mean(ops.abs(ops.cast(same_b[0], "float32") - b))
            t["identity_ba"] = ops.mean(ops.abs(ops.cast(same_a[0], "float32") - a))
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
        d_real, d_fake = (ops.cast(d, "float32") for d in
                          call_on_each(discriminator, [real, fake], True, self.stack_discriminator_calls))
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
        owner.apply_joint_gradients(("generator_ab", "generator_ba"), tape, total, (tracked_ab, tracked_ba))
        fake_a = self.pool_a(ops.stop_gradient(fake_a), training=True)
        fake_b = self.pool_b(ops.stop_gradient(fake_b), training=True)
        with tf.GradientTape() as tape:
            loss_a = self.discriminator_loss(self.discriminator_a, a, fake_a)
            loss_b = self.discriminator_loss(self.discriminator_b, b, fake_b)
            loss_d = loss_a + loss_b  # inside the tape, or it has no gradient
        owner.apply_joint_gradients(("discriminator_a", "discriminator_b"), tape, loss_d, (loss_a, loss_b))
        return terms, extra

    def train_step(self, data):
        a, b = unpack_pair(data)
        self.gan_step(self.to_generator_range(a), self.to_generator_range(b))
        return self.metrics_result()

    def test_step(self, data):
        """Generator losses on (a, b) pairs (no update), recorded in the generator trackers."""
        a, b = unpack_pair(data)
        terms, _, _ = self.generator_losses(self.to_generator_range(a), self.to_generator_range(b), training=False)
        self.loss_trackers["generator_ab"].update_state(terms["generator_ab"])
        self.loss_trackers["generator_ba"].update_state(terms["generator_ba"])
        return {k: self.loss_trackers[k].result() for k in ("generator_ab", "generator_ba")}

    # `fit` takes (a, b) image batches; MethodModel.fit checks both against image_shape and value_range.
    fit_data = "pairs"

    def fit_sample_shape(self):
        return self.image_shape

    def fit(self, x=None, y=None, batch_size=None, shuffle_seed=None, **kwargs):
        """Train on (a, b) batches; `fit(a, b, batch_size=1)` with arrays pairs them with `unpaired_dataset`."""
        if x is not None and y is not None and not isinstance(x, tf.data.Dataset):
            # Shape first (a sample-shape message beats unpaired_dataset's rank-4 one), values, value range.
            check_fit_data(x, y, self.image_shape, value_range=self.value_range, pairs=True)
            seed = shuffle_seed if shuffle_seed is not None else (self.seed or 0)
            pair_epochs = PairEpochs()
            x, y = unpaired_dataset(x, y, batch_size or 1, seed=seed, epoch=pair_epochs.epoch), None
            batch_size = None
            kwargs["callbacks"] = [pair_epochs, *list(kwargs.get("callbacks") or [])]
        kwargs.setdefault("shuffle", False)  # the pair dataset shuffles itself
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    # Serialization -----------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            **serialize_networks(self, self.network_names),
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_size,
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = deserialize_networks(config, cls.network_names, custom_objects)
        config["value_range"] = tuple(config.get("value_range", (-1.0, 1.0)))
        return cls(**config)
