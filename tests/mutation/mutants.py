"""The mutants `make mutation` applies: each a one-edit bug that changes an algorithm.

A mutant names its file (relative to the repository root), the exact original
snippet (it must occur exactly once in the file; `tests/test_mutation_list.py`
checks this), the mutated snippet, what it breaks in words, and the tests that
must go red. `equivalent` holds the reason when a mutant provably cannot change
behaviour (it is then reported, not counted as a survivor).

Categories covered, per the issue that introduced this list: the sign of every
player objective, every target (1 vs 0, onehot vs 1 - onehot), every
stop_gradient / frozen-player guard, swapped real/fake inputs, and weights
(lambda, 1/gamma, the gradient-penalty coefficient, the loss weights).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    mutated: str
    what: str
    tests: tuple
    equivalent: str = ""


LOSSES = "keras_imbalance/losses.py"
LOSS_TESTS = ("tests/test_losses.py",)

MUTANTS = [
    # losses.py: the classifier losses every recipe uses.
    Mutant("ldam-margin-sign", LOSSES,
           "shifted = y_pred - onehot * ops.expand_dims(margin, -1)",
           "shifted = y_pred + onehot * ops.expand_dims(margin, -1)",
           "LDAM subtracts the margin from the true-class logit (Cao et al. eq. 13): sign flipped", LOSS_TESTS),
    Mutant("ldam-margin-exponent", LOSSES,
           "m = counts ** -0.25",
           "m = counts ** -0.5",
           "LDAM margins proportional to n_j^(-1/4): exponent changed", LOSS_TESTS),
    Mutant("ldam-scale-dropped", LOSSES,
           "self.scale * shifted, from_logits=True",
           "shifted, from_logits=True",
           "LDAM scales the margin-shifted cosine logits by s before the softmax: s dropped", LOSS_TESTS),
    Mutant("cb-weights-effective-number", LOSSES,
           "w = (1.0 - beta) / (1.0 - np.power(beta, counts))",
           "w = (1.0 - beta) / (1.0 - np.power(beta, counts + 1))",
           "class-balanced weight (1 - beta) / (1 - beta^n_c): effective number off by one sample", LOSS_TESTS),
    Mutant("weighted-mean-denominator", LOSSES,
           "losses = losses * batch / ops.maximum(ops.sum(w), 1e-12)",
           "losses = losses * batch / ops.maximum(ops.cast(batch, w.dtype), 1e-12)",
           "weighted mean sum(w l) / sum(w) replaced by the batch mean", LOSS_TESTS),
    Mutant("class-weight-by-label", LOSSES,
           "w = ops.take(ops.cast(self.class_weights, losses.dtype), labels)",
           "w = ops.take(ops.cast(self.class_weights, losses.dtype), (self.num_classes - 1) - labels)",
           "per-sample weight taken from the wrong class (w_{C-1-y} instead of w_y)", LOSS_TESTS),
    Mutant("inverse-frequency", LOSSES,
           "w = 1.0 / counts\n",
           "w = 1.0 / np.sqrt(counts)\n",
           "RW weights proportional to 1 / n_c: replaced by 1 / sqrt(n_c)", LOSS_TESTS),
    # samplers.py: M2m's translation over a data set.
    Mutant("sampler-acceptance-direction", "keras_imbalance/samplers.py",
           "return p >= self.model.gamma",
           "return p < self.model.gamma",
           "M2m's gamma test (Algorithm 1 line 13) inverted in TranslationOverSampler",
           ("tests/test_samplers.py::test_translation_sampler_follows_m2m_acceptance",)),
    Mutant("sampler-seed-from-smaller-class", "keras_imbalance/samplers.py",
           "gap = np.maximum(counts - counts[k], 0.0)",
           "gap = np.abs(counts - counts[k])",
           "Q(k0 | k) ~ 1 - beta^((N_k0 - N_k)+): seeds also drawn from smaller classes",
           ("tests/test_samplers.py::test_translation_sampler_follows_m2m_acceptance",)),
    # statistics.py / compare.py: what a comparison may claim.
    Mutant("stats-normal-interval", "keras_imbalance/statistics.py",
           "half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1))",
           "half = float(stats.norm.ppf(0.5 + confidence / 2.0))",
           "the 95 % interval of a mean over a few seeds uses Student's t, not the normal quantile",
           ("tests/test_statistics.py",)),
    Mutant("stats-population-std", "keras_imbalance/statistics.py",
           "sd = float(diff.std(ddof=1))",
           "sd = float(diff.std())",
           "sample standard deviation of the paired differences (ddof 1)",
           ("tests/test_statistics.py",)),
    Mutant("stats-claim-with-few-seeds", "keras_imbalance/statistics.py",
           "if n < min_seeds:",
           "if n < 2:",
           "a gain claimed with fewer than 5 seeds",
           ("tests/test_statistics.py",)),
    Mutant("compare-resume-ignores-settings", "keras_imbalance/compare.py",
           "                if differences:\n",
           "                if False:\n",
           "a rerun reuses runs trained with other settings",
           ("tests/test_compare.py::test_resume_refuses_other_settings_and_retrains_a_truncated_run",)),
]
