"""PolarityGAN: model case, stage-1 initialization, gradient penalty, real draws, eq. 6, export.

What PolarityGAN shares with GAMO (adapt, banks, convexity, deficit sampling,
bad data, the feature-space model case) is in test_convex_oversampling.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from keras_imbalance import applications, datasets, metrics, recipes, serving
from keras_imbalance.layers import ConvexDecoder
from keras_imbalance.models import PolarityGAN
from tests import fixtures
from tests.fixtures import COUNTS  # the majority is class 1: class ids are the user's
from tests.harness import run_model_case
from tests.models.test_convex_oversampling import SPECS, check_state_survives


def _toy(counts=COUNTS, shape=(8, 8, 1), seed=0):
    return fixtures.imbalanced_batch(counts, shape, value_range=(0.0, 1.0), seed=seed)


def _model(x, y, num_classes=3, **kwargs):
    return fixtures.polarity_gan(x, y, num_classes, **kwargs)


def test_pixel_space_model_case_keras_round_trip_and_serving_generate(tmp_path):
    x, y = _toy()
    reloaded = run_model_case(
        PolarityGAN,
        fixtures.polarity_gan_kwargs(),
        (x, y),
        prepare=fixtures.adapt_to(x, y),
        compile_kwargs=dict(metrics=[metrics.BalancedAccuracy(3)]),
        tmp_path=str(tmp_path),
        expected_output_shape=(len(y), 3),
        extra_checks=check_state_survives(SPECS["polarity_gan"]),
    )
    # The critic ran critic_steps updates per generator step (two G updates per step: lines 10 and 11).
    assert int(reloaded.critic_optimizer.iterations) == 2 and int(reloaded.generator_optimizer.iterations) == 2
    path = serving.export_for_serving(reloaded, tmp_path / "served")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "generate"}
    generate = loaded.signatures["generate"]
    samples = generate(class_ids=tf.constant([0, 2, 2]), seed=tf.constant(3))["samples"].numpy()
    np.testing.assert_array_equal(samples, generate(class_ids=tf.constant([0, 2, 2]), seed=tf.constant(3))["samples"].numpy())
    eps = tf.random.stateless_normal((3, reloaded.latent_dim), seed=tf.constant([3, 0]))
    expected = reloaded.generator([eps, tf.constant([0, 2, 2])], training=False)
    np.testing.assert_allclose(samples, np.asarray(expected), atol=1e-5)
    bank2 = x[y == 2]
    assert np.all(samples[1:] >= bank2.min(0) - 1e-5) and np.all(samples[1:] <= bank2.max(0) + 1e-5)


def test_resnet50_feature_extractor():
    # The feature-space model case (small conv F) and its banks are in test_convex_oversampling.py.
    # ResNet-50 (Sec. 5.1) as F: weights=None at a small input, build only.
    resnet = applications.PolarityFeatureExtractor((32, 32, 3), backbone="resnet50", weights=None)
    assert resnet.output_shape == (None, 2048)
    model = PolarityGAN(applications.GAMOClassifier((2048,), 3, hidden_units=(8,)), feature_extractor=resnet, latent_dim=4)
    assert model(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 3)
    assert model.critic.input_shape[0] == (None, 2048)
    with pytest.raises(ValueError, match="download"):
        applications.PolarityFeatureExtractor((32, 32, 3), backbone="resnet50", weights="imagenet")


def test_autoencoder_initialization_copies_decoder_into_generator():
    x, y = _toy()
    model = _model(x, y, autoencoder_epochs=0)
    cg = model.convex_generator
    assert not model.autoencoder_initialized
    history = model.pretrain_autoencoder(epochs=4, batch_size=8)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.autoencoder_initialized
    dec = model.decoder.get_layer("convex_decoder")
    assert isinstance(dec, ConvexDecoder) and dec.num_samples == len(y)
    np.testing.assert_array_equal(np.asarray(dec.bank), x.reshape(len(y), -1))  # ALL samples, class-agnostic
    # Q: every weight copied, the class-input rows of the first kernel zeroed.
    for src, dst in zip(dec.ctmu, cg.ctmu):
        for a, b in zip(src.get_weights(), dst.get_weights()):
            if a.shape == b.shape and a.ndim == 2 and a.shape[0] == 4 + 3:
                np.testing.assert_array_equal(b[:4], a[:4])
                np.testing.assert_array_equal(b[4:], 0.0)
            else:
                np.testing.assert_array_equal(b, a)
    # Heads: P_k = the decoder head's columns of the class-k samples.
    head_kernel, head_bias = dec.head.get_weights()
    for k, c in enumerate(cg.minority_classes):
        cols = np.flatnonzero(y == c)
        np.testing.assert_array_equal(cg.igus[k].get_weights()[0], head_kernel[:, cols])
        np.testing.assert_array_equal(cg.igus[k].get_weights()[1], head_bias[cols])
    # Class Gaussians from the encoder's codes.
    codes = np.asarray(model.encoder.predict(x, verbose=0), "float64")
    # Q's BN statistics are those of all codes: inference mode = full-batch training mode.
    full = np.asarray(dec(codes.astype("float32"), training=True))
    np.testing.assert_allclose(np.asarray(dec(codes.astype("float32"), training=False)), full, atol=1e-4)
    ridge = 1e-3 * np.mean(np.var(codes, axis=0))
    for c in range(3):
        np.testing.assert_allclose(np.asarray(cg.latent_mean)[c], codes[y == c].mean(0), atol=1e-5)
        scale = np.asarray(cg.latent_scale, "float64")[c]
        np.testing.assert_allclose(scale @ scale.T, np.cov(codes[y == c], rowvar=False) + ridge * np.eye(4), atol=1e-5)
    # So the initial G is the decoder restricted to class k, fed z = mu_k + L_k eps.
    eps = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    for c in cg.minority_classes:
        out = np.asarray(model.generator([eps, np.full(5, c, "int32")], training=False))
        z = np.asarray(cg.latent(eps, np.full(5, c)))
        logits = np.asarray(dec.head(dec.transient(z, training=False)))[:, y == c]
        expected = special.softmax(logits, axis=1) @ x[y == c].reshape(COUNTS[c], -1)
        np.testing.assert_allclose(out.reshape(5, -1), expected, atol=1e-5)
    np.testing.assert_allclose(model.reconstruct(x[:3]).shape, (3, 8, 8, 1))


def test_gradient_penalty_interpolates_with_uniform_weights():
    x, y = _toy()
    model = _model(x, y)
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4000, 3)).astype("float32")
    fake = rng.normal(size=(4000, 3)).astype("float32")
    x_hat, alpha = model.interpolate(real, fake, seed=7)
    alpha = np.asarray(alpha)
    np.testing.assert_allclose(np.asarray(x_hat), alpha[:, None] * real + (1 - alpha[:, None]) * fake, atol=1e-5)
    assert stats.kstest(alpha, "uniform").pvalue > 1e-3
    assert alpha.min() >= 0 and alpha.max() <= 1


def _linear_critic(shape, num_classes, norm):
    x_in = keras.Input(shape)
    c_in = keras.Input((num_classes,))
    flat = keras.layers.Flatten()(x_in)
    dense = keras.layers.Dense(1)
    out = keras.layers.Add()([dense(flat), keras.layers.Dense(1)(c_in)])
    critic = keras.Model([x_in, c_in], out)
    w = np.random.default_rng(3).normal(size=(int(np.prod(shape)), 1))
    dense.set_weights([(norm * w / np.linalg.norm(w)).astype("float32"), np.zeros(1, "float32")])
    return critic


def test_gradient_penalty_is_zero_for_a_one_lipschitz_linear_critic():
    x, y = _toy()
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(2, 16, 8, 8, 1)).astype("float32")
    onehot = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    for norm, expected in ((1.0, 0.0), (2.0, 1.0), (0.5, 0.25)):
        model = _model(x, y, critic=_linear_critic((8, 8, 1), 3, norm))
        assert float(model.gradient_penalty(real, fake, onehot, seed=0)) == pytest.approx(expected, abs=1e-5)


def test_critic_loss_is_blind_to_class_offsets():
    # D(x | i) = c_i ignores x: real and generated samples of the same classes
    # cancel exactly, so the loss is lambda * (0 - 1)^2 whatever the c_i.
    x, y = _toy()
    critic = _linear_critic((8, 8, 1), 3, norm=0.0)
    critic.layers[-2].set_weights([np.array([[5.0], [-3.0], [40.0]], "float32"), np.array([2.0], "float32")])
    model = _model(x, y, critic=critic)
    labels = model.draw_fake_labels(32, seed=0)
    real = model.draw_real(labels, seed=1)
    fake = model.generate(np.asarray(labels), seed=2)
    loss, penalty = model.critic_loss(real, fake, labels, seed=3)
    assert float(penalty) == pytest.approx(1.0, abs=1e-5)
    assert float(loss) == pytest.approx(10.0, abs=1e-4)


def test_real_draws_match_their_class():
    # The deficit draws of the generated labels are in test_convex_oversampling.py.
    counts = [30, 5, 100, 60]
    x, y = _toy(counts, shape=(2,))
    model = _model(x, y, num_classes=4, autoencoder_epochs=0)
    # The critic's real samples: stored samples of each row's class, every one reachable.
    labels = np.repeat([0, 1, 3], 400).astype("int32")
    real = np.asarray(model.draw_real(labels, seed=4))
    for c in (0, 1, 3):
        rows = real[labels == c]
        match = np.all(np.isclose(rows[:, None, :], x[y == c][None]), axis=-1)
        assert np.all(match.sum(1) >= 1)
        assert np.all(match.any(0))


def test_classifier_loss_is_eq6():
    x, y = _toy()
    model = _model(x, y)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 3)).astype("float32") * 3
    labels = np.array([0, 1, 2, 2, 1, 0])
    p = special.softmax(logits.astype("float64"), axis=1)
    priors = np.array(COUNTS) / sum(COUNTS)
    w = priors.max() - priors  # p_k - p_j
    expected = np.mean([
        -np.log(p[b, labels[b]]) - sum(w[j] * np.log(1 - p[b, j]) for j in range(3) if j != labels[b])
        for b in range(6)
    ])
    assert float(model.classifier_loss(logits, labels)) == pytest.approx(expected, rel=1e-5)


def test_uncertainty_report_and_recipe_on_long_tailed_digits():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    counts = datasets.long_tailed_counts(120, 10, 50)
    x, y = datasets.make_imbalanced(x_train, y_train, counts, seed=0)
    recipe = recipes.get("polarity-gan", critic_steps=2, negative_weighting="target")
    assert recipe.split_epochs(10) == (2, 8) and recipe.split_epochs(1) == (1, 1)
    assert recipe.get_config()["negative_weighting"] == "target" and recipe.get_config()["generated_weighting"] == "sampling"

    def backbone(shape, c):
        return applications.SmallCNN(shape, c, filters=(16, 32), dense_units=64)

    model = recipe.fit(backbone, x, y, epochs=10, batch_size=32, seed=0, optimizer=keras.optimizers.Adam(1e-3), num_classes=10)
    assert isinstance(model, PolarityGAN) and model.autoencoder_initialized
    assert (model.negative_weighting, model.generated_weighting) == ("target", "sampling")  # the recipe's options reach the model
    report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)
    assert report["balanced_accuracy"] > 0.5, report["balanced_accuracy"]  # chance is 0.1
    grid, labels, value_range = recipe.sample_grid(model, 10, per_class=4)
    assert grid.shape == (9, 4, 8, 8, 1) and labels[0] == "class 1" and value_range == (0.0, 1.0)
    result = model.uncertainty_report(20, x_test, y_test)
    assert result["n_generated"] == 9 * 20 and result["n_real"] == 9 * 50
    for part in ("generated", "real"):
        assert set(result[part]) == {"least_confidence", "margin_of_confidence", "ratio_of_confidence", "entropy"}
        assert all(0.0 <= v <= 1.0 for v in result[part].values())
    # compare's per-run report: generated vs real train vs real test of the generated classes
    table = recipe.run_report(model, x, y, x_test, y_test, seed=0, per_class=10)["table"]
    assert list(table) == ["generated", "real train", "real test", "generated - real train"]
    for column, value in table["generated - real train"].items():
        assert value == pytest.approx(table["generated"][column] - table["real train"][column])
    assert table["real test"]["entropy"] == pytest.approx(result["real"]["entropy"], rel=1e-4)  # same samples, same C


def test_bad_input_raises():
    # Bad labels, balanced data, wrong shapes and fit before adapt: test_convex_oversampling.py.
    with pytest.raises(ValueError, match="critic_steps"):
        PolarityGAN(applications.GAMOClassifier((8, 8, 1), 3), critic_steps=0)
    unadapted = PolarityGAN(applications.GAMOClassifier((8, 8, 1), 3, hidden_units=(8,)), latent_dim=4)
    with pytest.raises(ValueError, match="adapt"):
        unadapted.pretrain_autoencoder()
