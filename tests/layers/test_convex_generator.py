"""ConvexGenerator: convexity (eq. 1 of GAMO), IGUs only for minority classes, saving the banks."""

import keras
import numpy as np
import pytest

from keras_imbalance.layers import ConvexGenerator


def _data(counts, shape=(3, 2), seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = rng.uniform(-1, 1, (len(y), *shape)).astype("float32")
    return x, y


def test_samples_are_convex_combinations_of_their_class_bank():
    counts = [4, 9, 3]  # majority is class 1, not class 0
    x, y = _data(counts)
    layer = ConvexGenerator(counts, (3, 2), latent_dim=5)
    layer.set_banks(x, y)
    z = np.random.default_rng(1).normal(size=(16, 5)).astype("float32")
    for c in (0, 2):
        labels = np.full(16, c)
        out = np.asarray(layer([z, labels], training=False))
        w = np.asarray(layer.convex_weights(z, c, training=False))
        assert out.shape == (16, 3, 2)
        assert w.shape == (16, counts[c])
        assert np.all(w >= 0)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
        bank = x[y == c].reshape(counts[c], -1)
        np.testing.assert_allclose(out.reshape(16, -1), w @ bank, atol=1e-5)
        np.testing.assert_allclose(np.asarray(layer.bank(c)), x[y == c])


def test_mixed_labels_select_each_rows_class():
    counts = [6, 2, 3]
    x, y = _data(counts, shape=(4,))
    layer = ConvexGenerator(counts, (4,), latent_dim=3)
    layer.set_banks(x, y)
    z = np.random.default_rng(2).normal(size=(6, 3)).astype("float32")
    labels = np.array([1, 2, 2, 1, 2, 1])
    out = np.asarray(layer([z, labels], training=False))
    for c in (1, 2):
        w = np.asarray(layer.convex_weights(z, c, training=False))
        np.testing.assert_allclose(out[labels == c], (w @ x[y == c])[labels == c], atol=1e-5)


def test_majority_class_has_no_igu():
    counts = [4, 9, 3]
    layer = ConvexGenerator(counts, (2,), latent_dim=2)
    assert layer.minority_classes == [0, 2]
    assert [igu.units for igu in layer.igus] == [4, 3]
    assert [tuple(b.shape) for b in layer.banks] == [(4, 2), (3, 2)]
    with pytest.raises(ValueError, match="no instance generation unit"):
        layer.convex_weights(np.zeros((1, 2), "float32"), 1)
    out = np.asarray(layer([np.ones((2, 2), "float32"), np.array([1, 1])]))
    np.testing.assert_array_equal(out, 0.0)


def test_single_sample_class_reproduces_it():
    counts = [5, 1]
    x, y = _data(counts, shape=(2, 2))
    layer = ConvexGenerator(counts, (2, 2), latent_dim=4)
    layer.set_banks(x, y)
    z = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    out = np.asarray(layer([z, np.ones(3, "int32")]))
    np.testing.assert_allclose(out, np.broadcast_to(x[y == 1], (3, 2, 2)), atol=1e-6)


def test_banks_survive_keras_round_trip(tmp_path):
    counts = [2, 7, 3]
    x, y = _data(counts)
    layer = ConvexGenerator(counts, (3, 2), latent_dim=4, name="cg")
    inputs = [keras.Input((4,)), keras.Input((), dtype="int32")]
    model = keras.Model(inputs, layer(inputs))
    layer.set_banks(x, y)
    z = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    labels = np.array([0, 2, 0, 2, 2])
    path = str(tmp_path / "g.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict([z, labels], verbose=0), model.predict([z, labels], verbose=0), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(reloaded.get_layer("cg").bank(2)), x[y == 2])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="no samples"):
        ConvexGenerator([3, 0, 2], (2,))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ConvexGenerator([3], (2,))
    layer = ConvexGenerator([3, 1], (2,))
    x, y = _data([3, 2], shape=(2,))
    with pytest.raises(ValueError, match="class 1 has 2 samples"):
        layer.set_banks(x, y)
    with pytest.raises(ValueError, match="shape"):
        layer.set_banks(np.zeros((4, 3), "float32"), np.array([0, 0, 0, 1]))
