"""GAMO and GAMO2Pix: harness, convexity, deficit sampling, learning on long-tailed digits, bad data."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_imbalance import applications, datasets, metrics
from keras_imbalance.models import GAMO, GAMO2Pix
from tests.harness import run_model_test

COUNTS = [7, 12, 5]  # majority is class 1: class ids are the user's


def _toy(counts=COUNTS, shape=(8, 8, 1), seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = rng.uniform(-1, 1, (len(y), *shape)).astype("float32")
    return x, y


def _pixel_gamo(x, y, num_classes=3, discriminator=True, loss="least_squares"):
    shape = x.shape[1:]
    model = GAMO(
        applications.GAMOClassifier(shape, num_classes, hidden_units=(16, 8)),
        applications.GAMODiscriminator(shape, num_classes, hidden_units=(8,)) if discriminator else None,
        latent_dim=4,
        loss=loss,
        seed=1,
    )
    return model.adapt(x, y)


def _check_state_survives(original, reloaded):
    np.testing.assert_allclose(reloaded.generate([0, 2, 2], seed=5), original.generate([0, 2, 2], seed=5), atol=1e-6)
    assert reloaded.class_counts == original.class_counts
    for name in original.active_players():
        opt, opt2 = getattr(original, f"{name}_optimizer"), getattr(reloaded, f"{name}_optimizer")
        assert int(opt2.iterations) == int(opt.iterations) > 0
        assert float(opt2.learning_rate) == pytest.approx(2e-4) and float(opt2.beta_1) == pytest.approx(0.5)
        for v, v2 in zip(opt.variables, opt2.variables):
            np.testing.assert_array_equal(np.asarray(v2), np.asarray(v))


def test_gamo_pixel_space_harness_and_generator_export(tmp_path):
    x, y = _toy()
    reloaded = run_model_test(
        lambda: _pixel_gamo(x, y),
        x,
        y,
        compile_kwargs=dict(metrics=[metrics.BalancedAccuracy(3)]),
        tmp_path=str(tmp_path),
        expected_output_shape=(len(y), 3),
        extra_checks=_check_state_survives,
    )
    # The generator is a plain Keras model, exportable on its own.
    z = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
    labels = np.array([0, 2, 0, 2], "int32")
    expected = reloaded.generator.predict([z, labels], verbose=0)
    export_dir = os.path.join(str(tmp_path), "generator")
    reloaded.generator.export(export_dir, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(export_dir)
    np.testing.assert_allclose(np.asarray(served.serve([tf.constant(z), tf.constant(labels)])), expected, atol=1e-5)


def test_gamo_feature_space_and_gamo2pix_harness(tmp_path):
    x, y = _toy()
    feature_extractor = applications.GAMOFeatureExtractor((8, 8, 1), filters=4, feature_dim=8)

    def make():
        model = GAMO(
            applications.GAMOClassifier((8,), 3, hidden_units=(8,)),
            applications.GAMODiscriminator((8,), 3, hidden_units=(8,)),
            feature_extractor=feature_extractor,
            latent_dim=4,
            seed=2,
        )
        return model.adapt(x, y)

    (tmp_path / "gamo").mkdir()
    (tmp_path / "pix").mkdir()
    gamo = run_model_test(make, x, y, compile_kwargs={}, tmp_path=str(tmp_path / "gamo"), extra_checks=_check_state_survives)
    # Banks hold F's features (adapt), and fit refreshes them at each epoch start.
    gamo.adapt(x, y)
    features = np.asarray(gamo.feature_extractor(x[y == 2], training=False))
    np.testing.assert_allclose(np.asarray(gamo.convex_generator.bank(2)), features, atol=1e-6)
    gamo.fit(x, y, batch_size=8, epochs=2, steps_per_epoch=1, verbose=0)
    refreshed = np.asarray(gamo.convex_generator.bank(2))
    assert np.abs(refreshed - features).max() > 1e-6  # refreshed after epoch 1 changed F

    def make_pix():
        return GAMO2Pix.from_gamo(gamo, latent_dim=3, filters=4, seed=0)

    pix = run_model_test(make_pix, x, y, compile_kwargs={}, tmp_path=str(tmp_path / "pix"), expected_output_shape=(len(y), 3, 8, 8, 1))
    images = pix.generate_images(2, 5, seed=0)
    assert images.shape == (5, 8, 8, 1) and np.all(np.abs(images) <= 1.0)
    with pytest.raises(ValueError, match="no generator unit"):
        pix.generate_images(1, 2)  # the majority class


def test_generated_samples_are_convex_combinations_of_their_class():
    x, y = _toy()
    model = _pixel_gamo(x, y)
    model.compile()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert model.convex_generator.minority_classes == [0, 2]
    for c in (0, 2):
        out = model.sample(6, c, seed=11)
        z = keras.random.normal((6, model.latent_dim), seed=11)
        w = np.asarray(model.convex_generator.convex_weights(z, c, training=False))
        assert np.all(w >= 0)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out.reshape(6, -1), w @ x[y == c].reshape(COUNTS[c], -1), atol=1e-5)
    with pytest.raises(ValueError, match="no generator unit"):
        model.sample(2, 1)


def test_fake_labels_follow_the_deficit():
    counts = [30, 5, 100, 60]
    x, y = _toy(counts, shape=(2,))
    model = _pixel_gamo(x, y, num_classes=4)
    draws = np.asarray(model.draw_fake_labels(20000, seed=3))
    observed = np.bincount(draws, minlength=4)
    assert observed[2] == 0  # the majority is never generated
    deficit = 100 - np.array(counts, float)
    expected = 20000 * deficit / deficit.sum()
    keep = deficit > 0
    assert stats.chisquare(observed[keep], expected[keep]).pvalue > 1e-3
    np.testing.assert_allclose(observed / 20000, deficit / deficit.sum(), atol=0.015)


def test_short_fit_on_long_tailed_digits_improves_balanced_accuracy():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_lt, y_lt = datasets.make_imbalanced(x_train, y_train, [120, 90, 60, 45, 30, 20, 12, 8, 6, 4], seed=0)
    x_lt, x_test = 2 * x_lt - 1, 2 * x_test - 1
    keras.utils.set_random_seed(0)
    model = GAMO(applications.GAMOClassifier((8, 8, 1), 10), applications.GAMODiscriminator((8, 8, 1), 10), seed=0)
    model.adapt(x_lt, y_lt)
    model.compile(classifier_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    before = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)["balanced_accuracy"]
    model.fit(datasets.to_dataset(x_lt, y_lt, 32, seed=0), epochs=8, verbose=0)
    after = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)["balanced_accuracy"]
    assert after > before + 0.3, (before, after)
    assert after > 0.6, after


def test_variants_cross_entropy_and_no_discriminator():
    x, y = _toy()
    for loss, disc in (("cross_entropy", True), ("least_squares", False)):
        model = _pixel_gamo(x, y, discriminator=disc, loss=loss)
        model.compile()
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
        expected = {"classifier_loss", "generator_loss"} | ({"discriminator_loss"} if disc else set())
        assert set(history) == expected
        assert all(np.isfinite(v[0]) for v in history.values())


def test_class_with_one_sample_works():
    x, y = _toy([9, 1, 4])
    model = _pixel_gamo(x, y)
    model.compile()
    model.fit(x, y, batch_size=7, epochs=1, verbose=0)
    np.testing.assert_allclose(model.sample(3, 1), np.broadcast_to(x[y == 1], (3, 8, 8, 1)), atol=1e-6)


def test_bad_data_raises():
    x, y = _toy()
    with pytest.raises(ValueError, match=r"class\(es\) \[3\] have no samples"):
        _pixel_gamo(x, y, num_classes=4)
    with pytest.raises(ValueError, match="out of range"):
        _pixel_gamo(x, np.where(y == 0, 5, y))
    with pytest.raises(ValueError, match="balanced"):
        _pixel_gamo(*_toy([4, 4, 4]))
    with pytest.raises(ValueError, match="shape"):
        _pixel_gamo(x, y).adapt(x[:, :4], y)
    with pytest.raises(ValueError, match="adapt"):
        model = GAMO(applications.GAMOClassifier((8, 8, 1), 3))
        model.compile()
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="loss"):
        GAMO(applications.GAMOClassifier((8, 8, 1), 3), loss="hinge")


def test_adapt_accepts_a_dataset():
    x, y = _toy()
    model = GAMO(applications.GAMOClassifier((8, 8, 1), 3), latent_dim=4).adapt(datasets.to_dataset(x, y, 5))
    assert model.class_counts == COUNTS


def test_generator_loss_against_m_follows_eq6():
    x, y = _toy()  # majority is class 1
    model = _pixel_gamo(x, y)
    logits = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    target = 1.0 - np.eye(3, dtype="float32")[[0, 2, 2, 0, 0]]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    eq6 = np.mean(((p - target) ** 2)[:, [0, 2]].sum(1) / 2)  # minority outputs only
    np.testing.assert_allclose(float(model._class_loss(target, logits, columns=model._generator_columns)), eq6, rtol=1e-5)
    code = GAMO(model.classifier, majority_in_generator_target=True, latent_dim=4).adapt(x, y)
    np.testing.assert_allclose(float(code._class_loss(target, logits, columns=code._generator_columns)), np.mean((p - target) ** 2), rtol=1e-5)
