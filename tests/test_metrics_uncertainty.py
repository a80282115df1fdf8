"""Uncertainty measures of PolarityGAN (eqs. 7-10) against hand-computed values."""

import math

import numpy as np
import pytest

from keras_imbalance import metrics

P = np.array([
    [0.7, 0.2, 0.1],  # y* = 0.7, y** = 0.2
    [1.0, 0.0, 0.0],  # certain
    [1 / 3, 1 / 3, 1 / 3],  # uniform: maximally uncertain
    [0.1, 0.5, 0.4],  # y* = 0.5, y** = 0.4 (unsorted row)
])


def test_least_confidence_hand_computed():
    # m (1 - y*) / (m - 1), m = 3
    expected = [3 * 0.3 / 2, 0.0, 1.0, 3 * 0.5 / 2]
    np.testing.assert_allclose(metrics.least_confidence(P), expected, atol=1e-12)


def test_margin_of_confidence_hand_computed():
    expected = [1 - 0.5, 0.0, 1.0, 1 - 0.1]
    np.testing.assert_allclose(metrics.margin_of_confidence(P), expected, atol=1e-12)


def test_ratio_of_confidence_hand_computed():
    expected = [0.2 / 0.7, 0.0, 1.0, 0.4 / 0.5]
    np.testing.assert_allclose(metrics.ratio_of_confidence(P), expected, atol=1e-12)


def test_entropy_hand_computed():
    row0 = -(0.7 * math.log2(0.7) + 0.2 * math.log2(0.2) + 0.1 * math.log2(0.1)) / math.log2(3)
    row3 = -(0.1 * math.log2(0.1) + 0.5 * math.log2(0.5) + 0.4 * math.log2(0.4)) / math.log2(3)
    np.testing.assert_allclose(metrics.normalized_entropy(P), [row0, 0.0, 1.0, row3], atol=1e-12)


def test_scores_are_means_in_unit_interval():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=500)
    scores = metrics.uncertainty_scores(probs)
    assert set(scores) == {"least_confidence", "margin_of_confidence", "ratio_of_confidence", "entropy"}
    for name, fn in metrics.UNCERTAINTY_MEASURES.items():
        values = fn(probs)
        assert values.shape == (500,) and np.all(values >= -1e-12) and np.all(values <= 1 + 1e-12)
        assert scores[name] == pytest.approx(values.mean())
    # Sharper predictions are less uncertain on every measure.
    sharp = metrics.uncertainty_scores(rng.dirichlet(np.full(10, 0.05), size=500))
    assert all(sharp[k] < scores[k] for k in scores)


@pytest.mark.parametrize("bad, match", [
    (np.array([0.5, 0.5]), "shape"),
    (np.array([[1.0], [1.0]]), "m >= 2"),
    (np.array([[2.0, -1.0]]), "probabilities"),
    (np.array([[3.0, 1.0]]), "softmax"),
    (np.array([[np.nan, 1.0]]), "NaN"),
    (np.zeros((0, 3)), "empty"),
])
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        metrics.least_confidence(bad)
