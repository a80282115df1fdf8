"""M2m: model case, translation math, acceptance, seed sampling, freezing, deferral, errors."""

import keras
import numpy as np
import pytest
from scipy import stats

from keras_imbalance import applications
from keras_imbalance.models import M2m
from tests import fixtures
from tests.harness import run_model_case, run_serialization_test


def _cnn(num_classes=3, name="small_cnn"):
    return fixtures.small_cnn(num_classes, name=name)


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


def test_m2m_passes_the_model_case_and_g_round_trips(tmp_path):
    x, y = fixtures.random_batch(12)
    init_kwargs = dict(classifier=_cnn(), translator=_cnn(name="g"), class_counts=[30, 8, 2], beta=0.9, gamma=0.0,
                       acceptance_criterion="probability", attack_steps=2, seed=1)

    def extra(original, reloaded):
        assert reloaded.translator is not reloaded.classifier
        for a, b in zip(original.translator.get_weights(), reloaded.translator.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.asarray(reloaded.class_counts), [30, 8, 2])
        assert not reloaded.translator.trainable
        assert reloaded.get_config()["beta"] == 0.9
        # The optimizer (f's only) resumes: same iteration count and slot values.
        assert int(reloaded.optimizer.iterations) == int(original.optimizer.iterations) == 1

    run_model_case(M2m, init_kwargs, (x, y), compile_kwargs=dict(optimizer="sgd"), tmp_path=tmp_path,
                   expected_output_shape=(12, 3), extra_checks=extra)
    # The players passed in are copied for the build, never changed by it.
    assert init_kwargs["translator"].trainable


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

    # Both variants through the serialization test of the model case.
    run_serialization_test(M2m, dict(classifier=_cnn(), translator=[g1, g2], class_counts=[5, 3, 1]))
    run_serialization_test(M2m, dict(classifier=_cnn(), translator="self", class_counts=[5, 3, 1]))

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
    with pytest.raises(ValueError, match="translated_positions must be one of"):
        M2m(_cnn(), _cnn(name="g"), translated_positions="slots")
    model = M2m(_cnn(), _cnn(name="g"))
    with pytest.raises(ValueError, match="adapt"):
        model.compile(optimizer="sgd")
        model.fit(np.zeros((3, 8, 8, 1), np.float32), np.array([0, 1, 2]), verbose=0)
    with pytest.raises(ValueError, match="no samples"):
        model.adapt(np.array([0, 0, 2]))
    np.testing.assert_array_equal(model.adapt(np.array([2, 0, 2, 1])), [1, 1, 2])
    with pytest.raises(ValueError, match="target_class"):
        model.translate(np.zeros((2, 8, 8, 1), np.float32), [0, 3], 1)


# ------------------------------------------------- translated_positions="candidates"


def test_translated_positions_round_trips_through_config_and_keras_file(tmp_path):
    model = M2m(_cnn(), _cnn(name="g"), class_counts=[30, 8, 2], translated_positions="candidates", seed=2)
    assert M2m(_cnn(), _cnn(name="g")).get_config()["translated_positions"] == "all"  # the default
    config = model.get_config()
    assert config["translated_positions"] == "candidates"
    assert M2m.from_config(config).translated_positions == "candidates"
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").translated_positions == "candidates"


def _pair(translated_positions, seed=3, linear_f=False, **kwargs):
    """An M2m with a linear g (so that the gamma test splits the slots) and a SmallCNN or linear f."""
    rng = np.random.default_rng(3)
    g = _linear(rng.normal(size=(64, 3)) * 3.0, (8, 8, 1), "g")
    f = _linear(rng.normal(size=(64, 3)), (8, 8, 1), "f") if linear_f else _cnn()
    # 26 of the 33 candidates of the test batch pass the gamma test.
    options = dict(class_counts=[40, 10, 2], beta=0.9, gamma=0.9, step_size=0.3, attack_steps=2, seed=seed)
    options.update(kwargs)
    return M2m(f, g, translated_positions=translated_positions, **options), rng


def test_candidates_mode_translates_only_candidates_and_agrees_draw_for_draw_with_the_default():
    compact, rng = _pair("candidates")
    whole = M2m(compact.classifier, compact.translator, translated_positions="all",
                **{k: v for k, v in compact.get_config().items() if k in ("class_counts", "beta", "gamma", "step_size", "attack_steps", "seed")})
    x = rng.random((60, 8, 8, 1), dtype=np.float32)
    y = np.repeat([0, 1, 2], 20)
    out = {k: np.asarray(v) for k, v in compact.oversample_batch(x, y).items()}
    ref = {k: np.asarray(v) for k, v in whole.oversample_batch(x, y).items()}
    acc, cand = out["accepted"], out["candidate"]
    assert out["x"].shape == x.shape
    assert acc.sum() > 0 and (cand & ~acc).sum() > 0 and (out["generation_slot"] & ~cand).sum() > 0
    assert not np.any(acc & ~cand) and not np.any(cand & ~(out["generation_slot"] & out["has_seed"]))
    # Accepted positions hold x*, which differs from the input; every other position is untouched.
    assert np.all(np.abs(out["x"][acc] - x[acc]).reshape(acc.sum(), -1).max(axis=1) > 1e-3)
    np.testing.assert_array_equal(out["x"][~acc], x[~acc])
    # Positions that are not candidates were never translated.
    np.testing.assert_array_equal(out["translated"][~cand], x[~cand])
    assert np.all(out["translator_confidence"][~cand] == 0)
    # Same seed, same draws: the whole-batch mode gives the same mix (up to float rounding).
    for key in ("generation_slot", "candidate", "accepted", "seed_index"):
        np.testing.assert_array_equal(out[key], ref[key], err_msg=key)
    np.testing.assert_allclose(out["x"], ref["x"], atol=1e-5)
    np.testing.assert_allclose(out["translated"][cand], ref["translated"][cand], atol=1e-5)


def _fit_recording_translated_rows(jit_compile):
    """One epoch (2 steps) of a candidates-mode M2m; returns (history, static row counts `_translate` was traced with)."""
    rng = np.random.default_rng(5)
    x = rng.random((24, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 1, 2] * 8)
    # Linear f and g: XLA compiles them in about a second.
    model, _ = _pair("candidates", linear_f=True, gamma=float("inf"), attack_steps=1)
    traced_rows = []
    translate = model._translate

    def spy(x0, *args):
        traced_rows.append(x0.shape[0])
        return translate(x0, *args)

    model._translate = spy
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0).history
    assert 0.0 < history["acceptance_rate"][0] <= 1.0 and np.isfinite(history["loss"][0])
    return history, traced_rows


def test_candidates_mode_fit_translates_a_data_dependent_number_of_rows():
    _, traced_rows = _fit_recording_translated_rows(jit_compile=False)
    assert traced_rows == [None], traced_rows  # the candidates only, not the 12 rows of the batch


def test_candidates_mode_step_without_candidates_trains_on_the_real_batch():
    # Equal counts: no generation slot, so zero rows to translate inside the graph.
    rng = np.random.default_rng(6)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 1, 2] * 4)
    model = M2m(_cnn(), _cnn(name="g"), class_counts=[4, 4, 4], attack_steps=1, seed=0, translated_positions="candidates")
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=12, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["generation_fraction"] == [0.0]


@pytest.mark.slow
def test_candidates_mode_falls_back_to_the_whole_batch_under_xla():
    _, traced_rows = _fit_recording_translated_rows(jit_compile=True)
    assert traced_rows == [12], traced_rows  # XLA needs static shapes


def test_candidates_mode_accepts_at_the_analytic_rate_per_class():
    """Accepted fraction of class k = (1 - N_k / N_max) * sum_k0 Q(k0 | k) (1 - beta^(N_k0 - N_k)+) (gamma off)."""
    counts = np.array([20, 100, 3, 10, 5])
    beta = 0.9
    g = _linear(np.zeros((4, 5)), (2, 2, 1), "g")
    model = M2m(_linear(np.zeros((4, 5)), (2, 2, 1), "f"), g, class_counts=counts, beta=beta, gamma=0.0,
                acceptance_criterion="probability", attack_steps=1, seed=11, translated_positions="candidates")
    sizes = np.array([400, 50, 400, 120, 400])
    y = np.repeat(np.arange(5), sizes)
    x = np.full((len(y), 2, 2, 1), 0.5, np.float32)
    accepted = np.asarray(model.oversample_batch(x, y)["accepted"])
    for k in range(5):
        p_acc = 1 - beta ** np.maximum(counts - counts[k], 0)
        q = p_acc / p_acc.sum() if p_acc.sum() > 0 else p_acc
        expected = (1 - counts[k] / counts.max()) * (q * p_acc).sum()
        rows = y == k
        sigma = np.sqrt(expected * (1 - expected) / rows.sum())
        assert abs(accepted[rows].mean() - expected) <= 4 * sigma + 1e-9, (k, accepted[rows].mean(), expected)
