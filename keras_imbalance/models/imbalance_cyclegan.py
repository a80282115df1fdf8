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
stated in the class docstrings. `CycleGAN` lives in `models/cyclegan.py`.
"""


import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.callbacks import AlternatingPhases
from keras_imbalance.datasets.pairs import PairEpochs, pair_stream, unpack_pair
from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.validation import check_every_class_present, collect_batches, validated_xy
from keras_imbalance.models.base import MultiPlayerModel, PhasedTrainFunctions, serialize_networks
from keras_imbalance.models.cyclegan import GAN_PLAYERS, PAPER_ADAM, CycleGAN, fixed_image_shape

_MODES = ("aug", "alt")
_STREAMS = ("pairs", "natural")


def binary_only_error(num_classes):
    """The ValueError for data that is not a two-class problem."""
    return ValueError(
        f"ImbalanceCycleGAN is a binary method (a majority class A and a minority class B, translated into each "
        f"other by a CycleGAN); the data has {num_classes} classes. Select two classes of your data first and "
        f"relabel them 0 and 1, e.g. keep = np.isin(y, [3, 8]); x, y = x[keep], (y[keep] == 8).astype(int)."
    )


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ImbalanceCycleGAN(PhasedTrainFunctions, MultiPlayerModel):
    """ImbalanceCycleGAN (Sahoo et al. 2020): a classifier trained jointly with a CycleGAN (eqs. 4-7).

    Labels are 0/1; the majority class A is the one with more training
    samples (a tie makes class 0 the majority), B the other; the paper's
    gamma = N_A / N_B is the attribute `imbalance_ratio` (`gamma` is an alias;
    M2m's `gamma` is an acceptance threshold, another concept).
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

    Readings of eq. 6's expectations (`stream`, issue 19; docs/results.md
    "ImbalanceCycleGAN readings"):

    - `"pairs"` (the default): the 1:1 (a, b) pair stream above, minority
      cycled; each real b then weighs gamma times as much as a real a over
      an epoch (gamma:1 for the minority, a log gamma shift of the decision
      threshold), the paper's stated aim "to penalize ... much more".
    - `"natural"`: eq. 6 as a per-sample loss over a natural-order epoch of
      ceil(N / batch_size) shuffled (x, y) batches: a real a contributes
      (1/gamma)(-log(1 - z(a))) - log z(G_AB(a)), a real b
      -log z(b) + (1/gamma)(-log(1 - z(G_BA(b)))), mean over the batch; the
      real images then weigh N_A / gamma = N_B each side (balanced). AUG
      mode only (the CycleGAN phase of ALT trains on pairs).

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
        stream: "pairs" (default) or "natural", the reading of eq. 6 above.
        seed: int or None.

    Call: x (B, H, W, C) -> classifier logits (B, 2). Multi-class data
    raises a ValueError (the method is binary).
    """

    player_names = ("classifier",) + GAN_PLAYERS
    network_names = ("classifier", "cycle_gan")
    default_adam = PAPER_ADAM  # the paper gives only the CycleGAN's; used for every player

    def __init__(self, classifier, cycle_gan, mode="aug", switch_every=5, class_counts=None, majority_weight=None,
                 gan_classifier_weight=1.0, stream="pairs", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if stream not in _STREAMS:
            raise ValueError(f"stream must be one of {_STREAMS}, got {stream!r}")
        if stream == "natural" and mode == "alt":
            raise ValueError("stream='natural' is AUG mode only: the ALT CycleGAN phase trains on (a, b) pairs")
        self.stream = stream
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
        self.image_shape = fixed_image_shape(classifier, "classifier")
        if self.image_shape != cycle_gan.image_shape:
            raise ValueError(f"the classifier takes {self.image_shape}, the CycleGAN translates {cycle_gan.image_shape}")
        self.alt_phase = keras.Variable(0, dtype="int32", trainable=False, name="alt_phase")
        self._traced_phase = 0
        self._reset_phase_functions()
        self.class_counts = None
        if class_counts is not None:
            self.set_class_counts(class_counts)
        self.mark_built(self.image_shape)

    # Players of the CycleGAN, seen as this model's players (ALT mode trains them).
    generator_ab = property(lambda self: self.cycle_gan.generator_ab)
    generator_ba = property(lambda self: self.cycle_gan.generator_ba)
    discriminator_a = property(lambda self: self.cycle_gan.discriminator_a)
    discriminator_b = property(lambda self: self.cycle_gan.discriminator_b)

    def active_players(self):
        return list(self.player_names) if self.mode == "alt" else ["classifier"]

    def compile(self, classifier_optimizer=None, generator_ab_optimizer=None, generator_ba_optimizer=None,
                discriminator_a_optimizer=None, discriminator_b_optimizer=None, **kwargs):
        """One optimizer per player (Adam(2e-4, beta_1=0.5) by default); the CycleGAN's four are used in ALT mode only.

        Other kwargs (e.g. `metrics`) go to `keras.Model.compile`; metrics see
        the classifier's logits on the real a and b of each batch.
        """
        self._reset_phase_functions()  # functions traced for the previous optimizers
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
        self.imbalance_ratio = max(counts) / min(counts)

    # `fit` validates all of its data (`_validated`) before handing the pair stream to MethodModel.fit.
    fit_data = None

    @property
    def value_range(self):
        """The range of the images `fit` accepts: the CycleGAN's `value_range`."""
        return self.cycle_gan.value_range

    def adapt(self, x, y=None):
        """Take the class counts (hence majority, minority and imbalance_ratio) from (x, y) or a dataset of (x, y)."""
        _, _, counts = self._validated(x, y)
        check_every_class_present(counts)
        self.set_class_counts(counts)
        return self

    def _validated(self, x, y):
        """`datasets.validated_xy` for this binary model: (x, y, counts (2,)); a two-class error otherwise."""
        x, y, counts = validated_xy(x, y, sample_shape=self.image_shape, caller="ImbalanceCycleGAN.fit", require_all=False,
                                    value_range=self.value_range)
        if len(counts) > 2:
            present = int(np.count_nonzero(counts))
            raise binary_only_error(present if present > 2 else len(counts))
        return x, y, np.pad(counts, (0, 2 - len(counts)))

    @property
    def l_a_weight(self):
        """The weight of L^A in L_cls: `majority_weight`, or 1 / gamma."""
        return self.majority_weight if self.majority_weight is not None else 1.0 / self.imbalance_ratio

    @property
    def gamma(self):
        """The paper's name (eq. 6) for `imbalance_ratio`, N_A / N_B."""
        return self.imbalance_ratio

    def set_phase(self, phase):
        """ALT phase: 0 trains the classifier, 1 the CycleGAN (called by `AlternatingPhases`)."""
        if int(phase) not in (0, 1):
            raise ValueError(f"phase must be 0 (classifier) or 1 (CycleGAN), got {phase!r}")
        if self.mode == "aug" and int(phase) != 0:
            raise ValueError("AUG mode has only the classifier phase; use mode='alt' to train the CycleGAN")
        self.alt_phase.assign(int(phase))
        if int(phase) != self._traced_phase:
            self._switch_train_function(int(phase))

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

    def _class_log_probs(self, logits):
        """(log P(majority), log P(minority)) of each row of the classifier's logits, float32."""
        log_p = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        return log_p[:, self.majority_class], log_p[:, self.minority_class]

    def classifier_losses(self, a, b, fake_a, fake_b, training=True):
        """(L^A, L^B, logits of the real a, logits of the real b); images in the data range.

        fake_b = G_AB(a) (labelled minority), fake_a = G_BA(b) (labelled majority).
        """
        n_a, n_b = ops.shape(a)[0], ops.shape(b)[0]
        logits = self.classifier(ops.concatenate([a, fake_a, b, fake_b], axis=0), training=training)
        log_major, log_minor = self._class_log_probs(logits)
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

    def natural_classifier_loss(self, x, y, training=True):
        """(eq. 6 over a natural-order batch (`stream="natural"`), logits of x); x in the data range, y (B,) labels.

        Per sample: a majority x gives (1/gamma)(-log(1 - z(x))) - log z(G_AB(x)),
        a minority x gives -log z(x) + (1/gamma)(-log(1 - z(G_BA(x)))); the mean
        over the batch. Both translations run on the whole batch (the frozen
        CycleGAN, inference mode) and each sample keeps its own.
        """
        minor = ops.equal(ops.cast(ops.reshape(y, (-1,)), "int32"), self.minority_class)
        n = ops.shape(x)[0]
        translated = ops.where(ops.reshape(minor, (-1,) + (1,) * (len(self.image_shape))),
                               ops.stop_gradient(self.cycle_gan.translate_ba(x)),
                               ops.stop_gradient(self.cycle_gan.translate_ab(x)))
        logits = self.classifier(ops.concatenate([x, translated], axis=0), training=training)
        log_major, log_minor = self._class_log_probs(logits)
        w = self.l_a_weight
        real = ops.where(minor, -log_minor[:n], -w * log_major[:n])
        generated = ops.where(minor, -w * log_major[n:], -log_minor[n:])
        return ops.mean(real + generated), logits[:n]

    def _natural_classifier_step(self, x, y):
        with tf.GradientTape() as tape:
            loss, logits = self.natural_classifier_loss(x, y, training=True)
        self.apply_player_gradients("classifier", tape, loss)
        self.update_compiled_metrics(y, logits)

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
        if self.stream == "natural":
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            self._natural_classifier_step(ops.cast(x, "float32"), y)
            return self.metrics_result()
        a, b = unpack_pair(data)
        if self.mode == "aug" or self._traced_phase == 0:
            self._classifier_step(a, b)
        else:
            self._gan_step(a, b)
        return self.metrics_result()

    def fit(self, x=None, y=None, batch_size=None, epochs=1, callbacks=None, shuffle_seed=None, **kwargs):
        """Train on ordinary (x, y) data (arrays or a finite dataset of (x, y) batches), y in {0, 1}.

        The data is read into memory once, split by class into a (majority,
        minority) pair stream (`unpaired_dataset`, `batch_size` pairs per
        step: the dataset's batch size, or 32 for arrays, when not given);
        with `stream="natural"`, shuffled (x, y) batches of `batch_size`.
        Class counts come from this data unless set before. In ALT mode an
        `AlternatingPhases(switch_every)` callback is added when absent.
        """
        if isinstance(x, tf.data.Dataset) or y is None:
            if y is not None:
                raise ValueError("pass either arrays x, y or a dataset of (x, y) batches")
            first = next(iter(x))
            batch_size = batch_size or int(np.asarray(first[0]).shape[0])
            x, y = collect_batches(x, "ImbalanceCycleGAN.fit")
        x, y, counts = self._validated(x, y)
        if self.class_counts is None:
            check_every_class_present(counts)
            self.set_class_counts(counts)
        a, b = x[y == self.majority_class], x[y == self.minority_class]
        if len(a) == 0 or len(b) == 0:
            raise ValueError(f"both classes need samples; got {len(a)} majority and {len(b)} minority images")
        seed = shuffle_seed if shuffle_seed is not None else (self.seed or 0)
        kwargs.setdefault("shuffle", False)  # both datasets below shuffle themselves
        if self.stream == "natural":
            data = to_dataset(x, y, batch_size or 32, seed=seed, num_classes=2)
            return super().fit(data, epochs=epochs, callbacks=callbacks, **kwargs)
        # Epoch-seeded: a run resumed by BackupAndRestore sees the same pairs.
        pair_epochs = PairEpochs()
        pairs = pair_stream(a, b, batch_size or 32, seed=seed, epoch=pair_epochs.epoch)
        callbacks = [pair_epochs, *list(callbacks or [])]
        if self.mode == "alt" and not any(isinstance(c, AlternatingPhases) for c in callbacks):
            callbacks.insert(0, AlternatingPhases(self.switch_every))
        if self.mode == "aug":
            self.alt_phase.assign(0)
        return super().fit(pairs, epochs=epochs, callbacks=callbacks, **kwargs)

    def epoch_steps(self, batch_size):
        """Batches per epoch of `fit`: ceil(N_A / batch_size), or ceil((N_A + N_B) / batch_size) for `stream="natural"`."""
        return math.ceil((sum(self.class_counts) if self.stream == "natural" else max(self.class_counts)) / batch_size)

    # Serialization -------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            **serialize_networks(self, self.network_names),
            "mode": self.mode,
            "switch_every": self.switch_every,
            "class_counts": self.class_counts,
            "majority_weight": self.majority_weight,
            "gan_classifier_weight": self.gan_classifier_weight,
            "stream": self.stream,
        }
