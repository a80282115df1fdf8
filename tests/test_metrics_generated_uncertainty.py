"""`metrics.generated_sample_uncertainty` against a hand computation (the classifier returns its inputs as logits)."""

import numpy as np
import pytest

from keras_imbalance import metrics

LN2, LN3, LN4 = np.log(2.0), np.log(3.0), np.log(4.0)


def identity(x):
    return x


# Classes 1 and 2 are compared; class 0 rows are left out.
GENERATED = (np.array([[0.0, LN3, 0.0], [0.0, 0.0, 0.0]]), np.array([1, 2]))  # probs (.2, .6, .2); uniform
REAL_TRAIN = (np.array([[0.0, 0.0, LN4], [5.0, 0.0, 0.0]]), np.array([2, 0]))  # probs (1/6, 1/6, 4/6); class 0: out
REAL_TEST = (np.array([[LN2, 0.0, 0.0]]), np.array([1]))  # probs (.5, .25, .25), labelled 1: wrong side


def h(*p):
    """Eq. 10 by hand: -sum p log2 p / log2 3."""
    return -sum(q * np.log2(q) for q in p) / np.log2(3)


def test_generated_sample_uncertainty_by_hand():
    r = metrics.generated_sample_uncertainty(identity, GENERATED, REAL_TRAIN, REAL_TEST)
    assert r["classes"] == [1, 2]
    g, t, s = (r["overall"][k] for k in ("generated", "real_train", "real_test"))
    assert (g["n"], t["n"], s["n"]) == (2, 1, 1)
    # least confidence 3 (1 - y*) / 2: 0.6 and 1 for the generated pair; 0.5; 0.75
    assert g["least_confidence"] == pytest.approx((0.6 + 1.0) / 2)
    assert t["least_confidence"] == pytest.approx(0.5)
    assert s["least_confidence"] == pytest.approx(0.75)
    # margin of confidence 1 - (y* - y**), ratio y** / y*
    assert g["margin_of_confidence"] == pytest.approx((0.6 + 1.0) / 2)
    assert t["margin_of_confidence"] == pytest.approx(0.5)
    assert s["ratio_of_confidence"] == pytest.approx(0.5)
    assert g["entropy"] == pytest.approx((h(0.2, 0.6, 0.2) + 1.0) / 2)
    assert t["entropy"] == pytest.approx(h(1 / 6, 1 / 6, 4 / 6))
    # logit margin |z_y - max_{j != y} z_j|: ln 3 and 0; ln 4; |0 - ln 2| on the wrong side
    assert g["logit_margin"] == pytest.approx(LN3 / 2)
    assert t["logit_margin"] == pytest.approx(LN4)
    assert s["logit_margin"] == pytest.approx(LN2)
    # on its class's side: margin > 0 (a tie is not)
    assert (g["accuracy"], t["accuracy"], s["accuracy"]) == (0.5, 1.0, 0.0)
    per = r["per_class"]
    assert per[1]["generated"]["least_confidence"] == pytest.approx(0.6)
    assert per[2]["generated"]["entropy"] == pytest.approx(1.0)
    assert per[1]["real_train"] is None and per[2]["real_test"] is None


def test_classes_select_the_samples_and_real_test_is_optional():
    r = metrics.generated_sample_uncertainty(identity, GENERATED, REAL_TRAIN, classes=[2])
    assert r["classes"] == [2] and set(r["overall"]) == {"generated", "real_train"}
    assert r["overall"]["generated"]["n"] == 1 and r["overall"]["generated"]["entropy"] == pytest.approx(1.0)


def test_class_logit_margin_signed():
    z = np.array([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    np.testing.assert_allclose(metrics.class_logit_margin(z, np.array([1, 0])), [1.0, -2.0])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="real_train must be an \\(x, y\\) pair"):
        metrics.generated_sample_uncertainty(identity, GENERATED, REAL_TRAIN[0])
    with pytest.raises(ValueError, match="generated: 2 samples but 1 labels"):
        metrics.generated_sample_uncertainty(identity, (GENERATED[0], [1]), REAL_TRAIN)
    with pytest.raises(ValueError, match="real_test has label 3 but the classifier has 3 outputs"):
        metrics.generated_sample_uncertainty(identity, GENERATED, REAL_TRAIN, (REAL_TEST[0], [3]), classes=[1, 3])
