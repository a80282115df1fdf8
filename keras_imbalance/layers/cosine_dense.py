"""Cosine-normalized dense layer (the `NormedLinear` head of LDAM)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_imbalance")
class CosineDense(keras.layers.Layer):
    """Outputs the cosine between each input row and each class weight vector.

    y_j = <x / ||x||, w_j / ||w_j||>, in [-1, 1], no bias. Cao et al. (2019),
    LDAM-DRW, use this head with the LDAM loss (its scale s = 30 multiplies the
    cosines); Kim et al. (2020) use it for LDAM-M2m. Weights are initialized
    uniformly in [-1, 1] as in the reference `NormedLinear`.

    Args:
        units: number of classes.

    Shapes: (B, D) -> (B, units).

    Example:

    >>> layer = CosineDense(3)
    >>> y = layer(np.ones((2, 4), "float32"))  # every entry in [-1, 1]
    """

    def __init__(self, units, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer=keras.initializers.RandomUniform(-1.0, 1.0),
            name="kernel",
        )

    def call(self, inputs):
        x = inputs / ops.sqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1, keepdims=True), self.epsilon))
        w = self.kernel / ops.sqrt(ops.maximum(ops.sum(ops.square(self.kernel), axis=0, keepdims=True), self.epsilon))
        return ops.matmul(x, w)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "epsilon": self.epsilon}
