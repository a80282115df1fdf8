"""ConvexGenerator(max_bank_size=m): random subsets of a large class's bank stay in its convex hull; state is saved."""

import keras
import numpy as np
import pytest
from scipy.optimize import linprog

from keras_imbalance.layers import ConvexGenerator


def _in_convex_hull(point, vertices):
    """LP feasibility: lambda >= 0, sum lambda = 1, vertices^T lambda = point (scipy, independent of the layer)."""
    n = len(vertices)
    a_eq = np.vstack([vertices.T, np.ones((1, n))])
    b_eq = np.concatenate([point, [1.0]])
    res = linprog(np.zeros(n), A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * n, method="highs")
    return res.status == 0


def _layer(counts=(60, 40), dim=3, m=8, seed=4):
    rng = np.random.default_rng(0)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = rng.normal(size=(len(y), dim)).astype("float32")
    x[y == 1] += 5.0  # class 1 far from class 0
    layer = ConvexGenerator(list(counts), (dim,), latent_dim=4, max_bank_size=m, seed=seed)
    layer.set_banks(x, y)
    return layer, x, y


def test_bounded_samples_are_convex_combinations_of_a_random_subset_of_m():
    layer, x, y = _layer()
    z = np.random.default_rng(1).normal(size=(12, 4)).astype("float32")
    labels = np.ones(12, "int32")
    state = np.asarray(layer.seed_generator.state)
    out = np.asarray(layer([z, labels], training=False))
    # Reference in numpy: the same subset (same seed state), softmax over its IGU logits only.
    layer.seed_generator.state.assign(state)
    idx = np.asarray(keras.random.shuffle(np.arange(40, dtype="int32"), seed=layer.seed_generator))[:8]
    h = np.asarray(layer.transient(z, labels, training=False))
    kernel, bias = (np.asarray(w) for w in layer.igus[0].weights)
    logits = h @ kernel[:, idx] + bias[idx]
    w = np.exp(logits - logits.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    bank = x[y == 1]
    np.testing.assert_allclose(out, w @ bank[idx], atol=1e-5)
    assert len(set(idx.tolist())) == 8
    # Inside class 1's convex hull (LP), and the LP does reject a point outside it.
    for sample in out:
        assert _in_convex_hull(sample.astype("float64"), bank.astype("float64"))
    assert not _in_convex_hull(x[y == 0].mean(0).astype("float64"), bank.astype("float64"))
    # Successive calls draw different subsets.
    again = np.asarray(layer([z, labels], training=False))
    assert np.abs(again - out).max() > 1e-4


def test_only_the_subsets_igu_columns_get_gradients_and_small_classes_use_everything():
    import tensorflow as tf

    layer, x, y = _layer(counts=(60, 40, 5), m=8)
    z = tf.constant(np.random.default_rng(2).normal(size=(6, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        out = layer([z, tf.constant([1, 1, 1, 2, 2, 2])], training=True)
        loss = tf.reduce_sum(out)
    kernel = layer.igus[0].kernel
    grad = np.asarray(tf.convert_to_tensor(tape.gradient(loss, kernel.value)))
    assert np.count_nonzero(np.abs(grad).sum(0)) == 8  # 8 of class 1's 40 columns
    # Class 2 has 5 <= m samples: the paper's full softmax over all of them.
    w = np.asarray(layer.convex_weights(z, 2, training=False))
    assert w.shape == (6, 5)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)


def test_bounded_layer_config_and_subset_seed_state_round_trip(tmp_path):
    layer, x, y = _layer()
    z = keras.Input((4,))
    lab = keras.Input((), dtype="int32")
    model = keras.Model([z, lab], layer([z, lab]))
    zs = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")
    labels = np.ones(5, "int32")
    model([zs, labels])  # advance the subset seed
    path = str(tmp_path / "gen.keras")
    model.save(path)
    back = keras.saving.load_model(path)
    conv = back.get_layer(layer.name)
    assert conv.max_bank_size == 8 and conv.synchronized_batchnorm
    np.testing.assert_array_equal(np.asarray(conv.seed_generator.state), np.asarray(layer.seed_generator.state))
    np.testing.assert_allclose(np.asarray(back([zs, labels])), np.asarray(model([zs, labels])), atol=1e-6)
    with pytest.raises(ValueError, match="max_bank_size must be None or an integer >= 1"):
        ConvexGenerator([5, 3], (2,), max_bank_size=0)
