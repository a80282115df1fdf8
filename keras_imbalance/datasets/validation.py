"""Input checks shared by loaders, pipelines and models.

Every check raises a `ValueError` that names the problem, so bad data fails
loudly before training instead of producing a silently wrong model.

One path for every container a model's `fit` accepts (`check_fit_data`):

- arrays: checked whole (they are in memory already): labels integer-valued
  and in [0, C), samples finite, sample shape, value range;
- a `tf.data.Dataset`: its element spec statically, then inside the
  pipeline the samples of the first `FIRST_BATCHES` batches of every pass
  and the labels of every batch (`checked_dataset`), so the set is neither
  materialized nor iterated an extra time; an extra pass would advance the per-pass seeds of shuffled
  pipelines (`shuffle(reshuffle_each_iteration=True)`, `Dataset.random`) and
  change every epoch's order. A failed check surfaces from `fit` as a
  `ValueError` (`input_check_errors`);
- an image folder: `loaders.image_folder` checks every file's header and
  trailer (`check_image_file`) before decoding.

The value-range rule (`check_value_range`): image samples (rank >= 2 without
the batch axis) must lie in the model's `value_range` (low, high), by
default `IMAGE_VALUE_RANGE` = (0, 1), the package's convention, within a
tolerance of `RANGE_TOLERANCE` x (high - low). The rule reads values, not
the dtype: uint8 pixels 0..255 are refused like float 0..255 (divide by
255), while integer images whose values lie in the range pass and are cast
to float32 by the model. Vectors (N, D) are features and are not
range-checked. A model's `value_range = None` switches the rule off.
"""

import contextlib
import os

import numpy as np

# The package's image convention: every loader returns float32 pixels in [0, 1].
IMAGE_VALUE_RANGE = (0.0, 1.0)
# Slack beyond the range, as a fraction of its width: interpolation (resizing,
# augmentation) overshoots a little; 0-255 pixels exceed it by far.
RANGE_TOLERANCE = 0.01
# Batches of each pass of a tf.data dataset checked inside the pipeline.
FIRST_BATCHES = 2
# Prefix of the messages the in-pipeline checks raise, found again by `input_check_errors`.
_MARKER = "keras-imbalance input check: "


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


def validated_xy(x, y=None, num_classes=None, sample_shape=None, caller="fit", require_all=True, value_range=None):
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
        value_range: (low, high) the image samples must lie in
            (`check_value_range`), or None.

    Returns x (numpy), y int64 (N,) and the per-class counts int64 (C,).
    The helpers a model calls afterwards trust these values.
    """
    if y is None:
        x, y = collect_batches(x, caller)
    x, y = check_xy(x, y, num_classes)
    if sample_shape is not None:
        check_sample_shape(x.shape[1:], sample_shape)
    check_value_range(x, value_range)
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


def _range_hint(low, high, max_value, integer):
    """The advice appended to a value-range error."""
    hint = " (set the model's value_range to your data's range, or to None to skip this check)"
    # 0-255 pixels reach far past 1 (over 2 here); [0, 1] lies in the range, so x / 255 fits it.
    if low <= 0 and high >= 1 and 2 < max_value <= 255:
        return f"; {'uint8 ' if integer else ''}pixels in 0..255? divide them by 255 (x / 255.0)" + hint
    return hint


_RANGE_ERROR = "{} has values in [{}, {}] but the model expects images in [{}, {}]"


def check_value_range(x, value_range=IMAGE_VALUE_RANGE, name="x"):
    """Raise a ValueError unless image samples x (N, ...) lie in `value_range` (the module's rule).

    Samples of rank >= 2 without the batch axis are images; vectors (N, D)
    and `value_range=None` pass unchecked. Returns x.
    """
    x = np.asarray(x)
    if value_range is None or x.ndim < 3 or x.size == 0:
        return x
    low, high = (float(v) for v in value_range)
    tol = RANGE_TOLERANCE * (high - low)
    lo, hi = float(x.min()), float(x.max())
    if lo < low - tol or hi > high + tol:
        raise ValueError(
            _RANGE_ERROR.format(name + (f" ({x.dtype})" if x.dtype.kind in "iub" else ""), f"{lo:g}", f"{hi:g}",
                                f"{low:g}", f"{high:g}") + _range_hint(low, high, hi, x.dtype.kind in "iub")
        )
    return x


def check_fit_data(x, y=None, input_shape=None, num_classes=None, name="x", value_range=None, pairs=False):
    """Validate the data a model's `fit` receives, before Keras sees it; returns x (a dataset: checked).

    Arrays: the checks of `check_xy` (finite values, integer labels in
    0..C-1, equal lengths, non-empty), the sample shape against the model's
    `input_shape` and the value range (`check_value_range`). A
    `tf.data.Dataset`: `checked_dataset` (static checks of its element spec,
    then its first batches checked in the pipeline); use the returned
    dataset. Other inputs (generators, PyDatasets) pass unchecked.
    `pairs=True`: x and y (or a dataset's two elements) are both images, as
    for CycleGAN's domains A and B.
    """
    import tensorflow as tf

    if x is None:
        return x
    if isinstance(x, tf.data.Dataset):
        return checked_dataset(x, input_shape, num_classes, value_range, pairs=pairs)
    if isinstance(x, (np.ndarray, list)) or hasattr(x, "__array__"):
        if y is None:
            raise ValueError(f"{name} is an array but no {'images b' if pairs else 'labels y'} were given")
        if pairs:
            for images, what in ((x, "a"), (y, "b")):
                if input_shape is not None:
                    check_sample_shape(np.shape(images)[1:], input_shape, name=what)
                check_value_range(check_images(images, name=what), value_range, name=what)
            return x
        x, y = check_xy(x, y, num_classes)
        if input_shape is not None:
            check_sample_shape(x.shape[1:], input_shape, name=name)
        check_value_range(x, value_range, name=name)
    return x


def checked_dataset(dataset, input_shape=None, num_classes=None, value_range=None, batches=FIRST_BATCHES, pairs=False):
    """`dataset` with its first `batches` batches of every pass checked inside the pipeline.

    Statically, from the element spec: not empty (cardinality 0), the
    sample shape against `input_shape`, a numeric label dtype. Then as the
    batches flow (no extra iteration, so seeded shuffles keep their
    per-epoch order): the samples of the first `batches` batches of each
    pass finite and in `value_range` (an encoding problem such as 0-255
    pixels shows in any batch); the labels of every batch integer-valued and
    in [0, num_classes) (a bad label may sit in any batch, e.g. the last of
    a class-sorted set; a min and a max over B labels cost next to nothing).
    Float labels are cast to int64, integer images to float32.
    Elements that are not `(x, y)` / `(x, y, sample_weight)` tuples of
    tensors pass unchecked. A failed check raises `tf.errors.InvalidArgumentError`
    when the batch is read; `input_check_errors` turns it into a ValueError.
    `pairs=True`: both elements are images (CycleGAN), no labels.
    """
    import tensorflow as tf

    if int(dataset.cardinality()) == 0:
        raise ValueError("the dataset is empty: it yields no batches")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3) and all(isinstance(s, tf.TensorSpec) for s in spec[:2])):
        return dataset
    names = ("the dataset's a", "the dataset's b") if pairs else ("the dataset's x", "the dataset's labels")
    for i, s in enumerate(spec[: 2 if pairs else 1]):
        if input_shape is not None and s.shape.rank is not None:
            check_sample_shape(tuple(s.shape)[1:], input_shape, name=names[i])
    label = spec[1]
    check_labels_now = not pairs and (label.shape.rank in (1, None) or (label.shape.rank == 2 and label.shape[1] == 1))
    if not pairs and not (label.dtype.is_integer or label.dtype.is_floating or label.dtype == tf.bool):
        raise ValueError(f"the dataset's labels must be integer class ids, got dtype {label.dtype.name}")

    def check_images_in_graph(x, name):
        xf = tf.cast(x, tf.float32)
        asserts = []
        if x.dtype.is_floating:
            asserts.append(tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(xf)),
                                               [_MARKER + f"{name} contains NaN or inf values"]))
        if value_range is not None and x.shape.rank is not None and x.shape.rank >= 3:
            low, high = (float(v) for v in value_range)
            tol = RANGE_TOLERANCE * (high - low)
            finite = tf.where(tf.math.is_finite(xf), xf, tf.zeros_like(xf))
            lo, hi = tf.reduce_min(finite), tf.reduce_max(finite)
            integer = x.dtype.is_integer or x.dtype == tf.bool
            label_name = name + (f" ({x.dtype.name})" if integer else "")
            message = tf.strings.join([
                _MARKER, tf.strings.format(_RANGE_ERROR.replace("{}", label_name, 1), (lo, hi, low, high)),
                tf.where(tf.logical_and(hi > 2.0, hi <= 255.0), _range_hint(low, high, 255.0, integer),
                         _range_hint(low, high, 0.0, integer)),
            ])
            asserts.append(tf.debugging.Assert(tf.logical_and(lo >= low - tol, hi <= high + tol), [message]))
        return asserts

    def check_labels_in_graph(y):
        flat = tf.reshape(y, [-1])
        asserts = []
        if flat.dtype.is_floating:
            bad = tf.not_equal(flat, tf.round(flat))
            example = tf.gather(flat, tf.argmax(tf.cast(bad, tf.int32)))
            asserts.append(tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [tf.strings.join([
                _MARKER, tf.strings.format("the dataset's labels must be integer class ids, got non-integer values "
                                           "such as {}", example)])]))
        ids = tf.cast(flat, tf.int64)
        asserts.append(tf.debugging.Assert(tf.reduce_all(ids >= 0), [tf.strings.join([
            _MARKER, tf.strings.format("the dataset's labels have negative class ids (min {}); class ids must be "
                                       "0..C-1", tf.reduce_min(ids))])]))
        if num_classes is not None:
            asserts.append(tf.debugging.Assert(tf.reduce_all(ids < num_classes), [tf.strings.join([
                _MARKER, tf.strings.format("the dataset's labels have class id {} out of range for num_classes="
                                           + str(int(num_classes)), tf.reduce_max(ids))])]))
        return asserts

    def check_images_of_batch(x, y):
        asserts = check_images_in_graph(x, names[0]) + (check_images_in_graph(y, names[1]) if pairs else [])
        with tf.control_dependencies(asserts):
            return tf.identity(x), tf.identity(y)

    def check(index, element):
        x, y = element[0], element[1]
        x, y = tf.cond(index < batches, lambda: check_images_of_batch(x, y), lambda: (x, y))
        if not pairs and check_labels_now:
            with tf.control_dependencies(check_labels_in_graph(y)):
                y = tf.cast(y, tf.int64) if y.dtype.is_floating else tf.identity(y)
        # Integer images that passed the range check enter the model as float32, like arrays do.
        x = tf.cast(x, tf.float32) if not x.dtype.is_floating else x
        if pairs and not y.dtype.is_floating:
            y = tf.cast(y, tf.float32)
        return (x, y, *element[2:])

    # enumerate restarts with every pass and holds no random state: the wrapped
    # dataset yields the same batches, in the same order, as `dataset`.
    return dataset.enumerate().map(check)


@contextlib.contextmanager
def input_check_errors():
    """Turn a failed in-pipeline check (`checked_dataset`) into a ValueError with its message.

    Other errors pass through unchanged.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as e:
        text = str(e)
        start = text.find(_MARKER)
        if start < 0:
            raise
        message = text[start + len(_MARKER):].split("\n")[0]
        # tf.debugging.Assert prints its one data item as "[message]", then the node on the next line.
        message = message[:-1] if message.endswith("]") else message
        raise ValueError(message.replace("\\'", "'").replace('\\"', '"')) from None


# Image formats TensorFlow decodes: (name, leading signature, end marker searched in the last bytes or None).
_IMAGE_FORMATS = (
    ("PNG", b"\x89PNG\r\n\x1a\n", b"IEND"),
    ("JPEG", b"\xff\xd8\xff", b"\xff\xd9"),
    ("GIF", b"GIF8", b"\x3b"),
    ("BMP", b"BM", None),
)
# Bytes read from the end of a file for its end marker: decoders ignore trailing padding, so not only the last bytes.
_TAIL_BYTES = 1024


def check_image_file(path):
    """Raise a ValueError naming `path` unless it looks like a whole PNG, JPEG, GIF or BMP file.

    Reads the first bytes (the format's signature) and the last `_TAIL_BYTES`
    (the end marker: PNG's IEND chunk, JPEG's EOI, GIF's trailer; a BMP's
    size field must not exceed the file), so an empty, foreign or truncated
    file is named before a decoder fails on it with a message that names no
    file. Damage in the middle of a file with an intact start and end is not
    detected here. A missing file is a FileNotFoundError.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no image file {path}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(16)
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
    if size == 0:
        raise ValueError(f"{path} is not a readable image: the file is empty")
    for name, signature, end in _IMAGE_FORMATS:
        if head.startswith(signature):
            if end is not None and end not in tail:
                raise ValueError(f"{path} is not a readable image: a truncated {name} file (no end marker)")
            if name == "BMP" and len(head) >= 6 and int.from_bytes(head[2:6], "little") > size:
                raise ValueError(f"{path} is not a readable image: a truncated BMP file")
            return
    formats = ", ".join(name for name, _, _ in _IMAGE_FORMATS)
    raise ValueError(f"{path} is not a readable image: not a {formats} file (it starts with {head[:8]!r})")


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
