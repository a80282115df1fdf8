import keras
import numpy as np

from keras_imbalance.layers import CosineDense


def test_cosine_dense_matches_formula_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)).astype("float32")
    layer = CosineDense(4)
    y = np.asarray(layer(x))
    w = np.asarray(layer.kernel)
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0, keepdims=True))
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert np.all(np.abs(y) <= 1 + 1e-6)

    model = keras.Sequential([keras.Input((7,)), layer])
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded(x)), y, atol=1e-6)
