"""CIFAR ResNets with option-A shortcuts: ResNet-20/32/44/56/110.

He, Zhang, Ren, Sun (2016), "Deep Residual Learning for Image Recognition",
Sec. 4.2 (CIFAR-10 experiments): a 3x3 16-channel stem, three stages of n
basic blocks with widths 16/32/64 (stride 2 at the start of stages 2 and 3),
global average pooling and a linear classifier; depth = 6n + 2. This is the
ResNet-32 that LDAM-DRW (Cao et al., 2019) and M2m (Kim et al., 2020) train on
CIFAR-LT, including their choices: kaiming-normal initialization and the
optional cosine-normalized head (`NormedLinear`, here `CosineDense`).
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import check_image_shape, check_num_classes, load_local_weights, output_dtype
from keras_imbalance.layers.cosine_dense import CosineDense
from keras_imbalance.layers.fused_batch_norm import FusedBatchNormalization
from keras_imbalance.layers.shortcuts import SubsampleZeroPadShortcut

# PyTorch's `kaiming_normal_` (fan-in, gain sqrt(2), untruncated); Keras's HeNormal is truncated.
_KAIMING_NORMAL = {"class_name": "VarianceScaling",
                   "config": {"scale": 2.0, "mode": "fan_in", "distribution": "untruncated_normal"}}


def _kaiming():
    return keras.initializers.get(_KAIMING_NORMAL)


def _conv3x3(x, filters, strides, name):
    if strides > 1:
        # Explicit symmetric padding as in PyTorch (padding=1): Keras "same" pads only the
        # bottom/right for stride 2 on even sizes, which would misalign the conv window
        # with the option-A shortcut's x[::2, ::2] subsampling.
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(filters, 3, strides=strides, padding=padding, use_bias=False,
                         kernel_initializer=_kaiming(), name=name)(x)


def _bn(x, name):
    # PyTorch BatchNorm2d defaults: momentum 0.1 (Keras 0.9), epsilon 1e-5.
    return FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


def _basic_block(x, filters, strides, name):
    shortcut = x
    y = _conv3x3(x, filters, strides, f"{name}_conv1")
    y = _bn(y, f"{name}_bn1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv3x3(y, filters, 1, f"{name}_conv2")
    y = _bn(y, f"{name}_bn2")
    if strides != 1 or x.shape[-1] != filters:
        shortcut = SubsampleZeroPadShortcut(filters, strides, name=f"{name}_shortcut")(x)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def CifarResNet(
    depth=32,
    input_shape=(32, 32, 3),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    cosine_classifier=False,
    widths=(16, 32, 64),
    weights=None,
    name=None,
):
    """Builds a CIFAR ResNet of depth 6n + 2 (He et al. 2016, Sec. 4.2).

    Each stage has n = (depth - 2) / 6 basic blocks (3x3 conv-BN-ReLU-3x3
    conv-BN, add, ReLU). When the width doubles, the shortcut is option A:
    stride-2 subsampling plus zero channel padding (`SubsampleZeroPadShortcut`),
    so shortcuts add no parameters. Convolutions have no bias; BatchNorm uses
    momentum 0.9 and epsilon 1e-5 (PyTorch's defaults); conv and linear
    kernels use kaiming-normal (fan-in) initialization. ResNet-32 with 10
    classes has 464,154 trainable parameters.

    Args:
        depth: 20, 32, 44, 56, 110, or any 6n + 2.
        input_shape: (H, W, C); H and W >= 4 (32 x 32 in the paper).
        num_classes: number of classes.
        include_top: False returns the pooled features (B, widths[-1]).
        classifier_activation: None (logits, the default) or e.g. "softmax".
            Ignored with `cosine_classifier`, whose outputs are cosines.
        cosine_classifier: use `CosineDense` (LDAM's `NormedLinear`, cosines in
            [-1, 1], no bias) instead of a `Dense` layer as the last layer.
        widths: channels of the three stages.
        weights: None or the path of a local weights file (never downloads).
        name: model name (default "resnet{depth}").

    Returns:
        A functional `keras.Model`: (B, H, W, C) -> (B, num_classes) or (B, widths[-1]).
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110); got {depth!r}.")
    check_image_shape(input_shape, min_size=4, what="CIFAR ResNet input")
    if include_top:
        check_num_classes(num_classes)
    n = (depth - 2) // 6
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv3x3(inputs, widths[0], 1, "stem_conv")
    x = _bn(x, "stem_bn")
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate(widths):
        for block in range(n):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, strides, f"stage{stage + 1}_block{block + 1}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        if cosine_classifier:
            x = CosineDense(num_classes, dtype=output_dtype(), name="predictions")(x)
        else:
            fan_in = widths[-1]
            x = layers.Dense(
                num_classes,
                activation=classifier_activation,
                kernel_initializer=_kaiming(),
                # PyTorch's nn.Linear bias default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
                bias_initializer=keras.initializers.RandomUniform(-(fan_in**-0.5), fan_in**-0.5),
                dtype=output_dtype(),
                name="predictions",
            )(x)
    model = keras.Model(inputs, x, name=name or f"resnet{depth}")
    return load_local_weights(model, weights)


def _factory(depth):
    def build(input_shape=(32, 32, 3), num_classes=10, include_top=True, classifier_activation=None,
              cosine_classifier=False, weights=None, name=None):
        return CifarResNet(depth, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                           classifier_activation=classifier_activation, cosine_classifier=cosine_classifier,
                           weights=weights, name=name)

    build.__name__ = f"ResNet{depth}"
    build.__qualname__ = build.__name__
    build.__doc__ = (
        f"CIFAR ResNet-{depth} ({(depth - 2) // 6} basic blocks per stage, widths 16/32/64, option-A "
        "shortcuts; He et al. 2016, Sec. 4.2). See `CifarResNet` for the arguments and details."
    )
    return build


ResNet20 = _factory(20)
ResNet32 = _factory(32)
ResNet44 = _factory(44)
ResNet56 = _factory(56)
ResNet110 = _factory(110)
