"""A fully connected classifier for feature or text inputs.

Kim, Jeong, Shin (2020), M2m, supplementary Sec. A (Twitter and Reuters): "a
2-layer fully-connected network with a hidden layer size of 256 and a ReLU
nonlinearity", on 50-d word embeddings (Twitter) and 1000-d bag-of-words
vectors (Reuters).
"""

import keras
from keras import layers

from keras_imbalance.applications._utils import check_num_classes, load_local_weights, output_dtype


def MLP(
    input_shape=(50,),
    num_classes=23,
    hidden_units=(256,),
    dropout=0.0,
    include_top=True,
    classifier_activation=None,
    weights=None,
    name="mlp",
):
    """Dense(hidden, ReLU) x len(hidden_units) then Dense(num_classes).

    The default (one hidden layer of 256) is M2m's 2-layer network; 23 classes
    is its Twitter setting (36 for Reuters, 1000-d inputs).

    Args:
        input_shape: (D,) feature vector shape.
        num_classes: number of classes.
        hidden_units: widths of the hidden layers.
        dropout: dropout rate before the output layer.
        include_top: False returns the last hidden layer (B, hidden_units[-1]).
        classifier_activation: None (logits) or e.g. "softmax".
        weights: None or the path of a local weights file (never downloads).
        name: model name.

    Returns:
        A functional `keras.Model`: (B, D) -> (B, num_classes).
    """
    input_shape = tuple(input_shape) if not isinstance(input_shape, int) else (input_shape,)
    if len(input_shape) != 1 or input_shape[0] is None or input_shape[0] < 1:
        raise ValueError(f"`input_shape` must be (features,); got {input_shape!r}.")
    if include_top:
        check_num_classes(num_classes)
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="relu", name=f"fc{i + 1}")(x)
    if include_top:
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(num_classes, activation=classifier_activation, dtype=output_dtype(), name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    return load_local_weights(model, weights)
