"""The shared harness, proven on a plain Keras classifier."""

import keras
import numpy as np
import pytest

from keras_imbalance import applications
from keras_imbalance import metrics
from tests.harness import run_model_test


def test_harness_on_plain_classifier(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    run_model_test(
        lambda: applications.SmallCNN((8, 8, 1), 3, filters=(8, 16), dense_units=16),
        x,
        y,
        compile_kwargs=dict(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[metrics.BalancedAccuracy(3), metrics.GeometricMeanScore(3)],
        ),
        tmp_path=tmp_path,
        expected_output_shape=(16, 3),
    )


def test_harness_catches_a_model_that_does_not_round_trip(tmp_path):
    class Forgetful(keras.Model):
        """Leaves `scale` out of its config, so a reloaded copy predicts differently."""

        def __init__(self, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.scale * self.dense(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1)))

    keras.saving.get_custom_objects()["Forgetful"] = Forgetful
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    try:
        with pytest.raises(AssertionError):
            run_model_test(lambda: Forgetful(scale=3.0), x, np.array([0, 1, 2, 0]), compile_kwargs=dict(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)), tmp_path=tmp_path)
    finally:
        keras.saving.get_custom_objects().pop("Forgetful")
