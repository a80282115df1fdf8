import keras
import numpy as np
import pytest

from keras_imbalance.applications import ResNet50


def test_builds_offline_and_loads_a_local_weights_file(tmp_path):
    model = ResNet50(input_shape=(32, 32, 3), num_classes=4)
    assert model.output_shape == (None, 4)
    assert model.layers[-1].activation is keras.activations.linear  # logits by default
    path = tmp_path / "r50.weights.h5"
    model.save_weights(path)
    loaded = ResNet50(input_shape=(32, 32, 3), num_classes=4, weights=str(path))
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)
    fresh = ResNet50(input_shape=(32, 32, 3), num_classes=4)
    assert not np.allclose(np.asarray(fresh.layers[-1].kernel), np.asarray(loaded.layers[-1].kernel))


def test_feature_extractor_and_errors(tmp_path):
    features = ResNet50(input_shape=(32, 32, 3), include_top=False)
    assert features.output_shape == (None, 2048)
    with pytest.raises(ValueError, match="never downloads"):
        ResNet50(weights="imagenet")
    with pytest.raises(ValueError, match="not found"):
        ResNet50(weights=str(tmp_path / "nope.weights.h5"))
    with pytest.raises(ValueError, match="pooling"):
        ResNet50(include_top=False, pooling="sum")
