"""Helpers shared by the backbone factories (weights loading, argument checks)."""

import os


def load_local_weights(model, weights):
    """Loads `weights` (None or a local file path) into `model`; never downloads.

    Raises:
        ValueError: `weights` is "imagenet", a URL, or a path that does not exist.
    """
    if weights is None:
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"`weights` must be None or a local file path; got {weights!r}.")
    weights = os.fspath(weights)
    if weights == "imagenet" or "://" in weights:
        raise ValueError(
            f"`weights={weights!r}` would download; this package never downloads. Pass None or the path of "
            "a local weights file (e.g. a `.weights.h5` saved with `model.save_weights`)."
        )
    if not os.path.exists(weights):
        raise ValueError(f"Weights file not found: {weights!r}.")
    model.load_weights(weights)
    return model


def check_image_shape(input_shape, min_size=1, multiple_of=1, what="input"):
    """Validates an (H, W, C) shape; H and W may be None only when `multiple_of == 1`."""
    if input_shape is None or len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels); got {input_shape!r}.")
    h, w, c = input_shape
    if c is None or c < 1:
        raise ValueError(f"`input_shape` needs a known, positive channel count; got {input_shape!r}.")
    for size in (h, w):
        if size is None:
            continue
        if size < min_size:
            raise ValueError(f"The {what} needs height and width >= {min_size}; got {input_shape!r}.")
        if size % multiple_of:
            raise ValueError(f"The {what} needs height and width divisible by {multiple_of}; got {input_shape!r}.")
    return tuple(input_shape)


def check_num_classes(num_classes):
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int; got {num_classes!r}.")
    return num_classes


def output_dtype():
    """The dtype of a network's last layer: "float32" under a mixed precision policy, else None (the policy's).

    Under `keras.mixed_precision.set_global_policy("mixed_float16")` the
    layers compute in float16; the last one stays float32 so that logits,
    critic values and images reach the losses and the served signature in
    float32 (the Keras mixed precision guide's advice). Under a plain policy
    None keeps the layer's configuration what it was without this.
    """
    import keras

    policy = keras.mixed_precision.global_policy()
    return "float32" if policy.compute_dtype != policy.variable_dtype else None


def dense_classifier_head(x, dense_units, include_top, dropout, num_classes, classifier_activation):
    """The head SmallCNN and LeNet share: optional Dense(dense_units, ReLU) "fc", then (with the top)
    optional Dropout and Dense(num_classes) "predictions". Layer names are part of saved weights."""
    from keras import layers

    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="fc")(x)
    if include_top:
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(num_classes, activation=classifier_activation, dtype=output_dtype(), name="predictions")(x)
    return x
