"""CycleGAN's generator and PatchGAN discriminator, and the ImbalanceCycleGAN classifier.

Zhu, Park, Isola, Efros (2017), "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", Sec. 4 and Appendix 7.2 (network
architectures); the PatchGAN discriminator is from Isola et al. (2017),
"Image-to-Image Translation with Conditional Adversarial Networks" (pix2pix),
Sec. 3.2.2 and Appendix 6.1.2. Layer choices that the papers leave open follow
the authors' reference implementation (instance norm without affine
parameters, convolutions with bias, N(0, 0.02) initialization), which the
parameter counts below pin down.

Sahu et al., "Mitigating Dataset Imbalance via Joint Generation and
Classification" (ImbalanceCycleGAN), Sec. 4.1, use both networks unchanged and
a classifier with the discriminator's feature extractor (`ImbalanceCycleGANClassifier`).
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import check_image_shape, check_num_classes, load_local_weights, output_dtype
from keras_imbalance.layers.cropped_conv_transpose import CroppedConv2DTranspose
from keras_imbalance.layers.instance_norm import InstanceNormalization
from keras_imbalance.layers.reflection_padding import ReflectionPadding2D


def _init():
    # CycleGAN / ImbalanceCycleGAN Appendix A.1: weights from N(0, 0.02), biases zero.
    return keras.initializers.RandomNormal(0.0, 0.02)


def _conv(x, filters, kernel_size, strides, name, padding="valid"):
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=True,
                         kernel_initializer=_init(), name=name)(x)


def _norm_relu(x, name):
    x = InstanceNormalization(name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _upsample_conv(x, filters, name):
    """3x3 stride-2 transposed conv, (H, W) -> (2H, 2W), aligned like PyTorch's
    `ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)`: the full
    (2H + 1) output with its first row and column dropped. Keras's "same"
    transposed conv keeps the first row instead (a one-pixel shift). One
    `CroppedConv2DTranspose`: the crop is the op's explicit padding (about 2x
    faster forward and backward on CPU than the full output and a
    `Cropping2D`; docs/performance.md)."""
    return CroppedConv2DTranspose(filters, 3, strides=2, cropping=((1, 0), (1, 0)), use_bias=True,
                                  kernel_initializer=_init(), name=f"{name}_conv")(x)


def ResnetGenerator(
    input_shape=(256, 256, 3),
    filters=64,
    num_residual_blocks=9,
    output_channels=None,
    weights=None,
    name="resnet_generator",
):
    """CycleGAN's ResNet generator (Zhu et al. 2017, Appendix 7.2).

    c7s1-64, d128, d256, `num_residual_blocks` x R256, u128, u64, c7s1-C, tanh,
    where c7s1-k is ReflectionPad(3) + 7x7 conv (stride 1) + InstanceNorm +
    ReLU, dk a 3x3 stride-2 conv (zero padding 1) + InstanceNorm + ReLU, Rk a
    residual block of two reflection-padded 3x3 convs (InstanceNorm, ReLU
    between them, InstanceNorm after the second, identity shortcut), and uk a
    3x3 stride-1/2 transposed conv + InstanceNorm + ReLU. Instance norm has no
    affine parameters, so every convolution keeps its bias (as the reference
    code does); the last layer has no norm and a tanh, so outputs lie in
    [-1, 1] like the expected inputs. With 3 channels, 64 filters and 9 blocks:
    11,378,179 trainable parameters (any input size; 6 blocks for 128 x 128
    in the paper).

    Args:
        input_shape: (H, W, C); H and W divisible by 4 and >= 8 (the
            reflection pads need maps larger than the padding). Any C
            (grayscale works).
        filters: channels of the first layer (64); later layers use 2x and 4x.
        num_residual_blocks: residual blocks at the bottleneck.
        output_channels: channels of the output image; default C.
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H, W, C) in [-1, 1] -> (B, H, W, output_channels) in [-1, 1].
    """
    check_image_shape(input_shape, min_size=8, multiple_of=4, what="ResnetGenerator input")
    if num_residual_blocks < 0:
        raise ValueError(f"`num_residual_blocks` must be >= 0; got {num_residual_blocks}.")
    output_channels = output_channels or input_shape[-1]
    inputs = keras.Input(shape=input_shape, name="images")

    x = ReflectionPadding2D(3, name="c7s1_pad")(inputs)
    x = _norm_relu(_conv(x, filters, 7, 1, "c7s1_conv"), "c7s1")

    for i, mult in enumerate((2, 4)):
        # PyTorch's padding=1 is symmetric; Keras "same" with stride 2 pads bottom/right only.
        x = layers.ZeroPadding2D(1, name=f"down{i + 1}_pad")(x)
        x = _norm_relu(_conv(x, filters * mult, 3, 2, f"down{i + 1}_conv"), f"down{i + 1}")

    for b in range(num_residual_blocks):
        name_b = f"res{b + 1}"
        y = ReflectionPadding2D(1, name=f"{name_b}_pad1")(x)
        y = _norm_relu(_conv(y, filters * 4, 3, 1, f"{name_b}_conv1"), f"{name_b}_1")
        y = ReflectionPadding2D(1, name=f"{name_b}_pad2")(y)
        y = _conv(y, filters * 4, 3, 1, f"{name_b}_conv2")
        y = InstanceNormalization(name=f"{name_b}_2_norm")(y)
        x = layers.Add(name=f"{name_b}_add")([x, y])

    for i, mult in enumerate((2, 1)):
        x = _norm_relu(_upsample_conv(x, filters * mult, f"up{i + 1}"), f"up{i + 1}")

    x = ReflectionPadding2D(3, name="out_pad")(x)
    x = _conv(x, output_channels, 7, 1, "out_conv")
    outputs = layers.Activation("tanh", dtype="float32", name="out_tanh")(x)
    model = keras.Model(inputs, outputs, name=name)
    return load_local_weights(model, weights)


def _patchgan_trunk(x, filters, num_layers, output_channels):
    """C64-C128-C256-C512 (4x4 convs, LeakyReLU 0.2; no norm on the first) + a 4x4 conv to `output_channels`."""
    x = layers.ZeroPadding2D(1, name="conv1_pad")(x)
    x = _conv(x, filters, 4, 2, "conv1")
    x = layers.LeakyReLU(0.2, name="conv1_lrelu")(x)
    for n in range(1, num_layers + 1):
        mult = min(2**n, 8)
        # The last of these keeps stride 1 (pix2pix's C512 before the output conv).
        strides = 2 if n < num_layers else 1
        x = layers.ZeroPadding2D(1, name=f"conv{n + 1}_pad")(x)
        x = _conv(x, filters * mult, 4, strides, f"conv{n + 1}")
        x = InstanceNormalization(name=f"conv{n + 1}_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"conv{n + 1}_lrelu")(x)
    x = layers.ZeroPadding2D(1, name="output_pad")(x)
    return _conv(x, output_channels, 4, 1, "output_conv")


def _patchgan_min_size(num_layers):
    # A 4x4 conv with padding 1 maps s -> floor(s / 2) at stride 2 and s -> s - 1 at
    # stride 1; num_layers stride-2 convs then two stride-1 convs must leave >= 1 pixel.
    return 3 * 2**num_layers


def PatchGANDiscriminator(input_shape=(256, 256, 3), filters=64, num_layers=3, weights=None,
                          name="patchgan_discriminator"):
    """The 70 x 70 PatchGAN (Isola et al. 2017, App. 6.1.2; CycleGAN App. 7.2).

    C64-C128-C256-C512 then a 4x4 conv to one channel: 4x4 convolutions with
    zero padding 1, stride 2 except the last two, LeakyReLU 0.2, instance norm
    (no affine) on all but the first and last layers, convs with bias, no
    final activation (the least-squares GAN loss scores raw outputs). Each
    output unit sees a 70 x 70 patch for `num_layers=3`. 2,764,737 trainable
    parameters for 3 channels.

    Args:
        input_shape: (H, W, C); H and W >= 3 * 2 ** num_layers (24 for 3 layers).
        filters: channels of the first conv (64).
        num_layers: stride-2 conv layers after the first (3 gives the 70 x 70 PatchGAN).
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H, W, C) -> (B, H', W', 1) patch scores
        (logits); 256 x 256 inputs give 30 x 30 maps.
    """
    check_image_shape(input_shape, min_size=_patchgan_min_size(num_layers), what="PatchGAN input")
    inputs = keras.Input(shape=input_shape, name="images")
    outputs = _patchgan_trunk(inputs, filters, num_layers, output_channels=1)
    model = keras.Model(inputs, outputs, name=name)
    return load_local_weights(model, weights)


def ImbalanceCycleGANClassifier(
    input_shape=(256, 256, 3),
    num_classes=2,
    filters=64,
    num_layers=3,
    dense_units=(1024, 256),
    dropout=0.5,
    include_top=True,
    classifier_activation=None,
    weights=None,
    name="imbalance_cyclegan_classifier",
):
    """ImbalanceCycleGAN's classifier z (Sahu et al., Sec. 4.1 and Appendix A.1).

    "A classifier with same feature extraction architecture as that of the
    discriminator": the five conv layers of the 70 x 70 PatchGAN (see
    `PatchGANDiscriminator`), flattened, then fully connected layers of 1024
    and 256 units, dropout 0.5 on the last fully connected layer, and an
    output layer (two neurons in the paper). Weights from N(0, 0.02)
    (Appendix A.1). Choices the paper leaves open: the feature extractor keeps
    the discriminator's final one-channel conv (a 30 x 30 map for 256 x 256
    inputs; dropping it would feed 31 * 31 * 512 features to the first dense
    layer, about 0.5 G parameters), and the dense layers use ReLU. Outputs
    logits; the paper's sigmoid probability of the minority class corresponds
    to `num_classes=1` with a sigmoid, or to softmax over two logits.

    Args:
        input_shape: (H, W, C), fixed (Flatten needs it); H, W >= 3 * 2 ** num_layers.
        num_classes: output units (2 in the paper).
        filters, num_layers: PatchGAN feature extractor size.
        dense_units: widths of the hidden fully connected layers.
        dropout: dropout rate after the last hidden layer.
        include_top: False returns the last hidden layer's activations (B, dense_units[-1]).
        classifier_activation: None (logits) or e.g. "softmax".
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H, W, C) -> (B, num_classes).
    """
    check_image_shape(input_shape, min_size=_patchgan_min_size(num_layers), what="classifier input")
    if None in tuple(input_shape):
        raise ValueError(f"ImbalanceCycleGANClassifier needs a fixed input size; got {input_shape!r}.")
    if include_top:
        check_num_classes(num_classes)
    inputs = keras.Input(shape=input_shape, name="images")
    x = _patchgan_trunk(inputs, filters, num_layers, output_channels=1)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units):
        x = layers.Dense(units, activation="relu", kernel_initializer=_init(), name=f"fc{i + 1}")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    if include_top:
        x = layers.Dense(num_classes, activation=classifier_activation, kernel_initializer=_init(),
                         dtype=output_dtype(), name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    return load_local_weights(model, weights)
