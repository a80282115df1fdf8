"""Reflection padding for 2D feature maps (CycleGAN's `nn.ReflectionPad2d`)."""

import keras
import numpy as np
from keras import ops


def _normalize_padding(padding):
    """int | (h, w) | ((top, bottom), (left, right)) -> ((top, bottom), (left, right))."""
    if isinstance(padding, int):
        pads = ((padding, padding), (padding, padding))
    else:
        padding = tuple(padding)
        if len(padding) != 2:
            raise ValueError(f"`padding` must be an int, a pair or a pair of pairs; got {padding!r}.")
        if all(isinstance(p, int) for p in padding):
            pads = ((padding[0], padding[0]), (padding[1], padding[1]))
        else:
            pads = tuple(tuple(int(v) for v in p) for p in padding)
            if any(len(p) != 2 for p in pads):
                raise ValueError(f"`padding` must be an int, a pair or a pair of pairs; got {padding!r}.")
    if any(v < 0 for p in pads for v in p):
        raise ValueError(f"`padding` must be non-negative; got {padding!r}.")
    return pads


def _reflect_indices(size, before, after):
    """Source index of each padded position along one axis: before..1, 0..size-1, size-2..size-1-after."""
    return np.concatenate([np.arange(before, 0, -1), np.arange(size), np.arange(size - 2, size - 2 - after, -1)]).astype("int32")


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring the map without repeating the edge.

    Zhu et al. (2017), CycleGAN, Appendix 7.2: "Reflection padding was used to
    reduce artifacts". Equivalent to PyTorch's `nn.ReflectionPad2d` and to
    `numpy.pad(mode="reflect")`; channels-last only. A padding must be smaller
    than the dimension it pads (reflection cannot repeat the edge pixel).

    Args:
        padding: int (all four sides), (pad_h, pad_w) (symmetric), or
            ((top, bottom), (left, right)).

    Shapes: (B, H, W, C) -> (B, H + top + bottom, W + left + right, C).

    Example:

    >>> ReflectionPadding2D(1)(np.zeros((1, 4, 4, 3), "float32")).shape
    (1, 6, 6, 3)
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _normalize_padding(padding)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"ReflectionPadding2D expects (B, H, W, C) inputs; got shape {input_shape}.")
        for size, (before, after), axis in zip(input_shape[1:3], self.padding, ("height", "width")):
            if size is not None and max(before, after) >= size:
                raise ValueError(
                    f"Reflection padding {max(before, after)} must be smaller than the input {axis} {size}."
                )

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        h, w = inputs.shape[1], inputs.shape[2]
        if h is None or w is None:
            return ops.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")
        # With static sizes the padding is a gather of rows, then of columns,
        # by fixed indices: the same values as `ops.pad(mode="reflect")`, whose
        # CPU gradient (MirrorPadGrad) is slow: MirrorPad and its gradient took
        # 22 % of a CycleGAN step's op time on 8x8 digits, the gather 16 %
        # (docs/performance.md); neutral at 32x32.
        rows = _reflect_indices(h, top, bottom)
        cols = _reflect_indices(w, left, right)
        return ops.take(ops.take(inputs, rows, axis=1), cols, axis=2)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        b, h, w, c = input_shape
        return (b, None if h is None else h + top + bottom, None if w is None else w + left + right, c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}
