"""The networks of GAMO (Mullick et al., ICCV 2019), sized as in the authors' code.

- `GAMOClassifier`: the classifier M, Flatten -> 256 -> 128 -> C (LeakyReLU 0.1), logits.
- `GAMODiscriminator`: the conditional discriminator D([x, one-hot]) -> 256 -> 128 -> 1, a logit.
- `GAMOFeatureExtractor`: the convolutional F of the feature-space variant,
  2 x [Conv 32 5x5, LeakyReLU 0.1, AvgPool 2] -> Dense 512 tanh.
- `GAMOGenerator`: the convex generator G as a two-input Keras model
  ([z, labels] -> samples) around `layers.ConvexGenerator`.
- `GAMO2PixDecoder`: GAMO2pix's VAE decoder, Dense -> 2 x Conv2DTranspose(32, 4,
  stride 2) -> Conv(channels, 4) tanh.
"""

import math

import keras
from keras import layers

from keras_imbalance.applications._utils import output_dtype
from keras_imbalance.layers.convex_generator import ConvexGenerator


def GAMOClassifier(
    input_shape,
    num_classes,
    hidden_units=(256, 128),
    negative_slope=0.1,
    classifier_activation=None,
    name="gamo_classifier",
):
    """The classifier M of GAMO: a dense network on flattened inputs.

    Args:
        input_shape: shape of one sample (an image (H, W, C), a flat vector,
            or the feature extractor's output (512,)); it is flattened.
        num_classes: C >= 2.
        hidden_units: widths of the hidden layers (256, 128 in the code).
        negative_slope: LeakyReLU slope (0.1).
        classifier_activation: None (logits, the package default) or "softmax".

    Returns:
        A functional model (B, *input_shape) -> (B, C).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = layers.Flatten(name="flatten")(inputs)
    for k, units in enumerate(hidden_units):
        x = layers.Dense(units, name=f"dense{k + 1}")(x)
        x = layers.LeakyReLU(negative_slope, name=f"leaky_relu{k + 1}")(x)
    outputs = layers.Dense(num_classes, activation=classifier_activation, dtype=output_dtype(), name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def GAMODiscriminator(input_shape, num_classes, hidden_units=(256, 128), negative_slope=0.1, name="gamo_discriminator"):
    """The conditional discriminator D(x | i) of GAMO.

    Inputs `[x, onehot]`: x (B, *input_shape) is flattened and concatenated
    with the one-hot class (B, C). Outputs one logit per sample (B, 1); GAMO
    applies the sigmoid in its losses.
    """
    x_in = keras.Input(shape=tuple(input_shape), name="samples")
    c_in = keras.Input(shape=(num_classes,), name="onehot")
    x = layers.Concatenate(name="concat")([layers.Flatten(name="flatten")(x_in), c_in])
    for k, units in enumerate(hidden_units):
        x = layers.Dense(units, name=f"dense{k + 1}")(x)
        x = layers.LeakyReLU(negative_slope, name=f"leaky_relu{k + 1}")(x)
    outputs = layers.Dense(1, dtype=output_dtype(), name="logit")(x)
    return keras.Model([x_in, c_in], outputs, name=name)


def GAMOFeatureExtractor(
    input_shape,
    filters=32,
    kernel_size=5,
    num_blocks=2,
    feature_dim=512,
    negative_slope=0.1,
    name="gamo_feature_extractor",
):
    """The convolutional feature extractor F of GAMO's feature-space variant.

    num_blocks x [Conv2D(filters, kernel_size, "same"), LeakyReLU, AvgPool 2]
    -> Flatten -> Dense(feature_dim, tanh). "same" padding keeps small inputs
    (8x8 digits) valid. Shapes: (B, H, W, C) -> (B, feature_dim), in [-1, 1].
    """
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = inputs
    for k in range(num_blocks):
        x = layers.Conv2D(filters, kernel_size, padding="same", name=f"conv{k + 1}")(x)
        x = layers.LeakyReLU(negative_slope, name=f"leaky_relu{k + 1}")(x)
        x = layers.AveragePooling2D(2, padding="same", name=f"pool{k + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(feature_dim, activation="tanh", name="features")(x)
    return keras.Model(inputs, outputs, name=name)


def GAMOGenerator(class_counts, sample_shape, latent_dim=100, name="gamo_generator", **convex_kwargs):
    """The convex generator G as a Keras model: `[z (B, latent_dim), labels (B,)] -> (B, *sample_shape)`.

    Its sample banks are empty (zeros) until `get_layer("convex_generator").set_banks(x, y)`
    (GAMO's `adapt` does it). `convex_kwargs` go to `layers.ConvexGenerator`.
    """
    z = keras.Input(shape=(int(latent_dim),), name="z")
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    layer = ConvexGenerator(class_counts, sample_shape, latent_dim=latent_dim, name="convex_generator", **convex_kwargs)
    return keras.Model([z, labels], layer([z, labels]), name=name)


def GAMO2PixDecoder(latent_dim, image_shape, filters=32, name="gamo2pix_decoder"):
    """GAMO2pix's VAE decoder: latent (B, latent_dim) -> image (B, H, W, C) in [-1, 1].

    Dense(h0 * w0 * filters) with h0 = ceil(H / 4), w0 = ceil(W / 4) (7 x 7
    for MNIST, as in the code), two Conv2DTranspose(filters, 4, stride 2)
    with ReLU, then Conv2D(C, 4, "same") with tanh, cropped to (H, W).
    """
    h, w, c = (int(s) for s in image_shape)
    h0, w0 = math.ceil(h / 4), math.ceil(w / 4)
    inputs = keras.Input(shape=(int(latent_dim),), name="latent")
    x = layers.Dense(h0 * w0 * filters, activation="relu", name="dense")(inputs)
    x = layers.Reshape((h0, w0, filters), name="reshape")(x)
    for k in range(2):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation="relu", name=f"deconv{k + 1}")(x)
    x = layers.Conv2D(c, 4, padding="same", activation="tanh", dtype=output_dtype(), name="image")(x)
    if (4 * h0, 4 * w0) != (h, w):
        x = layers.Cropping2D(((0, 4 * h0 - h), (0, 4 * w0 - w)), name="crop")(x)
    return keras.Model(inputs, x, name=name)
