"""The readings of PolarityGAN's eq. 6 (`negative_weighting`, `generated_weighting`), each pinned by its formula.

Deficit d = p_k - p with the class priors p = counts / N. Per sample (x, i) with C = softmax(logits):
l = -log C_i - sum_{j != i} w_ij log(1 - C_j), with w_ij = d_j ("output"), d_i ("target"), 1 ("unweighted"),
and "mixed" = "output" on real samples, "target" on generated ones. `generated_weighting="weight"` draws C's
generated labels uniformly over the M generated classes and multiplies each generated sample's loss by
M d_i / sum(d). The references are NumPy (float64), written here from those formulas.
"""

import keras
import numpy as np
import pytest
from keras import layers
from scipy import stats

from keras_imbalance.models import PolarityGAN
from tests.models import test_polarity_gan_step as step_test

COUNTS = [4, 7, 3]  # the majority is class 1: d = [3, 0, 4] / 14
CLASSES = 3
# A hand-made batch: every class as label, confident right, confident wrong (majority output), and near a tie.
LOGITS = np.array([[2.0, -1.0, 0.5], [0.3, 0.2, -0.4], [-1.0, 3.0, 0.0], [0.1, 2.5, -0.7], [1.2, -0.3, 1.1]])
LABELS = np.array([0, 1, 2, 2, 0])


def _deficit(counts=COUNTS):
    p = np.asarray(counts, "float64") / np.sum(counts)
    return p.max() - p


def np_eq6(logits, labels, reading, sample_weight=None):
    """Batch mean of eq. 6 under `reading`, NumPy float64."""
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    d = _deficit()
    losses = []
    for row, i in zip(prob, labels):
        negative = 0.0
        for j in range(CLASSES):
            if j == i:
                continue
            w = {"output": d[j], "target": d[i], "unweighted": 1.0}[reading]
            negative -= w * np.log(1.0 - row[j])
        losses.append(-np.log(row[i]) + negative)
    losses = np.asarray(losses)
    if sample_weight is not None:
        losses = losses * sample_weight
    return float(losses.mean())


def _model(**readings):
    x_in = keras.Input((4,))
    classifier = keras.Model(x_in, layers.Dense(CLASSES)(layers.Dense(5, activation="relu")(x_in)))
    y = np.concatenate([np.full(n, c) for c, n in enumerate(COUNTS)]).astype("int32")
    x = np.random.default_rng(0).normal(size=(len(y), 4)).astype("float32")
    return PolarityGAN(classifier, latent_dim=3, hidden_units=(5,), autoencoder_epochs=0, seed=0, **readings).adapt(x, y)


@pytest.fixture(scope="module")
def built():
    # One model, built with non-default readings; each test sets the readings it checks (the loss reads them
    # at call time), so the tests need one build.
    return _model(negative_weighting="target", generated_weighting="weight")


@pytest.fixture
def reading_of(built):
    def set_readings(negative_weighting="output", generated_weighting="sampling"):
        built.negative_weighting, built.generated_weighting = negative_weighting, generated_weighting
        return built

    return set_readings


@pytest.mark.parametrize("reading", ["output", "target", "unweighted"])
@pytest.mark.parametrize("generated", [False, True])
def test_eq6_negative_weighting_formula(reading_of, reading, generated):
    """Each reading's loss on the hand-made batch equals its formula, for real and generated samples alike."""
    got = float(reading_of(reading).classifier_loss(LOGITS, LABELS, generated=generated))
    assert got == pytest.approx(np_eq6(LOGITS, LABELS, reading), rel=1e-5)


def test_eq6_readings_differ_on_the_batch():
    """The batch separates the readings (so a swapped weight shows up in the tests above)."""
    values = [np_eq6(LOGITS, LABELS, r) for r in ("output", "target", "unweighted")]
    assert min(abs(a - b) for a in values for b in values if a is not b) > 0.05


def test_eq6_mixed_reads_real_terms_by_output_and_generated_terms_by_target(reading_of):
    model = reading_of("mixed")
    assert float(model.classifier_loss(LOGITS, LABELS)) == pytest.approx(np_eq6(LOGITS, LABELS, "output"), rel=1e-5)
    assert float(model.classifier_loss(LOGITS, LABELS, generated=True)) == pytest.approx(
        np_eq6(LOGITS, LABELS, "target"), rel=1e-5)


def test_generated_weighting_weight_formula(reading_of):
    """"weight": each generated sample's loss times M d_i / sum(d) (M = 2 generated classes); "sampling": none."""
    model = reading_of(generated_weighting="weight")
    labels = np.array([0, 2, 2, 0, 2])
    d = _deficit()
    weights = 2 * d[labels] / d.sum()  # 6/7 for class 0, 8/7 for class 2
    np.testing.assert_allclose(np.asarray(model.generated_sample_weights(labels)), weights, rtol=1e-6)
    got = float(model.classifier_loss(LOGITS, labels, generated=True, sample_weight=model.generated_sample_weights(labels)))
    assert got == pytest.approx(np_eq6(LOGITS, labels, "output", sample_weight=weights), rel=1e-5)
    assert reading_of(generated_weighting="sampling").generated_sample_weights(labels) is None


def test_both_generated_weightings_have_the_same_expected_loss(reading_of):
    """Uniform labels weighted by M q_i and deficit-drawn labels unweighted: the same expectation over classes."""
    model = reading_of(generated_weighting="weight")
    per_class = {k: np_eq6(LOGITS[[k]], np.array([k]), "output") for k in (0, 2)}
    q = _deficit()[[0, 2]] / _deficit().sum()
    weights = np.asarray(model.generated_sample_weights(np.array([0, 2])))
    uniform_weighted = 0.5 * (weights[0] * per_class[0] + weights[1] * per_class[2])
    assert uniform_weighted == pytest.approx(q[0] * per_class[0] + q[1] * per_class[2], rel=1e-6)


def test_readings_are_validated_and_serialized():
    with pytest.raises(ValueError, match="negative_weighting"):
        _model(negative_weighting="none")
    with pytest.raises(ValueError, match="generated_weighting"):
        _model(generated_weighting="uniform")
    config = _model(negative_weighting="target", generated_weighting="weight").get_config()
    assert (config["negative_weighting"], config["generated_weighting"]) == ("target", "weight")


# One step of Algorithm 1 under "mixed" + "weight", on the step test's tiny players --------------------------------


def _probs(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def np_eq6_counts(logits, labels, counts, reading, sample_weight=None):
    """`np_eq6` for other class counts (the step test's), vectorized."""
    p = np.asarray(counts, "float64") / np.sum(counts)
    d = p.max() - p
    prob = _probs(np.asarray(logits, "float64"))
    onehot = np.eye(len(counts))[labels]
    w = {"output": np.broadcast_to(d[None], prob.shape), "target": np.repeat(d[labels][:, None], len(counts), 1)}[reading]
    losses = -np.log(prob[np.arange(len(labels)), labels]) - np.sum((1 - onehot) * w * np.log(1 - prob), axis=1)
    return float(np.mean(losses if sample_weight is None else losses * sample_weight))


def test_train_step_wires_the_readings():
    """C's real step uses the real terms ("output" under "mixed"); its generated step the generated terms
    ("target") on uniform labels weighted by M d_i / sum(d); G's step the generated terms, unweighted; the
    critic's samples keep deficit-drawn labels (a fresh draw, not C's uniform one)."""
    keras.utils.set_random_seed(0)
    model, log, x, y = step_test._build()
    model.negative_weighting, model.generated_weighting = "mixed", "weight"
    xb, yb = x[step_test.BATCH], y[step_test.BATCH]
    step_test._one_step(model, log, xb, yb)
    ev, counts = log.events, step_test.COUNTS
    S = [e["state"] for e in ev]
    # C, G (C's samples), C, then an extra G call: fresh deficit-drawn samples for the first critic step.
    assert [e["player"] for e in ev[:5]] == ["classifier", "generator", "classifier", "generator", "critic"]
    c_params = step_test._params(S[0], "classifier", model)[0]
    real = np_eq6_counts(step_test.ref_classifier(c_params, xb, True).numpy(), yb, counts, "output")
    eps, labels = ev[1]["inputs"]
    fakes = ev[2]["inputs"][0]
    d = _deficit(counts)
    weights = 2 * d[labels] / d.sum()
    c_params = step_test._params(S[2], "classifier", model)[0]
    generated = np_eq6_counts(step_test.ref_classifier(c_params, fakes, True).numpy(), labels, counts, "target", weights)
    g_eps, g_labels = ev[-4]["inputs"]
    g_fakes = ev[-3]["inputs"][0]
    c_params = step_test._params(ev[-3]["state"], "classifier", model)[0]
    g_loss = -np_eq6_counts(step_test.ref_classifier(c_params, g_fakes, False).numpy(), g_labels, counts, "target")
    losses = log.losses
    assert [name for name, _ in losses][:2] == ["classifier", "classifier"]
    np.testing.assert_allclose([losses[0][1], losses[1][1], losses[-2][1]], [real, generated, g_loss], rtol=1e-4)
    assert np.array_equal(ev[4]["inputs"][1].argmax(axis=1), ev[3]["inputs"][1])  # the critic's labels are G's fresh ones


@pytest.mark.slow
def test_weight_draws_uniform_generated_labels_and_the_critic_keeps_the_deficit():
    counts = [2, 12, 10]  # deficit probabilities 5/6 and 1/6: far from uniform
    model, log, x, y = step_test._build(counts=counts, seed=1)
    model.generated_weighting = "weight"
    rows = np.random.default_rng(0).integers(0, len(y), 1200)
    step_test._one_step(model, log, x[rows], y[rows])
    ev = log.events
    c_labels, critic_labels = ev[1]["inputs"][1], ev[3]["inputs"][1]
    for labels, expected in ((c_labels, [0.5, 0.5]), (critic_labels, [5 / 6, 1 / 6])):
        observed = np.bincount(labels, minlength=3)
        assert observed[1] == 0
        assert stats.chisquare(observed[[0, 2]], np.asarray(expected) * len(labels)).pvalue > 1e-4
