"""The set-up shared by the models built on a convex generator: GAMO and PolarityGAN.

Both oversample a class i with convex combinations of its real samples,
G(z | i) = sum_j w_j(z, i) x_j over the n_i stored samples x_j of class i:
GAMO's convex generator (Sec. 3.2, eq. 1: a cTMU and one Instance Generation
Unit (IGU) per minority class, `layers.ConvexGenerator`) and PolarityGAN's
stage-2 generator (Sec. 4, eq. 3, Algorithm 1; `layers.GaussianConvexGenerator`).
`ConvexOversamplerBase` holds what the two models do alike around their own
`train_step`, losses and configuration:

- the sample space: the classifier's inputs, or the features of an optional
  extractor F (GAMO's feature-space variant, Sec. 3 and Fig. 3; PolarityGAN's
  F of Algorithm 1), checked against the classifier at construction;
- `adapt`: the per-class counts from (x, y) or a dataset of (x, y) batches,
  the default generator when none was given, and G's per-class sample banks;
- `refresh_bank` (and the `RefreshFeatureBank` callback `fit` adds in feature
  space), which refill the banks with the minority samples, through F;
- generated labels drawn in proportion to the class deficit (GAMO Sec. 3.5
  and Algorithm 1; PolarityGAN Algorithm 1 line 6), `generate`, `sample`;
- `compile` wiring of the players' optimizers.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.datasets.validation import check_labels, check_sample_shape, validated_xy
from keras_imbalance.models.base import MultiPlayerModel


def check_generator_matches(layer, num_classes, sample_shape, latent_dim):
    """Raise a ValueError naming the mismatch between a convex generator layer and its model."""
    if layer.num_classes != num_classes:
        raise ValueError(f"generator has {layer.num_classes} classes, the classifier {num_classes}")
    if layer.sample_shape != sample_shape:
        raise ValueError(f"generator makes samples of shape {layer.sample_shape}, the classifier takes {sample_shape}")
    if layer.latent_dim != latent_dim:
        raise ValueError(f"generator has latent_dim {layer.latent_dim}, the model {latent_dim}")


def deficit_log_probabilities(deficit):
    """log(deficit_i / sum deficit) for `keras.random.categorical`, float32 (C,).

    Generated labels are drawn in proportion to each class's deficit (GAMO
    Algorithm 1; PolarityGAN Algorithm 1). Classes with no deficit get a
    large negative number rather than -inf.
    """
    deficit = np.asarray(deficit, "float64")
    return np.where(deficit > 0, np.log(np.maximum(deficit, 1e-12) / deficit.sum()), -1e9).astype("float32")


def find_layer(model, layer_class, role="model"):
    """The first `layer_class` layer inside `model` (itself included); a ValueError naming `role` otherwise."""
    for layer in model._flatten_layers(include_self=True):
        if isinstance(layer, layer_class):
            return layer
    raise ValueError(f"{role} {model.name!r} contains no {layer_class.__name__} layer")


class RefreshFeatureBank(keras.callbacks.Callback):
    """Recompute a feature-space model's sample banks with the current F at each epoch start.

    `fit` of GAMO and PolarityGAN adds it by itself when the model has a feature extractor.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.refresh_bank()


class ConvexOversamplerBase(MultiPlayerModel):
    """Base of GAMO and PolarityGAN: a classifier trained against a convex generator's samples.

    A subclass sets the class attributes below, calls `__init__` with the
    shared arguments, adds its own players and ends its `__init__` with
    `_finish_init(generator)`; it implements `default_generator(counts)`,
    `class_deficit(counts)`, `train_step` and a `compile` with one named
    optimizer argument per player that calls `_compile_players`. `call(x)`
    is the classifier on `features(x)`.

    Class attributes:
        player_names: the four players, `adversary_player` among them.
        adversary_player: the attribute name of D ("discriminator", "critic").
        convex_layer_class: the convex layer G must contain.
        generator_role: how the error for a G without it names G.
        method_name: the model's name in error messages.
        balanced_error: the message for balanced data, `str.format`ted with `counts`.
        ungenerated_error: the message for labels G has no unit for,
            formatted with `bad` and `minority`.

    Args:
        classifier: Keras model, (B, *sample_shape) -> (B, C) logits, C >= 2.
        feature_extractor: Keras model inputs -> (B, *sample_shape), or None
            (pixel space: the samples are the inputs).
        latent_dim: size of G's latent input.
        seed: int or None, for the model's random draws.
    """

    adversary_player = None
    convex_layer_class = None
    generator_role = "generator"
    method_name = None
    balanced_error = None
    ungenerated_error = None

    def __init__(self, classifier, feature_extractor=None, latent_dim=100, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.latent_dim = int(latent_dim)
        self.classifier = classifier
        self.feature_extractor = feature_extractor
        self.num_classes = int(classifier.output_shape[-1])
        if self.num_classes < 2:
            raise ValueError(f"the classifier must output C >= 2 class scores, got {classifier.output_shape}")
        front = feature_extractor if feature_extractor is not None else classifier
        self.input_sample_shape = tuple(front.input_shape[1:])
        self.sample_shape = tuple(feature_extractor.output_shape[1:]) if feature_extractor is not None else self.input_sample_shape
        if feature_extractor is not None and tuple(classifier.input_shape[1:]) != self.sample_shape:
            raise ValueError(
                f"the classifier takes {classifier.input_shape[1:]} but the feature extractor outputs {self.sample_shape}"
            )
        self.generator = None
        self._adapted_data = None

    def _finish_init(self, generator):
        """Take a generator given at construction (None: `adapt` builds one) and mark the model built."""
        if generator is not None:
            self._set_generator(generator)
        self.mark_built(self.input_sample_shape)

    # Set-up ------------------------------------------------------------------

    def _compile_players(self, classifier, adversary, generator, feature_extractor, **kwargs):
        """`MultiPlayerModel.compile` with one optimizer (or None: the default) per player."""
        super().compile(
            optimizers={"classifier": classifier, self.adversary_player: adversary, "generator": generator,
                        "feature_extractor": feature_extractor},
            **kwargs,
        )

    def _set_generator(self, generator):
        """Install G; returns the class deficit (C,) G's labels are drawn in proportion to."""
        layer = find_layer(generator, self.convex_layer_class, role=self.generator_role)
        check_generator_matches(layer, self.num_classes, self.sample_shape, self.latent_dim)
        self.generator = generator
        self.convex_generator = layer
        counts = np.asarray(layer.class_counts, "float64")
        self.class_counts = [int(c) for c in counts]
        deficit = self.class_deficit(counts)
        if deficit.sum() <= 0:
            raise ValueError(self.balanced_error.format(counts=self.class_counts))
        self._deficit_logits = deficit_log_probabilities(deficit)
        self._minority = np.asarray(layer.minority_classes, "int32")
        return deficit

    def _check_input_shape(self, x):
        """Raise unless the samples x (N, ...) have the model's input shape."""
        check_sample_shape(x.shape[1:], self.input_sample_shape)

    def _adapt_class_counts(self, x, y=None):
        """Validate the data, take the class counts from it; returns float32 x and y.

        Builds G (`default_generator`) if there is none, otherwise checks
        that G was built for these counts.
        """
        x, y, counts = validated_xy(x, y, self.num_classes, caller="adapt", value_range=self.value_range)
        self._check_input_shape(x)
        if self.generator is None:
            if np.all(counts == counts[0]):
                raise ValueError(self.balanced_error.format(counts=counts.tolist()))
            self._set_generator(self.default_generator(counts.tolist()))
            if self.compiled:
                self.build_optimizers()
        elif list(counts) != self.class_counts:
            raise ValueError(f"the data has class counts {counts.tolist()}, the generator was built for {self.class_counts}")
        return x.astype("float32"), y

    def adapt(self, x, y=None):
        """Derive the class counts from the data and store each minority class's samples in G's banks.

        Args:
            x: samples (N, *input_shape) with `y` (N,) sparse labels, or a
               dataset / iterable of `(x, y)` batches with `y=None`.

        Class ids are the user's: the majority is the largest class, wherever
        it is. Every class 0..C-1 of the classifier must occur, the data must
        not be balanced, and a generator given at construction must have been
        built for these counts. The samples `_keep_adapted` selects are kept
        (float32): `refresh_bank` refills the banks from them.
        """
        self._adapted_data = self._keep_adapted(*self._adapt_class_counts(x, y))
        self.refresh_bank()
        return self

    def _keep_adapted(self, x, y):
        """What `adapt` keeps of the data: the minority samples, all the banks need."""
        keep = np.isin(y, self._minority)
        return x[keep], y[keep]

    def _samples_of(self, x, batch_size=256):
        """The generator's sample space: x itself, or F(x) in feature space (F in inference mode), numpy."""
        if self.feature_extractor is None:
            return x
        return np.concatenate(
            [np.asarray(self.feature_extractor(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
        )

    def refresh_bank(self, batch_size=256):
        """Refill G's banks with the adapted minority samples (through F in feature space)."""
        if self._adapted_data is None:
            return
        x, y = self._adapted_data
        keep = np.isin(y, self._minority)
        self.convex_generator.set_banks(self._samples_of(x[keep], batch_size), y[keep])

    fit_data = "classes"

    def fit_sample_shape(self):
        return self.input_sample_shape

    def _is_adapted(self):
        """Whether `fit` may start: G exists (built by `adapt` or given)."""
        return self.generator is not None

    def _before_fit(self, batch_size):
        """Called by `fit` after its checks, before training (PolarityGAN runs stage 1 here)."""

    def fit(self, *args, callbacks=None, **kwargs):
        if not self._is_adapted():
            raise ValueError(
                f"call adapt(x, y) (or adapt(dataset)) before fit: {self.method_name} needs the class counts and samples"
            )
        self._before_fit(kwargs.get("batch_size"))
        callbacks = list(callbacks or [])
        if self.feature_extractor is not None and not any(isinstance(c, RefreshFeatureBank) for c in callbacks):
            callbacks.append(RefreshFeatureBank())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # Forward -----------------------------------------------------------------

    def features(self, x, training=False):
        return self.feature_extractor(x, training=training) if self.feature_extractor is not None else x

    def call(self, x, training=False):
        return self.classifier(self.features(x, training=training), training=training)

    @property
    def minority_classes(self):
        """The class ids G generates (every class but the largest)."""
        return [] if self.generator is None else self._minority.tolist()

    def generate(self, labels, seed=None):
        """Samples of the given minority classes, (n, *sample_shape) numpy.

        `seed` (int) makes the draw reproducible; None uses the model's seed
        generator. In feature space these are feature vectors.
        """
        if self.generator is None:
            raise ValueError("the model is not adapted: call adapt(x, y) first")
        labels = check_labels(labels, self.num_classes, name="labels").astype("int32")
        bad = sorted(set(labels.tolist()) - set(self._minority.tolist()))
        if bad:
            raise ValueError(self.ungenerated_error.format(bad=bad, minority=self._minority.tolist()))
        z = keras.random.normal((len(labels), self.latent_dim), seed=seed if seed is not None else self.seed_generator)
        # float32 also when G computes in float16 (mixed precision).
        return np.asarray(ops.cast(self.generator([z, ops.convert_to_tensor(labels)], training=False), "float32"))

    def sample(self, n, class_id, seed=None):
        """n generated samples of one minority class."""
        return self.generate(np.full((int(n),), int(class_id)), seed=seed)

    def train_classifier_on_real(self, x, y, loss_fn, update_features=True):
        """F (if any) and the classifier on the real batch: one forward pass, one step of each player's optimizer.

        GAMO Algorithm 1 line 4; PolarityGAN Algorithm 1 lines 2 and 4 (both
        gradients from one pass: recomputing F after its step would double
        F's cost for a difference of one step). `loss_fn(logits)` is the
        method's loss on the real batch; the compiled metrics see the logits.
        `update_features=False` holds F fixed (inference mode, no step: GAMO
        Algorithm 1 line 9). Returns F's output (the samples, in pixel space).
        """
        with tf.GradientTape(persistent=True) as tape:
            feats = self.features(x, training=True) if update_features else self.features(x, training=False)
            logits = self.classifier(feats, training=True)
            loss = loss_fn(logits)
        if self.feature_extractor is not None and update_features:
            self.apply_player_gradients("feature_extractor", tape, loss)
        self.apply_player_gradients("classifier", tape, loss)
        del tape
        self.update_compiled_metrics(y, logits)
        return feats

    def draw_fake_labels(self, n, seed=None):
        """n labels, P(i) proportional to the deficit (GAMO Alg. 1 line 10; PolarityGAN Alg. 1 line 6), int32 (n,)."""
        draws = keras.random.categorical(
            ops.convert_to_tensor(self._deficit_logits)[None, :], n, seed=seed if seed is not None else self.seed_generator
        )
        return ops.cast(ops.reshape(draws, (-1,)), "int32")
