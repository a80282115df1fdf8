"""GAMO and GAMO2Pix: model case, generator export, learning on long-tailed digits, variants, eq. 6.

What GAMO shares with PolarityGAN (adapt, banks, convexity, deficit sampling,
bad data, the feature-space model case) is in test_convex_oversampling.py.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance import applications, datasets, metrics
from keras_imbalance.models import GAMO, GAMO2Pix
from tests import fixtures
from tests.fixtures import COUNTS  # the majority is class 1: class ids are the user's
from tests.harness import run_model_case
from tests.models.test_convex_oversampling import SPECS, check_state_survives


def _toy(counts=COUNTS, shape=(8, 8, 1), seed=0):
    return fixtures.imbalanced_batch(counts, shape, value_range=(-1.0, 1.0), seed=seed)


def _pixel_gamo(x, y, num_classes=3, discriminator=True, loss="least_squares"):
    return fixtures.gamo(x, y, num_classes, discriminator=discriminator, loss=loss)


def test_gamo_pixel_space_model_case_and_generator_export(tmp_path):
    x, y = _toy()
    reloaded = run_model_case(
        GAMO,
        fixtures.gamo_kwargs(),
        (x, y),
        prepare=fixtures.adapt_to(x, y),
        compile_kwargs=dict(metrics=[metrics.BalancedAccuracy(3)]),
        tmp_path=str(tmp_path),
        expected_output_shape=(len(y), 3),
        extra_checks=check_state_survives(SPECS["gamo"]),
    )
    # The generator is a plain Keras model, exportable on its own.
    z = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
    labels = np.array([0, 2, 0, 2], "int32")
    expected = reloaded.generator.predict([z, labels], verbose=0)
    export_dir = os.path.join(str(tmp_path), "generator")
    reloaded.generator.export(export_dir, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(export_dir)
    np.testing.assert_allclose(np.asarray(served.serve([tf.constant(z), tf.constant(labels)])), expected, atol=1e-5)


def test_gamo2pix_model_case(tmp_path):
    # GAMO's feature-space model case (and its banks) is in test_convex_oversampling.py;
    # GAMO2Pix is built on such a GAMO's F and generator.
    x, y = _toy()
    gamo = GAMO(
        fixtures.gamo_classifier((8,), 3, hidden_units=(8,)),
        fixtures.gamo_discriminator((8,), 3),
        feature_extractor=fixtures.gamo_feature_extractor(feature_dim=8),
        latent_dim=4,
        seed=2,
    ).adapt(x, y)
    template = GAMO2Pix.from_gamo(gamo, latent_dim=3, filters=4, seed=0)
    init_kwargs = dict(feature_extractor=gamo.feature_extractor, num_classes=3, generator=gamo.generator,
                       latent_dim=3, filters=4, seed=0)
    assert template.get_config()["generator"] == GAMO2Pix(**init_kwargs).get_config()["generator"]  # = from_gamo
    pix = run_model_case(GAMO2Pix, init_kwargs, (x, y), compile_kwargs={}, tmp_path=str(tmp_path),
                         expected_output_shape=(len(y), 3, 8, 8, 1))
    images = pix.generate_images(2, 5, seed=0)
    assert images.shape == (5, 8, 8, 1) and np.all(np.abs(images) <= 1.0)
    with pytest.raises(ValueError, match="no generator unit"):
        pix.generate_images(1, 2)  # the majority class


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


def test_bad_loss_raises():
    # The errors GAMO shares with PolarityGAN (bad labels, balanced data, shapes, fit before adapt)
    # are in test_convex_oversampling.py.
    with pytest.raises(ValueError, match="loss"):
        GAMO(applications.GAMOClassifier((8, 8, 1), 3), loss="hinge")


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
