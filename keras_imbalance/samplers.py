"""Samplers with imbalanced-learn's interface, backed by a trained balancer.

A trained GAMO or PolarityGAN generator, or M2m's translator, is an over-sampler:
it makes new minority samples. The classes here expose that as imbalanced-learn's
`fit_resample(X, y)`, so a trained balancer can oversample a data set for any other
classifier, or sit inside an `imblearn.pipeline.Pipeline`:

>>> from imblearn.pipeline import Pipeline
>>> from sklearn.linear_model import LogisticRegression
>>> gamo.adapt(x_train, y_train); gamo.compile(); gamo.fit(x_train, y_train, epochs=10)
>>> pipe = Pipeline([("gamo", GenerativeOverSampler(gamo, random_state=0)), ("clf", LogisticRegression())])
>>> pipe.fit(x_train.reshape(len(x_train), -1), y_train)

- `GenerativeOverSampler(model)`: new samples of class i from the model's
  generator, `model.generate(labels)` (GAMO eq. 1, PolarityGAN's G(z | k)): convex
  combinations of stored class-i samples. Pixel-space models only (a feature-space
  GAMO generates features, not inputs).
- `TranslationOverSampler(model)`: M2m's generation (Kim et al. 2020, Sec. 3.1,
  Algorithm 1) over a whole data set: for each sample to add to class k a seed
  class k0 is drawn with Q(k0 | k) proportional to 1 - beta^((N_k0 - N_k)+), a seed
  of class k0 uniformly, x* = `model.translate(seed, k, k0)`; x* is kept if it
  passes the model's gamma test and (unless the model has `rejection=False`) a
  Bernoulli(1 - beta^((N_k0 - N_k)+)) draw.
  Rejected slots are drawn again up to `max_rounds` times and then filled with a
  random real sample of class k, as a rejected M2m slot keeps its oversampled real
  minority sample. N_k are the counts of the `y` being resampled.

Both are `imblearn.over_sampling.base.BaseOverSampler`s: `sampling_strategy`
("auto" = "not majority", "minority", "not minority", "all", a float for binary
problems, or a dict {class: target count}) is imbalanced-learn's own. X may be
flat (n, d) with d the product of the model's sample shape, as scikit-learn
pipelines pass it, or shaped like the model's inputs (n, *sample_shape); the
output keeps the layout and dtype of the input, the real rows first, then the new
ones class by class. Labels must be the model's class ids 0..C-1. The trained
model is shared, not copied, by `sklearn.base.clone` (it is a fitted artifact the
sampler only reads).

imbalanced-learn is an optional dependency: `pip install keras-imbalance[smote]`.
"""

import numpy as np

from keras_imbalance.datasets.validation import check_labels, check_value_range

try:
    from imblearn.over_sampling.base import BaseOverSampler
    from sklearn.utils.validation import validate_data
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "keras_imbalance.samplers needs imbalanced-learn: pip install 'keras-imbalance[smote]'"
    ) from error


class _BalancerOverSampler(BaseOverSampler):
    """Shared part: input layout, label checks, clone that keeps the trained model."""

    _parameter_constraints = {**BaseOverSampler._parameter_constraints, "model": [object], "random_state": [None, int]}

    def __init__(self, model, sampling_strategy="auto", random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.model = model
        self.random_state = random_state

    def __sklearn_clone__(self):
        return type(self)(**self.get_params(deep=False))

    def _check_X_y(self, X, y, accept_sparse=None):
        # imblearn's version refuses image arrays (allow_nd=False) and sparse
        # input is meaningless for a neural generator: refuse it, allow N-d.
        from imblearn.utils import check_target_type

        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X, y = validate_data(self, X=X, y=y, reset=True, accept_sparse=False, allow_nd=True, dtype=None)
        return X, y, binarize_y

    def _sample_shape(self):
        raise NotImplementedError

    def _num_classes(self):
        return int(self.model.num_classes)

    def _to_model_layout(self, X):
        shape = tuple(self._sample_shape())
        size = int(np.prod(shape))
        if X.shape[1:] == shape:
            return X.astype("float32", copy=False), False
        if X.ndim == 2 and X.shape[1] == size:
            return X.reshape((len(X),) + shape).astype("float32", copy=False), True
        raise ValueError(
            f"X has samples of shape {X.shape[1:]}; the model takes {shape} "
            f"(or flat vectors of {size} features)"
        )

    def _fit_resample(self, X, y):
        y_int = check_labels(y, self._num_classes())
        x_model, flat = self._to_model_layout(X)
        if not np.all(np.isfinite(x_model)):
            raise ValueError("X contains NaN or inf")
        check_value_range(x_model, getattr(self.model, "value_range", None), name="X")
        wanted = {int(c): int(n) for c, n in self.sampling_strategy_.items() if n > 0}
        new_x, new_y = self._new_samples(x_model, y_int, wanted)
        if new_x is None:
            return X, y
        if flat:
            new_x = new_x.reshape(len(new_x), -1)
        return np.concatenate([X, new_x.astype(X.dtype, copy=False)]), np.concatenate([y, new_y.astype(y.dtype)])

    def _new_samples(self, x, y, wanted):
        """{class: how many} -> (new samples in the model's layout, their labels), or (None, None)."""
        raise NotImplementedError


class GenerativeOverSampler(_BalancerOverSampler):
    """Oversample with a trained convex generator (GAMO, PolarityGAN): `fit_resample(X, y)`.

    Args:
        model: an adapted `models.GAMO` or `models.PolarityGAN` in pixel space
            (no feature extractor). Its `generate(labels, seed)` makes the samples.
        sampling_strategy: imbalanced-learn's; "auto" brings every class to the
            size of the largest class of `y`.
        random_state: int or None: the generator's latent draw (reproducible for an int).

    Every class that needs samples must be one of `model.minority_classes` (the
    majority of the model's training set has no generator unit): otherwise a
    ValueError names the class.
    """

    def _sample_shape(self):
        if getattr(self.model, "feature_extractor", None) is not None:
            raise ValueError(
                "the model generates in feature space (it has a feature_extractor); "
                "GenerativeOverSampler needs a pixel-space model whose samples are inputs"
            )
        if getattr(self.model, "generator", None) is None:
            raise ValueError("the model is not adapted: call model.adapt(x, y) first")
        return self.model.sample_shape

    def _new_samples(self, x, y, wanted):
        if not wanted:
            return None, None
        minority = set(self.model.minority_classes)
        missing = sorted(set(wanted) - minority)
        if missing:
            raise ValueError(
                f"class(es) {missing} need new samples but the model has no generator for them; "
                f"it generates classes {sorted(minority)}"
            )
        labels = np.concatenate([np.full(n, c, np.int32) for c, n in sorted(wanted.items())])
        return np.asarray(self.model.generate(labels, seed=self.random_state)), labels


class TranslationOverSampler(_BalancerOverSampler):
    """Oversample with M2m's major-to-minor translation (Kim et al. 2020, Algorithm 1): `fit_resample(X, y)`.

    Args:
        model: an `models.M2m` whose translator g is trained; its `beta`,
            `gamma`, `acceptance_criterion`, `lam`, `step_size` and
            `attack_steps` apply.
        sampling_strategy: imbalanced-learn's; "auto" brings every class to the
            size of the largest class of `y`.
        random_state: int or None: the slot, seed-class, seed and rejection draws.
            The start noise of each translation comes from the model's seed generator.
        max_rounds: how many times a rejected slot is translated again (10)
            before it takes a random real sample of its class.

    After `fit_resample`: `n_translated_` and `n_copied_` per class, and
    `acceptance_rate_` (accepted / attempted translations).
    """

    def __init__(self, model, sampling_strategy="auto", random_state=None, max_rounds=10):
        super().__init__(model, sampling_strategy=sampling_strategy, random_state=random_state)
        self.max_rounds = max_rounds

    _parameter_constraints = {**_BalancerOverSampler._parameter_constraints, "max_rounds": [int]}

    def _sample_shape(self):
        return tuple(self.model.classifier.input_shape[1:])

    def _accepted(self, x_star, target):
        """The gamma test of Algorithm 1 line 13, by the model's acceptance criterion."""
        probs = np.asarray(self.model.translator_probabilities(x_star))
        p = np.clip(probs[np.arange(len(target)), target], 1e-30, 1.0)
        if self.model.acceptance_criterion == "probability":
            return p >= self.model.gamma
        return -np.log(p) <= self.model.gamma

    def _new_samples(self, x, y, wanted):
        if not wanted:
            return None, None
        rng = np.random.default_rng(self.random_state)
        counts = np.bincount(y, minlength=self._num_classes()).astype(np.float64)
        beta = float(self.model.beta)
        new_x, new_y = [], []
        self.n_translated_, self.n_copied_ = {}, {}
        attempted = accepted_total = 0
        for k, n in sorted(wanted.items()):
            # Eq. 3: seeds come from larger classes only, Q(k0 | k) ~ 1 - beta^(N_k0 - N_k).
            gap = np.maximum(counts - counts[k], 0.0)
            weight = 1.0 - np.power(beta, gap)
            if counts[k] == 0:
                raise ValueError(f"class {k} has no samples in y; M2m needs at least one to fall back on")
            out = np.empty((n,) + x.shape[1:], np.float32)
            todo = np.arange(n)
            if weight.sum() > 0:
                for _ in range(int(self.max_rounds)):
                    if todo.size == 0:
                        break
                    seed_class = rng.choice(len(counts), size=todo.size, p=weight / weight.sum())
                    seed_index = np.array([rng.choice(np.flatnonzero(y == c)) for c in seed_class])
                    x_star = np.asarray(self.model.translate(x[seed_index], k, seed_class))
                    keep = self._accepted(x_star, np.full(todo.size, k))
                    if self.model.rejection:
                        keep &= rng.random(todo.size) < weight[seed_class]
                    attempted += todo.size
                    accepted_total += int(keep.sum())
                    out[todo[keep]] = x_star[keep]
                    todo = todo[~keep]
            self.n_translated_[k] = int(n - todo.size)
            self.n_copied_[k] = int(todo.size)
            if todo.size:
                out[todo] = x[rng.choice(np.flatnonzero(y == k), size=todo.size)]
            new_x.append(out)
            new_y.append(np.full(n, k, np.int64))
        self.acceptance_rate_ = accepted_total / attempted if attempted else 0.0
        return np.concatenate(new_x), np.concatenate(new_y)
