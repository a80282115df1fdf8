"""A small convolutional encoder/decoder pair (BAGAN-style autoencoder).

Mariani et al. (2018), "BAGAN: Data Augmentation with Balancing GAN", Sec. 3:
an autoencoder trained on all images initializes the GAN; its decoder has the
generator's topology and its encoder maps images to a latent space in which a
class-conditional Gaussian is fitted. PolarityGAN (Sec. 4, "Autoencoder
training") uses the same initialization. BAGAN's DCGAN-like blocks (strided
convolutions down, upsampling convolutions up) are kept, sized for small
images (8 x 8 digits, 28 x 28 MNIST, 32 x 32 CIFAR).
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import check_image_shape, load_local_weights


def ConvEncoder(
    input_shape=(28, 28, 1),
    latent_dim=64,
    filters=(32, 64),
    dropout=0.0,
    weights=None,
    name="conv_encoder",
):
    """Images -> latent codes: `len(filters)` x [3x3 conv stride 2, LeakyReLU 0.2], Flatten, Dense.

    Args:
        input_shape: (H, W, C) with H and W divisible by 2 ** len(filters).
        latent_dim: size of the code (linear output, no activation).
        filters: channels of the strided conv blocks.
        dropout: dropout rate after each conv block (BAGAN's discriminator-style encoder uses some).
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H, W, C) -> (B, latent_dim).
    """
    check_image_shape(input_shape, min_size=2 ** len(filters), multiple_of=2 ** len(filters),
                      what="ConvEncoder input")
    if None in tuple(input_shape):
        raise ValueError(f"ConvEncoder needs a fixed input size; got {input_shape!r}.")
    if latent_dim < 1:
        raise ValueError(f"`latent_dim` must be positive; got {latent_dim}.")
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", name=f"conv{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(latent_dim, name="latent")(x)
    model = keras.Model(inputs, outputs, name=name)
    return load_local_weights(model, weights)


def ConvDecoder(
    latent_dim=64,
    output_shape=(28, 28, 1),
    filters=(64, 32),
    output_activation="sigmoid",
    weights=None,
    name="conv_decoder",
):
    """Latent codes -> images: Dense to a (H / 2^n, W / 2^n, filters[0]) map, n x
    [2x upsampling, 3x3 conv, BN, ReLU], then a 3x3 conv to C channels.

    Mirrors `ConvEncoder`, so `ConvDecoder(d, s, filters[::-1])` inverts
    `ConvEncoder(s, d, filters)` shape-wise.

    Args:
        latent_dim: size of the input code.
        output_shape: (H, W, C) with H and W divisible by 2 ** len(filters).
        filters: channels of the upsampling blocks (the first also sizes the Dense map).
        output_activation: "sigmoid" for images in [0, 1] (the package's data),
            "tanh" for [-1, 1], or None.
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, latent_dim) -> (B, H, W, C).
    """
    check_image_shape(output_shape, min_size=2 ** len(filters), multiple_of=2 ** len(filters),
                      what="ConvDecoder output")
    if None in tuple(output_shape):
        raise ValueError(f"ConvDecoder needs a fixed output size; got {output_shape!r}.")
    if latent_dim < 1:
        raise ValueError(f"`latent_dim` must be positive; got {latent_dim}.")
    h, w, c = output_shape
    scale = 2 ** len(filters)
    inputs = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense((h // scale) * (w // scale) * filters[0], name="project")(inputs)
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((h // scale, w // scale, filters[0]), name="reshape")(x)
    for i, f in enumerate(filters):
        x = layers.UpSampling2D(2, name=f"up{i + 1}")(x)
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
    x = layers.Conv2D(c, 3, padding="same", name="out_conv")(x)
    outputs = layers.Activation(output_activation or "linear", dtype="float32", name="out_activation")(x)
    model = keras.Model(inputs, outputs, name=name)
    return load_local_weights(model, weights)
