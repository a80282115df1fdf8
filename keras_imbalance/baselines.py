"""The recipe interface, the one recipe registry, and the baselines the papers compare against.

>>> recipe = baselines.get("ldam-drw")
>>> clf = recipe.fit(lambda s, c: applications.SmallCNN(s, c), x, y, epochs=30, batch_size=32, seed=0)
>>> logits = clf.predict(x_test)

A *recipe* trains one classifier on one data set. Every recipe (these
baselines and the method recipes of `keras_imbalance.recipes`) is a
`BaseRecipe` with `name`, `kind` ("baseline" or "method"), `get_config()`,
the hooks `check_data(num_classes)` (raises for data the recipe cannot take;
default: accepts any) and `sample_grid(model, num_classes)` (generated images
for the plots; default: None), and

    fit(backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None,
        verbose=0, num_classes=None, lr_schedule="auto", validation_data=None,
        callbacks=None, training=None) -> keras.Model

returning a trained classifier whose outputs are logits (B, C), trained with
Keras `fit`. Class counts are taken from `y` (every class 0..C-1 needs a
sample). `recipe.history_` keeps the `History` of the last fit.

Registry: every recipe is registered once, under its name, by `register`;
names are normalised by `normalize_name` (stripped, lower case) and looked
up by `create_recipe` / `registered_names`. The registry lives here because
this module needs no method model: it registers the baselines, and
`keras_imbalance.recipes` (which builds the method models, so imports
`models`) registers the methods when it is imported. `baselines.get` /
`baselines.available` are the baseline part of the registry;
`recipes.get` / `recipes.available(None)` cover every name.

Backbone contract: `backbone_fn(input_shape, num_classes)` returns a
`keras.Model` mapping (B, *input_shape) -> logits (B, num_classes), e.g.
`lambda s, c: applications.SmallCNN(s, c)`. The LDAM recipes need a cosine
head (`cosine_head`): they take a *functional* backbone whose last layer is
its `Dense` classifier and replace that layer by
`layers.CosineDense(num_classes)` on the same features (SmallCNN, the ResNets
and any `keras.Sequential` ending in `Dense` qualify); a backbone that
already ends in `CosineDense` is used as is.

Training defaults (when `optimizer=None`): the papers' CIFAR recipe (M2m,
Sec. 3.1 "Training details"; LDAM-DRW, Cao et al. 2019),
`optimizers.CoupledSGD(0.1, momentum 0.9, coupled L2 2e-4)` with
`callbacks.PaperLRSchedule` (linear warm-up, x0.01 at 80% and again at 90%
of the epochs); deferred schedules (DRS, DRW, LDAM-DRW) switch at 80% of the
epochs (epoch 160 of 200 in the papers) unless `defer_epoch` is given. With a
user optimizer the LR schedule is off unless `lr_schedule="paper"`.

`training` (a `ClassifierTraining`: optimizer factory, LR schedule,
augmentation, model selection) replaces `optimizer` / `lr_schedule`:
`compare` passes one to every recipe so that every row trains its
classifier the same way; `recipe.paper_settings()` is the recipe's own
(the behaviour without `training`).

Names (`available()`), with the paper whose comparison they reproduce
(M2m = Kim et al. 2020, Sec. 3.1 "Baseline methods" (a)-(i);
ImbalanceCycleGAN = Sahoo et al. 2020, Sec. 4.1 and Table 1):

- erm: cross-entropy on the data as is (M2m (a); ImbalanceCycleGAN's "Vanilla").
- rs: class-aware re-sampling from the start (`datasets.to_dataset(balanced=True)`; M2m (b)).
- us / os: random under- / over-sampling to the smallest / largest class
  count, once before training (ImbalanceCycleGAN's US / OS).
- smote: SMOTE (imbalanced-learn) on flattened inputs, reshaped back (M2m (c);
  `pip install keras-imbalance[smote]`).
- rw / cs: cross-entropy weighted by inverse class frequency (M2m (d) RW;
  ImbalanceCycleGAN's CS).
- cb-rw: weighted by class-balanced weights, beta = 0.9999 (M2m (e); Cui et al. 2019).
- drs / drw: re-sampling / CB re-weighting switched on at the deferred epoch
  (M2m (f), (g); Cao et al. 2019).
- focal: focal loss, gamma = 1 (M2m (h), the value of the LDAM-DRW / M2m comparisons).
- ldam / ldam-drw: LDAM loss (margin 0.5, s = 30) on a cosine head, without /
  with DRW (M2m (i) and Table 1's LDAM-DRW).
- ts: ERM, then logits - tau * log(prior) at prediction (tau = 1; ImbalanceCycleGAN's TS).
- os+cs / us+cs: over- / under-sampling plus inverse-frequency weights of the
  *original* counts (ImbalanceCycleGAN, Table 1; the paper does not say which
  counts; using the resampled, balanced ones would make CS a no-op).
"""

import copy

import keras
import numpy as np

from keras_imbalance.callbacks import DeferredReweighting, DeferredResampling, PaperLRSchedule, RestoreBestBalancedAccuracy
from keras_imbalance.callbacks import scale_epoch
from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.validation import IMAGE_VALUE_RANGE, check_sample_shape, check_value_range, check_xy
from keras_imbalance.datasets.validation import class_counts as _class_counts
from keras_imbalance.layers.cosine_dense import CosineDense
from keras_imbalance.layers.logit_adjustment import logit_adjusted
from keras_imbalance.losses import (
    LDAMLoss,
    SparseFocalLoss,
    WeightedSparseCategoricalCrossentropy,
    class_balanced_weights,
    inverse_frequency_weights,
)
from keras_imbalance.optimizers import CoupledSGD

# ---------------------------------------------------------------- sampling


def random_under_sample(x, y, seed=0, num_classes=None):
    """Random under-sampling: every class cut to the smallest class count, without replacement.

    Returns `(x, y)` ordered by class, y int64.
    """
    x, y = check_xy(x, y, num_classes)
    counts = _class_counts(y, num_classes)
    rng = np.random.default_rng(seed)
    n = int(counts.min())
    idx = np.concatenate([np.sort(rng.choice(np.flatnonzero(y == c), size=n, replace=False)) for c in range(len(counts))])
    return x[idx], y[idx]


def random_over_sample(x, y, seed=0, num_classes=None):
    """Random over-sampling: every class topped up to the largest count by drawing its samples with replacement.

    The originals are all kept (as imbalanced-learn's `RandomOverSampler`).
    Returns `(x, y)`, originals first, then the copies; y int64.
    """
    x, y = check_xy(x, y, num_classes)
    counts = _class_counts(y, num_classes)
    rng = np.random.default_rng(seed)
    n = int(counts.max())
    extra = [rng.choice(np.flatnonzero(y == c), size=n - int(k), replace=True) for c, k in enumerate(counts)]
    idx = np.concatenate([np.arange(len(y))] + extra)
    return x[idx], y[idx]


def smote(x, y, seed=0, k_neighbors=5, num_classes=None):
    """SMOTE (Chawla et al. 2002) on flattened inputs, reshaped back to the input shape.

    Every class is over-sampled to the largest count with imbalanced-learn's
    `SMOTE`; `k_neighbors` is lowered to (smallest count - 1) when a class is
    smaller than k + 1.

    Raises:
        ImportError: imbalanced-learn is not installed.
        ValueError: a class has fewer than 2 samples (SMOTE interpolates between neighbours).
    """
    try:
        from imblearn.over_sampling import SMOTE
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the SMOTE baseline needs imbalanced-learn: pip install keras-imbalance[smote]") from e
    x, y = check_xy(x, y, num_classes)
    counts = _class_counts(y, num_classes)
    if counts.min() < 2:
        raise ValueError(f"SMOTE needs at least 2 samples per class; class {int(counts.argmin())} has {int(counts.min())}")
    k = int(min(k_neighbors, counts.min() - 1))
    flat = x.reshape(len(x), -1)
    xs, ys = SMOTE(k_neighbors=k, random_state=seed).fit_resample(flat, y)
    return xs.reshape((-1,) + x.shape[1:]).astype(x.dtype, copy=False), ys.astype(np.int64)


# ---------------------------------------------------------------- the recipe interface and registry


class BaseRecipe:
    """The interface every training recipe (baseline or method) follows.

    Subclasses set `name` and `kind` and implement `fit`, returning a
    `keras.Model` whose outputs are logits. The hooks below have defaults, so
    a caller (`compare`, `cli fit`) calls them on every recipe.
    """

    name = None
    kind = "baseline"
    # The constructor arguments `get_config` returns after "name" (attributes of the same names).
    config_keys = ()
    history_ = None
    # The `ClassifierTraining` of the last fit, and its best-validation callback (None: the last epoch was kept).
    training_ = None
    selection_ = None
    # The baseline a method's row is read against: it trains the same classifier the same way (None for a baseline).
    reference_baseline = None
    # The row that gives a baseline as many classifier updates as this method takes (None: the method takes as many
    # as its reference baseline); `compare` reads the method against it when it is in the comparison.
    matched_updates_control = None
    # Whether `fit` applies `training.augment` to the classifier's real images.
    supports_augment = True

    def paper_settings(self, augment=None):
        """This recipe's own classifier settings as in its paper (what `fit` does without `training`).

        The default is the papers' CIFAR recipe (M2m Sec. 3.1; Cao et al. 2019):
        `CoupledSGD(0.1, momentum 0.9, coupled L2 2e-4)` with `PaperLRSchedule`.
        """
        return ClassifierTraining("sgd", schedule="paper", augment=augment, shared=False)

    def fit(self, backbone_fn, x, y, epochs=30, batch_size=32, seed=0, optimizer=None, verbose=0, training=None, **kwargs):
        raise NotImplementedError

    def check_data(self, num_classes):
        """Raise a `ValueError` if the recipe cannot train on data with `num_classes` classes.

        The default accepts any number (>= 2, which `fit` checks).
        """

    def sample_grid(self, model, num_classes):
        """Generated images for the plots, or None for a recipe that does not generate.

        A generating recipe returns `(grid, row_labels, value_range)`: grid
        (rows, per_row, H, W, C), one label per row, and the (low, high)
        range of the pixel values.
        """
        return None

    def run_report(self, model, x, y, x_test, y_test, seed=0):
        """A method's own diagnostics of one trained run, or None (the default).

        A recipe that has some returns `{"title": str, "table": {row: {column:
        float}}}`; `compare` stores it in the run record and reports the mean
        and std over seeds of every cell.
        """
        return None

    def get_config(self):
        return {"name": self.name, **{key: getattr(self, key) for key in self.config_keys}}

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


RECIPE_KINDS = ("baseline", "method")

# name -> (kind, factory); one table for baselines and methods, filled by `register`.
_REGISTRY = {}


def normalize_name(name):
    """The registry key of a recipe name: stripped and lower-cased ("LDAM-DRW " -> "ldam-drw")."""
    return str(name).strip().lower()


def register(factory=None, *, name=None, kind=None):
    """Register a recipe factory (a `BaseRecipe` subclass, or any callable `**options -> recipe`).

    A class is registered under its `name` and `kind` attributes; usable as a
    class decorator (`@register`). Returns `factory`.

    Raises:
        ValueError: the name is taken, or the kind is not one of `RECIPE_KINDS`.
    """
    if factory is None:
        return lambda f: register(f, name=name, kind=kind)
    name = normalize_name(name if name is not None else factory.name)
    kind = kind if kind is not None else factory.kind
    if kind not in RECIPE_KINDS:
        raise ValueError(f"recipe kind must be one of {RECIPE_KINDS}, got {kind!r}")
    previous = _REGISTRY.get(name)
    # The same definition again is a module reload (importlib.reload), not a clash.
    if previous is not None and getattr(previous[1], "__qualname__", None) != getattr(factory, "__qualname__", None):
        raise ValueError(f"a recipe called {name!r} is already registered ({previous[1]!r})")
    _REGISTRY[name] = (kind, factory)
    return factory


def registered_names(kind=None):
    """Registered recipe names of `kind` ("baseline", "method", or None for all), in registration order."""
    if kind is not None and kind not in RECIPE_KINDS:
        raise ValueError(f"kind must be one of {RECIPE_KINDS} or None, got {kind!r}")
    return [n for n, (k, _) in _REGISTRY.items() if kind is None or k == kind]


def create_recipe(name, kind=None, **options):
    """The registered recipe called `name`, with `options` overriding its defaults.

    `name` may also be a recipe's `get_config()` dict. `kind` restricts the
    lookup to baselines or methods (None: either).

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad option.
    """
    if isinstance(name, dict):
        options = {**name, **options}
        name = options.pop("name")
    key = normalize_name(name)
    entry = _REGISTRY.get(key)
    if entry is None or (kind is not None and entry[0] != kind):
        other = f" ({key!r} is a {entry[0]} recipe: `recipes.get`)" if entry is not None else ""
        raise ValueError(f"unknown {kind or 'method'} {name!r}{other}; known: {', '.join(registered_names(kind))}")
    entry_kind, factory = entry
    try:
        return factory(**options)
    except TypeError as e:
        raise ValueError(f"bad option for {entry_kind} {key!r}: {e}") from None


# ---------------------------------------------------------------- helpers shared with the method recipes


def prepare_fit_data(x, y, num_classes=None, seed=0, value_range=IMAGE_VALUE_RANGE):
    """The start of every recipe's `fit`: seed Keras, NumPy and TF with `seed`, validate `(x, y)`, count the classes.

    The recipes train on the package's data, images in [0, 1] (`value_range`;
    `datasets.validation.check_value_range`: 0-255 pixels are refused, vectors
    (N, D) are not range-checked).

    Returns:
        `(x, y, counts)`: x float32, y int64 labels, counts per class (length `num_classes`, default max(y) + 1).

    Raises:
        ValueError: from `datasets.check_xy` / `class_counts` / `check_value_range` (bad shapes, labels or pixel
            range, a class without samples).
    """
    keras.utils.set_random_seed(int(seed))
    x, y = check_xy(x, y, num_classes)
    check_value_range(x, value_range)
    counts = _class_counts(y, num_classes)
    return x.astype(np.float32, copy=False), y, counts


def paper_sgd():
    """The papers' CIFAR optimizer: `CoupledSGD(0.1, momentum 0.9, coupled L2 2e-4)` (M2m Sec. 3.1; Cao et al. 2019)."""
    return CoupledSGD(learning_rate=0.1, momentum=0.9, l2=2e-4)


def resolve_optimizer(optimizer, default=paper_sgd):
    """A fresh optimizer from what a recipe's `optimizer` argument accepts.

    Args:
        optimizer: None (`default()`), an unused `keras.optimizers.Optimizer`,
            a name or config dict (`keras.optimizers.get`), or a zero-argument
            factory returning one of these.
        default: zero-argument factory for `optimizer=None` (the papers' SGD).

    Raises:
        ValueError: an optimizer that already trained another model (its
            slots belong to that model's variables), or an unsupported value.
    """
    if optimizer is None:
        return default()
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if optimizer.built:
            raise ValueError("the optimizer was already used for another model; pass a fresh one, a name, or a zero-argument factory")
        return optimizer
    if isinstance(optimizer, (str, dict)):
        return keras.optimizers.get(optimizer)
    if callable(optimizer):
        return resolve_optimizer(optimizer(), default)
    raise ValueError(f"optimizer must be None, a keras optimizer, a name or a factory, got {optimizer!r}")


def paper_adam():
    """The comparison's Adam option: `keras.optimizers.Adam(1e-3)` (Keras's default LR; same schedule as the SGD recipe)."""
    return keras.optimizers.Adam(learning_rate=1e-3)


# The `--classifier-optimizer` choices of a comparison: name -> zero-argument factory.
CLASSIFIER_OPTIMIZERS = {"sgd": paper_sgd, "adam": paper_adam}
LR_SCHEDULES = ("paper", None)


class ClassifierTraining:
    """How a recipe trains its *classifier*: optimizer, learning-rate schedule, augmentation.

    One value object shared by every recipe of a comparison, so that every
    row trains its classifier the same way (DESIGN.md, "Evaluation
    protocol"); a method's own settings then apply only to its extra players
    (generators, discriminators, critic, translator pre-training aside from
    its classifier recipe). Epochs and batch size are `fit` arguments, the
    same for every recipe of a comparison.

    Args:
        optimizer: "sgd" (default: the papers' CIFAR recipe, M2m Sec. 3.1 and
            Cao et al. 2019: `optimizers.CoupledSGD(0.1, momentum 0.9, coupled
            L2 2e-4)`), "adam" (`Adam(1e-3)`), or a zero-argument factory
            returning a fresh optimizer (or anything `resolve_optimizer` takes).
        schedule: "paper" (`callbacks.PaperLRSchedule`: linear warm-up, x0.01
            at 80 % and again at 90 % of the epochs) or None (constant LR).
        augment: None, or a `datasets.Augmentation` applied to the real
            training images of the classifier's input pipeline.
        validation: None (keep the last epoch), or `(x_val, y_val)`: a
            balanced validation split carved from the pool; the classifier's
            fit then keeps the epoch with the best balanced accuracy on it
            (`callbacks.RestoreBestBalancedAccuracy`).
        shared: True for a comparison's common protocol; False for a recipe's
            own paper settings (`BaseRecipe.paper_settings`), which may also
            change how the method spends its epochs (PolarityGAN).
        description: the optimizer's name in reports (default: the name given,
            or the factory's `__name__`).
    """

    def __init__(self, optimizer="sgd", schedule="paper", augment=None, shared=True, description=None, validation=None):
        if isinstance(optimizer, str):
            key = optimizer.strip().lower()
            if key not in CLASSIFIER_OPTIMIZERS:
                raise ValueError(f"classifier optimizer must be one of {sorted(CLASSIFIER_OPTIMIZERS)} or a factory, got {optimizer!r}")
            self._factory = CLASSIFIER_OPTIMIZERS[key]
            self.description = description or key
        elif optimizer is None or isinstance(optimizer, keras.optimizers.Optimizer) or callable(optimizer) or isinstance(optimizer, dict):
            self._factory = optimizer
            self.description = description or getattr(optimizer, "__name__", type(optimizer).__name__)
        else:
            raise ValueError(f"optimizer must be a name, an optimizer or a factory, got {optimizer!r}")
        if schedule not in LR_SCHEDULES:
            raise ValueError(f"schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
        self.schedule = schedule
        self.augment = augment
        self.shared = bool(shared)
        self.validation = validation

    def make_optimizer(self):
        """The classifier's optimizer, fresh from the factory (an instance given at construction is returned once)."""
        return resolve_optimizer(self._factory)

    def augment_callbacks(self):
        """The callback that tells the augmentation the epoch (none without augmentation)."""
        return [] if self.augment is None else [self.augment.callback()]

    def selection_callbacks(self, num_classes=None):
        """The best-validation-epoch callback (none when `validation` is None); run it after the others."""
        if self.validation is None:
            return []
        return [RestoreBestBalancedAccuracy(*self.validation, num_classes=num_classes)]

    def lr_callbacks(self, epochs, player=None):
        """The LR-schedule callbacks for a classifier fit of `epochs` epochs (`player`: see `PaperLRSchedule`)."""
        return [PaperLRSchedule(int(epochs), player=player)] if self.schedule == "paper" else []

    def replace(self, **changes):
        """A copy with some of `optimizer`, `schedule`, `augment`, `shared`, `description` changed."""
        new = copy.copy(self)
        if "optimizer" in changes:
            fresh = ClassifierTraining(changes.pop("optimizer"), description=changes.pop("description", None))
            new._factory, new.description = fresh._factory, fresh.description
        for key, value in changes.items():
            if key not in ("schedule", "augment", "shared", "description", "validation"):
                raise ValueError(f"unknown ClassifierTraining field {key!r}")
            setattr(new, key, value)
        if new.schedule not in LR_SCHEDULES:
            raise ValueError(f"schedule must be one of {LR_SCHEDULES}, got {new.schedule!r}")
        return new

    def get_config(self):
        """A JSON-able description for reports: protocol, optimizer (name and config), schedule, augmentation."""
        opt = self.make_optimizer() if not isinstance(self._factory, keras.optimizers.Optimizer) else self._factory
        # Without the optimizer's instance name ("adam_43"): it counts the optimizers made before in the process, so it
        # would make a resumed comparison refuse runs trained with the same settings in another process.
        opt_config = {k: v for k, v in opt.get_config().items()
                      if k != "name" and isinstance(v, (int, float, str, bool, type(None)))}
        return {
            "protocol": "shared" if self.shared else "paper",
            "optimizer": self.description,
            "optimizer_class": type(opt).__name__,
            "optimizer_config": opt_config,
            "schedule": self.schedule,
            "augment": None if self.augment is None else self.augment.get_config(),
            "select": "last" if self.validation is None else f"best-val ({len(self.validation[1])} validation samples)",
        }

    def __repr__(self):
        return f"ClassifierTraining({self.get_config()})"


def legacy_training(optimizer=None, lr_schedule="auto", paper=None):
    """The `ClassifierTraining` a recipe's `fit` uses when called without `training` (its behaviour before there was one).

    `optimizer=None` gives `paper` (the recipe's `paper_settings()`); a given
    optimizer gets the paper LR schedule only with `lr_schedule="paper"`.
    """
    if optimizer is None and paper is not None:
        return paper
    use_schedule = lr_schedule == "paper" or (lr_schedule == "auto" and optimizer is None)
    factory = paper_sgd if optimizer is None else optimizer
    return ClassifierTraining(factory, schedule="paper" if use_schedule else None, shared=False,
                              description="sgd" if optimizer is None else None)


def check_training(training, optimizer):
    """Refuse `training` together with a legacy `optimizer` (two answers to one question)."""
    if training is not None:
        if not isinstance(training, ClassifierTraining):
            raise ValueError(f"training must be a ClassifierTraining or None, got {training!r}")
        if optimizer is not None:
            raise ValueError("pass either training= (a ClassifierTraining) or optimizer=, not both")


def cosine_head(model, num_classes):
    """`model` with its final `Dense` classifier replaced by `layers.CosineDense(num_classes)` on the same features.

    The LDAM loss (Cao et al. 2019) needs normalised features and weights;
    a model that already ends in `CosineDense` is returned as is.

    Raises:
        ValueError: the model's last layer is neither `Dense` nor `CosineDense`.
    """
    last = model.layers[-1] if model.layers else None
    if isinstance(last, CosineDense):
        return model
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(
            "the LDAM recipes replace the backbone's final Dense classifier by a CosineDense head; "
            f"backbone {model.name!r} ends in {type(last).__name__}, not Dense. Return a functional model whose last layer "
            "is its Dense classifier, or one that already ends in keras_imbalance.layers.CosineDense"
        )
    features = last.input
    outputs = CosineDense(num_classes, name="cosine_predictions")(features)
    # A single input tensor (not a one-element list) keeps a plain signature for export.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_cosine")


# ---------------------------------------------------------------- the baselines


class Recipe(BaseRecipe):
    """A baseline: data-level sampling x loss x class weights x deferral x post-hoc adjustment.

    Usually made by `baselines.get(name, **options)`; every option below can be
    overridden there. The named baselines (module doc) are presets of these
    options, registered under their names with kind "baseline".

    Args:
        name: the recipe's name.
        sampling: "none", "balanced" (class-aware sampling), "under", "over" or "smote".
        loss: "ce", "focal" or "ldam" (cosine head).
        weights: "none", "inverse" (1 / n_c) or "class_balanced" (Cui et al., `beta`).
        beta: class-balanced beta (0.9999).
        deferred: apply `sampling="balanced"` / `weights` only from the deferred epoch (DRS / DRW).
        defer_epoch: the 0-based deferred epoch; default round(0.8 * epochs).
        focal_gamma: focal gamma (1.0).
        max_margin, scale: LDAM margin (0.5) and scale (30).
        tau: logit-adjustment scale at prediction time, or None for none.
        weighted_mean: weighted losses reduce by sum(w l) / sum(w) (True) or by batch size.
        k_neighbors: SMOTE neighbours (5).
        epoch_multiplier: train for `epoch_multiplier * epochs` epochs, with the
            LR schedule and deferral stretched alike (1). The matched-updates
            control: GAMO and PolarityGAN step their classifier twice per real
            batch (real, then generated), so `erm[epoch_multiplier=2]` in
            `compare` gives ERM the same number of classifier updates.
    """

    _SAMPLING = ("none", "balanced", "under", "over", "smote")
    _LOSSES = ("ce", "focal", "ldam")
    _WEIGHTS = ("none", "inverse", "class_balanced")
    config_keys = ("sampling", "loss", "weights", "beta", "deferred", "defer_epoch", "focal_gamma", "max_margin", "scale",
                   "tau", "weighted_mean", "k_neighbors", "epoch_multiplier")

    def __init__(
        self,
        name="custom",
        sampling="none",
        loss="ce",
        weights="none",
        beta=0.9999,
        deferred=False,
        defer_epoch=None,
        focal_gamma=1.0,
        max_margin=0.5,
        scale=30.0,
        tau=None,
        weighted_mean=True,
        k_neighbors=5,
        epoch_multiplier=1,
    ):
        for value, allowed, what in ((sampling, self._SAMPLING, "sampling"), (loss, self._LOSSES, "loss"), (weights, self._WEIGHTS, "weights")):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {list(allowed)}, got {value!r}")
        if deferred and sampling != "balanced" and weights == "none":
            raise ValueError("deferred=True needs sampling='balanced' (DRS) or class weights (DRW) to defer")
        if deferred and sampling == "balanced" and weights != "none":
            raise ValueError("defer either the sampling or the weights, not both")
        if defer_epoch is not None and (isinstance(defer_epoch, bool) or not isinstance(defer_epoch, (int, np.integer)) or defer_epoch < 0):
            raise ValueError(f"defer_epoch must be an integer >= 0 or None, got {defer_epoch!r}")
        self.name = str(name)
        self.sampling = sampling
        self.loss = loss
        self.weights = weights
        self.beta = float(beta)
        self.deferred = bool(deferred)
        self.defer_epoch = None if defer_epoch is None else int(defer_epoch)
        self.focal_gamma = float(focal_gamma)
        self.max_margin = float(max_margin)
        self.scale = float(scale)
        self.tau = None if tau is None else float(tau)
        self.weighted_mean = bool(weighted_mean)
        self.k_neighbors = int(k_neighbors)
        if isinstance(epoch_multiplier, bool) or not isinstance(epoch_multiplier, (int, np.integer)) or epoch_multiplier < 1:
            raise ValueError(f"epoch_multiplier must be an integer >= 1, got {epoch_multiplier!r}")
        self.epoch_multiplier = int(epoch_multiplier)
        self.history_ = None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def class_weights(self, counts):
        """The per-class weights this recipe uses (from the original counts), or None."""
        if self.weights == "inverse":
            return inverse_frequency_weights(counts)
        if self.weights == "class_balanced":
            return class_balanced_weights(counts, self.beta)
        return None

    def _make_loss(self, counts, weights):
        c = len(counts)
        if self.loss == "ldam":
            return LDAMLoss(counts, max_margin=self.max_margin, scale=self.scale, class_weights=weights, weighted_mean=self.weighted_mean)
        if self.loss == "focal":
            return SparseFocalLoss(gamma=self.focal_gamma, class_weights=weights, num_classes=c, weighted_mean=self.weighted_mean)
        return WeightedSparseCategoricalCrossentropy(class_weights=weights, num_classes=c, weighted_mean=self.weighted_mean)

    def fit(
        self,
        backbone_fn,
        x,
        y,
        epochs=30,
        batch_size=32,
        seed=0,
        optimizer=None,
        verbose=0,
        num_classes=None,
        lr_schedule="auto",
        validation_data=None,
        callbacks=None,
        training=None,
    ):
        """Train a classifier with this recipe; returns a `keras.Model` outputting logits.

        Args:
            backbone_fn: `(input_shape, num_classes) -> keras.Model` of logits (see module doc).
            x, y: training samples (N, ...) and sparse labels (N,).
            epochs, batch_size: the budget (same for every recipe in a comparison).
            seed: seeds Keras/NumPy/TF and every sampler.
            optimizer: None (the papers' CoupledSGD), a fresh optimizer, a name, or a factory.
            verbose: passed to `fit`.
            num_classes: default max(y) + 1.
            lr_schedule: "auto" (paper schedule iff `optimizer` is None), "paper" or None.
            validation_data, callbacks: passed to `fit` (extra callbacks run after the recipe's).
            training: a `ClassifierTraining` (optimizer, LR schedule, augmentation;
                a comparison's shared protocol), instead of `optimizer` /
                `lr_schedule`. None: `optimizer` / `lr_schedule` as described.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        epochs = int(epochs) * self.epoch_multiplier
        if lr_schedule not in ("auto", "paper", None):
            raise ValueError(f"lr_schedule must be 'auto', 'paper' or None, got {lr_schedule!r}")
        check_training(training, optimizer)
        if training is None:
            training = legacy_training(optimizer, lr_schedule)
        self.training_ = training
        seed = int(seed)
        x, y, counts = prepare_fit_data(x, y, num_classes, seed)
        c = len(counts)
        if c < 2:
            raise ValueError(f"y holds one class only ({counts.tolist()} samples of class 0); a classifier needs at least 2 classes")
        input_shape = tuple(x.shape[1:])

        if self.sampling == "under":
            x, y = random_under_sample(x, y, seed=seed, num_classes=c)
        elif self.sampling == "over":
            x, y = random_over_sample(x, y, seed=seed, num_classes=c)
        elif self.sampling == "smote":
            x, y = smote(x, y, seed=seed, k_neighbors=self.k_neighbors, num_classes=c)

        defer_epoch = self.defer_epoch if self.defer_epoch is not None else scale_epoch(160, epochs)
        recipe_callbacks = []
        if self.sampling == "balanced" and self.deferred:
            drs = DeferredResampling(defer_epoch)
            data = drs.make_dataset(x, y, batch_size, seed=seed, num_classes=c, augment=training.augment)
            recipe_callbacks.append(drs)
        else:
            data = to_dataset(x, y, batch_size, shuffle=True, balanced=self.sampling == "balanced", seed=seed, num_classes=c,
                              augment=training.augment)

        weights = self.class_weights(counts)
        if weights is not None and self.deferred:
            loss = self._make_loss(counts, None)
            recipe_callbacks.append(DeferredReweighting(loss, weights, defer_epoch))
        else:
            loss = self._make_loss(counts, weights)

        model = backbone_fn(input_shape, c)
        if not isinstance(model, keras.Model):
            raise ValueError(f"backbone_fn must return a keras.Model, got {type(model).__name__}")
        if self.loss == "ldam":
            model = cosine_head(model, c)
        else:
            last = model.layers[-1] if model.layers else None
            act = getattr(last, "activation", None)
            if isinstance(last, keras.layers.Dense) and act is not None and getattr(act, "__name__", "") != "linear":
                raise ValueError(f"backbone {model.name!r} ends in a Dense layer with activation {act.__name__}; the recipes need logits (classifier_activation=None)")
        if isinstance(model.input_shape, tuple):
            check_sample_shape(input_shape, model.input_shape[1:])
        out_dim = model.output_shape[-1]
        if out_dim != c:
            raise ValueError(f"backbone outputs {out_dim} values per sample but the data has {c} classes")

        opt = training.make_optimizer()
        recipe_callbacks = training.lr_callbacks(epochs) + training.augment_callbacks() + recipe_callbacks
        model.compile(optimizer=opt, loss=loss)
        selection = training.selection_callbacks(c)
        self.history_ = model.fit(
            data,
            epochs=epochs,
            shuffle=False,  # the tf.data pipeline shuffles / samples itself
            verbose=verbose,
            validation_data=validation_data,
            # Selection last: it scores the epoch after every other callback has run.
            callbacks=recipe_callbacks + list(callbacks or []) + selection,
        )
        self.selection_ = selection[0] if selection else None
        if self.tau is not None:
            model = logit_adjusted(model, counts, tau=self.tau)
        return model


_PRESETS = {
    "erm": {},
    "rs": {"sampling": "balanced"},
    "us": {"sampling": "under"},
    "os": {"sampling": "over"},
    "smote": {"sampling": "smote"},
    "rw": {"weights": "inverse"},
    "cb-rw": {"weights": "class_balanced"},
    "cs": {"weights": "inverse"},
    "drs": {"sampling": "balanced", "deferred": True},
    "drw": {"weights": "class_balanced", "deferred": True},
    "focal": {"loss": "focal"},
    "ldam": {"loss": "ldam"},
    "ldam-drw": {"loss": "ldam", "weights": "class_balanced", "deferred": True},
    "ts": {"tau": 1.0},
    "os+cs": {"sampling": "over", "weights": "inverse"},
    "us+cs": {"sampling": "under", "weights": "inverse"},
}


def _preset_factory(key):
    def make(**options):
        return Recipe(name=key, **{**copy.deepcopy(_PRESETS[key]), **options})

    make.__name__ = f"baseline_{key}"
    return make


for _key in _PRESETS:
    register(_preset_factory(_key), name=_key, kind="baseline")
del _key


def available():
    """The baseline names `get` accepts, in a fixed order."""
    return registered_names("baseline")


def get(name, **options):
    """The baseline called `name` (see `available()`), with `options` overriding its defaults.

    A dict (a recipe's `get_config()`) is also accepted; its name need not be
    registered (a custom combination of `Recipe` options). Method recipes are
    made by `recipes.get`.

    Raises:
        ValueError: unknown name or option.
    """
    if isinstance(name, dict):
        return Recipe.from_config({**name, **options})
    return create_recipe(name, kind="baseline", **options)


__all__ = [
    "RECIPE_KINDS",
    "BaseRecipe",
    "CLASSIFIER_OPTIMIZERS",
    "ClassifierTraining",
    "Recipe",
    "available",
    "cosine_head",
    "create_recipe",
    "get",
    "legacy_training",
    "normalize_name",
    "paper_adam",
    "paper_sgd",
    "prepare_fit_data",
    "register",
    "registered_names",
    "resolve_optimizer",
    "random_over_sample",
    "random_under_sample",
    "smote",
]
