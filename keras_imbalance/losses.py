"""Losses for imbalanced classification: re-weighted CE, focal, LDAM; class weights.

Every loss here takes sparse integer labels `y_true` (B,) or (B, 1) and
logits `y_pred` (B, C) (LDAM: cosine logits of a `layers.CosineDense` head),
and returns one scalar per batch like any `keras.losses.Loss`.

Per-class weights live in a non-trainable `keras.Variable` (`loss.class_weights`)
so that a callback can change them during `fit` (deferred re-weighting, DRW:
`callbacks.DeferredReweighting`); `get_config` stores the current values, so a
compiled model saved as `.keras` reloads with the weights it had.

Reduction with class weights: by default a batch's loss is the weighted mean
sum_i w_{y_i} l_i / sum_i w_{y_i}, as in PyTorch's `cross_entropy(weight=...)`
(the LDAM-DRW reference code) and scikit-learn's `log_loss(sample_weight=...)`.
`weighted_mean=False` divides by the batch size instead, as the M2m reference
code does (`reduction='none'` followed by `.mean()`).

Labels are not range-checked inside the graph (an out-of-range id would give a
zero one-hot row); the `baselines` recipes validate labels before training.
"""

import keras
import numpy as np
from keras import ops


def _check_counts(counts, name="class_counts"):
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of per-class counts, got shape {counts.shape}")
    if counts.dtype.kind not in "iuf" or not np.all(np.isfinite(counts)):
        raise ValueError(f"{name} must hold finite numbers, got {counts.tolist()}")
    if np.any(counts <= 0):
        bad = np.flatnonzero(counts <= 0).tolist()
        raise ValueError(f"{name} must be positive for every class; class(es) {bad} have {counts[bad].tolist()}")
    return counts.astype(np.float64)


def inverse_frequency_weights(counts):
    """Per-class weights proportional to 1 / n_c, normalized to sum to C.

    The RW baseline of M2m (Kim et al. 2020, Sec. 4, baseline (d)) and the
    cost-sensitive CS baseline of ImbalanceCycleGAN (Sec. 4, "class frequency
    based cost sensitive weighing"). Normalizing to sum C keeps the loss scale of
    an unweighted loss when the classes are balanced.

    Args:
        counts: per-class training counts (C,), all > 0.

    Returns:
        float32 array (C,).
    """
    counts = _check_counts(counts, "counts")
    w = 1.0 / counts
    return (w / w.sum() * len(counts)).astype(np.float32)


def class_balanced_weights(counts, beta=0.9999):
    """Class-balanced weights of Cui et al. (2019): (1 - beta) / (1 - beta^n_c).

    Normalized to sum to C (as the reference code does). E_n = (1 - beta^n) /
    (1 - beta) is the "effective number" of samples; the weight is its inverse.
    beta = 0 gives equal weights; beta -> 1 tends to inverse frequency, and
    beta = 1 is accepted as that limit (the M2m code's `eff_beta=1.0`).
    M2m and LDAM-DRW use beta = 0.9999.

    Args:
        counts: per-class training counts (C,), all > 0.
        beta: float in [0, 1].

    Returns:
        float32 array (C,).
    """
    counts = _check_counts(counts, "counts")
    beta = float(beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if beta == 1.0:
        return inverse_frequency_weights(counts)
    w = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return (w / w.sum() * len(counts)).astype(np.float32)


def ldam_margins(class_counts, max_margin=0.5):
    """LDAM margins Delta_j = C / n_j^(1/4), with C set so that max_j Delta_j = max_margin.

    Cao et al. (2019), eq. (12) and Sec. 3.2: the rarest class gets `max_margin`.

    Returns:
        float32 array (C,).
    """
    counts = _check_counts(class_counts)
    if not max_margin > 0:
        raise ValueError(f"max_margin must be > 0, got {max_margin}")
    m = counts ** -0.25
    return (m * (max_margin / m.max())).astype(np.float32)


def _sparse_labels(y_true):
    return ops.reshape(ops.cast(y_true, "int32"), (-1,))


class _ClassWeightedLoss(keras.losses.Loss):
    """Base: a per-sample loss times per-class weights held in a variable."""

    def __init__(self, class_weights=None, num_classes=None, weighted_mean=True, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if class_weights is None and num_classes is None:
            raise ValueError("give class_weights (C,) or num_classes")
        if class_weights is None:
            class_weights = np.ones(int(num_classes), np.float32)
        class_weights = np.asarray(class_weights, np.float32)
        if class_weights.ndim != 1 or class_weights.size == 0:
            raise ValueError(f"class_weights must be a 1-D sequence (C,), got shape {class_weights.shape}")
        if not np.all(np.isfinite(class_weights)) or np.any(class_weights < 0):
            raise ValueError(f"class_weights must be finite and >= 0, got {class_weights.tolist()}")
        if num_classes is not None and int(num_classes) != class_weights.size:
            raise ValueError(f"class_weights has {class_weights.size} entries but num_classes={num_classes}")
        self.num_classes = int(class_weights.size)
        self.weighted_mean = bool(weighted_mean)
        # Not trainable, not part of any model: a callback assigns new values mid-fit.
        self.class_weights = keras.Variable(class_weights, trainable=False, dtype="float32", name="class_weights")

    def set_class_weights(self, weights):
        """Assign new per-class weights (C,); takes effect at the next step."""
        weights = np.asarray(weights, np.float32)
        if weights.shape != (self.num_classes,):
            raise ValueError(f"expected {self.num_classes} class weights, got shape {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"class weights must be finite and >= 0, got {weights.tolist()}")
        self.class_weights.assign(weights)

    def per_sample(self, labels, y_pred):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        labels = _sparse_labels(y_true)
        y_pred = ops.convert_to_tensor(y_pred, self.dtype)
        losses = self.per_sample(labels, y_pred)
        w = ops.take(ops.cast(self.class_weights, losses.dtype), labels)
        losses = losses * w
        if self.weighted_mean:
            # Rescaled so that the "sum_over_batch_size" reduction yields
            # sum(w l) / sum(w), PyTorch's weighted-mean convention.
            batch = ops.cast(ops.shape(losses)[0], losses.dtype)
            losses = losses * batch / ops.maximum(ops.sum(w), 1e-12)
        return losses

    def get_config(self):
        return {
            **super().get_config(),
            "class_weights": np.asarray(self.class_weights.numpy()).tolist(),
            "weighted_mean": self.weighted_mean,
        }


@keras.saving.register_keras_serializable(package="keras_imbalance")
class WeightedSparseCategoricalCrossentropy(_ClassWeightedLoss):
    """Cross-entropy on logits with per-class weights w_y (RW, CB-RW, CS, DRW).

    l_i = -w_{y_i} log softmax(z_i)_{y_i}, reduced by the weighted mean (default)
    or the batch mean (`weighted_mean=False`). With all weights 1 it equals
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        class_weights: per-class weights (C,); default all ones (needs `num_classes`).
        num_classes: number of classes when `class_weights` is None.
        weighted_mean: divide by sum of weights (True) or by batch size (False).

    Shapes: y_true (B,) or (B, 1) int; y_pred (B, C) logits.
    """

    def __init__(self, class_weights=None, num_classes=None, weighted_mean=True, name="weighted_sparse_categorical_crossentropy", **kwargs):
        super().__init__(class_weights=class_weights, num_classes=num_classes, weighted_mean=weighted_mean, name=name, **kwargs)

    def per_sample(self, labels, y_pred):
        return ops.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)


@keras.saving.register_keras_serializable(package="keras_imbalance")
class SparseFocalLoss(_ClassWeightedLoss):
    """Focal loss (Lin et al. 2017) for sparse labels and logits, optionally class-weighted.

    Per sample: -alpha (1 - p_y)^gamma log p_y, computed by Keras's own
    `keras.losses.categorical_focal_crossentropy` on one-hot labels (so the
    focal term is Keras's, not re-derived here); then times w_y and reduced as
    in the weighted cross-entropy. The LDAM-DRW / M2m baselines use alpha = 1
    (no alpha) and gamma = 1; Lin et al. use gamma = 2.

    Args:
        gamma: focusing parameter >= 0 (0 gives cross-entropy).
        alpha: scalar balancing factor (default 1.0, i.e. none).
        class_weights, num_classes, weighted_mean: as in
            `WeightedSparseCategoricalCrossentropy`.
    """

    def __init__(self, gamma=2.0, alpha=1.0, class_weights=None, num_classes=None, weighted_mean=True, name="sparse_focal_loss", **kwargs):
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        super().__init__(class_weights=class_weights, num_classes=num_classes, weighted_mean=weighted_mean, name=name, **kwargs)
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    def per_sample(self, labels, y_pred):
        onehot = ops.one_hot(labels, self.num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_focal_crossentropy(onehot, y_pred, alpha=self.alpha, gamma=self.gamma, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_imbalance")
class LDAMLoss(_ClassWeightedLoss):
    """Label-distribution-aware margin loss (Cao et al. 2019, eq. 13).

    With cosine logits z (from `layers.CosineDense`) and per-class margins
    Delta_j = C n_j^(-1/4) scaled so that the largest is `max_margin`:

        l = -log( exp(s (z_y - Delta_y)) / (exp(s (z_y - Delta_y)) + sum_{j != y} exp(s z_j)) )

    i.e. cross-entropy of s * (z - Delta_y * onehot(y)). Optional per-class
    weights (LDAM-DRW switches them to class-balanced weights at the deferred
    epoch). The model's outputs stay the unscaled cosines: argmax is what the
    classifier predicts; multiply by `scale` before a softmax for probabilities.

    Args:
        class_counts: per-class training counts (C,), all > 0.
        max_margin: largest margin (the rarest class), default 0.5.
        scale: s, default 30.
        class_weights: per-class weights (C,), default ones.
        weighted_mean: as in `WeightedSparseCategoricalCrossentropy`.

    Shapes: y_true (B,) or (B, 1) int; y_pred (B, C) cosine logits.
    """

    def __init__(self, class_counts, max_margin=0.5, scale=30.0, class_weights=None, weighted_mean=True, name="ldam_loss", **kwargs):
        margins = ldam_margins(class_counts, max_margin)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        super().__init__(class_weights=class_weights, num_classes=len(margins), weighted_mean=weighted_mean, name=name, **kwargs)
        self.class_counts = [int(c) if float(c).is_integer() else float(c) for c in np.asarray(class_counts).tolist()]
        self.max_margin = float(max_margin)
        self.scale = float(scale)
        self.margins = margins

    def per_sample(self, labels, y_pred):
        onehot = ops.one_hot(labels, self.num_classes, dtype=y_pred.dtype)
        margin = ops.take(ops.convert_to_tensor(self.margins, y_pred.dtype), labels)
        shifted = y_pred - onehot * ops.expand_dims(margin, -1)
        return ops.sparse_categorical_crossentropy(labels, self.scale * shifted, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "class_counts": self.class_counts, "max_margin": self.max_margin, "scale": self.scale}
