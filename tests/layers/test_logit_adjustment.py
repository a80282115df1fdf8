import keras
import numpy as np
import pytest

from keras_imbalance.layers import LogitAdjustment, logit_adjusted
from tests.harness import run_model_test


def test_logit_adjustment_formula():
    counts = np.array([80, 15, 5])
    z = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    for tau in (0.0, 0.5, 1.0, 2.0):
        out = LogitAdjustment(counts, tau=tau)(z)
        np.testing.assert_allclose(np.asarray(out), z - tau * np.log(counts / counts.sum()), rtol=1e-5, atol=1e-6)
    # tau = 1 with equal logits predicts the rarest class (prior correction).
    assert int(np.argmax(LogitAdjustment(counts)(np.zeros((1, 3), "float32")))) == 2


def test_logit_adjustment_errors():
    with pytest.raises(ValueError, match="> 0"):
        LogitAdjustment([3, 0, 1])
    with pytest.raises(ValueError, match="3 class counts"):
        LogitAdjustment([3, 2, 1])(np.zeros((2, 4), "float32"))


def test_logit_adjusted_model_passes_harness(tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    y = np.arange(8) % 3

    def model_fn():
        base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)], name="base")
        return logit_adjusted(base, [50, 10, 2], tau=1.0)

    reloaded = run_model_test(
        model_fn, x, y, tmp_path=tmp_path, expected_output_shape=(8, 3),
        compile_kwargs={"optimizer": "sgd", "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    adj = reloaded.get_layer("logit_adjustment")
    assert adj.class_counts == [50, 10, 2] and adj.tau == 1.0
    base_out = reloaded.get_layer("base").predict(x, verbose=0)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), base_out - np.log(np.array([50, 10, 2]) / 62), rtol=1e-5, atol=1e-5)
