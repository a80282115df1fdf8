"""PolarityGAN (Deepshikha & Naman, "Removing Class Imbalance using Polarity-GAN:
An Uncertainty Sampling Approach", 2021).

Three players plus an optional feature extractor: a classifier C, a
class-conditional Wasserstein critic D and a convex generator G (eq. 3) whose
samples are convex combinations of the real samples of a class, initialized
from an autoencoder over all training images (stage 1). Stage 2 is
Algorithm 1. No public code exists; every reading of an ambiguous passage is
written in `PolarityGAN`'s docstring.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.applications.polarity_gan import PolarityCritic, PolarityDecoder, PolarityEncoder, PolarityGenerator
from keras_imbalance.datasets.validation import check_xy
from keras_imbalance.layers.convex_autoencoder import ConvexDecoder, GaussianConvexGenerator
from keras_imbalance.metrics import uncertainty_scores
from keras_imbalance.distribute import MultiWorkerSafeFit, multi_worker_logs, replica_draws
from keras_imbalance.models.base import serialize_networks
from keras_imbalance.models.convex_oversampling import ConvexOversamplerBase, find_layer


class _Stage1:
    """Holds the autoencoder's networks outside Keras' tracking.

    Stage 1 only initializes G; its result lives in G's weights (saved), so
    the encoder and the all-samples decoder (whose bank holds every training
    sample) are not part of the saved model.
    """

    def __init__(self, encoder=None):
        self.encoder = encoder
        self.decoder = None
        self.history = None


class _StageOneAutoencoder(MultiWorkerSafeFit, keras.Model):
    """encoder -> decoder as a functional model whose `fit` also runs under `MultiWorkerMirroredStrategy`.

    A plain `keras.Model` fails there in Keras 3.15 (see `MultiWorkerSafeFit`),
    and stage 1 runs inside the strategy scope the GAN is built in.
    """


# Readings of eq. 6 (see `PolarityGAN`'s Args).
NEGATIVE_WEIGHTINGS = ("output", "target", "mixed", "unweighted")
GENERATED_WEIGHTINGS = ("sampling", "weight")


def check_readings(negative_weighting, generated_weighting):
    """Raise a `ValueError` naming the argument unless both eq. 6 readings are known."""
    if negative_weighting not in NEGATIVE_WEIGHTINGS:
        raise ValueError(f"negative_weighting must be one of {NEGATIVE_WEIGHTINGS}, got {negative_weighting!r}")
    if generated_weighting not in GENERATED_WEIGHTINGS:
        raise ValueError(f"generated_weighting must be one of {GENERATED_WEIGHTINGS}, got {generated_weighting!r}")


@keras.saving.register_keras_serializable(package="keras_imbalance")
class PolarityGAN(ConvexOversamplerBase):
    """PolarityGAN: autoencoder-initialized convex generator vs a Wasserstein critic and the classifier.

    **Stage 1** (`pretrain_autoencoder`, run by `fit` when G is not yet
    initialized and `autoencoder_epochs > 0`): an autoencoder over all
    training inputs, class-agnostic (Sec. 4, "Autoencoder training"). Its
    decoder has G's topology: G's shared mapping Q followed by ONE softmax head
    over ALL N training samples (METHODS.md's reading), so it reconstructs
    each input as a convex combination of the training set (squared error,
    Adam(1e-3): the paper gives no autoencoder setting). Then, BAGAN-style:
    mean mu_k and covariance Sigma_k of the encoder's codes of each class give
    the class-conditional latent z = mu_k + L_k eps (L_k the Cholesky factor
    of Sigma_k + r I, r = `latent_ridge` x the average per-dimension code
    variance, since a class of n_k <= latent_dim samples has a singular
    covariance); Q's weights are copied into G with the class-input rows of
    its first kernel zeroed (the decoder saw zeros there), and each class head
    P_k starts from the decoder head's columns of the class-k samples. So G
    starts as the decoder restricted to class k, fed class-k codes. Before
    the copy, Q's BN moving statistics are set to the exact statistics over
    all training codes (`ConvexDecoder.recalibrate_batchnorm`): after a short
    stage 1 the moving averages are far from them, and the copied G would
    not reproduce the decoder that was trained.

    **Stage 2** (`train_step`, Algorithm 1, one step per real batch of B):

    1. Lines 2 and 4: F and C on the real batch with eq. 6's real terms. Both
       gradients come from one forward pass, each applied by its own
       optimizer (recomputing F after its step would double F's cost, e.g. a
       ResNet-50, for a difference of one step).
    2. Lines 5-7: B labels drawn with probability proportional to the
       deficit p_k - p_i (p_k the largest prior, so the majority is never
       generated), B samples from G (BN in inference mode, no gradient to G);
       C on them with eq. 6's generated terms.
    3. The critic, `critic_steps` updates inside the step (the
       WGAN-GP practice of several critic steps per generator step; the
       keras.io WGAN-GP example does the same inside one `train_step`), each
       on fresh deficit-proportional labels and fresh G samples (the first
       reuses step 2's), with the gradient penalty of Gulrajani et al.
       (2017): lambda E[(||grad D(x_hat | i)|| - 1)^2] on
       x_hat = a x + (1 - a) G(z | i), a ~ U(0, 1) per sample.
       Algorithm 1's "for j steps" loop encloses lines 4-11, G's updates
       included, which would make j full rounds per batch; we read it as
       WGAN's n_critic (METHODS.md: several critic steps per generator step),
       so C and G are updated once per step and D `critic_steps` times. The
       critic steps reuse the step's batch (they draw their real samples from
       the stored class samples, see below), keeping shapes fixed.
    4. Lines 8-11: B labels uniform over the generated classes (line 9);
       G against frozen C (line 10), then against frozen D (line 11), two
       optimizer steps. G's gradients never reach F.

    Readings of the paper (each tested):

    - Eq. 6 per sample (x, i), real or generated:
      l = -log C_i(x) - sum_{j != i} w_ij log(1 - C_j(x)), C = softmax of the
      logits (a one-vs-rest cross-entropy on each output); the printed
      equation is garbled, so the weights w_ij of the negative terms are the
      option `negative_weighting` ("output", "target", "mixed", "unweighted", see
      Args). The class weight of the real positive term (p_i) is realized by
      sampling (real batches come from the data); that of the generated
      positive term (eq. 6 prints p_i, read as the deficit p_k - p_i by which
      Alg. 1 line 6 draws the generated labels) by `generated_weighting`. G minimizes the
      negated generated terms (the min over G of eq. 4) on uniform labels,
      unweighted (lines 9-10), under every option; log C_i is computed from
      log-softmax, so its gradient in the logits stays bounded.
    - Eq. 5, the critic: D is class-conditional, D(x | i). Taken literally,
      the real term weighs class i by p_i and the generated term by
      p_k - p_i; with unequal masses per class a critic can raise its output
      for a class without bound (the gradient penalty constrains gradients in
      x, not a class's offset), so the objective has no maximum. Here both
      terms weigh class i by the deficit, through the sampled labels: the
      real samples of the critic step are drawn from the stored samples of
      the same classes as the generated ones (uniformly within a class), so
      the critic estimates sum_i q_i W(p_data(x | i), p_G(x | i)) with
      q_i proportional to p_k - p_i, and each interpolation pairs a real and a
      generated sample of the same class. Loss to minimize:
      mean D(G(z | i) | i) - mean D(x | i) + lambda GP.
    - Line 11's "(D(G(X''|Y'')), 1)": G minimizes -mean D(G(z | i) | i).

    Pixel space (`feature_extractor=None`): C consumes the inputs and G mixes
    stored inputs. Feature space: C consumes F(x); the banks hold F's
    features, recomputed at each epoch start (`models.RefreshFeatureBank`),
    and stage 1 reconstructs F's features of the inputs (F frozen). Set-up
    shared with GAMO: `models.convex_oversampling.ConvexOversamplerBase`.

    Args:
        classifier: Keras model, samples -> (B, C) logits, C >= 2.
        critic: Keras model `[samples, onehot (B, C)] -> (B, 1)` with a linear
            output (`applications.PolarityCritic`), or None for that default.
        generator: Keras model `[eps, labels] -> samples` containing a
            `layers.GaussianConvexGenerator` (`applications.PolarityGenerator`);
            None builds it in `adapt`.
        feature_extractor: Keras model inputs -> features (e.g.
            `applications.PolarityFeatureExtractor`, ResNet-50 with local
            weights or the small conv extractor), or None (pixel space).
        encoder: stage 1's encoder, inputs -> (B, latent_dim); None builds
            `applications.PolarityEncoder`. Not saved with the model.
        latent_dim: size of the codes and of eps (32).
        hidden_units: widths of Q (256, 64), shared by G and the decoder.
        autoencoder_epochs: stage-1 epochs run by `fit` (20; 0 skips stage 1,
            G then starts from random weights and N(0, I) latents).
        critic_steps: critic updates per train step (5).
        gradient_penalty: lambda (10); stored as `gradient_penalty_weight`,
            since `gradient_penalty(...)` is the method computing the penalty.
        latent_ridge: relative ridge added to the class covariances (1e-3).
        negative_weighting: eq. 6's weight w_ij of the negative term
            log(1 - C_j(x)) of a sample of class i, d = p_k - p (the deficit).
            "output" (default): w_ij = d_j, indexed by the output j, the
            literal index of eq. 6's second line; the majority output gets 0,
            so a false majority prediction is never penalized and at a point
            shared by two classes the optimum leans to the majority.
            "target": w_ij = d_i, the weight of the sample's true class (the
            index eq. 6's fourth line attaches to G(z | j)); the negatives of
            minority samples weigh most, so shared points lean to the minority.
            "mixed": "output" on the real terms, "target" on the generated
            terms, each line of eq. 6 read literally. "unweighted": w_ij = 1, the
            plain one-vs-rest cross-entropy, with class balance left to the
            generated samples alone.
        generated_weighting: how C's generated terms get the deficit weight
            q_i = d_i / sum(d). "sampling" (default, Alg. 1 line 6): labels
            drawn with P(i) = q_i, each sample weight 1. "weight" (the weight
            written in eq. 6): labels uniform over the M generated classes
            and each generated sample's eq. 6 loss multiplied by M q_i. Both
            have the same expected loss; they differ in variance and in how
            many samples of the rarest classes a batch holds. The critic's
            labels are deficit-drawn in both (eq. 5).
        seed: int or None.

    Call: x (B, *input_shape) -> logits (B, C).
    """

    player_names = ("feature_extractor", "classifier", "critic", "generator")
    network_names = ("classifier", "critic", "generator", "feature_extractor")
    default_adam = {"learning_rate": 2e-4, "beta_1": 0.6}  # Sec. 5.1, for every network
    adversary_player = "critic"
    convex_layer_class = GaussianConvexGenerator
    generator_role = "model"
    method_name = "PolarityGAN"
    balanced_error = "the classes are balanced ({counts}); PolarityGAN has no class to generate"
    ungenerated_error = "class(es) {bad} are not generated; generated classes are {minority}"

    def __init__(
        self,
        classifier,
        critic=None,
        generator=None,
        feature_extractor=None,
        encoder=None,
        latent_dim=32,
        hidden_units=(256, 64),
        autoencoder_epochs=20,
        critic_steps=5,
        gradient_penalty=10.0,
        latent_ridge=1e-3,
        negative_weighting="output",
        generated_weighting="sampling",
        seed=None,
        **kwargs,
    ):
        check_readings(negative_weighting, generated_weighting)
        if int(critic_steps) < 1:
            raise ValueError(f"critic_steps must be >= 1, got {critic_steps}")
        if float(gradient_penalty) < 0:
            raise ValueError(f"gradient_penalty must be >= 0, got {gradient_penalty}")
        super().__init__(classifier, feature_extractor, latent_dim, seed=seed, **kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.autoencoder_epochs = int(autoencoder_epochs)
        self.critic_steps = int(critic_steps)
        self.gradient_penalty_weight = float(gradient_penalty)
        self.latent_ridge = float(latent_ridge)
        self.negative_weighting = negative_weighting
        self.generated_weighting = generated_weighting
        self.critic = critic if critic is not None else PolarityCritic(self.sample_shape, self.num_classes)
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self._stage1 = _Stage1(encoder)
        self._finish_init(generator)

    # Set-up ------------------------------------------------------------------

    def compile(
        self,
        classifier_optimizer=None,
        critic_optimizer=None,
        generator_optimizer=None,
        feature_extractor_optimizer=None,
        **kwargs,
    ):
        """One Adam(2e-4, beta_1=0.6) per player by default (Sec. 5.1).

        Other keyword arguments (e.g. `metrics`) go to `keras.Model.compile`;
        metrics are computed on C's logits for the real batch.
        """
        self._compile_players(classifier_optimizer, critic_optimizer, generator_optimizer,
                              feature_extractor_optimizer, **kwargs)

    def default_generator(self, counts):
        return PolarityGenerator(counts, self.sample_shape, latent_dim=self.latent_dim, hidden_units=self.hidden_units)

    def class_deficit(self, counts):
        """p_k - p_i with the priors p_i = n_i / N (Alg. 1 line 6), float64 (C,)."""
        priors = counts / counts.sum()
        return priors.max() - priors

    def _set_generator(self, generator):
        # The deficit p_k - p_j (C,): eq. 6's weights, and q = deficit / sum for `generated_weighting="weight"`.
        deficit = super()._set_generator(generator)
        self._deficit = deficit.astype("float32")
        self._uniform_weights = (len(self._minority) * deficit / deficit.sum()).astype("float32")

    def _check_input_shape(self, x):
        if tuple(x.shape[1:]) != self.input_sample_shape:
            raise ValueError(f"samples have shape {x.shape[1:]}, the model takes {self.input_sample_shape}")

    # Stage 1 ------------------------------------------------------------------

    @property
    def encoder(self):
        """Stage 1's encoder (None until `pretrain_autoencoder` or given at construction)."""
        return self._stage1.encoder

    @property
    def decoder(self):
        """Stage 1's decoder (a `applications.PolarityDecoder` over all training samples), or None."""
        return self._stage1.decoder

    @property
    def autoencoder_initialized(self):
        # np.asarray: float() of a MirroredVariable fails under tf.distribute.
        return self.generator is not None and float(np.asarray(self.convex_generator.initialized)) > 0

    def pretrain_autoencoder(self, x=None, y=None, epochs=None, batch_size=32, optimizer=None, verbose=0, callbacks=None):
        """Stage 1: train the autoencoder on all inputs, then initialize G from it (see the class docstring).

        Args:
            x, y: training data; None uses the data given to `adapt` (given,
                they are adapted first).
            epochs: default `autoencoder_epochs`.
            batch_size: autoencoder batch size.
            optimizer: default Adam(1e-3).
            verbose: passed to `fit`.
            callbacks: Keras callbacks of the autoencoder's `fit` (e.g.
                `callbacks.XLACompile`); default none.

        Returns:
            The autoencoder's `keras.callbacks.History`. Afterwards `encoder`
            and `decoder` hold the trained networks and `reconstruct(x)` shows
            what the autoencoder makes of inputs.
        """
        if x is not None:
            self.adapt(x, y)
        if self._adapted_data is None:
            raise ValueError("pretrain_autoencoder needs data: call adapt(x, y) first or pass x, y")
        x, y = self._adapted_data
        epochs = self.autoencoder_epochs if epochs is None else int(epochs)
        targets = self._samples_of(x)
        cg = self.convex_generator
        if self._stage1.encoder is None:
            self._stage1.encoder = PolarityEncoder(self.input_sample_shape, latent_dim=self.latent_dim)
        encoder = self._stage1.encoder
        if tuple(encoder.output_shape[1:]) != (self.latent_dim,):
            raise ValueError(f"the encoder outputs {encoder.output_shape[1:]}, expected ({self.latent_dim},)")
        decoder = PolarityDecoder(len(x), self.sample_shape, self.latent_dim, self.num_classes, hidden_units=cg.hidden_units,
                                  batchnorm_momentum=cg.batchnorm_momentum)
        decoder_layer = find_layer(decoder, ConvexDecoder)
        decoder_layer.set_bank(targets)
        self._stage1.decoder = decoder
        inputs = keras.Input(self.input_sample_shape)
        autoencoder = _StageOneAutoencoder(inputs, decoder(encoder(inputs)), name="polarity_autoencoder")
        autoencoder.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="mse")
        history = autoencoder.fit(x, targets, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose,
                                  callbacks=callbacks)
        self._stage1.history = history

        codes = np.asarray(encoder.predict(x, batch_size=256, verbose=0), "float64")
        decoder_layer.recalibrate_batchnorm(codes)
        means, scales = self.class_gaussians(codes, y)
        cg.set_latent_gaussians(means, scales)
        cg.initialize_from_decoder(decoder_layer, y)
        return history

    def class_gaussians(self, codes, y):
        """Per-class mean (C, d) and Cholesky factor (C, d, d) of codes, with the relative ridge."""
        codes = np.asarray(codes, "float64")
        y = np.asarray(y).reshape(-1)
        d = codes.shape[1]
        ridge = self.latent_ridge * max(float(np.mean(np.var(codes, axis=0))), 1e-12)
        means = np.zeros((self.num_classes, d))
        scales = np.zeros((self.num_classes, d, d))
        for k in range(self.num_classes):
            ck = codes[y == k]
            means[k] = ck.mean(axis=0)
            cov = np.cov(ck, rowvar=False).reshape(d, d) if len(ck) > 1 else np.zeros((d, d))
            scales[k] = np.linalg.cholesky(cov + ridge * np.eye(d))
        return means, scales

    def reconstruct(self, x):
        """Stage 1's reconstructions of inputs x (in the generator's sample space), numpy."""
        if self.decoder is None:
            raise ValueError("no autoencoder: run pretrain_autoencoder first")
        return np.asarray(self.decoder(self.encoder(ops.convert_to_tensor(x, "float32"), training=False), training=False))

    def _keep_adapted(self, x, y):
        # Stage 1 trains the autoencoder on every class, not only the banks' minority.
        return x, y

    def _before_fit(self, batch_size):
        # `fit` runs stage 1 first while G is not initialized (class docstring).
        if not self.autoencoder_initialized and self.autoencoder_epochs > 0:
            if self._adapted_data is None:
                raise ValueError("stage 1 needs the training data: call adapt(x, y) before fit")
            self.pretrain_autoencoder(batch_size=batch_size or 32)

    # Evaluation ---------------------------------------------------------------

    def uncertainty_report(self, n=100, x=None, y=None, seed=0, batch_size=256):
        """Eqs. 7-10 on C's predictions for generated vs real samples of the generated classes.

        Args:
            n: generated samples per generated class.
            x, y: real inputs to compare with (e.g. a test split); their
                samples of the generated classes are used. None: the stored
                training samples of those classes (G's banks, already in the
                sample space; C has been trained on them).
            seed: seed of the generated draw.

        Returns:
            {"generated": {measure: mean}, "real": {measure: mean},
             "n_generated": int, "n_real": int}; each measure in [0, 1],
             higher = more uncertain.
        """
        if self.generator is None:
            raise ValueError("the model is not adapted: call adapt(x, y) first")
        labels = np.repeat(self._minority, int(n))
        fake = self.generate(labels, seed=seed)
        if x is None:
            real = np.concatenate([np.asarray(self.convex_generator.bank(k)) for k in self._minority])
        else:
            x, y = check_xy(x, y, num_classes=self.num_classes)
            keep = np.isin(y, self._minority)
            if not keep.any():
                raise ValueError(f"x has no samples of the generated classes {self._minority.tolist()}")
            real = self._samples_of(x[keep].astype("float32"))

        def probs(samples):
            out = [np.asarray(self.classifier(samples[i : i + batch_size], training=False)) for i in range(0, len(samples), batch_size)]
            return np.asarray(ops.softmax(np.concatenate(out).astype("float32"), axis=-1))

        return {
            "generated": uncertainty_scores(probs(fake)),
            "real": uncertainty_scores(probs(real)),
            "n_generated": int(len(fake)),
            "n_real": int(len(real)),
        }

    # Losses -------------------------------------------------------------------

    def negative_weights(self, labels, generated=False):
        """(B, C) weights w_ij of eq. 6's negative terms for samples of classes `labels` (`negative_weighting`)."""
        reading = self.negative_weighting
        if reading == "mixed":
            reading = "target" if generated else "output"
        deficit = ops.convert_to_tensor(self._deficit)
        ones = ops.ones((ops.shape(labels)[0], self.num_classes))
        if reading == "output":
            return ones * deficit[None, :]
        if reading == "target":
            return ones * ops.take(deficit, labels)[:, None]
        return ones

    def generated_sample_weights(self, labels):
        """(B,) weights of C's generated samples: M q_i under `generated_weighting="weight"`, else None."""
        if self.generated_weighting != "weight":
            return None
        return ops.take(ops.convert_to_tensor(self._uniform_weights), labels)

    def draw_generated_labels(self, n, seed=None):
        """Labels of C's generated samples (Alg. 1 line 6): by the deficit, or uniform for `generated_weighting="weight"`."""
        if self.generated_weighting != "weight":
            return self.draw_fake_labels(n, seed=seed)
        pick = keras.random.randint((n,), 0, len(self._minority), seed=seed if seed is not None else self.seed_generator)
        return ops.take(ops.convert_to_tensor(self._minority), pick)

    def classifier_loss(self, logits, labels, generated=False, sample_weight=None):
        """Eq. 6 per sample, batch mean: -log C_i - sum_{j != i} w_ij log(1 - C_j) (`negative_weights`).

        `generated`: the samples are G's (selects eq. 6's generated lines
        under `negative_weighting="mixed"`). `sample_weight` (B,): per-sample
        factors of the batch mean (`generated_sample_weights`), or None.
        """
        logits = ops.cast(logits, "float32")
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        onehot = ops.one_hot(labels, self.num_classes)
        lse = ops.logsumexp(logits, axis=-1, keepdims=True)
        log_p = logits - lse
        # log(1 - softmax_j) = logsumexp over l != j - logsumexp over all l, stable.
        eye = ops.eye(self.num_classes)
        log_others = ops.logsumexp(logits[:, None, :] - 1e9 * eye[None], axis=-1)
        log_1m_p = log_others - lse
        positive = -ops.sum(onehot * log_p, axis=-1)
        weights = self.negative_weights(labels, generated)
        negative = -ops.sum((1.0 - onehot) * weights * log_1m_p, axis=-1)
        losses = positive + negative
        if sample_weight is not None:
            losses = losses * ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
        return ops.mean(losses)

    def interpolate(self, real, fake, seed=None, alpha=None):
        """x_hat = a real + (1 - a) fake with a ~ U(0, 1) per sample; returns (x_hat, a (B,)).

        `alpha` (B,) given: used instead of a draw (`train_step` draws it for the global batch).
        """
        batch = ops.shape(real)[0]
        if alpha is None:
            alpha = keras.random.uniform((batch,), 0.0, 1.0, seed=seed if seed is not None else self.seed_generator)
        a = ops.reshape(alpha, (-1,) + (1,) * (len(real.shape) - 1))
        return a * real + (1.0 - a) * fake, alpha

    def gradient_penalty(self, real, fake, onehot, seed=None, alpha=None):
        """E[(||grad_x D(x_hat | i)||_2 - 1)^2] on U(0, 1) interpolations of same-class pairs."""
        x_hat, _ = self.interpolate(ops.convert_to_tensor(real, "float32"), ops.convert_to_tensor(fake, "float32"),
                                    seed=seed, alpha=alpha)
        onehot = ops.convert_to_tensor(onehot, "float32")
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            out = ops.cast(self.critic([x_hat, onehot], training=True), "float32")
        grads = tape.gradient(out, x_hat)
        norms = ops.sqrt(ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=-1) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def critic_loss(self, real, fake, labels, seed=None, alpha=None):
        """(loss, penalty): mean D(fake | i) - mean D(real | i) + lambda GP, real and fake of the same classes."""
        onehot = ops.one_hot(ops.cast(ops.convert_to_tensor(labels), "int32"), self.num_classes)
        real, fake = ops.convert_to_tensor(real, "float32"), ops.convert_to_tensor(fake, "float32")
        d_real = ops.cast(self.critic([real, onehot], training=True), "float32")  # float32 under mixed precision
        d_fake = ops.cast(self.critic([fake, onehot], training=True), "float32")
        penalty = self.gradient_penalty(real, fake, onehot, seed=seed, alpha=alpha)
        return ops.mean(d_fake) - ops.mean(d_real) + self.gradient_penalty_weight * penalty, penalty

    def draw_real(self, labels, seed=None, uniform=None):
        """One stored sample of each row's class, uniformly within the class, (B, *sample_shape).

        `uniform` (B,) in [0, 1): the draw that picks the sample, if made by the caller.
        """
        cg = self.convex_generator
        sizes = np.zeros(self.num_classes, "int64")
        offsets = np.zeros(self.num_classes, "int64")
        start = 0
        for k, i in enumerate(cg.minority_classes):
            n = int(cg.banks[k].shape[0])
            sizes[i], offsets[i] = n, start
            start += n
        bank = ops.concatenate([ops.convert_to_tensor(b) for b in cg.banks], axis=0)
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        size = ops.take(ops.convert_to_tensor(sizes.astype("float32")), labels)
        u = uniform if uniform is not None else keras.random.uniform(
            ops.shape(size), 0.0, 1.0, seed=seed if seed is not None else self.seed_generator)
        within = ops.minimum(ops.floor(u * size), size - 1.0)
        index = ops.cast(ops.take(ops.convert_to_tensor(offsets.astype("float32")), labels) + within, "int32")
        return ops.reshape(ops.take(bank, index, axis=0), (-1, *self.sample_shape))

    # Training -----------------------------------------------------------------

    @property
    def metrics(self):
        return super().metrics + [self.penalty_tracker]

    def metrics_result(self):
        # The added scalar needs the same shape-(1,) treatment as the base's
        # logs under MultiWorkerMirroredStrategy (`multi_worker_logs`), or
        # Keras' log reduction fails on it.
        return multi_worker_logs({**super().metrics_result(), "gradient_penalty": self.penalty_tracker.result()})

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y = ops.cast(ops.reshape(y, (-1,)), "int32")
        batch = ops.shape(y)[0]
        classifier, critic, generator = self.classifier, self.critic, self.generator
        # Under tf.distribute every draw is made for the global batch and
        # sliced, so R replicas use the random numbers of one device.
        draw = replica_draws(batch)
        sg = self.seed_generator

        def uniform(n):
            return keras.random.uniform((n,), 0.0, 1.0, seed=sg)

        # Lines 2 and 4: F and C on the real batch (eq. 6, real terms).
        self.train_classifier_on_real(x, y, lambda logits: self.classifier_loss(logits, y))

        # Lines 5-7: deficit-proportional labels (or uniform ones with weights), C on generated samples.
        fake_labels = draw(self.draw_generated_labels)
        eps = draw(lambda n: keras.random.normal((n, self.latent_dim), seed=sg))
        fakes = ops.stop_gradient(generator([eps, fake_labels], training=False))
        with tf.GradientTape() as tape:
            loss_fake = self.classifier_loss(classifier(fakes, training=True), fake_labels, generated=True,
                                             sample_weight=self.generated_sample_weights(fake_labels))
        self.apply_player_gradients("classifier", tape, loss_fake)

        # The critic: several steps, real and generated samples of the same classes, labels by the deficit
        # (so the first step reuses C's generated batch only when that one was drawn by the deficit).
        for step in range(self.critic_steps):
            if step > 0 or self.generated_weighting == "weight":
                fake_labels = draw(self.draw_fake_labels)
                eps = draw(lambda n: keras.random.normal((n, self.latent_dim), seed=sg))
                fakes = ops.stop_gradient(generator([eps, fake_labels], training=False))
            reals = self.draw_real(fake_labels, uniform=draw(uniform))
            alpha = draw(uniform)
            with tf.GradientTape() as tape:
                loss_d, penalty = self.critic_loss(reals, fakes, fake_labels, alpha=alpha)
            self.apply_player_gradients("critic", tape, loss_d)
            self.penalty_tracker.update_state(penalty)

        # Lines 8-11: uniform labels over the generated classes; G vs frozen C, then vs frozen D.
        pick = draw(lambda n: keras.random.randint((n,), 0, len(self._minority), seed=sg))
        g_labels = ops.take(ops.convert_to_tensor(self._minority), pick)
        g_onehot = ops.one_hot(g_labels, self.num_classes)
        eps = draw(lambda n: keras.random.normal((n, self.latent_dim), seed=sg))
        with tf.GradientTape() as tape:
            loss_g_c = -self.classifier_loss(classifier(generator([eps, g_labels], training=True), training=False), g_labels,
                                              generated=True)
        self.apply_player_gradients("generator", tape, loss_g_c)
        with tf.GradientTape() as tape:
            loss_g_d = -ops.mean(ops.cast(critic([generator([eps, g_labels], training=True), g_onehot], training=False), "float32"))
        self.apply_player_gradients("generator", tape, loss_g_d)
        return self.metrics_result()

    # Serialization --------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            **serialize_networks(self, self.network_names),
            "latent_dim": self.latent_dim,
            "hidden_units": list(self.hidden_units),
            "autoencoder_epochs": self.autoencoder_epochs,
            "critic_steps": self.critic_steps,
            "gradient_penalty": self.gradient_penalty_weight,
            "latent_ridge": self.latent_ridge,
            "negative_weighting": self.negative_weighting,
            "generated_weighting": self.generated_weighting,
        }
