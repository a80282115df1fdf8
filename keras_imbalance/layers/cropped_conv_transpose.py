"""A transposed convolution whose full output is cropped, computed without the cropped rows (CycleGAN's uk layers)."""

import keras
import tensorflow as tf

from keras_imbalance.layers.reflection_padding import _normalize_padding


@keras.saving.register_keras_serializable(package="keras_imbalance")
class CroppedConv2DTranspose(keras.layers.Conv2DTranspose):
    """`Conv2DTranspose(padding="valid")` followed by `Cropping2D(cropping)`, as one op.

    CycleGAN's up-sampling layers (Zhu et al. 2017, Appendix 7.2, "uk") are
    PyTorch's `ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)`:
    the full (2H + 1) output with its first row and column dropped,
    `cropping=((1, 0), (1, 0))`. Keras's "same" transposed convolution keeps
    the first row instead (a one-pixel shift), so the layer used to be a
    "valid" transposed convolution and a `Cropping2D`; on CPU the crop's
    gradient (`StridedSliceGrad`) was 7.5 % of a 32x32 CycleGAN step's op
    time (docs/performance.md). Here the crop is the explicit padding of
    `tf.nn.conv2d_transpose` (`Conv2DTranspose`'s kernel layout, so the
    weights are the same variables as the two-layer form's), and the cropped
    rows are never computed: the same values up to float rounding.

    Args:
        filters, kernel_size, strides, and the other `keras.layers.Conv2DTranspose`
            arguments except `padding` (always "valid" before the crop),
            `output_padding` (the crop sets the size), `dilation_rate` (1) and
            `data_format` (channels_last).
        cropping: int, (rows, cols) or ((top, bottom), (left, right)) removed
            from the full output, as `keras.layers.Cropping2D`; default none.

    Shapes: (B, H, W, C_in) -> (B, (H - 1) s_h + k_h - top - bottom,
    (W - 1) s_w + k_w - left - right, filters).
    """

    def __init__(self, filters, kernel_size, strides=1, cropping=0, **kwargs):
        fixed = {"padding": ("valid",), "output_padding": (None,), "dilation_rate": (1, (1, 1), [1, 1]),
                 "data_format": (None, "channels_last")}
        for key, allowed in fixed.items():
            if key in kwargs and kwargs.pop(key) not in allowed:
                raise ValueError(f"CroppedConv2DTranspose takes {key} {allowed[0]!r} only (see its docstring)")
        super().__init__(filters, kernel_size, strides=strides, padding="valid", data_format="channels_last", **kwargs)
        self.cropping = _normalize_padding(cropping)

    def _full_size(self, size, axis):
        return None if size is None else (size - 1) * self.strides[axis] + self.kernel_size[axis]

    def build(self, input_shape):
        super().build(input_shape)
        for axis, size in enumerate(input_shape[1:3]):
            full = self._full_size(size, axis)
            if full is not None and sum(self.cropping[axis]) >= full:
                raise ValueError(f"cropping {self.cropping[axis]} leaves nothing of the {full}-pixel full output "
                                 f"along {('height', 'width')[axis]}")

    def call(self, inputs):
        (top, bottom), (left, right) = self.cropping
        shape = tf.shape(inputs)
        height = (shape[1] - 1) * self.strides[0] + self.kernel_size[0] - top - bottom
        width = (shape[2] - 1) * self.strides[1] + self.kernel_size[1] - left - right
        outputs = tf.nn.conv2d_transpose(
            inputs, self.kernel, output_shape=tf.stack([shape[0], height, width, self.filters]),
            strides=self.strides, padding=[[0, 0], [top, bottom], [left, right], [0, 0]])
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        full = super().compute_output_shape(input_shape)
        sizes = [None if f is None else f - sum(c) for f, c in zip(full[1:3], self.cropping)]
        return (full[0], *sizes, full[3])

    def get_config(self):
        config = super().get_config()
        for key in ("padding", "output_padding", "dilation_rate", "data_format"):
            config.pop(key, None)
        return {**config, "cropping": [list(c) for c in self.cropping]}
