"""The networks of PolarityGAN (Deepshikha & Naman 2021). No public code exists; sizes are ours.

- `PolarityGenerator`: G as a two-input Keras model `[eps, labels] -> samples`
  around `layers.GaussianConvexGenerator` (eq. 3 with BAGAN's class-conditional latent).
- `PolarityDecoder`: the autoencoder's decoder, `codes -> samples`, around
  `layers.ConvexDecoder` (the generator's topology, one head over all samples).
- `PolarityEncoder`: the autoencoder's encoder, images -> codes.
- `PolarityCritic`: the class-conditional Wasserstein critic D(x | i), linear output.
- `PolarityFeatureExtractor`: F; ResNet-50 (Sec. 5.1, local weights only) or
  the small conv extractor for small images.
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import output_dtype
from keras_imbalance.applications.autoencoder import ConvEncoder
from keras_imbalance.applications.gamo import GAMOFeatureExtractor
from keras_imbalance.applications.resnet50 import ResNet50
from keras_imbalance.layers.convex_autoencoder import ConvexDecoder, GaussianConvexGenerator


def PolarityGenerator(class_counts, sample_shape, latent_dim=32, name="polarity_generator", **convex_kwargs):
    """G: `[eps (B, latent_dim) ~ N(0, I), labels (B,)] -> (B, *sample_shape)`.

    Banks empty (zeros) until `set_banks`; latent Gaussians N(0, I) until the
    autoencoder initialization. `convex_kwargs` go to `layers.GaussianConvexGenerator`
    (hidden_units, minority_classes, batchnorm_momentum).
    """
    z = keras.Input(shape=(int(latent_dim),), name="z")
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    layer = GaussianConvexGenerator(class_counts, sample_shape, latent_dim=latent_dim, name="convex_generator",
                                    **convex_kwargs)
    return keras.Model([z, labels], layer([z, labels]), name=name)


def PolarityDecoder(num_samples, sample_shape, latent_dim, num_classes, hidden_units=(256, 64),
                    batchnorm_momentum=0.99, name="polarity_decoder"):
    """The autoencoder's decoder: codes (B, latent_dim) -> convex combinations of all N samples."""
    codes = keras.Input(shape=(int(latent_dim),), name="codes")
    layer = ConvexDecoder(num_samples, sample_shape, latent_dim, num_classes, hidden_units=hidden_units,
                          batchnorm_momentum=batchnorm_momentum, name="convex_decoder")
    return keras.Model(codes, layer(codes), name=name)


def PolarityEncoder(input_shape, latent_dim=32, hidden_units=256, name="polarity_encoder"):
    """The autoencoder's encoder: inputs (B, *input_shape) -> codes (B, latent_dim), linear.

    Images whose height and width are multiples of 4 get BAGAN's strided conv
    encoder (`applications.ConvEncoder`, 2 blocks of 32 and 64 filters);
    anything else (flat vectors, features, odd sizes) Flatten -> Dense(hidden_units)
    LeakyReLU(0.2) -> Dense(latent_dim).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3 and shape[0] % 4 == 0 and shape[1] % 4 == 0:
        return ConvEncoder(shape, latent_dim=latent_dim, filters=(32, 64), name=name)
    inputs = keras.Input(shape=shape, name="inputs")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden_units, name="dense")(x)
    x = layers.LeakyReLU(0.2, name="lrelu")(x)
    return keras.Model(inputs, layers.Dense(latent_dim, name="latent")(x), name=name)


def PolarityCritic(sample_shape, num_classes, hidden_units=(256, 128), negative_slope=0.2, name="polarity_critic"):
    """The conditional Wasserstein critic D(x | i) of eq. 5: `[x, onehot (B, C)] -> (B, 1)`, no activation.

    x is flattened and concatenated with the one-hot class, then Dense blocks
    with LeakyReLU. No batch normalization: the gradient penalty is a
    per-sample gradient norm, which batch statistics would couple across samples
    (Gulrajani et al. 2017, Sec. 4).
    """
    x_in = keras.Input(shape=tuple(sample_shape), name="samples")
    c_in = keras.Input(shape=(int(num_classes),), name="onehot")
    x = layers.Concatenate(name="concat")([layers.Flatten(name="flatten")(x_in), c_in])
    for k, units in enumerate(hidden_units):
        x = layers.Dense(units, name=f"dense{k + 1}")(x)
        x = layers.LeakyReLU(negative_slope, name=f"leaky_relu{k + 1}")(x)
    return keras.Model([x_in, c_in], layers.Dense(1, dtype=output_dtype(), name="critic_value")(x), name=name)


def PolarityFeatureExtractor(input_shape, backbone="auto", weights=None, feature_dim=512, name="polarity_feature_extractor"):
    """F of Algorithm 1: images -> feature vectors.

    Args:
        input_shape: (H, W, C).
        backbone: "resnet50" (the paper's, Sec. 5.1: `applications.ResNet50`
            without top, average pooling, (B, 2048)), "small" (GAMO's
            2-block conv extractor, (B, feature_dim) in [-1, 1]), or "auto":
            ResNet-50 when a local `weights` file is given and the images are
            RGB of at least 32 x 32, the small extractor otherwise (a randomly
            initialized ResNet-50 has nothing to offer on small images).
        weights: None or the path of a local ResNet-50 weights file (never downloads).
        feature_dim: output size of the small extractor.
    """
    shape = tuple(int(s) for s in input_shape)
    if backbone not in ("auto", "resnet50", "small"):
        raise ValueError(f"backbone must be 'auto', 'resnet50' or 'small', got {backbone!r}")
    if backbone == "auto":
        big_rgb = len(shape) == 3 and shape[-1] == 3 and min(shape[:2]) >= 32
        backbone = "resnet50" if (weights is not None and big_rgb) else "small"
    if backbone == "resnet50":
        return ResNet50(shape, include_top=False, pooling="avg", weights=weights, name=name)
    if weights is not None:
        raise ValueError("weights are only loaded for the ResNet-50 backbone")
    return GAMOFeatureExtractor(shape, filters=32, feature_dim=feature_dim, name=name)
