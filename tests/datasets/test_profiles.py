import numpy as np
import pytest

from keras_imbalance.datasets import long_tailed_counts
from keras_imbalance.datasets import paper_counts


def test_exp_profile_matches_formula():
    for n_max, c, rho in [(5000, 10, 100), (500, 100, 100), (5000, 10, 10), (120, 10, 50)]:
        expected = [int(n_max * (1 / rho) ** (i / (c - 1))) for i in range(c)]
        assert long_tailed_counts(n_max, c, rho) == expected
    # CIFAR-10-LT rho=100 as published by Cao et al. / Kim et al.
    assert long_tailed_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_step_profile():
    assert long_tailed_counts(100, 4, 10, profile="step") == [100, 100, 10, 10]
    assert long_tailed_counts(100, 5, 10, profile="step") == [100, 100, 10, 10, 10]


def test_balanced_and_single_class():
    assert long_tailed_counts(7, 3, 1) == [7, 7, 7]
    assert long_tailed_counts(7, 1, 10) == [7]


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 10, 10), "n_max"),
        ((10.5, 10, 10), "n_max"),
        ((10, 0, 10), "num_classes"),
        ((10, 10, 0.5), "imbalance_ratio"),
        ((10, 10, float("nan")), "imbalance_ratio"),
        ((10, 10, 100), "at least 1"),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        long_tailed_counts(*args)


def test_unknown_profile():
    with pytest.raises(ValueError, match="Unknown profile"):
        long_tailed_counts(10, 3, 2, profile="linear")


def test_paper_counts():
    assert paper_counts("gamo-mnist") == [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]
    assert paper_counts("gamo-cifar10") == [4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80]
    assert paper_counts("cifar10-lt-100") == long_tailed_counts(5000, 10, 100)
    assert len(paper_counts("cifar100-lt-100")) == 100
    celeba = paper_counts("celeba-5")
    assert celeba == [424, 2423, 1499, 2078, 227]
    assert abs(max(celeba) / min(celeba) - 10.7) < 0.05  # the paper's rho ~ 10.7
    g = paper_counts("gamo-mnist")
    assert g[0] / g[-1] == 100  # the paper's IR
    with pytest.raises(ValueError, match="Unknown paper profile"):
        paper_counts("nope")
