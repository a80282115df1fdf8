"""Parameter-free residual shortcuts."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_imbalance")
class SubsampleZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut of the CIFAR ResNets: spatial subsampling + zero channels.

    He et al. (2016), "Deep Residual Learning for Image Recognition", Sec. 4.2:
    "we use identity shortcuts in all cases (i.e., option A)", where option A
    (Sec. 3.3) pads the extra dimensions with zeros. As in the LDAM / M2m
    reference ResNet-32, the map is subsampled by taking every `strides`-th
    pixel starting at the first, and the new channels are split evenly before
    and after the input channels (the reference pads `planes // 4` on each side
    when the width doubles). No trainable weights.

    Args:
        filters: output channels (>= input channels; the difference must be even).
        strides: spatial subsampling factor.

    Shapes: (B, H, W, C) -> (B, ceil(H / strides), ceil(W / strides), filters).
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        if self.strides < 1:
            raise ValueError(f"`strides` must be >= 1; got {strides}.")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"SubsampleZeroPadShortcut expects (B, H, W, C) inputs; got shape {input_shape}.")
        extra = self.filters - input_shape[-1]
        if extra < 0 or extra % 2:
            raise ValueError(
                f"Cannot zero-pad {input_shape[-1]} channels to {self.filters}: the difference must be "
                "non-negative and even."
            )

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        pad = (self.filters - inputs.shape[-1]) // 2
        if pad:
            x = ops.pad(x, ((0, 0), (0, 0), (0, 0), (pad, pad)))
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.strides
        return (b, None if h is None else -(-h // s), None if w is None else -(-w // s), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
