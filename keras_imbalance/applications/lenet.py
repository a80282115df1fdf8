"""A LeNet-style convolutional classifier for ~28x28 images (MNIST-sized).

Reference:
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. "Gradient-based learning
    applied to document recognition." Proc. IEEE 86(11), 1998, Sec. II.B
    (LeNet-5: two convolution + 2x2 sub-sampling stages with "valid"
    convolutions, then fully connected layers).

This is the common modern variant of that design (the "plain LeNet" of
issue 18: conv32-pool-conv64-pool-dense128), not a layer-for-layer copy of
LeNet-5: 3x3 instead of 5x5 kernels, ReLU instead of scaled tanh,
max-pooling instead of trainable sub-sampling, full C3 connectivity, wider
stages (32 and 64 maps instead of 6 and 16) and one hidden dense layer
instead of C5/F6:

    conv 3x3 valid, 32, ReLU -> max-pool 2x2 -> conv 3x3 valid, 64, ReLU
    -> max-pool 2x2 -> flatten -> dense 128, ReLU -> [dropout] -> dense num_classes (logits)

On (28, 28, 1) the maps are 26 -> 13 -> 11 -> 6 (pooling rounds up), so the
dense layer sees 6*6*64 = 2,304 features. Unlike `SmallCNN` it keeps the
spatial layout up to the dense layer (flatten, no global pooling), which is
what a digit classifier needs on 28x28 inputs. No BatchNormalization: with
the `erm` recipe (SGD 0.1) on long-tailed 28x28 MNIST a BN variant scored
lower (one seed, 0.67 vs 0.80), and 5x5 "same" kernels (a 3,136-wide dense
input) did not train at all (0.10). The package's default backbone for
inputs of 17-31 pixels (`compare.resolve_backbone`).
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import check_image_shape, check_num_classes, dense_classifier_head, load_local_weights


def _stage_sizes(size, num_stages, kernel_size, padding):
    """Spatial size after each conv ("valid" shrinks by kernel_size - 1) + ceil-halving pool."""
    sizes = []
    for _ in range(num_stages):
        if padding == "valid":
            size = size - kernel_size + 1
        sizes.append(size)
        size = -(-size // 2) if size > 0 else size
        sizes.append(size)
    return sizes


def LeNet(
    input_shape=(28, 28, 1),
    num_classes=10,
    filters=(32, 64),
    kernel_size=3,
    padding="valid",
    dense_units=128,
    dropout=0.0,
    include_top=True,
    classifier_activation=None,
    weights=None,
    name="lenet",
):
    """A LeNet-style network: [conv-ReLU-maxpool] per entry of `filters`, flatten, dense, logits.

    Parameter count with the defaults on (28, 28, 1) and 10 classes:
    conv1 3*3*1*32 + 32, conv2 3*3*32*64 + 64, fc (6*6*64)*128 + 128,
    predictions 128*10 + 10 = 315,146.

    Args:
        input_shape: (H, W, C) with known H and W, large enough that every
            "valid" convolution has at least one output pixel (>= 7 with the
            defaults).
        num_classes: number of output classes.
        filters: channels of each convolution stage ((32, 64)).
        kernel_size: convolution kernel size (3).
        padding: "valid" (LeNet's, the default) or "same" for the convolutions;
            pooling always rounds up ("same").
        dense_units: width of the hidden dense layer (0 for none).
        dropout: dropout rate before the output layer (0: none).
        include_top: False returns the features (B, dense_units), or the
            flattened maps when `dense_units=0`.
        classifier_activation: None (logits, the package default) or "softmax".
        weights: None or the path of a local weights file; never downloads.
        name: model name.

    Returns:
        A functional `keras.Model` mapping (B, H, W, C) -> (B, num_classes).

    Raises:
        ValueError: a malformed `input_shape` (not (H, W, C), unknown or too
            small H/W, no channels), `num_classes` not a positive int, empty
            `filters`, an unknown `padding`, or `weights` that would download
            / does not exist.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'; got {padding!r}.")
    if not filters:
        raise ValueError("`filters` needs at least one convolution stage.")
    input_shape = check_image_shape(input_shape, what="LeNet input")
    if input_shape[0] is None or input_shape[1] is None:
        raise ValueError(f"LeNet flattens its feature maps, so it needs a known height and width; got {input_shape!r}.")
    for size in input_shape[:2]:
        if min(_stage_sizes(size, len(filters), kernel_size, padding)) < 1:
            raise ValueError(
                f"The LeNet input is too small for {len(filters)} stages of {kernel_size}x{kernel_size} {padding!r} "
                f"convolutions and 2x2 pooling; got {input_shape!r}.")
    check_num_classes(num_classes)
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, kernel_size, padding=padding, activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_classifier_head(x, dense_units, include_top, dropout, num_classes, classifier_activation)
    return load_local_weights(keras.Model(inputs, x, name=name), weights)
