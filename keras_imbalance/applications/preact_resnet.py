"""Pre-activation ResNet-18 for small (32 x 32) images.

He, Zhang, Ren, Sun (2016), "Identity Mappings in Deep Residual Networks"
(pre-activation units: BN-ReLU before each convolution, and a final BN-ReLU
after the last unit, Sec. 4 / Fig. 4(e)), on the ResNet-18 layout of "Deep
Residual Learning" Table 1 with the CIFAR-style stem (a 3x3 64-channel conv,
no max-pooling). M2m (Kim et al., 2020, supplementary) trains it on SUN397
resized to 32 x 32.
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import check_image_shape, check_num_classes, load_local_weights, output_dtype
from keras_imbalance.layers.fused_batch_norm import FusedBatchNormalization


def _bn(x, name):
    return FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


def _conv(x, filters, kernel_size, strides, name):
    if strides > 1 and kernel_size == 3:
        # Symmetric padding as PyTorch's padding=1 (Keras "same" pads bottom/right only).
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                         kernel_initializer="he_normal", name=name)(x)


def _preact_block(x, filters, strides, name):
    out = layers.ReLU(name=f"{name}_relu1")(_bn(x, f"{name}_bn1"))
    if strides != 1 or x.shape[-1] != filters:
        # Projection shortcut (1x1 conv) taken from the pre-activated input, as in the paper's Fig. 4(e).
        shortcut = _conv(out, filters, 1, strides, f"{name}_shortcut")
    else:
        shortcut = x
    y = _conv(out, filters, 3, strides, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu2")(_bn(y, f"{name}_bn2"))
    y = _conv(y, filters, 3, 1, f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([y, shortcut])


def PreActResNet18(
    input_shape=(32, 32, 3),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    final_bn=True,
    widths=(64, 128, 256, 512),
    weights=None,
    name="preact_resnet18",
):
    """Pre-activation ResNet-18: 4 stages x 2 basic pre-activation blocks.

    Stem: 3x3 conv, 64 channels, stride 1, no max-pool. Stages: widths
    64/128/256/512, stride 2 at the start of stages 2-4, 1x1 projection
    shortcuts (no bias) when the shape changes. After the last block, BN-ReLU
    (`final_bn=True`, as in "Identity Mappings"), then global average pooling
    and a linear layer. Convolutions have no bias; BatchNorm momentum 0.9,
    epsilon 1e-5 (PyTorch's defaults). Trainable parameters for 10 classes:
    11,172,170 with the final BN, 11,171,146 without it (the popular
    `kuangliu/pytorch-cifar` variant, which ends with a bare ReLU-free add).

    Args:
        input_shape: (H, W, C), H and W >= 8 (32 x 32 in M2m's SUN397 setting).
        num_classes: number of classes.
        include_top: False returns the pooled features (B, 512).
        classifier_activation: None (logits) or e.g. "softmax".
        final_bn: add the final BN-ReLU before pooling.
        widths: channels of the four stages.
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H, W, C) -> (B, num_classes) or (B, widths[-1]).
    """
    check_image_shape(input_shape, min_size=8, what="PreActResNet18 input")
    if include_top:
        check_num_classes(num_classes)
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(inputs, widths[0], 3, 1, "stem_conv")
    for stage, filters in enumerate(widths):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _preact_block(x, filters, strides, f"stage{stage + 1}_block{block + 1}")
    if final_bn:
        x = layers.ReLU(name="final_relu")(_bn(x, "final_bn"))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(num_classes, activation=classifier_activation, dtype=output_dtype(), name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    return load_local_weights(model, weights)
