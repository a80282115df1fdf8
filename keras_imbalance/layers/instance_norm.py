"""Instance normalization as a configured `keras.layers.GroupNormalization`."""

import keras


def InstanceNormalization(affine=False, epsilon=1e-5, name=None):
    """Per-sample, per-channel normalization over height and width.

    Ulyanov et al. (2016), "Instance Normalization"; the CycleGAN reference
    uses `nn.InstanceNorm2d(affine=False, track_running_stats=False)`, so
    `affine=False` (no scale or offset) and epsilon 1e-5 are the defaults.
    tensorflow-addons' `InstanceNormalization` does not import with Keras 3;
    `GroupNormalization(groups=-1)` (one group per channel) computes the same
    thing and serializes as a core Keras layer.

    Returns:
        A `keras.layers.GroupNormalization` layer; shapes (B, H, W, C) -> same.
    """
    return keras.layers.GroupNormalization(groups=-1, epsilon=epsilon, center=affine, scale=affine, name=name)
