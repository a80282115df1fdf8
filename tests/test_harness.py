"""The shared model test case, proven on a plain Keras classifier and on models that do not round trip."""

import keras
import numpy as np
import pytest

from keras_imbalance import applications
from keras_imbalance import metrics
from tests.harness import run_model_case, run_model_test, run_serialization_test


def test_harness_on_plain_classifier(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    run_model_case(
        applications.SmallCNN,
        dict(input_shape=(8, 8, 1), num_classes=3, filters=(8, 16), dense_units=16),
        (x, y),
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


class ForgetsAnArgument(keras.Model):
    """Takes `scale` but its `get_config` leaves it out: `from_config` silently builds scale=1."""

    def __init__(self, units=3, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.scale * self.dense(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}  # "scale" forgotten


class RemembersEverything(ForgetsAnArgument):
    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class DropsAnArgument(RemembersEverything):
    """Its config holds `scale`, but `from_config` drops it."""

    @classmethod
    def from_config(cls, config):
        return cls(**{k: v for k, v in config.items() if k != "scale"})


def test_serialization_check_catches_a_config_that_forgets_an_argument(tmp_path):
    custom = keras.saving.get_custom_objects()
    classes = {c.__name__: c for c in (ForgetsAnArgument, RemembersEverything, DropsAnArgument)}
    custom.update(classes)
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    data = (x, np.array([0, 1, 2, 0]))
    compile_kwargs = dict(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    try:
        # The serialization check alone (no fit, no file) names the missing argument...
        with pytest.raises(AssertionError, match="forgets the argument 'scale'"):
            run_serialization_test(ForgetsAnArgument, dict(units=3, scale=3.0))
        # ...and so does the whole test case, before any training.
        with pytest.raises(AssertionError, match="forgets the argument 'scale'"):
            run_model_case(ForgetsAnArgument, dict(units=3, scale=3.0), data, compile_kwargs=compile_kwargs,
                           tmp_path=tmp_path)
        # A from_config that loses an argument the config holds: the revived config differs.
        with pytest.raises(AssertionError, match=r"differ at \['scale'\]"):
            run_serialization_test(DropsAnArgument, dict(units=3, scale=3.0))
        # The same model with a complete config passes the whole case.
        run_model_case(RemembersEverything, dict(units=3, scale=3.0), data, compile_kwargs=compile_kwargs,
                       tmp_path=tmp_path, expected_output_shape=(4, 3))
    finally:
        for name in classes:
            custom.pop(name)
