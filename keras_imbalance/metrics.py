"""Metrics for class-imbalanced classification.

Streaming `keras.metrics.Metric`s accumulate a confusion matrix over an epoch
(`BalancedAccuracy`, `GeometricMeanScore`, `ClassRecall`), and
`classification_report` computes the evaluation protocol's numbers on arrays.

Conventions (the same as scikit-learn's `balanced_accuracy_score`): a class
with no true samples so far has an undefined recall and is left out of the
balanced accuracy and the geometric mean. Predictions may be class ids (N,),
probabilities or logits (N, C) (argmax), or a single sigmoid column (N, 1)
for binary problems (threshold 0.5, or 0 with `from_logits=True`).
"""

import keras
import numpy as np
from keras import ops

from keras_imbalance.datasets.validation import check_labels


def _executing_eagerly():
    """Whether ops run eagerly (not inside a traced `tf.function`)."""
    import tensorflow as tf

    return tf.executing_eagerly()


def _predicted_ids(y_pred, from_logits=False):
    """Class ids from ids (N,), scores (N, C) or one binary column (N, 1)."""
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) == 1:
        return ops.cast(y_pred, "int32")
    if y_pred.shape[-1] == 1:
        threshold = 0.0 if from_logits else 0.5
        return ops.cast(ops.reshape(y_pred, (-1,)) > threshold, "int32")
    return ops.cast(ops.argmax(y_pred, axis=-1), "int32")


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Base: accumulates a (C, C) confusion matrix, rows = true class."""

    def __init__(self, num_classes, from_logits=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.from_logits = from_logits
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros", name="confusion", dtype="float32"
        )

    def _check_inputs(self, y_true, y_pred):
        """Raise a ValueError for shapes that would fill the wrong cells; labels too when eager.

        Shapes are static, so the check costs nothing inside a compiled step;
        label values are checked only eagerly (in `fit` the data path checked
        them: `datasets.validation.check_fit_data`).
        """
        true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
        if len(true_shape) > 2 or (len(true_shape) == 2 and true_shape[1] not in (1, None)):
            raise ValueError(f"{self.name}: y_true must be sparse class ids (N,) or (N, 1), got shape {true_shape}"
                             " (one-hot labels? pass their argmax)")
        if len(pred_shape) == 2 and pred_shape[1] not in (1, None, self.num_classes):
            raise ValueError(f"{self.name}: y_pred has {pred_shape[1]} columns but num_classes={self.num_classes}")
        if true_shape and pred_shape and None not in (true_shape[0], pred_shape[0]) and true_shape[0] != pred_shape[0]:
            raise ValueError(f"{self.name}: y_true has {true_shape[0]} labels but y_pred has {pred_shape[0]} predictions")
        if _executing_eagerly():
            check_labels(ops.convert_to_numpy(y_true), self.num_classes, name=f"{self.name}: y_true")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        self._check_inputs(y_true, y_pred)
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        y_pred = _predicted_ids(y_pred, self.from_logits)
        cells = y_true * self.num_classes + y_pred
        weights = None if sample_weight is None else ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
        counts = ops.bincount(cells, weights=weights, minlength=self.num_classes**2)
        counts = ops.cast(counts[: self.num_classes**2], "float32")
        self.confusion.assign_add(ops.reshape(counts, (self.num_classes, self.num_classes)))

    def _recalls(self):
        support = ops.sum(self.confusion, axis=1)
        diag = ops.diagonal(self.confusion)
        present = ops.cast(support > 0, "float32")
        recall = ops.divide_no_nan(diag, support)
        return recall, present

    def reset_state(self):
        self.confusion.assign(ops.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_imbalance")
class BalancedAccuracy(_ConfusionMatrixMetric):
    """Balanced accuracy: the mean per-class recall (= ACSA = bACC).

    The headline metric of GAMO (ACSA), M2m (bACC) and the LDAM line of work.
    Classes with no true samples so far are left out of the mean.

    Example:

    >>> m = BalancedAccuracy(num_classes=3)
    >>> m.update_state([0, 0, 1, 2], [[.9, .1, 0], [.1, .9, 0], [0, 1, 0], [0, 0, 1]])
    >>> float(m.result())  # recalls 0.5, 1, 1
    0.8333333...
    """

    def __init__(self, num_classes, from_logits=False, name="balanced_accuracy", dtype=None):
        super().__init__(num_classes, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        recall, present = self._recalls()
        return ops.divide_no_nan(ops.sum(recall * present), ops.sum(present))


@keras.saving.register_keras_serializable(package="keras_imbalance")
class GeometricMeanScore(_ConfusionMatrixMetric):
    """Geometric mean of the per-class recalls (GM; Kubat & Matwin 1997).

    Used by GAMO and M2m (Tables 1-2). Zero as soon as one present class has
    zero recall; classes with no true samples are left out.
    """

    def __init__(self, num_classes, from_logits=False, name="geometric_mean", dtype=None):
        super().__init__(num_classes, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        recall, present = self._recalls()
        # log(0) -> -inf -> exp -> 0 is the right limit; absent classes get log(1) = 0.
        logs = ops.where(present > 0, ops.log(ops.where(present > 0, recall, 1.0)), 0.0)
        return ops.exp(ops.divide_no_nan(ops.sum(logs), ops.sum(present)))


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ClassRecall(_ConfusionMatrixMetric):
    """Per-class recall, a vector (C,); 0 for classes with no true samples yet."""

    def __init__(self, num_classes, from_logits=False, name="class_recall", dtype=None):
        super().__init__(num_classes, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        recall, _ = self._recalls()
        return recall


def confusion_matrix(y_true, y_pred_or_probs, num_classes):
    """(C, C) int64 confusion matrix of sparse labels vs ids or scores; rows = true class."""
    y_true = check_labels(y_true, num_classes, name="y_true")
    y_pred = np.asarray(y_pred_or_probs)
    if y_pred.ndim == 2 and y_pred.shape[1] == 1:
        y_pred = (y_pred[:, 0] > 0.5).astype(np.int64)
    elif y_pred.ndim == 2:
        if y_pred.shape[1] != num_classes:
            raise ValueError(f"predictions have {y_pred.shape[1]} columns but num_classes={num_classes}")
        if not np.all(np.isfinite(y_pred)):
            raise ValueError("predictions contain NaN or inf")
        y_pred = y_pred.argmax(axis=1)
    else:
        y_pred = check_labels(y_pred, num_classes, name="y_pred")
    if len(y_pred) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} labels but there are {len(y_pred)} predictions")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_report(y_true, y_pred_or_probs, num_classes, class_counts=None):
    """The evaluation protocol's numbers for one set of predictions.

    Args:
        y_true: sparse labels (N,).
        y_pred_or_probs: predicted ids (N,) or scores (N, C).
        num_classes: C.
        class_counts: optional training counts (C,); when given, the report
            adds `minority_f1`, the F1 of the class with the fewest training
            samples (ties: the highest class id).

    Returns:
        dict with `balanced_accuracy`, `geometric_mean`, `macro_f1`,
        `accuracy`, and `per_class` = {`recall`, `precision`, `f1`,
        `support`} lists of length C. Balanced accuracy and GM average over
        classes with test samples; macro-F1 over classes present in the
        labels or the predictions (scikit-learn's default).
    """
    cm = confusion_matrix(y_true, y_pred_or_probs, num_classes).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    seen = present | (predicted > 0)
    with np.errstate(divide="ignore"):
        gm = float(np.exp(np.mean(np.log(recall[present])))) if np.all(recall[present] > 0) else 0.0
    report = {
        "balanced_accuracy": float(recall[present].mean()),
        "geometric_mean": gm,
        "macro_f1": float(f1[seen].mean()),
        "accuracy": float(tp.sum() / cm.sum()),
        "per_class": {
            "recall": recall.tolist(),
            "precision": precision.tolist(),
            "f1": f1.tolist(),
            "support": support.astype(int).tolist(),
        },
    }
    if class_counts is not None:
        counts = np.asarray(class_counts)
        if counts.shape != (num_classes,):
            raise ValueError(f"class_counts must have length {num_classes}, got shape {counts.shape}")
        minority = int(np.flatnonzero(counts == counts.min())[-1])
        report["minority_class"] = minority
        report["minority_f1"] = float(f1[minority])
    return report


def format_report(report, title=None):
    """A plain-text table of a `classification_report` dict, for printing."""
    lines = [title] if title else []
    lines.append(
        "balanced accuracy {balanced_accuracy:.4f} | geometric mean {geometric_mean:.4f} | "
        "macro-F1 {macro_f1:.4f} | accuracy {accuracy:.4f}".format(**report)
    )
    if "minority_f1" in report:
        lines.append(f"minority class {report['minority_class']} F1 {report['minority_f1']:.4f}")
    pc = report["per_class"]
    lines.append(f"{'class':>5} {'recall':>7} {'precision':>9} {'f1':>6} {'support':>7}")
    for c, (r, p, f, s) in enumerate(zip(pc["recall"], pc["precision"], pc["f1"], pc["support"])):
        lines.append(f"{c:>5} {r:>7.3f} {p:>9.3f} {f:>6.3f} {s:>7d}")
    return "\n".join(lines)


def _scores(classifier, images, batch_size):
    """`classifier`'s outputs on `images`, numpy: `predict` for a Keras model, batched calls for a callable."""
    if hasattr(classifier, "predict"):
        return np.asarray(classifier.predict(images, batch_size=batch_size, verbose=0))
    return np.concatenate([np.asarray(classifier(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])


def inception_accuracy(classifier, images, labels, batch_size=256, from_logits=False):
    """The "inception accuracy" of a translation model (ImbalanceCycleGAN, Sec. 4).

    The accuracy that `classifier`, trained on real, balanced data of the two
    domains (the paper fine-tunes an ImageNet Inception-v3 with two outputs),
    gets on translated images, each labelled with the class it was
    translated INTO: for a CycleGAN, `images = G_AB(a)` with `labels` = B's
    id and `G_BA(b)` with A's id. Higher means the translations look more
    like their target class to an independent judge.

    Args:
        classifier: a Keras model or callable, images -> scores (N, C)
            (logits or probabilities: argmax), one sigmoid/logit column (N, 1)
            (threshold 0.5, or 0 with `from_logits=True`), or class ids (N,).
        images: translated images (N, ...), numpy or tensor.
        labels: target class ids (N,), or one int for all images.
        batch_size: prediction batch size.
        from_logits: whether a single output column holds logits.

    Returns:
        float in [0, 1].
    """
    images = np.asarray(images)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch (N, ...), got shape {images.shape}")
    if np.ndim(labels) == 0:
        labels = np.full((len(images),), int(labels))
    labels = check_labels(labels, name="labels")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    scores = _scores(classifier, images, batch_size)
    if scores.ndim == 2 and scores.shape[1] == 1:
        threshold = 0.0 if from_logits else 0.5
        predicted = (scores[:, 0] > threshold).astype(np.int64)
    elif scores.ndim == 2:
        if not np.all(np.isfinite(scores)):
            raise ValueError("the classifier's scores contain NaN or inf")
        predicted = scores.argmax(axis=1)
    else:
        predicted = check_labels(scores, name="predictions")
    return float(np.mean(predicted == labels))

# Uncertainty measures -----------------------------------------------------
#
# PolarityGAN (Deepshikha & Naman 2021, Sec. 5.2, eqs. 7-10) scores how
# uncertain a classifier is about samples with four measures from the
# uncertainty-sampling literature, each normalized to [0, 1] (0 = certain,
# 1 = maximally uncertain). With y* and y** the largest and second largest of
# m class probabilities:
#
#   least confidence      m (1 - y*) / (m - 1)                 (eq. 7)
#   margin of confidence  1 - (y* - y**)                       (eq. 8)
#   ratio of confidence   y** / y*                             (eq. 9)
#   entropy               -sum_c y_c log2 y_c / log2 m         (eq. 10)
#
# The paper writes each as a sum over the n samples; its Table 3 reports
# values in [0, 1], i.e. per-sample means, so `uncertainty_scores` averages.
# The per-sample functions return one value per row.


def _check_probabilities(probs, atol=1e-3):
    p = np.asarray(probs, dtype="float64")
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, m), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("probabilities are empty: no samples")
    if p.shape[1] < 2:
        raise ValueError(f"uncertainty needs m >= 2 classes, got {p.shape[1]}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or inf")
    if np.any(p < -atol) or np.any(np.abs(p.sum(axis=1) - 1.0) > atol):
        raise ValueError("rows must be probabilities (>= 0, summing to 1); for logits apply a softmax first")
    return np.clip(p, 0.0, 1.0)


def _top_two(p):
    top = np.sort(p, axis=1)[:, ::-1]
    return top[:, 0], top[:, 1]


def least_confidence(probs):
    """Eq. 7: m (1 - y*) / (m - 1) per sample, (N,) in [0, 1]."""
    p = _check_probabilities(probs)
    m = p.shape[1]
    return m * (1.0 - p.max(axis=1)) / (m - 1)


def margin_of_confidence(probs):
    """Eq. 8: 1 - (y* - y**) per sample, (N,) in [0, 1]."""
    first, second = _top_two(_check_probabilities(probs))
    return 1.0 - (first - second)


def ratio_of_confidence(probs):
    """Eq. 9: y** / y* per sample, (N,) in [0, 1]."""
    first, second = _top_two(_check_probabilities(probs))
    return second / np.maximum(first, 1e-300)


def normalized_entropy(probs):
    """Eq. 10: -sum_c y_c log2 y_c / log2 m per sample (0 log 0 = 0), (N,) in [0, 1]."""
    p = _check_probabilities(probs)
    terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1) / np.log2(p.shape[1])


UNCERTAINTY_MEASURES = {
    "least_confidence": least_confidence,
    "margin_of_confidence": margin_of_confidence,
    "ratio_of_confidence": ratio_of_confidence,
    "entropy": normalized_entropy,
}


def uncertainty_scores(probs):
    """The four measures of eqs. 7-10 averaged over the samples: dict name -> float."""
    p = _check_probabilities(probs)
    return {name: float(np.mean(fn(p))) for name, fn in UNCERTAINTY_MEASURES.items()}


def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_logit_margin(logits, labels):
    """z_y - max_{j != y} z_j per sample (N,): > 0 on the side of class y, |.| = distance-to-boundary proxy."""
    logits = np.asarray(logits, "float64")
    rows = np.arange(len(logits))
    own = logits[rows, labels]
    others = logits.copy()
    others[rows, labels] = -np.inf
    return own - others.max(axis=1)


GENERATED_UNCERTAINTY_GROUPS = ("generated", "real_train", "real_test")


def generated_sample_uncertainty(classifier, generated, real_train, real_test=None, classes=None, batch_size=256):
    """How uncertain a classifier is on generated samples vs real ones of the same classes (PolarityGAN's claim).

    PolarityGAN (Deepshikha & Naman 2021, Sec. 1 and 5.2) claims its
    generated samples lie near the class boundary, where the classifier is
    uncertain. This scores, per class and over all the compared samples, the
    classifier's uncertainty (eqs. 7-10, `UNCERTAINTY_MEASURES`, higher =
    more uncertain) on three groups: the generated samples, the real
    training samples and the real test samples of the same classes. The
    claim holds on a run when the generated samples are more uncertain than
    the real training samples the classifier was fit to.

    Distance to the class boundary: the logit margin of the sample's own
    class, m = z_y - max_{j != y} z_j (`class_logit_margin`), reported as the
    mean |m| ("logit_margin"), with the fraction m > 0 ("accuracy": the
    sample is on its class's side). With a dense last layer, z_y - z_j is
    the distance in the penultimate features to the plane where the two
    logits tie times ||w_y - w_j||, so |m| ranks samples by that distance
    up to a per-pair scale; unlike the smallest input step that flips the
    prediction it needs no attack or step size and is exact. Its scale is
    the classifier's: compare groups under one classifier, not across
    classifiers.

    Args:
        classifier: a Keras model or callable, samples -> logits (N, C).
        generated, real_train: (x, y) pairs, labels (N,) class ids (for
            generated samples: the class each was generated for).
        real_test: an (x, y) pair or None (group left out).
        classes: the classes compared; default: the labels of `generated`.
            Real samples of other classes are left out.
        batch_size: prediction batch size.

    Returns:
        {"classes": [...], "overall": {group: stats}, "per_class": {k: {group: stats}}}
        with group in "generated", "real_train", "real_test" and stats =
        {"n", the four measures (means), "logit_margin", "accuracy"}, or None
        for a group with no sample of the class.
    """
    groups = {"generated": generated, "real_train": real_train, "real_test": real_test}
    data = {}
    for name, pair in groups.items():
        if pair is None:
            continue
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{name} must be an (x, y) pair, got {type(pair).__name__}")
        x, y = np.asarray(pair[0]), check_labels(pair[1], name=f"{name} labels")
        if len(x) != len(y):
            raise ValueError(f"{name}: {len(x)} samples but {len(y)} labels")
        data[name] = (x, y)
    classes = np.unique(data["generated"][1]) if classes is None else np.asarray(sorted(set(int(c) for c in classes)))
    if len(classes) == 0:
        raise ValueError("no classes to compare: generated is empty and classes is not given")
    logits = {}
    for name, (x, y) in data.items():
        keep = np.isin(y, classes)
        z = _scores(classifier, x[keep], batch_size).astype("float64") if keep.any() else np.zeros((0, 1))
        if keep.any() and (z.ndim != 2 or z.shape[1] < 2 or not np.all(np.isfinite(z))):
            raise ValueError(f"the classifier must give finite logits (N, C >= 2) on {name}, got shape {z.shape}")
        if keep.any() and y[keep].max() >= z.shape[1]:
            raise ValueError(f"{name} has label {y[keep].max()} but the classifier has {z.shape[1]} outputs")
        logits[name] = (z, y[keep])

    def stats(z, y):
        if len(y) == 0:
            return None
        margin = class_logit_margin(z, y)
        return {"n": int(len(y)), **uncertainty_scores(_softmax(z)), "logit_margin": float(np.mean(np.abs(margin))),
                "accuracy": float(np.mean(margin > 0))}

    return {
        "classes": [int(c) for c in classes],
        "overall": {name: stats(z, y) for name, (z, y) in logits.items()},
        "per_class": {int(k): {name: stats(z[y == k], y[y == k]) for name, (z, y) in logits.items()} for k in classes},
    }
