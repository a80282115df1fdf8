"""samplers: imbalanced-learn's interface over a trained GAMO / M2m, checked with imblearn's own sampler checks."""

from collections import Counter

import keras
import numpy as np
import pytest

pytest.importorskip("imblearn")

from imblearn.pipeline import Pipeline  # noqa: E402
from imblearn.utils import estimator_checks as imblearn_checks  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from keras_imbalance import applications  # noqa: E402
from keras_imbalance.models import GAMO, M2m  # noqa: E402
from keras_imbalance.samplers import GenerativeOverSampler, TranslationOverSampler  # noqa: E402

# imbalanced-learn's checks draw their data from this generator (1000 x 20, classes ~ 200 / 300 / 500).
X_CHECK, Y_CHECK = imblearn_checks.sample_dataset_generator()


def _gamo(x, y, num_classes=3):
    shape = x.shape[1:]
    model = GAMO(
        applications.GAMOClassifier(shape, num_classes, hidden_units=(16,)),
        applications.GAMODiscriminator(shape, num_classes, hidden_units=(16,)),
        latent_dim=8,
        seed=0,
    )
    model.adapt(x.astype("float32"), y)
    return model


@pytest.fixture(scope="module")
def gamo_on_check_data():
    keras.utils.set_random_seed(0)
    return _gamo(X_CHECK, Y_CHECK)


# The checks that apply to a sampler bound to a trained model of fixed input size
# (20 features, classes 0-2). Left out: inputs of another width (check_samplers_fit,
# _string, _nan), sparse and pandas-sparse inputs (refused: a neural generator has
# no sparse path).
APPLICABLE_CHECKS = [
    "check_samplers_one_label",
    "check_samplers_fit_resample",
    "check_samplers_sampling_strategy_fit_resample",
    "check_samplers_list",
    "check_samplers_multiclass_ova",
    "check_samplers_2d_target",
    "check_samplers_preserve_dtype",
    "check_samplers_sample_indices",
]


@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
def test_generative_sampler_passes_imblearn_checks(gamo_on_check_data, check):
    getattr(imblearn_checks, check)("GenerativeOverSampler", GenerativeOverSampler(gamo_on_check_data, random_state=0))


def test_generated_rows_are_convex_combinations_of_their_class(gamo_on_check_data):
    x, y = X_CHECK.astype("float32"), Y_CHECK
    x_res, y_res = GenerativeOverSampler(gamo_on_check_data, random_state=0).fit_resample(x, y)
    counts = Counter(y.tolist())
    assert Counter(y_res.tolist()) == {c: max(counts.values()) for c in counts}
    np.testing.assert_array_equal(x_res[: len(x)], x)  # the real rows first, unchanged
    new_x, new_y = x_res[len(x):], y_res[len(x):]
    for c in (0, 1):
        rows = new_x[new_y == c]
        members = x[y == c]
        # A convex combination lies inside the class's bounding box (eq. 1 of GAMO).
        assert np.all(rows >= members.min(0) - 1e-4) and np.all(rows <= members.max(0) + 1e-4)
    # Reproducible with an int random_state.
    again, _ = GenerativeOverSampler(gamo_on_check_data, random_state=0).fit_resample(x, y)
    np.testing.assert_allclose(again, x_res, atol=1e-6)


def test_clone_shares_the_trained_model(gamo_on_check_data):
    sampler = GenerativeOverSampler(gamo_on_check_data, random_state=3)
    copy = clone(sampler)
    assert copy.model is gamo_on_check_data and copy.random_state == 3


def test_pipeline_with_logistic_regression(gamo_on_check_data):
    pipe = Pipeline([("gamo", GenerativeOverSampler(gamo_on_check_data, random_state=0)),
                     ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(X_CHECK, Y_CHECK)
    predictions = pipe.predict(X_CHECK)
    assert predictions.shape == Y_CHECK.shape
    # The classifier learned something from the resampled data (chance is about 1/3).
    assert np.mean(predictions == Y_CHECK) > 0.6


def test_images_in_either_layout():
    rng = np.random.default_rng(0)
    x = rng.random((40, 4, 4, 1), dtype=np.float32)
    y = np.array([0] * 24 + [1] * 10 + [2] * 6)
    model = _gamo(x, y)
    x_res, y_res = GenerativeOverSampler(model, random_state=0).fit_resample(x, y)
    assert x_res.shape == (72, 4, 4, 1) and Counter(y_res.tolist()) == {0: 24, 1: 24, 2: 24}
    flat_res, _ = GenerativeOverSampler(model, random_state=0).fit_resample(x.reshape(40, -1), y)
    assert flat_res.shape == (72, 16)
    np.testing.assert_allclose(flat_res, x_res.reshape(72, -1), atol=1e-6)
    # Images (either layout) must lie in the model's value_range: 0-255 pixels are refused, naming the fix.
    with pytest.raises(ValueError, match=r"X has values in .* expects images in \[-1, 1\]; pixels in 0..255\? divide them by 255"):
        GenerativeOverSampler(model, random_state=0).fit_resample(x.reshape(40, -1) * 255, y)


def test_clear_errors(gamo_on_check_data):
    x, y = X_CHECK.astype("float32"), Y_CHECK
    sampler = GenerativeOverSampler(gamo_on_check_data)
    with pytest.raises(ValueError, match="model takes"):
        sampler.fit_resample(x[:, :10], y)
    with pytest.raises(ValueError, match="out of range"):
        sampler.fit_resample(x, np.where(y == 2, 5, y))
    # The model's majority (class 2) has no generator: asking for more of it is refused.
    with pytest.raises(ValueError, match=r"no generator for them"):
        sampler.set_params(sampling_strategy={2: 600}).fit_resample(x, y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GenerativeOverSampler(gamo_on_check_data).fit_resample(bad, y)
    unadapted = GAMO(applications.GAMOClassifier((20,), 3, hidden_units=(8,)))
    with pytest.raises(ValueError, match="not adapted"):
        GenerativeOverSampler(unadapted).fit_resample(x, y)
    feature_space = GAMO(
        applications.GAMOClassifier((4,), 3, hidden_units=(8,)),
        feature_extractor=keras.Sequential([keras.Input((20,)), keras.layers.Dense(4)]),
    )
    feature_space.adapt(x, y)
    with pytest.raises(ValueError, match="feature space"):
        GenerativeOverSampler(feature_space).fit_resample(x, y)


def _linear(weights, name):
    inputs = keras.Input((weights.shape[0],))
    out = keras.layers.Dense(weights.shape[1], use_bias=False, name="dense")(inputs)
    model = keras.Model(inputs, out, name=name)
    model.get_layer("dense").set_weights([weights.astype("float32")])
    return model


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_translation_sampler_follows_m2m_acceptance():
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    y = np.array([0] * 30 + [1] * 12 + [2] * 6)
    x = (centers[y] + 0.3 * rng.normal(size=(len(y), 4))).astype("float32")
    wg = centers.T  # g scores class c by the c-th coordinate: a confident translator
    model = M2m(_linear(rng.normal(size=(4, 3)), "f"), _linear(wg, "g"), class_counts=[30, 12, 6], beta=0.9,
                gamma=0.6, acceptance_criterion="probability", step_size=0.5, attack_steps=10, input_range=None, seed=0)
    calls = []
    translate = model.translate

    def recording_translate(x_seed, target_class, seed_class=None):
        calls.append((np.asarray(x_seed), int(target_class), np.asarray(seed_class)))
        return translate(x_seed, target_class, seed_class)

    model.translate = recording_translate
    sampler = TranslationOverSampler(model, random_state=0)
    x_res, y_res = sampler.fit_resample(x, y)
    assert Counter(y_res.tolist()) == {0: 30, 1: 30, 2: 30}
    # Eq. 3: seeds only from larger classes (Q(k0 | k) = 0 when N_k0 <= N_k), each seed a real sample of k0.
    for x_seed, k, seed_class in calls:
        assert set(seed_class.tolist()) <= {c for c in range(3) if np.sum(y == c) > np.sum(y == k)}
        for row, c in zip(x_seed, seed_class):
            assert np.any(np.all(row == x[y == c], axis=1))
    assert {k for _, k, _ in calls} == {1, 2}
    new_x, new_y = x_res[len(x):], y_res[len(x):]
    assert sampler.n_translated_[1] + sampler.n_copied_[1] == 18 and sampler.n_translated_[2] + sampler.n_copied_[2] == 24
    assert 0.0 < sampler.acceptance_rate_ <= 1.0 and sampler.n_translated_[1] > 0
    # Every new row is either an accepted translation (g's probability of its class >= gamma)
    # or a copy of a real sample of its class.
    p = _softmax(new_x @ wg)[np.arange(len(new_y)), new_y]
    copies = np.array([np.any(np.all(np.isclose(row, x[y == c]), axis=1)) for row, c in zip(new_x, new_y)])
    assert np.all((p >= 0.6) | copies)
    assert int(np.sum(~copies)) == sampler.n_translated_[1] + sampler.n_translated_[2]

    # An impossible gamma test (CE <= 0) rejects every translation: the slots keep real minority samples.
    strict = M2m(_linear(rng.normal(size=(4, 3)), "f2"), _linear(wg, "g2"), class_counts=[30, 12, 6], beta=0.9,
                 gamma=0.0, acceptance_criterion="loss", input_range=None, seed=0)
    sampler = TranslationOverSampler(strict, random_state=0, max_rounds=2)
    x_res, y_res = sampler.fit_resample(x, y)
    assert sampler.n_translated_ == {1: 0, 2: 0} and sampler.acceptance_rate_ == 0.0
    for row, c in zip(x_res[len(x):], y_res[len(x):]):
        assert np.any(np.all(row == x[y == c], axis=1))
