"""What GAMO and PolarityGAN do alike (`ConvexOversamplerBase`), tested once over both.

adapt (arrays or a dataset), the per-class banks in pixel and feature space
and their refresh by `fit`, `generate` / `sample` as convex combinations of a
class's samples, generated labels drawn in proportion to the class deficit,
the errors on bad data, the feature-space model test case and the state that
must survive a `.keras` round trip. Each model's own losses, steps and
exports are in test_gamo.py and test_polarity_gan.py.
"""

import keras
import numpy as np
import pytest
from scipy import stats

from keras_imbalance import applications, datasets
from keras_imbalance.models import GAMO, PolarityGAN
from tests import fixtures
from tests.fixtures import COUNTS
from tests.harness import run_model_case


class Spec:
    """How the shared tests build and read one of the two models."""

    def __init__(self, cls, kwargs, value_range, ungenerated, beta_1, extra_state=None):
        self.cls = cls
        self.kwargs = kwargs  # (shape, num_classes, **overrides) -> constructor arguments
        self.value_range = value_range  # the data each model's tests have always used
        self.ungenerated = ungenerated  # the error for a class G does not generate
        self.beta_1 = beta_1  # the paper's default Adam beta_1 of every player
        self.extra_state = extra_state

    def data(self, counts=COUNTS, shape=fixtures.IMAGE_SHAPE):
        return fixtures.imbalanced_batch(counts, shape, value_range=self.value_range)

    def build(self, x, y, num_classes=3, **overrides):
        return self.cls(**self.kwargs(x.shape[1:], num_classes, **overrides)).adapt(x, y)


def _polarity_state(original, reloaded):
    assert reloaded.autoencoder_initialized and original.autoencoder_initialized
    np.testing.assert_array_equal(np.asarray(reloaded.convex_generator.latent_scale),
                                  np.asarray(original.convex_generator.latent_scale))
    assert reloaded.critic_steps == 2


SPECS = {
    "gamo": Spec(GAMO, fixtures.gamo_kwargs, (-1.0, 1.0), "no generator unit", beta_1=0.5),
    "polarity_gan": Spec(PolarityGAN, fixtures.polarity_gan_kwargs, (0.0, 1.0), "not generated", beta_1=0.6,
                         extra_state=_polarity_state),
}
by_model = pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))


def check_state_survives(spec):
    """`extra_checks` for the model test case: G's draws, the counts and every player's optimizer survive saving."""

    def check(original, reloaded):
        np.testing.assert_allclose(reloaded.generate([0, 2, 2], seed=5), original.generate([0, 2, 2], seed=5), atol=1e-6)
        assert reloaded.class_counts == original.class_counts
        for name in original.active_players():
            opt, opt2 = getattr(original, f"{name}_optimizer"), getattr(reloaded, f"{name}_optimizer")
            assert int(opt2.iterations) == int(opt.iterations) > 0
            assert float(opt2.learning_rate) == pytest.approx(2e-4) and float(opt2.beta_1) == pytest.approx(spec.beta_1)
            for v, v2 in zip(opt.variables, opt2.variables):
                np.testing.assert_array_equal(np.asarray(v2), np.asarray(v))
        if spec.extra_state is not None:
            spec.extra_state(original, reloaded)

    return check


# The model test case in feature space, and the banks ------------------------------------------


_FEATURE_EXTRACTORS = {
    "gamo": lambda: fixtures.gamo_feature_extractor(feature_dim=8),
    "polarity_gan": lambda: applications.PolarityFeatureExtractor(fixtures.IMAGE_SHAPE, backbone="auto", feature_dim=6),
}


def _feature_kwargs(name, extractor):
    if name == "gamo":
        return dict(
            classifier=fixtures.gamo_classifier((8,), 3, hidden_units=(8,)),
            discriminator=fixtures.gamo_discriminator((8,), 3),
            feature_extractor=extractor,
            latent_dim=4,
            seed=2,
        )
    return fixtures.polarity_gan_kwargs(feature_extractor=extractor)


@pytest.mark.parametrize("name", list(SPECS))
def test_feature_space_model_case_and_banks(name, tmp_path):
    spec = SPECS[name]
    x, y = spec.data()
    extractor = _FEATURE_EXTRACTORS[name]()
    if name == "polarity_gan":
        assert extractor.output_shape == (None, 6)  # small images: the small conv extractor
    model = run_model_case(spec.cls, _feature_kwargs(name, extractor), (x, y), prepare=fixtures.adapt_to(x, y),
                           compile_kwargs={}, tmp_path=tmp_path, expected_output_shape=(len(y), 3),
                           extra_checks=check_state_survives(spec))
    # Banks hold F's features (adapt), and fit refreshes them at each epoch start.
    model.adapt(x, y)
    features = np.asarray(model.feature_extractor(x[y == 2], training=False))
    np.testing.assert_allclose(np.asarray(model.convex_generator.bank(2)), features, atol=1e-6)
    model.fit(x, y, batch_size=8, epochs=2, steps_per_epoch=1, verbose=0)
    refreshed = np.asarray(model.convex_generator.bank(2))
    assert np.abs(refreshed - features).max() > 1e-6  # refreshed after epoch 1 changed F


# Generation --------------------------------------------------------------------------------------


@by_model
def test_generated_samples_are_convex_combinations_of_their_class(spec):
    x, y = spec.data()
    model = spec.build(x, y)
    model.compile()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert model.minority_classes == [0, 2] and model.convex_generator.minority_classes == [0, 2]
    for c in (0, 2):
        out = model.sample(6, c, seed=11)
        z = keras.random.normal((6, model.latent_dim), seed=11)
        w = np.asarray(model.convex_generator.convex_weights(z, c, training=False))
        assert np.all(w >= 0)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out.reshape(6, -1), w @ x[y == c].reshape(COUNTS[c], -1), atol=1e-5)
    with pytest.raises(ValueError, match=spec.ungenerated):
        model.sample(2, 1)


@by_model
def test_fake_labels_follow_the_deficit(spec):
    counts = [30, 5, 100, 60]
    x, y = spec.data(counts, shape=(2,))
    model = spec.build(x, y, num_classes=4)
    draws = np.asarray(model.draw_fake_labels(20000, seed=3))
    observed = np.bincount(draws, minlength=4)
    assert observed[2] == 0  # the majority is never generated
    deficit = 100 - np.array(counts, float)
    expected = 20000 * deficit / deficit.sum()
    keep = deficit > 0
    assert stats.chisquare(observed[keep], expected[keep]).pvalue > 1e-3
    np.testing.assert_allclose(observed / 20000, deficit / deficit.sum(), atol=0.015)


# adapt -------------------------------------------------------------------------------------------


@by_model
def test_adapt_accepts_a_dataset(spec):
    x, y = spec.data()
    model = spec.cls(**spec.kwargs(x.shape[1:], 3)).adapt(datasets.to_dataset(x, y, 5))
    assert model.class_counts == COUNTS
    bank = np.asarray(model.convex_generator.bank(2)).reshape(COUNTS[2], -1)
    assert sorted(map(tuple, bank)) == sorted(map(tuple, x[y == 2].reshape(COUNTS[2], -1)))  # the batches were shuffled


@by_model
def test_bad_data_raises(spec):
    x, y = spec.data()
    with pytest.raises(ValueError, match=r"class\(es\) \[3\] have no samples"):
        spec.build(x, y, num_classes=4)
    with pytest.raises(ValueError, match="no samples"):
        spec.build(x, np.where(y == 2, 0, y))
    with pytest.raises(ValueError, match="out of range"):
        spec.build(x, np.where(y == 0, 5, y))
    with pytest.raises(ValueError, match="balanced"):
        spec.build(*spec.data([4, 4, 4]))
    with pytest.raises(ValueError, match="shape"):
        spec.build(x, y).adapt(x[:, :4], y)
    with pytest.raises(ValueError, match="adapt"):
        model = spec.cls(**spec.kwargs(x.shape[1:], 3))
        model.compile()
        model.fit(x, y, verbose=0)
