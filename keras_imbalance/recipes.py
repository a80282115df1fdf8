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
from keras_imbalance.applications.gamo import GAMODiscriminator
from keras_imbalance.applications.polarity_gan import PolarityCritic
from keras_imbalance.callbacks import DeferredResampling
from keras_imbalance.callbacks import PaperLRSchedule
from keras_imbalance.callbacks import scale_epoch
from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.validation import check_xy
from keras_imbalance.datasets.validation import class_counts as _class_counts
from keras_imbalance.losses import LDAMLoss
from keras_imbalance.models.gamo import GAMO
from keras_imbalance.models.m2m import M2m
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
                 acceptance_criterion="loss"):
        self.beta = beta
        self.lam = float(lam)
        self.gamma = float(gamma)
        self.step_size = float(step_size)
        self.attack_steps = int(attack_steps)
        self.defer_epoch = defer_epoch
        self.acceptance_criterion = acceptance_criterion

    def get_config(self):
        return {"name": self.name, "beta": self.beta, "lam": self.lam, "gamma": self.gamma, "step_size": self.step_size,
                "attack_steps": self.attack_steps, "defer_epoch": self.defer_epoch,
                "acceptance_criterion": self.acceptance_criterion}

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
                    acceptance_criterion=self.acceptance_criterion, seed=int(seed))
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
