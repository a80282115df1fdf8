"""Training recipes for the generative method models, behind the baselines' interface.

Each recipe has `name`, `get_config()` and

    fit(backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None,
        verbose=0, num_classes=None) -> keras.Model

(the interface of `keras_imbalance.baselines.BaseRecipe`), so `compare`
drives methods and baselines the same way: same backbone factory, same data,
same epochs and batch size. The returned model's `call(x)` gives logits.
Recipes whose method generates also have `sample_grid(model, num_classes)`
(images per class for the plots). `check_data(num_classes)` raises for data
a method cannot take (the binary ImbalanceCycleGAN on multi-class data).
"""

import keras
import numpy as np

from keras_imbalance import baselines
from keras_imbalance.applications.cyclegan import PatchGANDiscriminator
from keras_imbalance.applications.cyclegan import ResnetGenerator
from keras_imbalance.applications.gamo import GAMODiscriminator
from keras_imbalance.applications.polarity_gan import PolarityCritic
from keras_imbalance.callbacks import DeferredResampling
from keras_imbalance.callbacks import LinearLRDecay
from keras_imbalance.callbacks import PaperLRSchedule
from keras_imbalance.callbacks import scale_epoch
from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.validation import check_xy
from keras_imbalance.datasets.validation import class_counts as _class_counts
from keras_imbalance.losses import LDAMLoss
from keras_imbalance.models.gamo import GAMO
from keras_imbalance.models.cyclegan import CycleGAN
from keras_imbalance.models.imbalance_cyclegan import ImbalanceCycleGAN
from keras_imbalance.models.imbalance_cyclegan import binary_only_error
from keras_imbalance.models.m2m import M2m
from keras_imbalance.models.m2m import check_translated_positions
from keras_imbalance.models.polarity_gan import PolarityGAN
from keras_imbalance.optimizers import CoupledSGD

_RECIPES = {}


def register(cls):
    _RECIPES[cls.name] = cls
    return cls


def available():
    """Names of the method recipes, in a fixed order."""
    return list(_RECIPES)


def get(name, **options):
    """The method recipe called `name` (see `available()`), with `options` passed to it."""
    key = str(name).strip().lower()
    if key not in _RECIPES:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(available())}")
    try:
        return _RECIPES[key](**options)
    except TypeError as e:
        raise ValueError(f"bad option for method {key!r}: {e}") from None


def _prepare(x, y, num_classes, seed):
    keras.utils.set_random_seed(int(seed))
    x, y = check_xy(x, y, num_classes)
    counts = _class_counts(y, num_classes)
    return x.astype(np.float32, copy=False), y, counts


class _MethodRecipe(baselines.BaseRecipe):
    def check_data(self, num_classes):
        """Raise if the method cannot take data with `num_classes` classes."""


@register
class GAMORecipe(_MethodRecipe):
    """GAMO (Mullick et al. 2019, Algorithm 1) with the comparison's backbone as classifier M.

    Pixel space: the convex generator mixes stored minority images, and the
    backbone classifies real and generated images; the conditional
    discriminator is GAMO's dense D (`discriminator=False` gives GAMO\\D).
    Every player uses Adam(2e-4, beta_1=0.5), the authors' setting, unless
    `optimizer` (for M) is given. `loss` is "least_squares" (the paper's
    better variant) or "cross_entropy".
    """

    name = "gamo"

    def __init__(self, loss="least_squares", discriminator=True, latent_dim=100, classifier_learning_rate=2e-4):
        self.loss = loss
        self.discriminator = bool(discriminator)
        self.latent_dim = int(latent_dim)
        self.classifier_learning_rate = float(classifier_learning_rate)

    def get_config(self):
        return {"name": self.name, "loss": self.loss, "discriminator": self.discriminator,
                "latent_dim": self.latent_dim, "classifier_learning_rate": self.classifier_learning_rate}

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None, **fit_kwargs):
        x, y, counts = _prepare(x, y, num_classes, seed)
        c = len(counts)
        shape = tuple(x.shape[1:])
        model = GAMO(
            backbone_fn(shape, c),
            GAMODiscriminator(shape, c) if self.discriminator else None,
            latent_dim=self.latent_dim,
            loss=self.loss,
            seed=int(seed),
        ).adapt(x, y)
        model.compile(classifier_optimizer=optimizer or keras.optimizers.Adam(self.classifier_learning_rate, beta_1=0.5))
        self.history_ = model.fit(to_dataset(x, y, batch_size, seed=int(seed), num_classes=c), epochs=epochs, verbose=verbose, **fit_kwargs)
        return model

    def sample_grid(self, model, num_classes, per_class=8, seed=0):
        """(rows, per_class, H, W, C) generated images of each minority class, labels, value range."""
        minority = model.minority_classes
        rows = [np.asarray(model.sample(per_class, k, seed=seed + k)) for k in minority]
        return np.stack(rows), [f"class {k}" for k in minority], (0.0, 1.0)


@register
class GAMONoDiscriminatorRecipe(GAMORecipe):
    """GAMO\\D: the ablation without the discriminator."""

    name = "gamo-d"

    def __init__(self, **options):
        options.setdefault("discriminator", False)
        super().__init__(**options)


@register
class M2mRecipe(_MethodRecipe):
    """M2m (Kim et al. 2020): g pre-trained by the ERM recipe, f trained with deferred translation.

    g is the `erm` baseline's model trained on the same data, budget and
    optimizer (paper Sec. 3.1: "pre-trained on the given dataset via standard
    ERM"). f starts as ERM on the data as it is; from the deferred epoch
    (80 % of the epochs, 160 of 200 in the paper) the data switch to
    class-balanced batches and the translation starts, with the paper's
    optimizer recipe (SGD 0.1, momentum 0.9, coupled L2 2e-4, warm-up and
    step decay) unless `optimizer` is given.

    `beta="scaled"` (default) uses 0.999 ** (5000 / N_max): the paper's
    0.999 at CIFAR-10-LT's N_max = 5000, and the same acceptance
    probabilities 1 - beta^(N_k0 - N_k) relative to the largest class on
    smaller data (with 0.999 on 120 images per class every translation would
    be rejected with probability >= 0.89). A number sets beta directly.
    """

    name = "m2m"
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

    def get_config(self):
        return {"name": self.name, "beta": self.beta, "lam": self.lam, "gamma": self.gamma, "step_size": self.step_size,
                "attack_steps": self.attack_steps, "defer_epoch": self.defer_epoch,
                "acceptance_criterion": self.acceptance_criterion, "translated_positions": self.translated_positions}

    def _beta(self, counts):
        return 0.999 ** (5000.0 / float(max(counts))) if self.beta == "scaled" else float(self.beta)

    def _loss_and_classifier(self, backbone_fn, shape, counts):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), backbone_fn(shape, len(counts))

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None, **fit_kwargs):
        x, y, counts = _prepare(x, y, num_classes, seed)
        c = len(counts)
        translator = baselines.get("erm").fit(backbone_fn, x, y, epochs=epochs, batch_size=batch_size, seed=seed,
                                              optimizer=optimizer, verbose=0, num_classes=c)
        keras.utils.set_random_seed(int(seed) + 1)
        loss, classifier = self._loss_and_classifier(backbone_fn, tuple(x.shape[1:]), counts)
        defer = self.defer_epoch if self.defer_epoch is not None else scale_epoch(160, epochs)
        lo, hi = float(np.min(x)), float(np.max(x))
        model = M2m(classifier, translator, class_counts=counts, beta=self._beta(counts), lam=self.lam, gamma=self.gamma,
                    step_size=self.step_size, attack_steps=self.attack_steps, start_epoch=defer, input_range=(lo, hi),
                    acceptance_criterion=self.acceptance_criterion, translated_positions=self.translated_positions,
                    seed=int(seed))
        model.compile(optimizer=optimizer or CoupledSGD(learning_rate=0.1, momentum=0.9, l2=2e-4), loss=loss)
        resampling = DeferredResampling(defer)
        data = resampling.make_dataset(x, y, batch_size, seed=int(seed), num_classes=c)
        callbacks = [resampling] + ([PaperLRSchedule(epochs)] if optimizer is None else [])
        self.history_ = model.fit(data, epochs=epochs, verbose=verbose, callbacks=callbacks, **fit_kwargs)
        return model


@register
class LDAMM2mRecipe(M2mRecipe):
    """LDAM-M2m: M2m with the LDAM loss (margin 0.5, s = 30) on a cosine head (paper Table 1)."""

    name = "ldam-m2m"

    def _loss_and_classifier(self, backbone_fn, shape, counts):
        return LDAMLoss(counts, max_margin=0.5, scale=30.0), baselines._cosine_head(backbone_fn(shape, len(counts)), len(counts))


@register
class ImbalanceCycleGANRecipe(_MethodRecipe):
    """ImbalanceCycleGAN (Sahoo et al. 2020) with the comparison's backbone as the classifier z.

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
    down-samplings). The classifier's optimizer is `optimizer` or
    Adam(2e-4, beta_1=0.5).
    """

    name = "imbalance-cyclegan"
    default_mode = "aug"

    def __init__(self, mode=None, switch_every=5, gan_epochs=None, generator_filters=16, residual_blocks=3,
                 discriminator_filters=16, pool_size=50, cycle_weight=10.0, identity_weight=5.0):
        self.mode = mode or self.default_mode
        if self.mode not in ("aug", "alt"):
            raise ValueError(f"mode must be 'aug' or 'alt', got {self.mode!r}")
        self.switch_every = int(switch_every)
        self.gan_epochs = None if gan_epochs is None else int(gan_epochs)
        self.generator_filters = int(generator_filters)
        self.residual_blocks = int(residual_blocks)
        self.discriminator_filters = int(discriminator_filters)
        self.pool_size = int(pool_size)
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)
        self.examples_ = None

    def get_config(self):
        return {"name": self.name, "mode": self.mode, "switch_every": self.switch_every, "gan_epochs": self.gan_epochs,
                "generator_filters": self.generator_filters, "residual_blocks": self.residual_blocks,
                "discriminator_filters": self.discriminator_filters, "pool_size": self.pool_size,
                "cycle_weight": self.cycle_weight, "identity_weight": self.identity_weight}

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

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None, **fit_kwargs):
        if num_classes is None:
            num_classes = int(np.max(check_xy(x, y)[1])) + 1
        self.check_data(num_classes)
        x, y, counts = _prepare(x, y, 2, seed)
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
                                              shuffle_seed=int(seed), callbacks=[LinearLRDecay(constant, gan_epochs - constant)])
        keras.utils.set_random_seed(int(seed) + 1)
        model = ImbalanceCycleGAN(backbone_fn(shape, 2), cycle_gan, mode=self.mode, switch_every=self.switch_every,
                                  class_counts=counts, seed=int(seed))
        clf_opt = baselines._resolve_optimizer(optimizer) if optimizer is not None else keras.optimizers.Adam(2e-4, beta_1=0.5)
        model.compile(classifier_optimizer=clf_opt)
        self.history_ = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, shuffle_seed=int(seed), **fit_kwargs)
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
    """ImbalanceCycleGAN in ALT mode (classifier and CycleGAN phases alternate every `switch_every` epochs)."""

    name = "imbalance-cyclegan-alt"
    default_mode = "alt"


@register
class PolarityGANRecipe(_MethodRecipe):
    """PolarityGAN (Deepshikha & Naman 2021) with the comparison's backbone as classifier C, pixel space.

    The epoch budget is split between the two stages: stage 1 (the
    autoencoder that initializes the convex generator) gets
    `max(1, round(autoencoder_fraction * epochs))` epochs (20 % by default),
    stage 2 (Algorithm 1, the only stage that trains the classifier) the
    rest, at least 1. Every epoch of either stage is one pass over the data,
    so the method sees the data as many times as a baseline with the same
    `epochs`; the classifier gets fewer passes (80 %), but two updates per
    step (real batch and generated batch). Players use Adam(2e-4,
    beta_1=0.6) (Sec. 5.1) unless `optimizer` (for C) is given; the critic is
    `applications.PolarityCritic`.
    """

    name = "polarity-gan"

    def __init__(self, autoencoder_fraction=0.2, critic_steps=5, gradient_penalty=10.0, latent_dim=32,
                 classifier_learning_rate=2e-4):
        if not 0.0 <= float(autoencoder_fraction) < 1.0:
            raise ValueError(f"autoencoder_fraction must be in [0, 1), got {autoencoder_fraction}")
        self.autoencoder_fraction = float(autoencoder_fraction)
        self.critic_steps = int(critic_steps)
        self.gradient_penalty = float(gradient_penalty)
        self.latent_dim = int(latent_dim)
        self.classifier_learning_rate = float(classifier_learning_rate)

    def get_config(self):
        return {"name": self.name, "autoencoder_fraction": self.autoencoder_fraction, "critic_steps": self.critic_steps,
                "gradient_penalty": self.gradient_penalty, "latent_dim": self.latent_dim,
                "classifier_learning_rate": self.classifier_learning_rate}

    def split_epochs(self, epochs):
        """(autoencoder epochs, stage-2 epochs) for a budget of `epochs`."""
        epochs = int(epochs)
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        stage1 = max(1, int(round(self.autoencoder_fraction * epochs))) if self.autoencoder_fraction > 0 else 0
        return stage1, max(1, epochs - stage1)

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, num_classes=None, **fit_kwargs):
        x, y, counts = _prepare(x, y, num_classes, seed)
        c = len(counts)
        shape = tuple(x.shape[1:])
        stage1, stage2 = self.split_epochs(epochs)
        model = PolarityGAN(
            backbone_fn(shape, c),
            PolarityCritic(shape, c),
            latent_dim=self.latent_dim,
            autoencoder_epochs=stage1,
            critic_steps=self.critic_steps,
            gradient_penalty=self.gradient_penalty,
            seed=int(seed),
        ).adapt(x, y)
        classifier_optimizer = (baselines._resolve_optimizer(optimizer) if optimizer is not None
                                else keras.optimizers.Adam(self.classifier_learning_rate, beta_1=0.6))
        model.compile(classifier_optimizer=classifier_optimizer)
        if stage1:
            model.pretrain_autoencoder(epochs=stage1, batch_size=batch_size, verbose=verbose)
        self.history_ = model.fit(to_dataset(x, y, batch_size, seed=int(seed), num_classes=c), epochs=stage2,
                                  verbose=verbose, **fit_kwargs)
        return model

    def sample_grid(self, model, num_classes, per_class=8, seed=0):
        """(rows, per_class, H, W, C) generated images of each generated class, labels, value range."""
        minority = model.minority_classes
        rows = [np.asarray(model.sample(per_class, k, seed=seed + k)) for k in minority]
        return np.stack(rows), [f"class {k}" for k in minority], (0.0, 1.0)
