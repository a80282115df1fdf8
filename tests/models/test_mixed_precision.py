"""GPU readiness checked on a CPU: every model under mixed_float16 and under XLA (`jit_compile=True`).

Issue 21 item 4. Mixed precision: each player's optimizer is a
`LossScaleOptimizer`, losses are float32, a few steps train without NaN, the
`.keras` file reloads with the same predictions and optimizers, and the
SavedModel's `serving_default` takes uint8 images and returns float32. XLA:
every model fits with `compile(jit_compile=True)` and keeps it (Keras turns
XLA off, with a warning only, for a model it cannot compile).

The default suite runs the cheapest model (GAMO in pixel space) and the
loss-scaling unit tests; the other models are `slow` (`make test-slow`).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_imbalance import compare, serving
from keras_imbalance.callbacks import AlternatingPhases
from keras_imbalance.models import GAMO, M2m, GAMO2Pix, ImbalanceCycleGAN, unpaired_dataset
from tests import fixtures
from tests.models.test_base import TwoPlayers

LSO = keras.optimizers.LossScaleOptimizer


@pytest.fixture
def mixed_float16():
    """The mixed_float16 global policy for one test; the previous policy is restored whatever happens."""
    with compare.precision_policy(True):
        yield


# Loss scaling in MultiPlayerModel ------------------------------------------------------


class JointPlayers(TwoPlayers):
    """`a` and `b` trained on one joint objective (as CycleGAN's generators): `apply_joint_gradients`."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            out_a = self.a(x, training=True)
            loss_a = ops.mean(ops.square(out_a - y))
            loss_b = ops.mean(ops.square(self.b(out_a, training=True) - y))
            total = loss_a + loss_b
        self.apply_joint_gradients(("a", "b"), tape, total, (loss_a, loss_b))
        return self.metrics_result()


def _one_step(model_cls, optimizers):
    keras.utils.set_random_seed(0)
    model = model_cls(seed=0)
    model.compile(optimizers=optimizers)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    model.fit(x, x[:, :1] * 2.0, batch_size=16, epochs=1, verbose=0)
    return [np.asarray(w) for w in model.a.weights + model.b.weights]


@pytest.mark.parametrize("model_cls", [TwoPlayers, JointPlayers])
def test_loss_scale_optimizers_step_like_their_inner_optimizers(model_cls):
    # float32 policy, so the only difference is the scaling: the gradient taken of
    # scale * loss and divided by the scale again must give the plain step. Different
    # scales for the joint players exercise the rescaling of one joint gradient.
    plain = _one_step(model_cls, {"a": keras.optimizers.SGD(0.1), "b": keras.optimizers.SGD(0.1)})
    scaled = _one_step(model_cls, {"a": LSO(keras.optimizers.SGD(0.1), initial_scale=2.0**12),
                                   "b": LSO(keras.optimizers.SGD(0.1), initial_scale=2.0**5)})
    for p, s in zip(plain, scaled):
        np.testing.assert_allclose(s, p, rtol=1e-5, atol=1e-6)


def test_compile_wraps_each_player_under_mixed_float16_and_refuses_a_float16_loss(mixed_float16):
    model = TwoPlayers(seed=0)
    model.compile()
    for name in model.player_names:
        optimizer = getattr(model, f"{name}_optimizer")
        assert isinstance(optimizer, LSO), name
        assert type(optimizer.inner_optimizer) is type(model.default_optimizer(name))
    unwrapped = TwoPlayers(seed=0)
    unwrapped.compile(auto_scale_loss=False)  # Keras' own switch, honoured per player
    assert not isinstance(unwrapped.a_optimizer, LSO)

    x = np.ones((4, 3), "float32")
    with tf.GradientTape() as tape:
        loss = ops.mean(model.a(x, training=True))  # float16: the Dense computes in float16
    with pytest.raises(ValueError, match="float32"):
        model.apply_player_gradients("a", tape, loss)


def _float16_output(model):
    """`model` followed by a float16 identity: a user network that ends in the mixed policy's compute dtype."""
    return keras.Model(model.inputs, keras.layers.Activation("linear", dtype="mixed_float16")(model.outputs[0]))


def test_hand_written_losses_are_float32_for_float16_network_outputs(mixed_float16):
    # The package's networks end in float32 under a mixed policy; a user's may not. Every loss casts first.
    def is_float32(t):
        return keras.backend.standardize_dtype(ops.convert_to_tensor(t).dtype) == "float32"

    x, y = fixtures.imbalanced_batch(value_range=(-1.0, 1.0))
    gamo = fixtures.gamo(x, y)
    half = ops.cast(ops.ones((4, 3)), "float16")
    assert is_float32(gamo._class_loss(ops.one_hot(ops.convert_to_tensor([0, 1, 2, 0]), 3), half))
    assert is_float32(gamo._adversarial_loss(ops.ones((4, 1), "float16"), ops.zeros((4, 1), "float16")))

    a, b = fixtures.two_domain_batch()[0][:2] * 2 - 1, fixtures.two_domain_batch(seed=1)[0][:2] * 2 - 1
    gan = fixtures.cycle_gan()
    for name in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
        setattr(gan, name, _float16_output(getattr(gan, name)))
    terms, _, _ = gan.generator_losses(a, b)
    assert all(is_float32(v) for v in terms.values()), {k: v.dtype for k, v in terms.items()}
    assert is_float32(gan.discriminator_loss(gan.discriminator_a, a, a))

    x, y = fixtures.imbalanced_batch()
    polarity = fixtures.polarity_gan(x, y)
    polarity.critic = _float16_output(polarity.critic)
    labels = np.array([0, 2, 0, 2])
    loss, penalty = polarity.critic_loss(x[:4], x[4:8], labels)
    assert is_float32(loss) and is_float32(penalty)


# Every model under mixed_float16 -------------------------------------------------------


def _player_optimizers(model):
    if hasattr(model, "player_names"):
        return {n: getattr(model, f"{n}_optimizer") for n in model.active_players()}
    return {"optimizer": model.optimizer}


def _check_mixed_model(model, fit, x, tmp_path, value_range=(0.0, 1.0), serves_classes=True):
    """Compile and `fit(model)` under mixed_float16, then the checks of the module docstring."""
    assert model.dtype_policy.name == "mixed_float16"
    history = fit(model)
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), f"{key} is not finite: {values}"
    for name, optimizer in _player_optimizers(model).items():
        assert isinstance(optimizer, LSO), name
        # A step with non-finite gradients is skipped (and the scale halved): every player stepped.
        assert int(optimizer.iterations) >= 1, name
        assert np.isfinite(float(optimizer.dynamic_scale)), name
    predictions = np.asarray(model.predict(x, verbose=0))
    assert predictions.dtype == np.float32 and np.all(np.isfinite(predictions))

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(reloaded.predict(x, verbose=0)), predictions)
    for name, optimizer in _player_optimizers(reloaded).items():
        assert isinstance(optimizer, LSO), name
        saved = _player_optimizers(model)[name].variables  # the loss scale, its step counter, the inner slots
        assert len(optimizer.variables) == len(saved), name
        for restored, original in zip(optimizer.variables, saved):
            np.testing.assert_array_equal(np.asarray(restored), np.asarray(original), err_msg=f"{name}: {original.path}")

    if not serves_classes:
        return reloaded
    low, high = value_range
    pixels = np.round((x - low) / (high - low) * 255.0).astype("uint8")
    version = serving.export_for_serving(reloaded, os.path.join(tmp_path, "served"), value_range=value_range)
    signature = tf.saved_model.load(version).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.uint8
    out = signature(images=tf.constant(pixels))
    assert out["probabilities"].dtype == tf.float32
    expected = ops.softmax(reloaded.predict(pixels.astype("float32") / 255.0 * (high - low) + low, verbose=0))
    np.testing.assert_allclose(out["probabilities"].numpy(), np.asarray(expected), atol=1e-3)
    return reloaded


def _fit_steps(*args, steps=2, **kwargs):
    def fit(model):
        model.compile()
        return model.fit(*args, epochs=1, steps_per_epoch=steps, verbose=0, **kwargs)

    return fit


@pytest.mark.parametrize("discriminator", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_gamo_under_mixed_float16(mixed_float16, tmp_path, discriminator):
    # GAMO without D (classifier and generator) is the default suite's case: the cheapest
    # model whose players step through MultiPlayerModel's loss scaling.
    x, y = fixtures.imbalanced_batch(value_range=(-1.0, 1.0))
    model = fixtures.gamo(x, y, discriminator=discriminator)
    model.pixel_range = (-1.0, 1.0)  # trained on [-1, 1] images: the range the model carries into export
    _check_mixed_model(model, _fit_steps(x, y, batch_size=8), x, tmp_path, value_range=(-1.0, 1.0))
    samples = model.generate(np.array([0, 2]), seed=0)
    assert samples.dtype == np.float32 and np.all(np.isfinite(samples))


@pytest.mark.slow
def test_gamo2pix_under_mixed_float16(mixed_float16, tmp_path):
    x, y = fixtures.imbalanced_batch(value_range=(-1.0, 1.0))
    gamo = GAMO(fixtures.gamo_classifier((8,), 3, hidden_units=(8,)), fixtures.gamo_discriminator((8,), 3),
                feature_extractor=fixtures.gamo_feature_extractor(feature_dim=8), latent_dim=4, seed=2).adapt(x, y)
    # A feature-space GAMO: export_for_serving serves its classifier M alone, on features (not images), so its
    # class signature is not checked here.
    _check_mixed_model(gamo, _fit_steps(x, y, batch_size=8), x, tmp_path, serves_classes=False)
    # GAMO2Pix's call is an image decoder, not a classifier: its `.keras` round trip is checked, no class signature.
    pix = GAMO2Pix.from_gamo(gamo, latent_dim=3, filters=4, seed=0)
    os.makedirs(tmp_path / "pix")
    _check_mixed_model(pix, _fit_steps(x, y, batch_size=8), x, tmp_path / "pix", serves_classes=False)
    assert pix.generate_images(2, 3, seed=0).dtype == np.float32


@pytest.mark.slow
def test_polarity_gan_under_mixed_float16(mixed_float16, tmp_path):
    x, y = fixtures.imbalanced_batch()
    model = fixtures.polarity_gan(x, y)
    _check_mixed_model(model, _fit_steps(x, y, batch_size=8), x, tmp_path)


@pytest.mark.slow
def test_m2m_under_mixed_float16(mixed_float16, tmp_path):
    x, y = fixtures.random_batch(12)
    model = M2m(fixtures.small_cnn(), translator=fixtures.small_cnn(name="g"), class_counts=[30, 8, 2], gamma=0.0,
                acceptance_criterion="probability", attack_steps=2, seed=1)

    def fit(m):
        m.compile(optimizer="sgd")
        history = m.fit(x, y, batch_size=6, epochs=1, verbose=0)
        assert history.history["generation_fraction"][0] > 0  # the translation branch ran
        return history

    _check_mixed_model(model, fit, x, tmp_path)


@pytest.mark.slow
def test_cycle_gan_under_mixed_float16(mixed_float16, tmp_path):
    x, y = fixtures.two_domain_batch()
    model = fixtures.cycle_gan()
    # The first steps at the initial loss scale 2^15 overflow in float16 and are skipped (the scale halves
    # each time), as LossScaleOptimizer does; 8 steps leave room for steps that are applied.
    reloaded = _check_mixed_model(model, _fit_steps(unpaired_dataset(x[y == 0], x[y == 1], batch_size=4).repeat(), steps=8),
                                  x[:4], tmp_path, serves_classes=False)
    # A bare CycleGAN serves its A -> B translation (float32 images in and out).
    version = serving.export_for_serving(reloaded, tmp_path / "served")
    out = tf.saved_model.load(version).signatures["serving_default"](images=tf.constant(x[:2]))["translated"]
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), np.asarray(reloaded.translate_ab(x[:2])), atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["aug", "alt"])
def test_imbalance_cyclegan_under_mixed_float16(mixed_float16, tmp_path, mode):
    x, y = fixtures.two_domain_batch(n_a=32, n_b=8)  # 32 pairs: 8 steps of 4 per epoch
    model = ImbalanceCycleGAN(fixtures.imbalance_cyclegan_classifier(), fixtures.cycle_gan(), mode=mode, seed=0)

    def fit(m):
        m.compile()
        # ALT: epoch 0 trains the classifier, epoch 1 the CycleGAN, so both steps run (8 steps each: the
        # CycleGAN's first steps overflow at the initial loss scale and are skipped, see the CycleGAN test).
        return m.fit(x, y, batch_size=4, epochs=2, steps_per_epoch=8, verbose=0,
                     callbacks=[AlternatingPhases(switch_every=1)] if mode == "alt" else None)

    reloaded = _check_mixed_model(model, fit, x, tmp_path)
    if mode == "aug":  # AUG never steps the CycleGAN's players: they are not in the checked list
        assert int(reloaded.generator_ab_optimizer.iterations) == 0


# Every model under XLA ------------------------------------------------------------------


def _gamo2pix(x, y):
    gamo = GAMO(fixtures.gamo_classifier((8,), 3, hidden_units=(8,)), fixtures.gamo_discriminator((8,), 3),
                feature_extractor=fixtures.gamo_feature_extractor(feature_dim=8), latent_dim=4, seed=2).adapt(x, y)
    return GAMO2Pix.from_gamo(gamo, latent_dim=3, filters=4, seed=0)


def _xla_case(name):
    """(model, fit arguments, fit keyword arguments) of a tiny model."""
    if name in ("gamo", "gamo_feature_space", "gamo2pix"):
        x, y = fixtures.imbalanced_batch(value_range=(-1.0, 1.0))
        if name == "gamo":
            return fixtures.gamo(x, y), (x, y), {"batch_size": 8}
        if name == "gamo2pix":
            return _gamo2pix(x, y), (x, y), {"batch_size": 8}
        model = GAMO(fixtures.gamo_classifier((8,), 3, hidden_units=(8,)), fixtures.gamo_discriminator((8,), 3),
                     feature_extractor=fixtures.gamo_feature_extractor(feature_dim=8), latent_dim=4, seed=2).adapt(x, y)
        return model, (x, y), {"batch_size": 8}
    if name == "polarity_gan":
        x, y = fixtures.imbalanced_batch()
        return fixtures.polarity_gan(x, y), (x, y), {"batch_size": 8}
    if name.startswith("m2m"):
        x, y = fixtures.random_batch(12)
        positions = "candidates" if name == "m2m_candidates" else "all"
        model = M2m(fixtures.small_cnn(), translator=fixtures.small_cnn(name="g"), class_counts=[30, 8, 2], gamma=0.0,
                    acceptance_criterion="probability", attack_steps=2, translated_positions=positions, seed=1)
        return model, (x, y), {"batch_size": 6}
    x, y = fixtures.two_domain_batch()
    if name == "cycle_gan":
        return fixtures.cycle_gan(), (unpaired_dataset(x[y == 0], x[y == 1], batch_size=4),), {}
    mode = name.rsplit("_", 1)[1]
    model = ImbalanceCycleGAN(fixtures.imbalance_cyclegan_classifier(), fixtures.cycle_gan(), mode=mode, seed=0)
    callbacks = [AlternatingPhases(switch_every=1)] if mode == "alt" else None
    return model, (x, y), {"batch_size": 4, "callbacks": callbacks}


XLA_MODELS = ["gamo", "gamo_feature_space", "gamo2pix", "polarity_gan", "m2m", "m2m_candidates", "cycle_gan",
              "imbalance_cyclegan_aug", "imbalance_cyclegan_alt"]


@pytest.mark.slow
@pytest.mark.parametrize("name", XLA_MODELS)
def test_every_model_trains_under_xla(name):
    model, args, kwargs = _xla_case(name)
    if isinstance(model, M2m):
        model.compile(optimizer="sgd", jit_compile=True)
    else:
        model.compile(jit_compile=True)
    # Two epochs of one step: ImbalanceCycleGAN ALT runs its classifier then its CycleGAN step.
    history = model.fit(*args, epochs=2, steps_per_epoch=1, verbose=0, **kwargs)
    assert model.jit_compile is True  # Keras sets it back to False (with a warning) for a model it cannot compile
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), f"{key} is not finite: {values}"
    for player, optimizer in _player_optimizers(model).items():
        if name == "imbalance_cyclegan_aug" and player != "classifier":
            continue  # AUG trains the classifier only
        assert int(optimizer.iterations) >= 1, player


@pytest.mark.slow
def test_mixed_precision_and_xla_together(mixed_float16):
    # What one turns on on a GPU: both at once, on the model with the most players.
    model, args, kwargs = _xla_case("polarity_gan")
    model.compile(jit_compile=True)
    history = model.fit(*args, epochs=1, steps_per_epoch=2, verbose=0, **kwargs)
    assert model.jit_compile is True
    assert all(np.all(np.isfinite(v)) for v in history.history.values())
    assert all(isinstance(o, LSO) and int(o.iterations) >= 1 for o in _player_optimizers(model).values())
