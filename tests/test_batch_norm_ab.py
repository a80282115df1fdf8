"""`benchmarks/batch_norm_ab.py` times what it says: Keras' batch norm as "before", the fused layer as "after"."""

import keras
import numpy as np
import tensorflow as tf

from benchmarks import batch_norm_ab
from keras_imbalance import applications
from keras_imbalance.layers import FusedBatchNormalization


def _batch_norms(model):
    return [type(layer) for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_before_builds_keras_batch_norm_and_after_the_fused_layer():
    try:
        batch_norm_ab.use("before")
        before = _batch_norms(applications.SmallCNN((8, 8, 1), 10))
        batch_norm_ab.use("after")
        after = _batch_norms(applications.SmallCNN((8, 8, 1), 10))
    finally:
        batch_norm_ab.use("after")
    assert before and set(before) == {keras.layers.BatchNormalization}
    assert after and set(after) == {FusedBatchNormalization} and len(after) == len(before)
    # The package's own factories are left building the fused layer.
    assert set(_batch_norms(applications.ResNet32(input_shape=(32, 32, 3), num_classes=10))) == {FusedBatchNormalization}


def test_layer_timing_runs_both_versions():
    times = batch_norm_ab.main(["--skip-steps", "--repeats", "1", "--warmup", "0", "--batch-size", "4"])
    assert {version for _, version in times} == {"before", "after"}
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())


def test_instance_norm_by_the_fused_kernel_is_instance_norm_and_is_timed():
    x = np.random.default_rng(0).normal(size=(3, 5, 4, 2)).astype("float32")
    mean, std = x.mean(axis=(1, 2), keepdims=True), np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(batch_norm_ab.instance_norm_by_fused_kernel(tf.constant(x))), (x - mean) / std,
                               atol=1e-5)
    times = batch_norm_ab.main(["--instance-norm", "--repeats", "1", "--warmup", "0", "--batch-size", "4"])
    assert len(times) == 2 * len(batch_norm_ab.LAYER_SHAPES)
