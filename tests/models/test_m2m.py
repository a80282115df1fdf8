"""M2m: harness, translation math, acceptance, seed sampling, freezing, deferral, errors."""

import keras
import numpy as np
import pytest
from scipy import stats

from keras_imbalance import applications
from keras_imbalance.models import M2m
from tests.harness import run_model_test


def _cnn(num_classes=3, name="small_cnn"):
    return applications.SmallCNN((8, 8, 1), num_classes, filters=(4, 8), dense_units=8, name=name)


def _linear(weights, input_shape, name):
    """logits = flatten(x) @ weights: a classifier whose gradients numpy can reproduce."""
    inputs = keras.Input(input_shape)
    h = keras.layers.Flatten()(inputs)
    out = keras.layers.Dense(weights.shape[1], use_bias=False, name="dense")(h)
    model = keras.Model(inputs, out, name=name)
    model.get_layer("dense").set_weights([weights.astype("float32")])
    return model


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def test_m2m_passes_the_model_harness_and_g_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 1, 2] * 4)

    def build():
        return M2m(_cnn(), _cnn(name="g"), class_counts=[30, 8, 2], beta=0.9, gamma=0.0, acceptance_criterion="probability", attack_steps=2, seed=1)

    def extra(original, reloaded):
        assert reloaded.translator is not reloaded.classifier
        for a, b in zip(original.translator.get_weights(), reloaded.translator.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.asarray(reloaded.class_counts), [30, 8, 2])
        assert not reloaded.translator.trainable
        assert reloaded.get_config()["beta"] == 0.9
        # The optimizer (f's only) resumes: same iteration count and slot values.
        assert int(reloaded.optimizer.iterations) == int(original.optimizer.iterations) == 1

    run_model_test(build, x, y, compile_kwargs=dict(optimizer="sgd"), tmp_path=tmp_path, expected_output_shape=(12, 3), extra_checks=extra)


def test_ensemble_and_self_translators_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    g1 = _linear(rng.normal(size=(64, 3)), (8, 8, 1), "g1")
    g2 = _linear(rng.normal(size=(64, 3)), (8, 8, 1), "g2")
    ens = M2m(_cnn(), [g1, g2], class_counts=[5, 3, 1])
    ens.save(tmp_path / "ens.keras")
    back = keras.saving.load_model(tmp_path / "ens.keras")
    assert isinstance(back.translator, list) and len(back.translator) == 2
    for a, b in zip(ens.translator, back.translator):
        np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    # Ensemble confidence = mean of the members' softmax.
    x = rng.random((4, 8, 8, 1), dtype=np.float32)
    flat = x.reshape(4, -1)
    expected = (_softmax(flat @ g1.get_weights()[0]) + _softmax(flat @ g2.get_weights()[0])) / 2
    np.testing.assert_allclose(np.asarray(back.translator_probabilities(x)), expected, atol=1e-5)

    selfm = M2m(_cnn(), "self", class_counts=[5, 3, 1])
    assert selfm.translator is selfm.classifier
    selfm.save(tmp_path / "self.keras")
    back = keras.saving.load_model(tmp_path / "self.keras")
    assert back.get_config()["translator"] == "self" and back.translator is back.classifier


def test_translate_matches_a_numpy_reference():
    """T normalized-gradient steps on CE(g(x), k) + lam * f_k0(x), clipped, for linear f and g."""
    rng = np.random.default_rng(2)
    wg = rng.normal(size=(16, 4)) * 2.0
    wf = rng.normal(size=(16, 4))
    g = _linear(wg, (4, 4, 1), "g")
    f = _linear(wf, (4, 4, 1), "f")
    eta, lam, steps = 0.3, 0.5, 3
    model = M2m(f, g, class_counts=[9, 5, 3, 1], lam=lam, step_size=eta, attack_steps=steps, noise_norm=0.0, input_range=(0.0, 1.0))
    x0 = rng.random((5, 4, 4, 1)).astype("float32")
    target = np.array([3, 2, 3, 1, 0])
    seed = np.array([0, 0, 1, 2, 3])
    got = np.asarray(model.translate(x0, target, seed))

    x = x0.reshape(5, -1).astype("float64")
    for _ in range(steps):
        p = _softmax(x @ wg)
        grad = (p - np.eye(4)[target]) @ wg.T + lam * wf[:, seed].T
        x = np.clip(x - eta * grad / np.linalg.norm(grad, axis=1, keepdims=True), 0.0, 1.0)
    np.testing.assert_allclose(got.reshape(5, -1), x, atol=1e-5)
    assert got.shape == x0.shape


def test_accepted_samples_are_confident_and_rejected_slots_keep_real_samples():
    rng = np.random.default_rng(3)
    wg = rng.normal(size=(64, 3)) * 3.0
    g = _linear(wg, (8, 8, 1), "g")
    model = M2m(_cnn(), g, class_counts=[40, 10, 2], beta=0.9, gamma=0.9, step_size=1.0, attack_steps=5, seed=3,
                acceptance_criterion="probability")
    x = rng.random((60, 8, 8, 1), dtype=np.float32)
    y = np.repeat([0, 1, 2], 20)
    out = {k: np.asarray(v) for k, v in model.oversample_batch(x, y).items()}
    acc, slot = out["accepted"], out["generation_slot"]
    assert out["x"].shape == x.shape  # the batch size never changes
    assert acc.sum() > 0 and (slot & ~acc).sum() > 0  # both outcomes occur
    assert not np.any(acc & ~slot)
    assert not np.any(slot[y == 0])  # the majority class never generates (1 - N_max / N_max = 0)
    # Accepted: the mixed batch holds x*, which g (recomputed here) gives >= gamma for the slot's class.
    conf = _softmax(out["x"].reshape(60, -1) @ wg)[np.arange(60), y]
    assert np.all(conf[acc] >= 0.9 - 1e-5)
    np.testing.assert_array_equal(out["x"][acc], out["translated"][acc])
    # Seeds come from strictly larger classes.
    counts = np.array([40, 10, 2])
    assert np.all(counts[out["seed_class"][acc]] > counts[y[acc]])
    # Rejected slots and non-slots keep their real samples, bit for bit.
    np.testing.assert_array_equal(out["x"][~acc], x[~acc])


def test_default_acceptance_is_the_papers_loss_threshold():
    """Algorithm 1: accept only if CE(g(x*), k) <= gamma; gamma = inf accepts every seeded slot."""
    rng = np.random.default_rng(4)
    wg = rng.normal(size=(64, 3)) * 3.0
    g = _linear(wg, (8, 8, 1), "g")
    x = rng.random((60, 8, 8, 1), dtype=np.float32)
    y = np.repeat([0, 1, 2], 20)
    kwargs = dict(class_counts=[40, 10, 2], beta=0.9, step_size=0.2, attack_steps=1, seed=3, rejection=False)

    def ce_of(out):
        return -np.log(_softmax(out["translated"].reshape(60, -1) @ wg)[np.arange(60), y])

    loose = M2m(_cnn(), g, gamma=float("inf"), **kwargs)
    assert loose.acceptance_criterion == "loss"
    out = {k: np.asarray(v) for k, v in loose.oversample_batch(x, y).items()}
    np.testing.assert_array_equal(out["accepted"], out["generation_slot"] & out["has_seed"])
    # A threshold at the median loss of the translations splits the slots.
    gamma = float(np.median(ce_of(out)[out["accepted"]]))
    strict = M2m(_cnn(), g, gamma=gamma, **kwargs)
    out = {k: np.asarray(v) for k, v in strict.oversample_batch(x, y).items()}
    acc, seeded = out["accepted"], out["generation_slot"] & out["has_seed"]
    ce = ce_of(out)
    assert acc.sum() > 0 and (seeded & ~acc).sum() > 0
    assert np.all(ce[acc] <= gamma + 1e-4) and np.all(ce[seeded & ~acc] > gamma - 1e-4)


def test_seed_classes_follow_q_and_slots_follow_the_counts():
    """Eq. 5 seed classes (chi-square), 1 - N_k/N_max slots, 1 - beta^delta acceptance."""
    counts = np.array([20, 100, 3, 10, 5])  # class 1 is the majority, not class 0
    beta = 0.9
    per_class = 400
    g = _linear(np.zeros((4, 5)), (2, 2, 1), "g")  # uniform softmax; gamma = 0 accepts all
    model = M2m(_linear(np.zeros((4, 5)), (2, 2, 1), "f"), g, class_counts=counts, beta=beta, gamma=0.0, acceptance_criterion="probability", attack_steps=0, seed=7)
    # An unbalanced batch: Q must not depend on how many of each class it holds.
    sizes = np.array([per_class, 50, per_class, 120, per_class])
    y = np.repeat(np.arange(5), sizes)
    x = np.zeros((len(y), 2, 2, 1), np.float32)
    out = {k: np.asarray(v) for k, v in model.oversample_batch(x, y).items()}
    for k in (2, 4, 3):
        rows = y == k
        q = np.where(counts > counts[k], 1 - beta ** np.maximum(counts - counts[k], 0), 0.0)
        q = q / q.sum()
        observed = np.bincount(out["seed_class"][rows], minlength=5)
        support = q > 0
        assert observed[~support].sum() == 0
        _, p = stats.chisquare(observed[support], q[support] * rows.sum())
        assert p > 1e-3, (k, observed, q)
        # Slot rate 1 - N_k / N_max within 4 binomial sigmas.
        rate = 1 - counts[k] / counts.max()
        n = rows.sum()
        assert abs(out["generation_slot"][rows].mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n) + 1e-9
        # Acceptance among slots = E_Q[1 - beta^delta] (gamma = 0 leaves only the Bernoulli).
        p_acc = 1 - beta ** np.maximum(counts - counts[k], 0)
        expected = (q * p_acc).sum()
        s = out["generation_slot"] & rows
        assert abs(out["accepted"][s].mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / s.sum())
    # The majority class has no seed and never generates.
    assert not out["has_seed"][y == 1].any() and not out["accepted"][y == 1].any()


def test_translator_stays_frozen_and_translation_starts_at_start_epoch():
    rng = np.random.default_rng(4)
    x = rng.random((24, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 1, 2] * 8)
    g = _cnn(name="g")
    g_before = [w.copy() for w in g.get_weights()]
    model = M2m(_cnn(), g, class_counts=[30, 8, 2], beta=0.9, gamma=0.0, acceptance_criterion="probability", attack_steps=2, start_epoch=1, seed=0)
    f_before = [w.copy() for w in model.classifier.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=12, epochs=2, verbose=0)
    for a, b in zip(g_before, g.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(f_before, model.classifier.get_weights()))
    assert len(model.trainable_weights) == len(model.classifier.trainable_weights)
    assert history.history["generation_fraction"][0] == 0.0
    assert history.history["generation_fraction"][1] > 0.0
    assert 0.0 <= history.history["acceptance_rate"][1] <= 1.0


def test_before_start_epoch_the_step_is_plain_training():
    rng = np.random.default_rng(5)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    f = _cnn()
    plain = _cnn(name="plain")
    plain.set_weights(f.get_weights())
    model = M2m(f, _cnn(name="g"), class_counts=[30, 8, 2], start_epoch=5, attack_steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    plain.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match="start_epoch"):
        h1 = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h2 = plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.classifier.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-6)
    assert h1.history["generation_fraction"] == [0.0, 0.0]


def test_pretrain_translator_trains_a_fresh_copy():
    rng = np.random.default_rng(6)
    x = rng.random((32, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 1, 2, 0] * 8)
    arch = _cnn()
    before = [w.copy() for w in arch.get_weights()]
    g = M2m.pretrain_translator(arch, x, y, epochs=1, batch_size=16)
    assert g is not arch
    for a, b in zip(before, arch.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert g.output_shape == (None, 3)
    model = M2m(_cnn(), g, class_counts=[16, 8, 8])
    assert not g.trainable and model.translator is g


def test_bad_input_errors_clearly():
    with pytest.raises(ValueError, match=r"class\(es\) \[1\]"):
        M2m(_cnn(), _cnn(name="g"), class_counts=[10, 0, 3])
    with pytest.raises(ValueError, match="3 classes"):
        M2m(_cnn(), _cnn(name="g"), class_counts=[10, 3])
    with pytest.raises(ValueError, match="NaN"):
        M2m(_cnn(), _cnn(name="g"), class_counts=[10, np.nan, 3])
    with pytest.raises(ValueError, match="4 outputs"):
        M2m(_cnn(), _cnn(4, name="g"))
    with pytest.raises(ValueError, match="beta"):
        M2m(_cnn(), _cnn(name="g"), beta=1.0)
    with pytest.raises(ValueError, match="translator"):
        M2m(_cnn(), "other")
    model = M2m(_cnn(), _cnn(name="g"))
    with pytest.raises(ValueError, match="adapt"):
        model.compile(optimizer="sgd")
        model.fit(np.zeros((3, 8, 8, 1), np.float32), np.array([0, 1, 2]), verbose=0)
    with pytest.raises(ValueError, match="no samples"):
        model.adapt(np.array([0, 0, 2]))
    np.testing.assert_array_equal(model.adapt(np.array([2, 0, 2, 1])), [1, 1, 2])
    with pytest.raises(ValueError, match="target_class"):
        model.translate(np.zeros((2, 8, 8, 1), np.float32), [0, 3], 1)
