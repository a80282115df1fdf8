"""The pixel range a classifier was trained in, carried by the saved model.

A model trained on images in some value range (this package's loaders give
[0, 1]; GAMO's paper scales pixels to [-1, 1]) only gives the right classes
on images in that range. The range is part of the model here, so a `.keras`
file, the exported SavedModel and `keras-imbalance predict` all take raw
pixels and agree, with no value-range flag to repeat at each boundary.

The rule, by input dtype (decided once, when a call is traced):

- `uint8` input is raw pixels, 0..255: the model scales it inside itself,
  `x / 255 * (high - low) + low`, to its `pixel_range` (low, high);
- floating input (float16/32/64, bfloat16) is taken as already
  preprocessed, in `pixel_range`, exactly as in training: `model.predict(x_test)`
  on the loaders' float [0, 1] arrays is unchanged. A float image in
  0..255 (such as `keras.utils.img_to_array` gives) is NOT recognized as raw:
  cast it to uint8 first;
- any other dtype (int32, int64, bool, ...) is refused, since it is unclear
  whether it holds raw pixels or preprocessed values.

Method models (`MethodModel`: GAMO, M2m, PolarityGAN, ImbalanceCycleGAN,
CycleGAN) take `pixel_range=(low, high)` (default (0, 1); CycleGAN: its
`value_range`) and save it in their config. A plain classifier (a baseline's
backbone, a functional model) cannot see the dtype of its input (the
functional API casts it to the `Input`'s float dtype first), so
`with_pixel_range` wraps it in `PixelRangeClassifier`.
"""

import keras
from keras import ops

from keras_imbalance.models.preset_loading import PresetLoadingMixin

# The range of this package's loaders, and the default of every model.
DEFAULT_PIXEL_RANGE = (0.0, 1.0)


def check_pixel_range(value, name="pixel_range"):
    """`value` as a (low, high) tuple of floats with high > low; a ValueError naming `name` otherwise."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (low, high), two numbers, got {value!r}") from None
    if not high > low:
        raise ValueError(f"{name} must be (low, high) with high > low, got {value!r}")
    return (low, high)


def scale_pixels(x, pixel_range):
    """Raw uint8 pixels -> float32 in `pixel_range`; floating input unchanged; any other dtype refused.

    Works on NumPy arrays, tensors and Keras symbolic tensors; anything
    without a dtype (a list, a dict of inputs) is returned as it is.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return x
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype == "uint8":
        low, high = pixel_range
        return ops.cast(x, "float32") * ((high - low) / 255.0) + low
    if "float" in dtype:
        return x
    raise TypeError(
        f"images of dtype {dtype} are ambiguous: give raw pixels as uint8 (0..255, scaled to the model's "
        f"pixel_range {tuple(pixel_range)}) or preprocessed floats already in that range"
    )


def pixel_range_of(model):
    """The pixel range `model` carries, else `DEFAULT_PIXEL_RANGE` (a plain model, trained on the loaders' [0, 1])."""
    return getattr(model, "pixel_range", None) or DEFAULT_PIXEL_RANGE


class PixelRangeInput:
    """Mixin for a `keras.Model` subclass: `pixel_range` attribute, uint8 inputs scaled before `call`.

    Scaling in `__call__` rather than in each `call`: every path to the
    model's forward pass (`model(x)`, `predict`, `evaluate`, an export that
    calls the model) goes through `__call__`, and the subclasses' `call`
    stays the paper's network.
    """

    @property
    def pixel_range(self):
        """(low, high): the range the model was trained in, and uint8 pixels are scaled to."""
        return self._pixel_range

    @pixel_range.setter
    def pixel_range(self, value):
        self._pixel_range = check_pixel_range(value)
        # The traced predict / evaluate functions hold the old constants.
        for attribute in ("predict_function", "test_function"):
            if getattr(self, attribute, None) is not None:
                setattr(self, attribute, None)

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(scale_pixels(inputs, self.pixel_range), *args, **kwargs)


@keras.saving.register_keras_serializable(package="keras_imbalance")
class PixelRangeClassifier(PixelRangeInput, PresetLoadingMixin, keras.Model):
    """A plain classifier and the pixel range it was trained in: `call(x)` is `classifier(x)`.

    Args:
        classifier: a built `keras.Model`, images (B, H, W, C) in
            `pixel_range` -> scores (B, num_classes).
        pixel_range: (low, high), default (0, 1).

    Call: x (B, H, W, C), uint8 0..255 (scaled to `pixel_range`) or float
    already in `pixel_range` -> `classifier`'s output.
    """

    def __init__(self, classifier, pixel_range=DEFAULT_PIXEL_RANGE, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(classifier, keras.Model):
            raise ValueError(f"classifier must be a keras.Model, got {type(classifier).__name__}")
        self.classifier = classifier
        self.pixel_range = pixel_range

    def build(self, input_shape):
        if not self.classifier.built:
            self.classifier.build(input_shape)
        self.built = True

    def call(self, x, training=None):
        return self.classifier(x, training=training)

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier),
                "pixel_range": list(self.pixel_range)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"], custom_objects=custom_objects)
        return cls(**config)


def with_pixel_range(model, pixel_range=None):
    """`model` carrying `pixel_range` (None: the range it carries, else (0, 1)), ready to save.

    A model with the `pixel_range` attribute (`PixelRangeInput`: the method
    models, `PixelRangeClassifier`) is updated in place and returned; a plain
    classifier is wrapped in a `PixelRangeClassifier` sharing its variables,
    compiled with the classifier's optimizer and loss if it was compiled.
    """
    pixel_range = check_pixel_range(pixel_range_of(model) if pixel_range is None else pixel_range)
    if isinstance(model, PixelRangeInput):
        model.pixel_range = pixel_range
        return model
    if not model.built:
        raise ValueError("the model is not built: call it on a batch (or fit it) before saving its pixel range")
    wrapped = PixelRangeClassifier(model, pixel_range, name=f"{model.name}_pixels")
    wrapped.build((None, *model.input_shape[1:]))
    if model.compiled:
        # A copy of the optimizer, built: sharing the classifier's instance saves its state once, under the
        # classifier, and every load of the file then warned that the wrapper's optimizer variables were skipped.
        # The classifier keeps its own optimizer and state; the wrapper's starts afresh.
        optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
        wrapped.compile(optimizer=optimizer, loss=model.loss)
        optimizer.build(wrapped.trainable_variables)
    return wrapped


def raw_pixel_input(model, images):
    """What to give `model` for raw uint8 `images`: the images themselves if the model scales them, else scaled.

    A model without a `pixel_range` (a `.keras` file saved before models
    carried it) gets them scaled to `DEFAULT_PIXEL_RANGE`, the range of
    this package's loaders.
    """
    if isinstance(model, PixelRangeInput):
        return images
    return keras.ops.convert_to_numpy(scale_pixels(images, DEFAULT_PIXEL_RANGE))
