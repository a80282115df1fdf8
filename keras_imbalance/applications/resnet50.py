"""ResNet-50 (He et al. 2016, "Deep Residual Learning", Table 1), wrapped offline.

PolarityGAN (Sec. 5) extracts features with an ImageNet ResNet-50. This
wrapper builds `keras.applications.ResNet50` with `weights=None` and loads a
local weights file when one is given: nothing is ever downloaded (the
ImageNet weights, if wanted, must be fetched by the user and passed as a path).
"""

import keras

from keras_imbalance.applications._utils import check_image_shape, check_num_classes, load_local_weights


def ResNet50(
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    classifier_activation=None,
    pooling="avg",
    weights=None,
    name="resnet50",
):
    """`keras.applications.ResNet50` with offline weights and package defaults.

    Differences from `keras.applications.ResNet50`: `weights=None` by default
    (a local path loads that file; "imagenet" raises instead of downloading),
    logits by default (`classifier_activation=None`), and `pooling="avg"` by
    default so that `include_top=False` gives (B, 2048) features, as a feature
    extractor needs. Inputs follow Keras's ResNet50 convention: RGB in [0, 255]
    passed through `keras.applications.resnet50.preprocess_input` (caffe style)
    when using ImageNet weights.

    Args:
        input_shape: (H, W, C), H and W >= 32.
        num_classes: classes of the top layer (include_top=True).
        include_top: False returns pooled features (or the 4D map with pooling=None).
        classifier_activation: None (logits) or e.g. "softmax".
        pooling: "avg", "max" or None; used when include_top is False.
        weights: None or the path of a local weights file matching this
            configuration (e.g. written by `model.save_weights("x.weights.h5")`).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H, W, C) -> (B, num_classes) or features.
    """
    check_image_shape(input_shape, min_size=32, what="ResNet50 input")
    if include_top:
        check_num_classes(num_classes)
    if pooling not in ("avg", "max", None):
        raise ValueError(f"`pooling` must be 'avg', 'max' or None; got {pooling!r}.")
    model = keras.applications.ResNet50(
        include_top=include_top,
        weights=None,
        input_shape=tuple(input_shape),
        pooling=None if include_top else pooling,
        classes=num_classes,
        classifier_activation=classifier_activation,
        name=name,
    )
    return load_local_weights(model, weights)
