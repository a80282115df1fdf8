"""A small convolutional classifier for small images (digits, MNIST-sized).

Not from any one paper: the package's default backbone for quick runs on the
embedded digits data, sized so that a few epochs take seconds on a CPU.
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import dense_classifier_head
from keras_imbalance.layers.fused_batch_norm import FusedBatchNormalization


def SmallCNN(
    input_shape=(8, 8, 1),
    num_classes=10,
    filters=(32, 64),
    dense_units=128,
    dropout=0.0,
    include_top=True,
    classifier_activation=None,
    name="small_cnn",
):
    """Conv(3x3)-BN-ReLU blocks, each but the last followed by 2x2 max-pooling.

    BatchNormalization uses momentum 0.9 (PyTorch's 0.1), so the moving
    statistics settle within the few hundred steps a small data set gives.

    Args:
        input_shape: (H, W, C), any size >= 2 ** (len(filters) - 1).
        num_classes: number of output classes.
        filters: channels of each conv block.
        dense_units: width of the hidden dense layer (0 for none).
        dropout: dropout rate before the output layer.
        include_top: False returns the pooled features (B, dense_units or filters[-1]).
        classifier_activation: None (logits, the package default, as every
            balancer here works on logits) or `"softmax"`.
        name: model name.

    Returns:
        A functional `keras.Model` mapping (B, H, W, C) -> (B, num_classes).
    """
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        if i < len(filters) - 1:
            x = layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = dense_classifier_head(x, dense_units, include_top, dropout, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=name)
