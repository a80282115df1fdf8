"""GAMO: Generative Adversarial Minority Oversampling (Mullick, Datta, Das; ICCV 2019).

Three players (Sec. 3, Algorithm 1): a classifier M, a conditional
discriminator D(x | i) and a convex generator G whose samples are convex
combinations of the real samples of a minority class (eq. 1), plus, in the
feature-space variant, a convolutional feature extractor F trained with M on
real data. `GAMO2Pix` (Sec. 5) maps feature-space samples back to images.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.applications.gamo import GAMO2PixDecoder, GAMOGenerator
from keras_imbalance.callbacks import AlternatingPhases
from keras_imbalance.layers.convex_generator import ConvexGenerator
from keras_imbalance.distribute import replica_draws
from keras_imbalance.models.base import MultiPlayerModel, PhasedTrainFunctions, deserialize_networks, serialize_networks
from keras_imbalance.models.convex_oversampling import ConvexOversamplerBase, find_layer
from keras_imbalance.models.convex_oversampling import RefreshFeatureBank  # noqa: F401  (was defined here)

_LOSSES = ("least_squares", "cross_entropy")
_FEATURE_SCHEDULES = ("joint", "alternating")


@keras.saving.register_keras_serializable(package="keras_imbalance")
class GAMO(PhasedTrainFunctions, ConvexOversamplerBase):
    """GAMO (Mullick et al., ICCV 2019): adversarial convex oversampling inside the classifier's training.

    One `train_step` runs one minibatch of Algorithm 1 in the authors' code order:

    1. M (and F, if any) on the real batch with one-hot targets; D on the
       real batch (F's output held fixed) with targets 1 - U(0, 0.1).
    2. B labels drawn with probability proportional to the deficit
       n_max - n_i (Sec. 3.5), B samples generated with G's BN in inference
       mode; M on the fakes with their one-hot labels; D on the fakes with
       targets U(0, 0.1).
    3. B labels drawn uniformly over the minority classes (Alg. 1 line 13);
       G against frozen M with target 1 - one-hot(i) on the minority outputs
       (eq. 6, L_i7 + L_i8; see `majority_in_generator_target`), then
       G against frozen D with target 1 (L_i9). G's gradients never reach F.

    Each update is a separate optimizer step, as the code's `train_on_batch`
    calls are. Losses (`loss`):

    - `"least_squares"` (Sec. 3.4, eqs. 4-6; the default, the paper's better
      variant): mean squared error between M's softmax (D's sigmoid) and
      the targets above.
    - `"cross_entropy"` (eqs. 2-3): eq. 2 scores every output M_i as a
      one-vs-rest probability (log M_i for the true class, log(1 - M_j) for
      the others), i.e. a binary cross-entropy on each softmax output; D's
      terms Q_i1, Q_i2 are the usual binary cross-entropy. G's terms are the
      non-saturating form with target 1 - onehot(i): G maximizes
      log(1 - M_i) of its own class, log M_j of the other scored outputs
      (`majority_in_generator_target`) and log D.

    `discriminator=None` is the GAMO\\D ablation. Pixel space: M consumes the
    inputs as they are (images or flat vectors) and G combines stored inputs.
    Feature space (`feature_extractor` given): M consumes F(x), the banks hold
    F's features, recomputed each epoch by `RefreshFeatureBank`. Set-up
    shared with PolarityGAN: `models.convex_oversampling.ConvexOversamplerBase`.

    Args:
        classifier: Keras model, (B, *sample_shape) -> (B, C) logits, C >= 2
            (e.g. `applications.GAMOClassifier`). `call(x)` returns its logits.
        discriminator: Keras model `[samples, onehot (B, C)] -> (B, 1)` logit
            (e.g. `applications.GAMODiscriminator`), or None.
        feature_extractor: Keras model images -> features, or None (pixel space).
        generator: Keras model `[z, labels] -> samples` containing a
            `layers.ConvexGenerator` (`applications.GAMOGenerator`); None
            builds the default one in `adapt`.
        latent_dim: dimension of z (100).
        loss: `"least_squares"` or `"cross_entropy"`; stored as
            `loss_variant`, since `keras.Model` owns `self.loss` (the loss
            given to `compile`, None here, reset by every `compile`).
        label_noise: width of the U(0, noise) target smoothing for D (0.1).
        majority_in_generator_target: which of M's outputs G's loss scores
            (issue 19 readings). False (the default): the minority outputs
            only, eq. 6's L_i7 + L_i8 (j in C \\ {i, c}), also used for the
            cross-entropy variant. True: all C outputs, the majority's
            included: eq. 2's reading for cross entropy (G's samples of
            class i enter J_k4 through log(1 - M_k(G(z|i))) for every
            k != i, the majority c among them) and the authors' code's
            target 1 - onehot(i) for both variants.
        feature_schedule: in feature space, how F is trained (issue 19
            readings). "joint" (the default, the authors' code): F and M
            step together on each real batch. "alternating" (Algorithm 1,
            u = v = ceil(n/b)): F alone (M fixed, inference mode) for one
            epoch of ceil(n/b) batches, then M, D and G (F fixed) for the
            next, and so on; `fit` adds `callbacks.AlternatingPhases(1)`.
        seed: int or None, for the model's random draws.

    Call: x (B, *input_shape) -> logits (B, C).

    Example:

    >>> model = GAMO(applications.GAMOClassifier((8, 8, 1), 10),
    ...              applications.GAMODiscriminator((8, 8, 1), 10))
    >>> model.adapt(x_train, y_train)
    >>> model.compile(metrics=[metrics.BalancedAccuracy(10)])
    >>> model.fit(x_train, y_train, batch_size=32, epochs=10)
    """

    player_names = ("feature_extractor", "classifier", "discriminator", "generator")
    network_names = ("classifier", "discriminator", "feature_extractor", "generator")
    default_adam = {"learning_rate": 2e-4, "beta_1": 0.5}  # the authors' setting for every player
    adversary_player = "discriminator"
    convex_layer_class = ConvexGenerator
    method_name = "GAMO"
    # G mixes real samples, so any range works; the paper's pixels are in [-1, 1] (its decoder ends in
    # tanh) and the package's loaders give [0, 1], which lies inside: `fit` refuses 0-255 pixels only.
    value_range = (-1.0, 1.0)
    balanced_error = "the classes are balanced ({counts}); GAMO has no minority class to oversample"
    ungenerated_error = "class(es) {bad} have no generator unit; minority classes are {minority}"

    def __init__(
        self,
        classifier,
        discriminator=None,
        feature_extractor=None,
        generator=None,
        latent_dim=100,
        loss="least_squares",
        label_noise=0.1,
        majority_in_generator_target=False,
        feature_schedule="joint",
        seed=None,
        **kwargs,
    ):
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
        if feature_schedule not in _FEATURE_SCHEDULES:
            raise ValueError(f"feature_schedule must be one of {_FEATURE_SCHEDULES}, got {feature_schedule!r}")
        if feature_schedule == "alternating" and feature_extractor is None:
            raise ValueError("feature_schedule='alternating' alternates F's and M's training (Algorithm 1); "
                             "it needs a feature_extractor (pixel space has no F)")
        super().__init__(classifier, feature_extractor, latent_dim, seed=seed, **kwargs)
        self.feature_schedule = feature_schedule
        self._traced_phase = 0
        self._reset_phase_functions()
        self.majority_in_generator_target = bool(majority_in_generator_target)
        self.loss_variant = loss
        self.label_noise = float(label_noise)
        self.discriminator = discriminator
        self._finish_init(generator)

    # Set-up ----------------------------------------------------------------

    def compile(
        self,
        classifier_optimizer=None,
        generator_optimizer=None,
        discriminator_optimizer=None,
        feature_extractor_optimizer=None,
        **kwargs,
    ):
        """One Adam(2e-4, beta_1=0.5) per player by default (the authors' setting).

        `feature_extractor_optimizer` updates F on the real-batch loss (Alg. 1,
        line 4). Other keyword arguments (e.g. `metrics`) go to `keras.Model.compile`;
        metrics are computed on M's logits for the real batch.
        """
        self._reset_phase_functions()
        self._compile_players(classifier_optimizer, discriminator_optimizer, generator_optimizer,
                              feature_extractor_optimizer, **kwargs)

    def set_phase(self, phase):
        """Algorithm 1 phase (`feature_schedule="alternating"`): 0 trains F alone, 1 trains M, D and G."""
        if self.feature_schedule != "alternating":
            raise ValueError("set_phase needs feature_schedule='alternating'; the joint schedule has one phase")
        if int(phase) not in (0, 1):
            raise ValueError(f"phase must be 0 (F) or 1 (M, D, G), got {phase!r}")
        if int(phase) != self._traced_phase:
            self._switch_train_function(int(phase))

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        if self.feature_schedule == "alternating" and not any(isinstance(c, AlternatingPhases) for c in callbacks):
            # u = v = ceil(n/b): one epoch of batches per phase, F's first (Algorithm 1 lines 2-5).
            callbacks.insert(0, AlternatingPhases(1))
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def default_generator(self, counts):
        return GAMOGenerator(counts, self.sample_shape, latent_dim=self.latent_dim)

    def class_deficit(self, counts):
        """n_max - n_i (Sec. 3.5), float64 (C,)."""
        return counts.max() - counts

    def _set_generator(self, generator):
        super()._set_generator(generator)
        # Eq. 6 sums L_i7 + L_i8 over minority outputs i only (j in C \ {i, c}):
        # G is not asked to make its samples look like the majority class. The
        # code's target 1 - onehot also scores the majority output.
        columns = np.isin(np.arange(self.num_classes), self._minority) | bool(self.majority_in_generator_target)
        self._generator_columns = columns.astype("float32")

    def _is_adapted(self):
        # A reloaded GAMO carries its banks in G's weights and can fit without adapt.
        return self.generator is not None and (
            self._adapted_data is not None or any(float(ops.max(ops.abs(b))) > 0 for b in self.convex_generator.banks)
        )

    # Training ---------------------------------------------------------------

    def _class_loss(self, target, logits, columns=None):
        """Mean over the batch and the (selected) outputs of the per-output loss (float32, also for float16 logits)."""
        probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        if self.loss_variant == "least_squares":
            per_output = ops.square(probs - target)
        else:
            per_output = keras.losses.binary_crossentropy(target[..., None], probs[..., None])
        if columns is None:
            return ops.mean(per_output)
        return ops.mean(ops.sum(per_output * columns, axis=-1) / ops.sum(columns))

    def _adversarial_loss(self, target, logit):
        target, logit = ops.cast(target, "float32"), ops.cast(logit, "float32")  # float32 under mixed precision
        if self.loss_variant == "least_squares":
            return ops.mean(ops.square(ops.sigmoid(logit) - target))
        return ops.mean(keras.losses.binary_crossentropy(target, logit, from_logits=True))

    def _feature_step(self, x, y, onehot):
        """Algorithm 1 line 4: F alone on the real batch, M fixed (inference mode, no step)."""
        with tf.GradientTape() as tape:
            logits = self.classifier(self.features(x, training=True), training=False)
            loss = self._class_loss(onehot, logits)
        self.apply_player_gradients("feature_extractor", tape, loss)
        self.update_compiled_metrics(y, logits)
        return self.metrics_result()

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y = ops.cast(ops.reshape(y, (-1,)), "int32")
        batch = ops.shape(y)[0]
        onehot = ops.one_hot(y, self.num_classes)
        alternating = self.feature_schedule == "alternating"
        if alternating and self._traced_phase == 0:
            return self._feature_step(x, y, onehot)
        classifier, discriminator, generator = self.classifier, self.discriminator, self.generator
        # Under tf.distribute every draw is made for the global batch and
        # sliced, so R replicas use the random numbers of one device.
        draw = replica_draws(batch)
        sg = self.seed_generator

        # 1. M (and F) on the real batch, then D on it.
        feats = ops.stop_gradient(self.train_classifier_on_real(x, y, lambda logits: self._class_loss(onehot, logits),
                                                                update_features=not alternating))
        if discriminator is not None:
            real_target = 1.0 - draw(lambda n: keras.random.uniform((n, 1), 0.0, self.label_noise, seed=sg))
            with tf.GradientTape() as tape:
                loss_d_real = self._adversarial_loss(real_target, discriminator([feats, onehot], training=True))
            self.apply_player_gradients("discriminator", tape, loss_d_real)

        # 2. Deficit-proportional fakes for M and D, G's BN in inference mode.
        fake_labels = draw(self.draw_fake_labels)
        fake_onehot = ops.one_hot(fake_labels, self.num_classes)
        z = draw(lambda n: keras.random.normal((n, self.latent_dim), seed=sg))
        fakes = ops.stop_gradient(generator([z, fake_labels], training=False))
        with tf.GradientTape() as tape:
            loss_fake = self._class_loss(fake_onehot, classifier(fakes, training=True))
        self.apply_player_gradients("classifier", tape, loss_fake)
        if discriminator is not None:
            fake_target = draw(lambda n: keras.random.uniform((n, 1), 0.0, self.label_noise, seed=sg))
            with tf.GradientTape() as tape:
                loss_d_fake = self._adversarial_loss(fake_target, discriminator([fakes, fake_onehot], training=True))
            self.apply_player_gradients("discriminator", tape, loss_d_fake)

        # 3. G against frozen M, then against frozen D (uniform minority labels).
        pick = draw(lambda n: keras.random.randint((n,), 0, len(self._minority), seed=sg))
        g_labels = ops.take(ops.convert_to_tensor(self._minority), pick)
        g_onehot = ops.one_hot(g_labels, self.num_classes)
        z = draw(lambda n: keras.random.normal((n, self.latent_dim), seed=sg))
        with tf.GradientTape() as tape:
            loss_g_m = self._class_loss(
                1.0 - g_onehot, classifier(generator([z, g_labels], training=True), training=False), columns=self._generator_columns
            )
        self.apply_player_gradients("generator", tape, loss_g_m)
        if discriminator is not None:
            with tf.GradientTape() as tape:
                d_out = discriminator([generator([z, g_labels], training=True), g_onehot], training=False)
                loss_g_d = self._adversarial_loss(ops.ones_like(d_out), d_out)
            self.apply_player_gradients("generator", tape, loss_g_d)
        return self.metrics_result()

    # Serialization ------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            **serialize_networks(self, self.network_names),
            "latent_dim": self.latent_dim,
            "loss": self.loss_variant,
            "label_noise": self.label_noise,
            "majority_in_generator_target": self.majority_in_generator_target,
            "feature_schedule": self.feature_schedule,
        }


@keras.saving.register_keras_serializable(package="keras_imbalance")
class GAMO2Pix(MultiPlayerModel):
    """GAMO2pix (Sec. 5, Fig. 5a): per-class VAEs that turn GAMO's feature vectors into images.

    For every class k, a VAE whose encoder is the frozen feature extractor F
    followed by two Dense heads (mean and log-variance of a `latent_dim`
    Gaussian) and whose decoder is `applications.GAMO2PixDecoder`. A sample
    of class k trains only class k's VAE (per-class networks, as in the
    paper). Loss per sample: squared pixel error summed over pixels (the
    code's MSE scaled by the pixel count) + KL(N(mu, exp(logvar)) || N(0, I)),
    with the log-variance used consistently in the reparameterization
    z = mu + exp(logvar / 2) * eps and in the KL (the authors' code samples
    with exp(z_sigma) while its KL treats z_sigma as a log-variance; not copied).

    Images are expected in [-1, 1] (the decoder ends in tanh), like GAMO's pixels.

    Args:
        feature_extractor: GAMO's F, images -> features; never trained here.
        num_classes: C.
        generator: GAMO's (feature-space) generator model, used by
            `generate_images`; optional.
        latent_dim: VAE latent size (32; the paper does not give it).
        filters: decoder width (32, the code's).
        seed: int or None.

    Call: images x (B, H, W, ch) -> reconstructions by every class's VAE from
    its mean code, (B, C, H, W, ch) (deterministic, so it can be served).
    `fit(x, y)` trains the VAEs; `generate_images(class_id, n)` decodes GAMO samples.
    """

    player_names = ("vaes",)
    network_names = ("feature_extractor", "generator", "vaes")

    def __init__(self, feature_extractor, num_classes, generator=None, latent_dim=32, filters=32, seed=None, vaes=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.feature_extractor = feature_extractor
        self.num_classes = int(num_classes)
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.filters = int(filters)
        self.image_shape = tuple(feature_extractor.input_shape[1:])
        if len(self.image_shape) != 3:
            raise ValueError(f"GAMO2Pix needs an image feature extractor (H, W, C), got input {self.image_shape}")
        feature_dim = int(np.prod(feature_extractor.output_shape[1:]))
        self.vaes = vaes if vaes is not None else [self._make_vae(k, feature_dim) for k in range(self.num_classes)]
        if len(self.vaes) != self.num_classes:
            raise ValueError(f"expected {self.num_classes} VAEs, got {len(self.vaes)}")
        self.mark_built(self.image_shape)

    # The decoders end in tanh: images in [-1, 1] (data in [0, 1] lies inside).
    value_range = (-1.0, 1.0)
    fit_data = "classes"

    def fit_sample_shape(self):
        return self.image_shape

    def _make_vae(self, k, feature_dim):
        feats = keras.Input((feature_dim,), name="features")
        eps = keras.Input((self.latent_dim,), name="eps")
        mu = keras.layers.Dense(self.latent_dim, name="mean")(feats)
        logvar = keras.layers.Dense(self.latent_dim, name="log_var")(feats)
        decoder = GAMO2PixDecoder(self.latent_dim, self.image_shape, filters=self.filters, name=f"decoder_{k}")
        return GAMO2PixVAE(mu_head=keras.Model(feats, [mu, logvar], name=f"encoder_head_{k}"), decoder=decoder, name=f"vae_{k}")

    def compile(self, vae_optimizer=None, **kwargs):
        super().compile(optimizers={"vaes": vae_optimizer}, **kwargs)

    def player_variables(self, name):
        return [v for vae in self.vaes for v in vae.trainable_variables]

    def _features(self, x):
        f = ops.stop_gradient(self.feature_extractor(x, training=False))
        return ops.reshape(f, (ops.shape(f)[0], -1))

    def call(self, x, training=False):
        f = self._features(x)
        return ops.stack([vae.decoder(vae.mu_head(f)[0], training=training) for vae in self.vaes], axis=1)

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y = ops.cast(ops.reshape(y, (-1,)), "int32")
        f = self._features(x)
        batch = ops.shape(f)[0]
        eps = replica_draws(batch)(lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator))
        with tf.GradientTape() as tape:
            total = 0.0
            for k, vae in enumerate(self.vaes):
                mu, logvar = (ops.cast(t, "float32") for t in vae.mu_head(f))  # float32 losses under mixed precision
                recon = ops.cast(vae.decoder(mu + ops.exp(0.5 * logvar) * eps, training=True), "float32")
                pixel = ops.sum(ops.reshape(ops.square(recon - x), (ops.shape(x)[0], -1)), axis=-1)
                kl = -0.5 * ops.sum(1.0 + logvar - ops.square(mu) - ops.exp(logvar), axis=-1)
                mask = ops.cast(ops.equal(y, k), "float32")
                total = total + ops.mean(mask * (pixel + kl))
        self.apply_player_gradients("vaes", tape, total)
        return self.metrics_result()

    def decode(self, features, class_id, seed=None):
        """Images from feature vectors through class `class_id`'s VAE (sampled latent), numpy."""
        k = int(class_id)
        if not 0 <= k < self.num_classes:
            raise ValueError(f"class_id {class_id} out of range for {self.num_classes} classes")
        f = ops.reshape(ops.convert_to_tensor(features, "float32"), (len(features), -1))
        mu, logvar = (ops.cast(t, "float32") for t in self.vaes[k].mu_head(f))  # float32 under mixed precision
        eps = keras.random.normal(ops.shape(mu), seed=seed if seed is not None else self.seed_generator)
        return np.asarray(self.vaes[k].decoder(mu + ops.exp(0.5 * logvar) * eps, training=False))

    def _generator_layer(self):
        if self.generator is None:
            raise ValueError("GAMO2Pix has no generator; pass GAMO's generator (GAMO2Pix.from_gamo)")
        return find_layer(self.generator, ConvexGenerator, role="generator")

    @property
    def generator_latent_dim(self):
        """The size of GAMO's generator noise z (not `latent_dim`, the VAEs' code size)."""
        return self._generator_layer().latent_dim

    @property
    def minority_classes(self):
        """The classes GAMO's generator makes, so the classes `generate_images` takes."""
        return list(self._generator_layer().minority_classes)

    def decode_samples(self, z, class_ids, eps):
        """GAMO samples as images, as tensors (traceable: the `generate` signature of `serving.export_for_serving`).

        G([z, k]) (Sec. 3) gives a feature vector of class k, which class
        k's VAE decodes from its sampled code mu + exp(logvar / 2) eps.

        Args:
            z: (B, generator_latent_dim) noise of GAMO's generator.
            class_ids: (B,) int, classes in `minority_classes`.
            eps: (B, latent_dim) noise of the VAEs' codes.

        Returns:
            (B, H, W, ch) images in [-1, 1], float32.
        """
        class_ids = ops.cast(ops.reshape(class_ids, (-1,)), "int32")
        feats = self.generator([z, class_ids], training=False)
        f = ops.reshape(feats, (ops.shape(feats)[0], -1))
        decoded = []
        for vae in self.vaes:  # every class's VAE, then each sample's own: C small decoders, one graph
            mu, logvar = (ops.cast(t, "float32") for t in vae.mu_head(f))
            decoded.append(ops.cast(vae.decoder(mu + ops.exp(0.5 * logvar) * eps, training=False), "float32"))
        return tf.gather(ops.stack(decoded, axis=1), class_ids, batch_dims=1)

    def generate_images(self, class_id, n, seed=None):
        """n images of a minority class: GAMO feature samples decoded by that class's VAE, numpy (n, H, W, ch)."""
        layer = self._generator_layer()
        if int(class_id) not in layer.minority_classes:
            raise ValueError(f"class {class_id} has no generator unit; minority classes are {layer.minority_classes}")
        z = keras.random.normal((int(n), layer.latent_dim), seed=seed if seed is not None else self.seed_generator)
        eps = keras.random.normal((int(n), self.latent_dim), seed=seed + 1 if seed is not None else self.seed_generator)
        return np.asarray(self.decode_samples(z, ops.full((int(n),), int(class_id), dtype="int32"), eps))

    @classmethod
    def from_gamo(cls, gamo, **kwargs):
        """A GAMO2Pix on a feature-space GAMO's F and generator."""
        if gamo.feature_extractor is None:
            raise ValueError("GAMO2Pix needs a feature-space GAMO (with a feature_extractor)")
        return cls(gamo.feature_extractor, gamo.num_classes, generator=gamo.generator, **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            **serialize_networks(self, self.network_names),
            "num_classes": self.num_classes,
            "latent_dim": self.latent_dim,
            "filters": self.filters,
        }


@keras.saving.register_keras_serializable(package="keras_imbalance")
class GAMO2PixVAE(keras.layers.Layer):
    """One class's GAMO2pix VAE: encoder heads (mean, log-variance) and decoder."""

    def __init__(self, mu_head, decoder, **kwargs):
        super().__init__(**kwargs)
        self.mu_head = mu_head
        self.decoder = decoder
        self.built = True

    def call(self, features):
        return self.decoder(self.mu_head(features)[0])

    def get_config(self):
        return {**super().get_config(), **serialize_networks(self, ("mu_head", "decoder"))}

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_networks(config, ("mu_head", "decoder")))
