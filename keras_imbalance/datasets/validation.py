"""Input checks shared by loaders, pipelines and models.

Every check raises a `ValueError` that names the problem, so bad data fails
loudly before training instead of producing a silently wrong model.
"""

import numpy as np


def check_labels(y, num_classes=None, name="y"):
    """Validate sparse integer class labels and return them as int64 (N,).

    Accepts shape (N,) or (N, 1). Raises on floats that are not integers,
    negative labels, labels >= `num_classes`, NaN, and empty arrays.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be sparse integer class ids of shape (N,) or (N, 1), got shape {y.shape}"
            + (" (one-hot labels? pass y.argmax(-1))" if y.ndim == 2 else "")
        )
    if y.size == 0:
        raise ValueError(f"{name} is empty: no samples")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or inf labels")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class ids, got non-integer values such as {y[y != np.round(y)][0]}")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{name} has negative class ids (min {y.min()}); class ids must be 0..C-1")
    if num_classes is not None and y.max() >= num_classes:
        raise ValueError(f"{name} has class id {y.max()} out of range for num_classes={num_classes}")
    return y


def check_images(x, name="x", min_rank=2):
    """Validate a float/int array of samples: non-empty, finite, rank >= `min_rank`."""
    x = np.asarray(x)
    if x.ndim < min_rank:
        raise ValueError(f"{name} must have rank >= {min_rank} (samples first), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: no samples")
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        # Parenthesized: ~isfinite(...).any() would count samples with no finite value.
        rows = np.flatnonzero((~np.isfinite(x.reshape(x.shape[0], -1))).any(axis=1))
        raise ValueError(f"{name} contains NaN or inf values in {len(rows)} sample(s) (first at index {rows[0]})")
    return x


def check_xy(x, y, num_classes=None):
    """Validate a (samples, labels) pair; returns (x, y) with y as int64 (N,)."""
    x = check_images(x)
    y = check_labels(y, num_classes)
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} samples vs {len(y)} labels")
    return x, y


def class_counts(y, num_classes=None, require_all=True):
    """Per-class counts of sparse labels `y`, as an int64 array (C,).

    With `require_all=True` a class with no samples is an error, since every
    balancer divides by or samples from each class's count.
    """
    return _count_checked_labels(check_labels(y, num_classes), num_classes, require_all)


def _count_checked_labels(y, num_classes, require_all):
    num_classes = int(num_classes if num_classes is not None else y.max() + 1)
    counts = np.bincount(y, minlength=num_classes).astype(np.int64)
    if require_all:
        check_every_class_present(counts)
    return counts


def check_every_class_present(counts):
    """Raise a ValueError naming the classes with a zero count, since every balancer divides by or samples from each."""
    counts = np.asarray(counts)
    if np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"class(es) {missing} have no samples; every class 0..{len(counts) - 1} needs at least one")


def validated_xy(x, y=None, num_classes=None, sample_shape=None, caller="fit", require_all=True):
    """The one check of the data a public `fit` / `adapt` receives; returns `(x, y, counts)`.

    Args:
        x: samples (N, ...) with labels `y`, or (y=None) a dataset / iterable
            of (x, y) batches, read into memory (`collect_batches`).
        y: sparse integer labels (N,) or (N, 1), or None.
        num_classes: C, or None (then C = max label + 1).
        sample_shape: the model's input shape without the batch axis
            (None entries match any size), or None to skip that check.
        caller: names the method in the errors (e.g. "adapt").
        require_all: every class 0..C-1 must have a sample.

    Returns x (numpy), y int64 (N,) and the per-class counts int64 (C,).
    The helpers a model calls afterwards trust these values.
    """
    if y is None:
        x, y = collect_batches(x, caller)
    x, y = check_xy(x, y, num_classes)
    if sample_shape is not None:
        check_sample_shape(x.shape[1:], sample_shape)
    return x, y, _count_checked_labels(y, num_classes, require_all)


def check_sample_shape(sample_shape, expected, name="x"):
    """Raise unless one sample's shape `sample_shape` matches the model input `expected` (None = any size)."""
    got = tuple(None if s is None else int(s) for s in sample_shape)
    want = tuple(None if s is None else int(s) for s in expected)
    if len(got) != len(want):
        raise ValueError(
            f"{name} has samples of shape {got} (rank {len(got) + 1} with the batch axis) but the classifier "
            f"takes samples of shape {want} (rank {len(want) + 1}); add or remove an axis (e.g. a channel axis)"
        )
    if len(got) >= 3 and got[-1] is not None and want[-1] is not None and got[-1] != want[-1]:
        raise ValueError(f"{name} has {got[-1]} channels but the classifier takes {want[-1]} (samples {got} vs {want})")
    for g, w in zip(got, want):
        if g is not None and w is not None and g != w:
            raise ValueError(f"{name} has samples of shape {got} but the classifier takes {want}")


def check_fit_data(x, y=None, input_shape=None, num_classes=None, name="x"):
    """Validate the data a model's `fit` receives, before Keras sees it.

    Arrays: the checks of `check_xy` (finite values, integer labels in
    0..C-1, equal lengths, non-empty) plus the sample shape against the
    model's `input_shape`. A `tf.data.Dataset`: non-empty (cardinality 0 is
    an error) and, from its element spec, the sample shape and an integer or
    float label dtype; its values are not read. Other inputs (generators,
    PyDatasets) pass unchecked.
    """
    import tensorflow as tf

    if x is None:
        return
    if isinstance(x, tf.data.Dataset):
        if int(x.cardinality()) == 0:
            raise ValueError("the dataset is empty: it yields no batches")
        spec = x.element_spec
        if isinstance(spec, (tuple, list)) and len(spec) >= 2 and isinstance(spec[0], tf.TensorSpec):
            if input_shape is not None and spec[0].shape.rank is not None:
                check_sample_shape(tuple(spec[0].shape)[1:], input_shape, name=f"the dataset's {name}")
            label = spec[1]
            if isinstance(label, tf.TensorSpec) and not (label.dtype.is_integer or label.dtype.is_floating):
                raise ValueError(f"the dataset's labels must be integer class ids, got dtype {label.dtype.name}")
        return
    if isinstance(x, (np.ndarray, list)) or hasattr(x, "__array__"):
        if y is None:
            raise ValueError(f"{name} is an array but no labels y were given")
        x, y = check_xy(x, y, num_classes)
        if input_shape is not None:
            check_sample_shape(x.shape[1:], input_shape, name=name)


def collect_batches(data, caller):
    """(x, y) numpy arrays from a dataset / iterable of (x, y) batches, e.g. for `adapt(dataset)`.

    `caller` names the method in the errors ("adapt", "ImbalanceCycleGAN.fit"):
    a batch that is not an (x, y) pair and an empty dataset raise a ValueError.
    Shapes: batches (b_i, ...) and (b_i,) (or (b_i, 1)) -> (N, ...) and (N,).
    """
    xs, ys = [], []
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"{caller} needs (x, y) data: arrays x, y or a dataset of (x, y) batches")
        xs.append(np.asarray(batch[0]))
        ys.append(np.asarray(batch[1]).reshape(-1))
    if not xs:
        raise ValueError(f"{caller} got an empty dataset")
    return np.concatenate(xs), np.concatenate(ys)
