"""Issue 19: GAMO's open readings, each pinned by a NumPy computation on a hand-made batch.

- G's cross-entropy objective against M (`majority_in_generator_target`,
  recipe `generator_columns`): eq. 2 scores every output j != i, the
  majority's included (True, "all"); the minority-only columns of eq. 6
  (False, "minority") leave the majority out.
- Feature-space schedule (`feature_schedule`): Algorithm 1 trains F alone
  (M fixed) for u = ceil(n/b) steps, then M, D and G (F fixed) for
  v = ceil(n/b) steps ("alternating"); the authors' code steps F with M
  on every real batch ("joint").

The tiny players and `build_gamo` are tests/models/test_gamo_step.py's.
"""

import math

import keras
import numpy as np
import pytest

from tests.models.test_gamo_step import C, MAJORITY, MINORITY, BN_EPS, build_gamo, snapshot


def _np_softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("majority_in_target", [False, True], ids=["minority-columns", "eq2-all-columns"])
def test_cross_entropy_generator_loss_columns(majority_in_target):
    """G's CE loss against M, target 1 - onehot(i): -log(1 - M_i) for its own class i, -log M_j for each scored j.

    Mean over the scored outputs, then over the batch; the scored outputs are
    the minority classes (eq. 6's columns) or all C (eq. 2: J_i4 includes
    j = c, the majority).
    """
    model = build_gamo("cross_entropy", with_d=False, with_f=False, majority_in_target=majority_in_target,
                       label_noise=0.1)[0]
    logits = np.array([[0.3, 1.2, -0.5], [-1.0, 0.4, 0.9], [2.0, -0.3, 0.1], [0.2, 0.2, -1.5]], "float32")
    labels = np.array([0, 2, 0, 2])  # G's labels: minority classes only
    p = _np_softmax(logits.astype("float64"))
    scored = [0, 1, 2] if majority_in_target else MINORITY
    per_sample = []
    for row, i in zip(p, labels):
        terms = [-np.log(1.0 - row[i]) if j == i else -np.log(row[j]) for j in scored]
        per_sample.append(np.mean(terms))
    expected = float(np.mean(per_sample))
    target = 1.0 - keras.ops.one_hot(labels, C)
    got = float(model._class_loss(target, keras.ops.convert_to_tensor(logits), columns=model._generator_columns))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert (MAJORITY in scored) == majority_in_target


def _np_feature_phase_loss(P, x, y):
    """Algorithm 1 line 4 in NumPy: LS loss (eq. 4) of M(F(x)), F's BN on batch statistics, M's on its moving ones."""
    f = x.astype("float64") @ P["F"]["W1"] + P["F"]["b1"]
    f = (f - f.mean(0)) / np.sqrt(f.var(0) + BN_EPS) * P["F"]["gamma"] + P["F"]["beta"]
    h = np.tanh(f) @ P["M"]["W1"] + P["M"]["b1"]
    h = (h - P["M"]["mm"]) / np.sqrt(P["M"]["mv"] + BN_EPS) * P["M"]["gamma"] + P["M"]["beta"]
    probs = _np_softmax(np.tanh(h) @ P["M"]["W2"] + P["M"]["b2"])
    return float(np.mean((probs - np.eye(C)[y]) ** 2))


def _changed(before, variables):
    return {k for k, v in variables.items() if not k.startswith("bank") and not np.array_equal(before[k], np.asarray(v))}


def test_alternating_schedule_trains_f_alone_for_ceil_n_over_b_steps_then_m_d_g():
    """Epoch 1 = u = ceil(n/b) steps of F alone (M fixed: weights and BN statistics); epoch 2 = M, D, G with F fixed.

    Also pins the F-phase loss: one step on the whole batch logs eq. 4's LS
    loss of M(F(x)) with M in inference mode, computed in NumPy.
    """
    model, variables, _, (x, y) = build_gamo("least_squares", with_d=True, with_f=True, majority_in_target=False,
                                             label_noise=0.1, feature_schedule="alternating")
    b = 8
    u = math.ceil(len(y) / b)
    before = {n: snapshot(v) for n, v in variables.items()}
    model.fit(x, y, batch_size=b, epochs=1, shuffle=False, verbose=0)
    # F moved (its bias before BN has no gradient), with its BN statistics.
    assert _changed(before["F"], variables["F"]) >= {"W1", "gamma", "beta", "mm", "mv"}
    for name in ("M", "D", "G"):
        assert not _changed(before[name], variables[name]), name
    iterations = {p: int(getattr(model, f"{p}_optimizer").iterations)
                  for p in ("feature_extractor", "classifier", "discriminator", "generator")}
    assert iterations == {"feature_extractor": u, "classifier": 0, "discriminator": 0, "generator": 0}

    after_f = {n: snapshot(v) for n, v in variables.items()}
    model.fit(x, y, batch_size=b, epochs=2, initial_epoch=1, shuffle=False, verbose=0)
    assert not _changed(after_f["F"], variables["F"])  # F fixed (inference mode) while M, D, G train
    for name in ("M", "D", "G"):
        assert _changed(after_f[name], variables[name]), name
    assert int(model.feature_extractor_optimizer.iterations) == u
    assert int(model.classifier_optimizer.iterations) == 2 * u  # real and generated batch per step

    model, variables, _, (x, y) = build_gamo("least_squares", with_d=True, with_f=True, majority_in_target=False,
                                             label_noise=0.1, feature_schedule="alternating")
    expected = _np_feature_phase_loss({n: snapshot(variables[n]) for n in ("F", "M")}, x, y)
    logs = model.fit(x, y, batch_size=len(y), epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["feature_extractor_loss"][-1], expected, rtol=1e-5)


def test_alternating_schedule_needs_a_feature_extractor():
    with pytest.raises(ValueError, match="needs a feature_extractor"):
        build_gamo("least_squares", with_d=False, with_f=False, majority_in_target=False, label_noise=0.1,
                   feature_schedule="alternating")
