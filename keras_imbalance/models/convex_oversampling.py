"""Pieces shared by the models built on a convex generator (GAMO, PolarityGAN)."""

import numpy as np


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
