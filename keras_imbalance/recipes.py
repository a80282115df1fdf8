"""Training recipes for the generative method models, in the one recipe registry.

Each method recipe is a `baselines.BaseRecipe` of kind "method": `name`,
`get_config()`, the hooks `check_data(num_classes)` and
`sample_grid(model, num_classes)`, and

    fit(backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None,
        verbose=0, num_classes=None, training=None, **fit_kwargs) -> keras.Model

so `compare` drives methods and baselines the same way: same backbone
factory, same data, same epochs and batch size. The returned model's
`call(x)` gives logits. Each recipe's docstring names the paper section and
defaults it implements.

Classifier training: `training` (a `baselines.ClassifierTraining`: the
classifier's optimizer, LR schedule and augmentation) is what `compare`
passes to every recipe, methods and baselines alike, so a method's row
differs from its `reference_baseline` (erm; drs for m2m; ldam-drw for ldam-m2m) by the
method only. The method's own settings (`paper_settings()`, e.g. GAMO's
Adam(2e-4, beta_1=0.5)) apply to its extra players, and to its classifier
only when `training` is None (and `optimizer` None): the direct-use
behaviour, unchanged, or when `compare --paper-settings` asks for them.

The registry itself lives in `baselines` (which needs no model), so this
module, the one that builds method models, only adds to it:

>>> recipes.get("gamo")            # any registered name, method or baseline
>>> recipes.get("ldam-drw")
>>> recipes.available()            # the method names; available(None): every name `get` accepts
"""

import keras
import numpy as np

from keras_imbalance import metrics
from keras_imbalance.applications.cyclegan import PatchGANDiscriminator
from keras_imbalance.applications.cyclegan import ResnetGenerator
from keras_imbalance.applications.gamo import GAMODiscriminator
from keras_imbalance.applications.polarity_gan import PolarityCritic
from keras_imbalance.baselines import BaseRecipe
from keras_imbalance.baselines import ClassifierTraining
from keras_imbalance.baselines import check_training
from keras_imbalance.baselines import cosine_head
from keras_imbalance.baselines import create_recipe
from keras_imbalance.baselines import legacy_training
from keras_imbalance.baselines import normalize_name  # noqa: F401  (part of this module's API)
from keras_imbalance.baselines import prepare_fit_data
from keras_imbalance.baselines import register
from keras_imbalance.baselines import registered_names
from keras_imbalance.callbacks import DeferredResampling
from keras_imbalance.callbacks import LinearLRDecay
from keras_imbalance.callbacks import XLACompile
from keras_imbalance.callbacks import scale_epoch
from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.validation import check_xy
from keras_imbalance.losses import LDAMLoss
from keras_imbalance.models import GAMO
from keras_imbalance.models import M2m
from keras_imbalance.models import CycleGAN
from keras_imbalance.models import ImbalanceCycleGAN
from keras_imbalance.models import PolarityGAN
from keras_imbalance.models.polarity_gan import check_readings
from keras_imbalance.models.imbalance_cyclegan import binary_only_error
from keras_imbalance.models.m2m import check_translated_positions


def available(kind="method"):
    """Registered recipe names of `kind`: "method" (default), "baseline", or None for every name `get` accepts."""
    return registered_names(kind)


def get(name, **options):
    """The recipe called `name`, a method (`available()`) or a baseline (`baselines.available()`).

    `options` override the recipe's defaults; a recipe's `get_config()` dict
    is also accepted.

    Raises:
        ValueError: unknown name (the message lists every known one) or bad option.
    """
    return create_recipe(name, **options)


class MethodRecipe(BaseRecipe):
    """Base of the recipes that train a generative method model (kind "method")."""

    kind = "method"
    # The baseline trained identically but for the method (same loss, same classifier recipe).
    reference_baseline = "erm"

    def _begin_fit(self, x, y, num_classes, seed, training, optimizer):
        """The start of every method recipe's `fit`: its `ClassifierTraining`, then the seeded, validated data and counts."""
        training = self._training(training, optimizer)
        x, y, counts = prepare_fit_data(x, y, num_classes, seed)
        return training, x, y, counts

    def _training(self, training, optimizer):
        """The `ClassifierTraining` of this fit: `training`, else `optimizer` over the paper settings."""
        check_training(training, optimizer)
        self.training_ = training if training is not None else legacy_training(optimizer, paper=self.paper_settings())
        return self.training_


def _fit_callbacks(recipe, training, epochs, fit_kwargs, player="classifier", num_classes=None):
    """The classifier's LR-schedule and augmentation callbacks, any `callbacks` of `fit_kwargs` (removed from it),
    and last the best-validation selection (kept as `recipe.selection_`)."""
    selection = training.selection_callbacks(num_classes)
    recipe.selection_ = selection[0] if selection else None
    return (training.lr_callbacks(epochs, player=player) + training.augment_callbacks()
            + list(fit_kwargs.pop("callbacks", None) or []) + selection)


def _inner_fit_callbacks(fit_kwargs):
    """The callbacks of `fit_kwargs` that a recipe's inner fits (a pre-training stage) take too: `XLACompile`.

    `compare --jit-compile` asks for XLA through a callback of the recipe's
    fit; without this the CycleGAN pre-training of ImbalanceCycleGAN and
    PolarityGAN's stage-1 autoencoder would run without it. The other
    callbacks (schedules, TensorBoard, selection) are the classifier's.
    """
    return [cb for cb in fit_kwargs.get("callbacks") or [] if isinstance(cb, XLACompile)]


def _fit_pipeline(recipe, model, data, epochs, verbose, callbacks, fit_kwargs):
    """`model.fit` on the recipe's tf.data pipeline, kept as `recipe.history_`.

    `shuffle=False`: the pipeline shuffles or samples itself, and Keras' default `shuffle=True` is ignored
    for a Dataset with a warning on every run.
    """
    recipe.history_ = model.fit(data, epochs=epochs, verbose=verbose, callbacks=callbacks,
                                **{"shuffle": False, **fit_kwargs})
    return model


def _inference_copy(model):
    """An uncompiled copy of the trained `model` with its weights (trainable and not).

    M2m's translator g is fixed (paper Sec. 2.1) and frozen inside M2m, so a compiled g would carry the
    optimizer state of its ERM training into M2m's `.keras` file, where a frozen g's optimizer has no slots
    to load it into (Keras skips it with a warning on every load).
    """
    copy = type(model).from_config(model.get_config())  # not `clone_model`, which compiles the copy
    copy.set_weights(model.get_weights())
    return copy


def _copy_if_instance(optimizer):
    """`optimizer` for a second model: an optimizer instance binds its slots to one model's variables, so it is copied."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    return optimizer


def split_head(backbone):
    """(F, M) of a backbone whose last layer is its Dense classification head: F its other layers, M the head alone."""
    head = backbone.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ValueError(f"feature-space GAMO splits the backbone at its last layer, which must be Dense; "
                         f"{backbone.name!r} ends in {type(head).__name__}")
    features = keras.Model(backbone.inputs, head.input, name=f"{backbone.name}_features")
    inputs = keras.Input(tuple(head.input.shape[1:]), name="features")
    return features, keras.Model(inputs, head(inputs), name=f"{backbone.name}_head")


def _generated_grid(model, per_class, seed):
    """One row of `per_class` generated images per minority class of a convex-generator model (GAMO, PolarityGAN)."""
    minority = model.minority_classes
    rows = [np.asarray(model.sample(per_class, k, seed=seed + k)) for k in minority]
    return np.stack(rows), [f"class {k}" for k in minority], (0.0, 1.0)


@register
class GAMORecipe(MethodRecipe):
    """GAMO (Mullick et al. 2019, Sec. 3 and Algorithm 1) with the comparison's backbone as classifier M.

    Pixel space: the convex generator mixes stored minority images, and the
    backbone classifies real and generated images; the conditional
    discriminator is GAMO's dense D (`discriminator=False` gives GAMO\\D).
    D and G use Adam(2e-4, beta_1=0.5), the authors' setting; so does M
    (`paper_settings()`) unless `training` (a comparison's shared classifier
    recipe) or `optimizer` is given. `loss` is "least_squares" (the paper's
    better variant) or "cross_entropy"; it is part of the method, so the
    classifier's loss differs from its reference baseline `erm` (cross-entropy).
    The classifier sees the real batches (augmented when `training.augment`)
    and the generated ones; G's banks hold the un-augmented real minority images.

    Readings of the paper (issue 19; docs/results.md "GAMO readings"):
    `generator_columns` "minority" (eq. 6, the default) or "all" (eq. 2 for
    cross entropy, and the authors' code) is `GAMO(majority_in_generator_target=...)`.
    `space="feature"` splits the backbone into F (every layer but the last)
    and M (its last, Dense layer), the paper's feature-space GAMO (Fig. 3);
    there `feature_schedule` "joint" (the authors' code, the default) or
    "alternating" (Algorithm 1) is `GAMO(feature_schedule=...)`.
    """

    name = "gamo"
    # One classifier step on the real batch and one on a generated batch: twice ERM's updates per epoch.
    matched_updates_control = "erm[epoch_multiplier=2]"
    config_keys = ("loss", "discriminator", "latent_dim", "classifier_learning_rate", "generator_columns", "space",
                   "feature_schedule")

    def __init__(self, loss="least_squares", discriminator=True, latent_dim=100, classifier_learning_rate=2e-4,
                 generator_columns="minority", space="pixel", feature_schedule="joint"):
        for key, value, allowed in (("generator_columns", generator_columns, ("minority", "all")),
                                    ("space", space, ("pixel", "feature")),
                                    ("feature_schedule", feature_schedule, ("joint", "alternating"))):
            if value not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
        if feature_schedule == "alternating" and space != "feature":
            raise ValueError("feature_schedule='alternating' alternates F and M (Algorithm 1); it needs space='feature'")
        self.loss = loss
        self.discriminator = bool(discriminator)
        self.latent_dim = int(latent_dim)
        self.classifier_learning_rate = float(classifier_learning_rate)
        self.generator_columns = generator_columns
        self.space = space
        self.feature_schedule = feature_schedule

    def paper_settings(self, augment=None):
        """GAMO's classifier setting (Mullick et al. 2019, authors' code): Adam(2e-4, beta_1=0.5), constant LR."""
        return ClassifierTraining(self._default_classifier_optimizer, schedule=None, augment=augment, shared=False,
                                  description=f"adam({self.classifier_learning_rate:g}, beta_1=0.5)")

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None,
            training=None, **fit_kwargs):
        training, x, y, counts = self._begin_fit(x, y, num_classes, seed, training, optimizer)
        c, shape = len(counts), tuple(x.shape[1:])
        classifier, features = backbone_fn(shape, c), None
        if self.space == "feature":
            features, classifier = split_head(classifier)
        sample_shape = tuple(classifier.input_shape[1:])
        model = GAMO(
            classifier,
            GAMODiscriminator(sample_shape, c) if self.discriminator else None,
            feature_extractor=features,
            latent_dim=self.latent_dim,
            loss=self.loss,
            majority_in_generator_target=self.generator_columns == "all",
            feature_schedule=self.feature_schedule,
            seed=int(seed),
        ).adapt(x, y)
        # F is part of the classifier the comparison trains: it gets the shared classifier optimizer too.
        model.compile(classifier_optimizer=training.make_optimizer(),
                      feature_extractor_optimizer=training.make_optimizer() if features is not None else None)
        callbacks = _fit_callbacks(self, training, epochs, fit_kwargs, num_classes=c)
        if features is not None:
            callbacks = training.lr_callbacks(epochs, player="feature_extractor") + callbacks
        data = to_dataset(x, y, batch_size, seed=int(seed), num_classes=c, augment=training.augment)
        return _fit_pipeline(self, model, data, epochs, verbose, callbacks, fit_kwargs)

    def _default_classifier_optimizer(self):
        return keras.optimizers.Adam(self.classifier_learning_rate, beta_1=0.5)

    def sample_grid(self, model, num_classes, per_class=8, seed=0):
        """(rows, per_class, H, W, C) generated images of each minority class, labels, value range; None in feature space."""
        return _generated_grid(model, per_class, seed) if model.feature_extractor is None else None


@register
class GAMONoDiscriminatorRecipe(GAMORecipe):
    """GAMO\\D: GAMO without the discriminator D, the ablation of Mullick et al. 2019, Sec. 4.1 (Fig. 4, Tables 1-2).

    Same defaults as `GAMORecipe` otherwise.
    """

    name = "gamo-d"

    def __init__(self, **options):
        options.setdefault("discriminator", False)
        super().__init__(**options)


@register
class M2mRecipe(MethodRecipe):
    """M2m (Kim et al. 2020, Sec. 2, Algorithm 1): g pre-trained by the ERM recipe, f trained with deferred translation.

    g is the `erm` baseline's model trained on the same data, budget and
    optimizer (a copy when `optimizer` is an instance; paper Sec. 3.1:
    "pre-trained on the given dataset via standard ERM"). f starts as ERM on the data as it is; from the deferred epoch
    (80 % of the epochs, 160 of 200 in the paper) the data switch to
    class-balanced batches and the translation starts, with the paper's
    optimizer recipe (SGD 0.1, momentum 0.9, coupled L2 2e-4, warm-up and
    step decay) unless `training` or `optimizer` is given. With `training`
    (a comparison's shared classifier recipe) g is trained exactly as the
    `erm` row (same seed, same `training`), and f with the same optimizer,
    schedule and augmentation; the translation starts from f's real
    (augmented) class-balanced batches: the seeds of M2m are those images.

    `beta="scaled"` (default) uses 0.999 ** (5000 / N_max): the paper's
    0.999 at CIFAR-10-LT's N_max = 5000, and the same acceptance
    probabilities 1 - beta^(N_k0 - N_k) relative to the largest class on
    smaller data (with 0.999 on 120 images per class every translation would
    be rejected with probability >= 0.89). A number sets beta directly.
    The other defaults are the paper's (Sec. 3.1 "Details on M2m"):
    lambda 0.5, gamma 0.9, step size eta 0.1, T = 10 steps.
    """

    name = "m2m"
    # f trains on the deferred class-balanced stream (DRS) with translated samples in it: DRS is f without M2m.
    reference_baseline = "drs"
    config_keys = ("beta", "lam", "gamma", "step_size", "attack_steps", "defer_epoch", "acceptance_criterion",
                   "translated_positions")
    loss_name = "ce"

    def __init__(self, beta="scaled", lam=0.5, gamma=0.9, step_size=0.1, attack_steps=10, defer_epoch=None,
                 acceptance_criterion="loss", translated_positions="all"):
        self.beta = beta
        self.lam = float(lam)
        self.gamma = float(gamma)
        self.step_size = float(step_size)
        self.attack_steps = int(attack_steps)
        self.defer_epoch = defer_epoch
        self.acceptance_criterion = acceptance_criterion
        check_translated_positions(translated_positions)  # before fit spends its time on g
        self.translated_positions = translated_positions

    def _beta(self, counts):
        return 0.999 ** (5000.0 / float(max(counts))) if self.beta == "scaled" else float(self.beta)

    def _loss_and_classifier(self, backbone_fn, shape, counts):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), backbone_fn(shape, len(counts))

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None,
            training=None, **fit_kwargs):
        given = training
        training, x, y, counts = self._begin_fit(x, y, num_classes, seed, training, optimizer)
        c = len(counts)
        # g: the erm recipe, trained as the erm row of a comparison (the same `training`).
        g_options = {"training": given} if given is not None else {"optimizer": _copy_if_instance(optimizer)}
        translator = create_recipe("erm").fit(backbone_fn, x, y, epochs=epochs, batch_size=batch_size, seed=seed,
                                              verbose=0, num_classes=c, **g_options)
        translator = _inference_copy(translator)
        keras.utils.set_random_seed(int(seed) + 1)
        loss, classifier = self._loss_and_classifier(backbone_fn, tuple(x.shape[1:]), counts)
        defer = self.defer_epoch if self.defer_epoch is not None else scale_epoch(160, epochs)
        lo, hi = float(np.min(x)), float(np.max(x))
        model = M2m(classifier, translator, class_counts=counts, beta=self._beta(counts), lam=self.lam, gamma=self.gamma,
                    step_size=self.step_size, attack_steps=self.attack_steps, start_epoch=defer, input_range=(lo, hi),
                    acceptance_criterion=self.acceptance_criterion, translated_positions=self.translated_positions,
                    seed=int(seed))
        model.compile(optimizer=training.make_optimizer(), loss=loss)
        resampling = DeferredResampling(defer)
        data = resampling.make_dataset(x, y, batch_size, seed=int(seed), num_classes=c, augment=training.augment)
        # M2m's f is a single-optimizer model: its schedule acts on `model.optimizer`.
        callbacks = [resampling] + _fit_callbacks(self, training, epochs, fit_kwargs, player=None, num_classes=c)
        return _fit_pipeline(self, model, data, epochs, verbose, callbacks, fit_kwargs)


@register
class LDAMM2mRecipe(M2mRecipe):
    """LDAM-M2m: M2m with the LDAM loss (margin 0.5, s = 30) on a cosine head (Kim et al. 2020, Table 1).

    The other defaults are `M2mRecipe`'s; the cosine head is `baselines.cosine_head`.
    """

    name = "ldam-m2m"
    reference_baseline = "ldam-drw"

    def _loss_and_classifier(self, backbone_fn, shape, counts):
        return LDAMLoss(counts, max_margin=0.5, scale=30.0), cosine_head(backbone_fn(shape, len(counts)), len(counts))


@register
class ImbalanceCycleGANRecipe(MethodRecipe):
    """ImbalanceCycleGAN (Sahoo et al. 2020, Sec. 3, eqs. 4-7) with the comparison's backbone as the classifier z.

    Binary data only (a majority A and a minority B; `check_data` raises
    otherwise). Two stages, as in the paper (Appendix A.2):

    1. A `CycleGAN` is trained on the majority (A) and minority (B) training
       images for `gan_epochs` epochs (default: the same number as the
       classifier's `epochs`), each epoch ceil(max(N_A, N_B) / batch_size)
       unpaired batches, LR constant for the first half and decayed linearly
       for the second (`callbacks.LinearLRDecay`; the paper's CUB recipe is
       50 + 150 epochs), four Adam(2e-4, beta_1=0.5).
    2. The classifier `backbone_fn(input_shape, 2)` is trained by
       `ImbalanceCycleGAN` in `mode` ("aug": CycleGAN frozen; "alt":
       alternating every `switch_every` epochs, starting with the classifier)
       for `epochs` epochs of ceil(N_A / batch_size) pair batches.

    Budget: the classifier gets the comparison's `epochs`, like every
    baseline (in ALT mode half of them are CycleGAN phases, as in the
    paper); the CycleGAN pre-training is the method's extra cost on top
    (pass `gan_epochs` to change it). Networks are sized for small images:
    `applications.ResnetGenerator` with `generator_filters` (16) and
    `residual_blocks` (3), `PatchGANDiscriminator` with `discriminator_filters`
    (16) and the most stride-2 layers (up to 3) the image size allows. Image
    height and width must be divisible by 4 and >= 8 (the generator's two
    down-samplings). The classifier's optimizer is `training`'s (a
    comparison's shared classifier recipe), else `optimizer`, else
    Adam(2e-4, beta_1=0.5) (`paper_settings()`). The CycleGAN is trained on
    the real, un-augmented images of each class; the classifier's batches
    are built by `ImbalanceCycleGAN.fit` from the arrays (no augmentation).

    `stream` is the reading of eq. 6 (issue 19; docs/results.md
    "ImbalanceCycleGAN readings"): "pairs" (the default, 1:1 pairs with the
    minority cycled) or "natural" (per-sample eq. 6 over natural-order
    epochs, AUG mode only); see `ImbalanceCycleGAN`. Model selection on a
    validation split (the paper keeps the best classifier on one) is
    `compare --select best-val`: the classifier is restored to its epoch
    of best balanced accuracy on the held-out split.
    """

    name = "imbalance-cyclegan"
    # ImbalanceCycleGAN.fit builds its own pair batches from arrays: no augmentation there.
    supports_augment = False
    config_keys = ("mode", "switch_every", "gan_epochs", "generator_filters", "residual_blocks", "discriminator_filters",
                   "pool_size", "cycle_weight", "identity_weight", "stream")
    default_mode = "aug"

    def __init__(self, mode=None, switch_every=5, gan_epochs=None, generator_filters=16, residual_blocks=3,
                 discriminator_filters=16, pool_size=50, cycle_weight=10.0, identity_weight=5.0, stream="pairs"):
        self.mode = mode or self.default_mode
        if self.mode not in ("aug", "alt"):
            raise ValueError(f"mode must be 'aug' or 'alt', got {self.mode!r}")
        if stream not in ("pairs", "natural"):
            raise ValueError(f"stream must be 'pairs' or 'natural', got {stream!r}")
        if stream == "natural" and self.mode == "alt":
            raise ValueError("stream='natural' is AUG mode only: the ALT CycleGAN phase trains on (a, b) pairs")
        self.stream = stream
        self.switch_every = int(switch_every)
        self.gan_epochs = None if gan_epochs is None else int(gan_epochs)
        self.generator_filters = int(generator_filters)
        self.residual_blocks = int(residual_blocks)
        self.discriminator_filters = int(discriminator_filters)
        self.pool_size = int(pool_size)
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)
        self.examples_ = None

    def check_data(self, num_classes):
        if int(num_classes) != 2:
            raise binary_only_error(num_classes)

    def build_cycle_gan(self, shape, value_range, seed):
        """The recipe's CycleGAN for images of `shape` in `value_range`."""
        h, w = shape[:2]
        if h % 4 or w % 4 or min(h, w) < 8:
            raise ValueError(f"ImbalanceCycleGAN's generator needs image height and width divisible by 4 and >= 8; "
                             f"got {shape[:2]} (pad or resize the images)")
        layers_ = max(n for n in range(0, 4) if 3 * 2**n <= min(h, w))

        def gen(name):
            return ResnetGenerator(shape, filters=self.generator_filters, num_residual_blocks=self.residual_blocks, name=name)

        def disc(name):
            return PatchGANDiscriminator(shape, filters=self.discriminator_filters, num_layers=layers_, name=name)

        return CycleGAN(gen("generator_ab"), gen("generator_ba"), disc("discriminator_a"), disc("discriminator_b"),
                        cycle_weight=self.cycle_weight, identity_weight=self.identity_weight, pool_size=self.pool_size,
                        value_range=value_range, seed=int(seed))

    def paper_settings(self, augment=None):
        """ImbalanceCycleGAN's classifier setting (Sahoo et al. 2020, Appendix A.2): Adam(2e-4, beta_1=0.5), constant LR."""
        return ClassifierTraining(lambda: keras.optimizers.Adam(2e-4, beta_1=0.5), schedule=None, augment=augment,
                                  shared=False, description="adam(0.0002, beta_1=0.5)")

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None,
            training=None, **fit_kwargs):
        training = self._training(training, optimizer)
        if num_classes is None:
            num_classes = int(np.max(check_xy(x, y)[1])) + 1
        self.check_data(num_classes)
        x, y, counts = prepare_fit_data(x, y, 2, seed)
        shape = tuple(x.shape[1:])
        lo, hi = float(np.min(x)), float(np.max(x))
        value_range = (lo, hi) if hi > lo else (0.0, 1.0)
        majority = int(np.argmax(counts))
        a, b = x[y == majority], x[y != majority]
        cycle_gan = self.build_cycle_gan(shape, value_range, seed)
        cycle_gan.compile()
        gan_epochs = self.gan_epochs if self.gan_epochs is not None else int(epochs)
        if gan_epochs > 0:
            constant = (gan_epochs + 1) // 2
            self.gan_history_ = cycle_gan.fit(a, b, batch_size=batch_size, epochs=gan_epochs, verbose=verbose,
                                              shuffle_seed=int(seed), callbacks=[LinearLRDecay(constant, gan_epochs - constant),
                                                                                 *_inner_fit_callbacks(fit_kwargs)])
        keras.utils.set_random_seed(int(seed) + 1)
        model = ImbalanceCycleGAN(backbone_fn(shape, 2), cycle_gan, mode=self.mode, switch_every=self.switch_every,
                                  class_counts=counts, stream=self.stream, seed=int(seed))
        model.compile(classifier_optimizer=training.make_optimizer())
        callbacks = _fit_callbacks(self, training, epochs, fit_kwargs, num_classes=2)
        self.history_ = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, shuffle_seed=int(seed),
                                  callbacks=callbacks, **fit_kwargs)
        # A few real images of each class for `sample_grid`.
        self.examples_ = (a[:8], b[:8], value_range)
        return model

    def sample_grid(self, model, num_classes, per_row=8):
        """Rows: real A, G_AB(A), real B, G_BA(B); ((4, K, H, W, C), row labels, value range)."""
        if self.examples_ is None:
            raise ValueError("sample_grid needs the images of the last fit; call fit first")
        a, b, value_range = self.examples_
        k = min(per_row, len(a), len(b))
        a, b = a[:k], b[:k]
        rows = [a, np.asarray(model.translate_ab(a)), b, np.asarray(model.translate_ba(b))]
        labels = [f"A (class {model.majority_class})", "A -> B", f"B (class {model.minority_class})", "B -> A"]
        return np.stack(rows), labels, value_range


@register
class ImbalanceCycleGANAltRecipe(ImbalanceCycleGANRecipe):
    """ImbalanceCycleGAN in ALT mode (Sahoo et al. 2020, Sec. 3, eq. 7): classifier and CycleGAN phases alternate.

    Every `switch_every` epochs (5, the paper's "few epochs" on CelebA,
    Appendix A.1), starting with the classifier; otherwise `ImbalanceCycleGANRecipe`'s defaults.
    """

    name = "imbalance-cyclegan-alt"
    default_mode = "alt"


@register
class PolarityGANRecipe(MethodRecipe):
    """PolarityGAN (Deepshikha & Naman 2021, Sec. 4, Algorithm 1) with the comparison's backbone as classifier C, pixel space.

    Stage 1 (the autoencoder that initializes the convex generator) gets
    `max(1, round(autoencoder_fraction * epochs))` epochs (20 % by default).
    Under a comparison's shared classifier recipe (`training` given, shared)
    they are extra-player epochs on top, and stage 2 (Algorithm 1, the only
    stage that trains the classifier) gets the full `epochs`, as every
    baseline. Without `training` (and with `paper_settings()`) the budget is
    split as before: stage 2 gets the rest, at least 1, so the method sees the
    data as many times as a baseline with the same `epochs`, the classifier
    80 % of the passes (two updates per step: real and generated batch).
    Players use Adam(2e-4, beta_1=0.6) (Sec. 5.1); so does C unless
    `training` or `optimizer` is given; the critic is
    `applications.PolarityCritic`. The classifier sees the real batches
    (augmented when `training.augment`) and the generated ones; the
    autoencoder and G's banks use the un-augmented real images.
    `negative_weighting` and `generated_weighting` choose the reading of
    eq. 6 (`models.PolarityGAN`'s Args). `run_report` adds the uncertainty
    of C on generated vs real samples (`metrics.generated_sample_uncertainty`)
    to each run of a comparison.
    """

    name = "polarity-gan"
    # One classifier step on the real batch and one on a generated batch: twice ERM's updates per epoch.
    matched_updates_control = "erm[epoch_multiplier=2]"
    config_keys = ("autoencoder_fraction", "critic_steps", "gradient_penalty", "latent_dim", "classifier_learning_rate",
                   "negative_weighting", "generated_weighting")

    def __init__(self, autoencoder_fraction=0.2, critic_steps=5, gradient_penalty=10.0, latent_dim=32,
                 classifier_learning_rate=2e-4, negative_weighting="output", generated_weighting="sampling"):
        if not 0.0 <= float(autoencoder_fraction) < 1.0:
            raise ValueError(f"autoencoder_fraction must be in [0, 1), got {autoencoder_fraction}")
        check_readings(negative_weighting, generated_weighting)
        self.negative_weighting = negative_weighting
        self.generated_weighting = generated_weighting
        self.autoencoder_fraction = float(autoencoder_fraction)
        self.critic_steps = int(critic_steps)
        self.gradient_penalty = float(gradient_penalty)
        self.latent_dim = int(latent_dim)
        self.classifier_learning_rate = float(classifier_learning_rate)

    def split_epochs(self, epochs):
        """(autoencoder epochs, stage-2 epochs) for a budget of `epochs`."""
        epochs = int(epochs)
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        stage1 = max(1, int(round(self.autoencoder_fraction * epochs))) if self.autoencoder_fraction > 0 else 0
        return stage1, max(1, epochs - stage1)

    def paper_settings(self, augment=None):
        """PolarityGAN's classifier setting (Sec. 5.1): Adam(2e-4, beta_1=0.6), constant LR, 80 % of the epochs."""
        return ClassifierTraining(lambda: keras.optimizers.Adam(self.classifier_learning_rate, beta_1=0.6), schedule=None,
                                  augment=augment, shared=False, description=f"adam({self.classifier_learning_rate:g}, beta_1=0.6)")

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None,
            training=None, **fit_kwargs):
        training, x, y, counts = self._begin_fit(x, y, num_classes, seed, training, optimizer)
        c, shape = len(counts), tuple(x.shape[1:])
        stage1, stage2 = self.split_epochs(epochs)
        if training.shared:
            # The shared protocol: the classifier gets every epoch; the autoencoder's are the method's extra cost.
            stage2 = int(epochs)
        model = PolarityGAN(
            backbone_fn(shape, c),
            PolarityCritic(shape, c),
            latent_dim=self.latent_dim,
            autoencoder_epochs=stage1,
            critic_steps=self.critic_steps,
            gradient_penalty=self.gradient_penalty,
            negative_weighting=self.negative_weighting,
            generated_weighting=self.generated_weighting,
            seed=int(seed),
        ).adapt(x, y)
        model.compile(classifier_optimizer=training.make_optimizer())
        if stage1:
            model.pretrain_autoencoder(epochs=stage1, batch_size=batch_size, verbose=verbose,
                                       callbacks=_inner_fit_callbacks(fit_kwargs))
        callbacks = _fit_callbacks(self, training, stage2, fit_kwargs, num_classes=c)
        data = to_dataset(x, y, batch_size, seed=int(seed), num_classes=c, augment=training.augment)
        return _fit_pipeline(self, model, data, stage2, verbose, callbacks, fit_kwargs)

    def sample_grid(self, model, num_classes, per_class=8, seed=0):
        """(rows, per_class, H, W, C) generated images of each generated class, labels, value range."""
        return _generated_grid(model, per_class, seed)

    def run_report(self, model, x, y, x_test, y_test, seed=0, per_class=100):
        """The paper's claim on this run: C's uncertainty on generated vs real samples of the generated classes.

        `per_class` generated samples of each generated class (seeded by
        `seed`), the real training samples `x, y` and test samples of those
        classes, scored by `metrics.generated_sample_uncertainty`; the row
        "generated - real train" is > 0 in the uncertainty columns where the
        claim holds. Pixel space, so C takes real and generated samples alike.
        """
        labels = np.repeat(model.minority_classes, int(per_class))
        generated = (model.generate(labels, seed=int(seed)), labels)
        result = metrics.generated_sample_uncertainty(model.classifier, generated, (x, y), (x_test, y_test),
                                                      classes=model.minority_classes)
        overall = result["overall"]
        table = {group.replace("_", " "): {k: v for k, v in overall[group].items() if k != "n"}
                 for group in metrics.GENERATED_UNCERTAINTY_GROUPS}
        table["generated - real train"] = {k: table["generated"][k] - table["real train"][k] for k in table["generated"]}
        return {"title": "C on generated vs real samples of the generated classes (metrics.generated_sample_uncertainty; "
                         "uncertainty measures eqs. 7-10, higher = more uncertain; logit margin = mean |z_y - max_j z_j|, "
                         "a distance-to-boundary proxy; accuracy = share on its class's side)",
                "table": table}
