import keras
import numpy as np

from keras_imbalance.layers import InstanceNormalization


def test_normalizes_each_sample_and_channel_over_space(tmp_path):
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 5, 4, 3)).astype("float32")
    layer = InstanceNormalization()
    y = np.asarray(layer(x))
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    assert not layer.weights  # affine=False, as CycleGAN's InstanceNorm2d
    assert len(InstanceNormalization(affine=True)(keras.Input((4, 4, 3))).shape) == 4

    model = keras.Sequential([keras.Input((5, 4, 3)), InstanceNormalization()])
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(tmp_path / "m.keras")(x)), np.asarray(model(x)), atol=1e-6)
