import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance import applications, recipes, serving
from keras_imbalance.callbacks import AlternatingPhases, LinearLRDecay
from keras_imbalance.metrics import inception_accuracy
from keras_imbalance.models import CycleGAN, ImageHistoryPool, ImbalanceCycleGAN, unpaired_dataset
from keras_imbalance.models.cyclegan import mixes_batch_samples
from tests import fixtures
from tests.harness import run_model_case, run_serialization_test

SHAPE = (8, 8, 1)


def _gen(name, shape=SHAPE):
    return fixtures.resnet_generator(name, shape)


def _disc(name, shape=SHAPE):
    return fixtures.patchgan(name, shape)


def _cycle_gan(seed=0, **kwargs):
    return fixtures.cycle_gan(seed=seed, **kwargs)


def _classifier():
    return fixtures.imbalance_cyclegan_classifier(SHAPE)


def _data(n_a=10, n_b=3, majority=0, seed=0):
    return fixtures.two_domain_batch(n_a, n_b, majority, SHAPE, seed)


def _weights(model):
    return [np.array(w) for w in model.weights]


def _same(before, after):
    return all(np.array_equal(u, v) for u, v in zip(before, after))


def _all_changed(before, after):
    # Every trainable kernel moved (biases of zero-gradient paths aside, kernels all get gradients).
    return not _same(before, after)


# History pool -------------------------------------------------------------------


def test_pool_fills_then_mixes_with_fixed_shape():
    pool = ImageHistoryPool(4, (2, 2, 1), seed=0)
    first = np.arange(3, dtype="float32")[:, None, None, None] * np.ones((3, 2, 2, 1), "float32")
    out = np.asarray(pool(first, training=True))
    np.testing.assert_array_equal(out, first)  # filling: images returned as they are
    assert int(pool.count) == 3
    seen = set(range(3))
    returned_past = 0
    for step in range(20):
        batch = (100 + 10 * step + np.arange(3, dtype="float32"))[:, None, None, None] * np.ones((3, 2, 2, 1), "float32")
        before = np.asarray(pool.images)[:, 0, 0, 0].tolist()
        out = np.asarray(pool(batch, training=True))
        after = np.asarray(pool.images)[:, 0, 0, 0].tolist()
        assert out.shape == batch.shape and np.asarray(pool.images).shape == (4, 2, 2, 1)
        values = out[:, 0, 0, 0].tolist()
        # Conservation: what went in (old pool + batch) = what is there (new pool + returned).
        if step > 0:
            assert sorted(before + batch[:, 0, 0, 0].tolist()) == sorted(after + values)
        returned_past += sum(v in seen for v in values)
        assert all(v in seen or v in batch[:, 0, 0, 0] for v in values)
        seen.update(batch[:, 0, 0, 0].tolist())
    assert int(pool.count) == 4
    assert 0 < returned_past < 60  # a mix of past and current images
    # Inference leaves the pool alone.
    state = np.asarray(pool.images).copy()
    np.testing.assert_array_equal(np.asarray(pool(batch, training=False)), batch)
    np.testing.assert_array_equal(np.asarray(pool.images), state)


def test_pool_swap_probability_is_one_half():
    pool = ImageHistoryPool(5, (1, 1, 1), seed=3)
    pool(-np.ones((5, 1, 1, 1), "float32"), training=True)  # fill with -1
    n = 1000
    batch = np.arange(n, dtype="float32")[:, None, None, None]
    out = np.asarray(tf.function(lambda z: pool(z, training=True))(batch))[:, 0, 0, 0]
    swapped = np.mean(out != np.arange(n))
    assert abs(swapped - 0.5) < 4 * np.sqrt(0.25 / n), swapped
    # A swapped-out image is an earlier one: never a later image of the batch.
    idx = np.flatnonzero(out != np.arange(n))
    assert np.all(out[idx] < idx)


def _pool_loop(images, pool, count, uniform, index, size, swap_probability):
    """The reference's per-image history-pool loop, in NumPy."""
    out, pool = images.copy(), pool.copy()
    for i in range(len(images)):
        filling = count < size
        swap = not filling and uniform[i] < swap_probability
        slot = count if filling else index[i]
        held = pool[slot].copy()
        if filling or swap:
            pool[slot] = images[i]
        out[i] = held if swap else images[i]
        count += int(filling)
    return out, pool, count


def test_pool_batch_swap_equals_the_per_image_loop():
    rng = np.random.default_rng(0)
    for trial in range(40):
        size, n = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        count = int(rng.integers(0, size + 1))
        pool = ImageHistoryPool(size, (2, 1, 1), swap_probability=float(rng.choice([0.0, 0.5, 1.0])))
        images = rng.normal(size=(n, 2, 1, 1)).astype("float32")
        stored = rng.normal(size=(size, 2, 1, 1)).astype("float32")
        uniform = rng.random(n).astype("float32")
        index = rng.integers(0, size, n).astype("int32")
        out, new_pool, new_count = pool.swap_batch(images, stored, count, uniform, index)
        ref_out, ref_pool, ref_count = _pool_loop(images, stored, count, uniform, index, size, pool.swap_probability)
        np.testing.assert_array_equal(np.asarray(out), ref_out, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(np.asarray(new_pool), ref_pool, err_msg=f"trial {trial}")
        assert int(new_count) == ref_count


def test_pool_of_size_zero_is_identity():
    pool = ImageHistoryPool(0, (2, 2, 1))
    x = np.random.default_rng(0).uniform(size=(3, 2, 2, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(pool(x, training=True)), x)


# CycleGAN losses -------------------------------------------------------------------


def _functional(shape, scale, name):
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Rescaling(scale)(inputs), name=name)


def test_identity_generators_give_zero_cycle_and_identity_loss():
    gan = CycleGAN(_functional(SHAPE, 1.0, "id_ab"), _functional(SHAPE, 1.0, "id_ba"), _disc("d_a"), _disc("d_b"))
    a, b = (np.random.default_rng(i).uniform(-1, 1, size=(4, *SHAPE)).astype("float32") for i in (0, 1))
    terms, fake_a, fake_b = gan.generator_losses(a, b, training=False)
    for key in ("cycle_a", "cycle_b", "identity_ab", "identity_ba"):
        assert float(terms[key]) == 0.0, key
    np.testing.assert_array_equal(np.asarray(fake_b), a)


def test_generator_and_discriminator_losses_against_hand_formulas():
    # G_AB = 0.5 x, G_BA = 3 x: cycle = |1.5 x - x| = 0.5 |x|; identity |0.5 b - b| and |3 a - a|.
    gan = CycleGAN(_functional(SHAPE, 0.5, "half"), _functional(SHAPE, 3.0, "triple"), _disc("d_a"), _disc("d_b"),
                   cycle_weight=10, identity_weight=5)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, size=(3, *SHAPE)).astype("float32"), rng.uniform(-1, 1, size=(3, *SHAPE)).astype("float32")
    t, _, _ = gan.generator_losses(a, b, training=False)
    d_b_fake = np.asarray(gan.discriminator_b(0.5 * a))
    d_a_fake = np.asarray(gan.discriminator_a(3.0 * b))
    expected_ab = np.mean((d_b_fake - 1) ** 2) + 10 * np.mean(0.5 * np.abs(a)) + 5 * np.mean(0.5 * np.abs(b))
    expected_ba = np.mean((d_a_fake - 1) ** 2) + 10 * np.mean(0.5 * np.abs(b)) + 5 * np.mean(2.0 * np.abs(a))
    np.testing.assert_allclose(float(t["generator_ab"]), expected_ab, rtol=1e-5)
    np.testing.assert_allclose(float(t["generator_ba"]), expected_ba, rtol=1e-5)
    np.testing.assert_allclose(float(t["total"]), expected_ab + expected_ba, rtol=1e-5)
    d_real, d_fake = np.asarray(gan.discriminator_b(b)), np.asarray(gan.discriminator_b(a))
    np.testing.assert_allclose(float(gan.discriminator_loss(gan.discriminator_b, b, a)),
                               0.5 * (np.mean((d_real - 1) ** 2) + np.mean(d_fake**2)), rtol=1e-5)


def test_batch_coupled_layers_are_found_in_nested_networks():
    assert not mixes_batch_samples(_gen("g")) and not mixes_batch_samples(_disc("d"))  # instance norm is per sample
    inner = keras.Sequential([keras.layers.Conv2D(2, 3, padding="same"), keras.layers.BatchNormalization()])
    inputs = keras.Input(SHAPE)
    with_bn = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inner(inputs)))
    assert mixes_batch_samples(with_bn)
    gan = CycleGAN(_gen("g_ab"), _gen("g_ba"), with_bn, _disc("d_b"))
    assert gan.stack_generator_calls and not gan.stack_discriminator_calls
    shared_mask = keras.Sequential([keras.Input(SHAPE), keras.layers.Dropout(0.5, noise_shape=(1, 8, 8, 1))])
    per_element = keras.Sequential([keras.Input(SHAPE), keras.layers.Dropout(0.5)])
    assert mixes_batch_samples(shared_mask) and not mixes_batch_samples(per_element)


def test_stacked_calls_train_like_separate_calls():
    # One CycleGAN step with each network called once on concatenated
    # inputs, against the same model and seed calling it once per input
    # (measured: equal losses, weights within 1e-5 after an SGD(0.1) step).
    keras.utils.set_random_seed(0)
    x, y = _data()
    pairs = tf.data.Dataset.from_tensors((x[y == 0][:3], x[y == 1][:3]))
    results = []
    for stacked in (True, False):
        gan = _cycle_gan(seed=0)
        if results:
            gan.set_weights(results[0][2])
        assert gan.stack_generator_calls and gan.stack_discriminator_calls
        gan.stack_generator_calls = gan.stack_discriminator_calls = stacked
        start = gan.get_weights()
        # SGD: the update is proportional to the gradient. Adam's first step
        # is ~lr * sign(gradient), so a rounding-level gradient (e.g. a conv
        # bias before instance norm, mathematically zero) could move by 2 lr.
        gan.compile(**{f"{name}_optimizer": keras.optimizers.SGD(0.1) for name in CycleGAN.player_names},
                    run_eagerly=True)
        logs = gan.fit(pairs, epochs=1, verbose=0).history
        results.append((logs, [np.array(w) for w in gan.get_weights()], start))
    (logs_s, weights_s, _), (logs_f, weights_f, _) = results
    for key in logs_s:
        np.testing.assert_allclose(logs_s[key], logs_f[key], rtol=1e-5, err_msg=key)
    assert not _same(results[0][2], weights_s)
    for u, v in zip(weights_s, weights_f):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)

def test_value_range_maps_to_tanh_range():
    gan = CycleGAN(_functional(SHAPE, 1.0, "i1"), _functional(SHAPE, 1.0, "i2"), _disc("d_a"), _disc("d_b"),
                   value_range=(0.0, 1.0))
    x = np.random.default_rng(0).uniform(size=(2, *SHAPE)).astype("float32")
    np.testing.assert_allclose(np.asarray(gan.to_generator_range(x)), 2 * x - 1, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gan.translate_ab(x)), x, atol=1e-6)


def test_default_generator_parameter_count():
    # The paper's generator (c7s1-64, d128, d256, 9 R256, u128, u64, c7s1-3): 11,378,179 (built small).
    assert applications.ResnetGenerator((8, 8, 3)).count_params() == 11_378_179


# Harness ------------------------------------------------------------------------------


def test_cycle_gan_model_case(tmp_path):
    x, y = _data()
    pairs = unpaired_dataset(x[y == 0], x[y == 1], batch_size=4)

    def checks(model, reloaded):
        for name in ("pool_a", "pool_b"):
            np.testing.assert_array_equal(np.asarray(getattr(reloaded, name).images), np.asarray(getattr(model, name).images))
            assert int(getattr(reloaded, name).count) == int(getattr(model, name).count) == 4
        for name in CycleGAN.player_names:  # every player stepped once, and the step survives saving
            assert int(getattr(reloaded, f"{name}_optimizer").iterations) == 1, name
        assert reloaded.value_range == (0.0, 1.0)

    run_model_case(CycleGAN, fixtures.cycle_gan_kwargs(), (x[:4], None), fit_data=pairs, compile_kwargs={},
                   tmp_path=tmp_path, expected_output_shape=(4, *SHAPE), extra_checks=checks)


@pytest.mark.parametrize("mode", ["aug", pytest.param("alt", marks=pytest.mark.slow)])
def test_imbalance_cyclegan_model_case(tmp_path, mode):
    x, y = _data()

    def checks(model, reloaded):
        assert reloaded.class_counts == [10, 3] and reloaded.mode == mode
        np.testing.assert_allclose(np.asarray(reloaded.translate_ab(x[:2])), np.asarray(model.translate_ab(x[:2])), atol=1e-6)
        assert int(reloaded.classifier_optimizer.iterations) == 1

    init_kwargs = dict(classifier=_classifier(), cycle_gan=_cycle_gan(), mode=mode, seed=0)
    run_model_case(ImbalanceCycleGAN, init_kwargs, (x, y), compile_kwargs={}, tmp_path=tmp_path, batch_size=4,
                   expected_output_shape=(len(x), 2), extra_checks=checks)


def test_imbalance_cyclegan_alt_serialization():
    # ALT's whole model case is slow-marked; its config round trip runs by default.
    run_serialization_test(ImbalanceCycleGAN, dict(classifier=_classifier(), cycle_gan=_cycle_gan(), mode="alt",
                                                   switch_every=2, class_counts=[10, 3], seed=0))


def test_translate_signatures_through_saved_model(tmp_path):
    x, y = _data()
    model = ImbalanceCycleGAN(_classifier(), _cycle_gan(), seed=0)
    path = serving.export_for_serving(model, tmp_path / "icg", input_dtype="float32")
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "translate_ab", "translate_ba"} <= set(loaded.signatures)
    for direction in ("translate_ab", "translate_ba"):
        out = loaded.signatures[direction](images=tf.constant(x[:3]))["translated"].numpy()
        np.testing.assert_allclose(out, np.asarray(getattr(model, direction)(x[:3])), atol=1e-5)
        assert out.shape == (3, *SHAPE)
    probs = loaded.signatures["serving_default"](images=tf.constant(x[:3]))["probabilities"].numpy()
    np.testing.assert_allclose(probs, np.asarray(tf.nn.softmax(model.predict(x[:3], verbose=0))), atol=1e-5)


# Classifier loss, modes -------------------------------------------------------------------


def test_classifier_loss_weights_majority_terms_by_one_over_gamma():
    # Majority is class 1 here (10 vs 4 samples): gamma = 2.5.
    model = ImbalanceCycleGAN(_classifier(), _cycle_gan(), class_counts=[4, 10])
    assert (model.majority_class, model.minority_class) == (1, 0) and model.l_a_weight == pytest.approx(0.4)
    rng = np.random.default_rng(1)
    a, b, fa, fb = (rng.uniform(size=(n, *SHAPE)).astype("float32") for n in (3, 2, 2, 3))
    loss_a, loss_b, _, _ = model.classifier_losses(a, b, fa, fb, training=False)

    def log_softmax(x):
        z = np.asarray(model.classifier(x, training=False), "float64")
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    # L^A: real a and G_BA(b) labelled majority (1); L^B: real b and G_AB(a) labelled minority (0).
    expected_a = -log_softmax(a)[:, 1].mean() - log_softmax(fa)[:, 1].mean()
    expected_b = -log_softmax(b)[:, 0].mean() - log_softmax(fb)[:, 0].mean()
    np.testing.assert_allclose(float(loss_a), expected_a, rtol=1e-5)
    np.testing.assert_allclose(float(loss_b), expected_b, rtol=1e-5)
    assert ImbalanceCycleGAN(_classifier(), _cycle_gan(), class_counts=[4, 10], majority_weight=1.0).l_a_weight == 1.0


def test_aug_mode_changes_only_the_classifier():
    x, y = _data()
    model = ImbalanceCycleGAN(_classifier(), _cycle_gan(), mode="aug", seed=0)
    model.compile()
    gan_before, clf_before = _weights(model.cycle_gan), _weights(model.classifier)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert len(history.history["classifier_loss"]) == 2 and set(history.history) == {"classifier_loss"}
    assert _same(gan_before, _weights(model.cycle_gan))  # generators, discriminators, pools
    assert _all_changed(clf_before, _weights(model.classifier))
    assert model.epoch_steps(4) == 3


def test_alt_mode_each_part_changes_only_in_its_own_phase():
    x, y = _data()
    model = ImbalanceCycleGAN(_classifier(), _cycle_gan(), mode="alt", switch_every=1, seed=0)
    model.compile()
    snapshots = [(_weights(model.classifier), {n: _weights(getattr(model, n)) for n in ImbalanceCycleGAN.player_names[1:]})]
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(
        (_weights(model.classifier), {n: _weights(getattr(model, n)) for n in ImbalanceCycleGAN.player_names[1:]})))
    phases = AlternatingPhases(1)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[phases, record])
    assert phases.phases == [0, 1, 0]
    for epoch, phase in enumerate(phases.phases):
        (clf0, gan0), (clf1, gan1) = snapshots[epoch], snapshots[epoch + 1]
        if phase == 0:
            assert not _same(clf0, clf1) and all(_same(gan0[n], gan1[n]) for n in gan0), epoch
        else:
            assert _same(clf0, clf1) and all(not _same(gan0[n], gan1[n]) for n in gan0), epoch


def test_alt_gan_phase_adds_the_classifier_loss_to_the_generators():
    # With the CycleGAN terms switched off (weights 0 and constant discriminators would still
    # leave the adversarial term), compare generator gradients with and without eq. 7's terms.
    x, y = _data()
    model = ImbalanceCycleGAN(_classifier(), _cycle_gan(), mode="alt", class_counts=[10, 3])
    gan = model.cycle_gan
    a, b = gan.to_generator_range(x[:3]), gan.to_generator_range(x[10:13])

    def grads(with_classifier):
        with tf.GradientTape() as tape:
            terms, fake_a, fake_b = gan.generator_losses(a, b, training=True)
            loss = terms["total"]
            if with_classifier:
                la, lb, _, _ = model.classifier_losses(x[:3], x[10:13], gan.from_generator_range(fake_a),
                                                       gan.from_generator_range(fake_b), training=False)
                loss = loss + la + lb
        return [np.asarray(g) for g in tape.gradient(loss, gan.generator_ab.trainable_variables)]

    assert not all(np.allclose(u, v) for u, v in zip(grads(False), grads(True)))


# Errors -----------------------------------------------------------------------------------


def test_multi_class_data_raises_binary_error():
    x, _ = _data()
    y = np.arange(len(x)) % 3
    model = ImbalanceCycleGAN(_classifier(), _cycle_gan())
    model.compile()
    with pytest.raises(ValueError, match="binary method.*Select two classes"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="binary method"):
        ImbalanceCycleGAN(_classifier(), _cycle_gan(), class_counts=[5, 3, 2])
    three = applications.ImbalanceCycleGANClassifier(SHAPE, 3, filters=4, num_layers=1, dense_units=(8,))
    with pytest.raises(ValueError, match="2 logits.*binary method"):
        ImbalanceCycleGAN(three, _cycle_gan())
    for name in ("imbalance-cyclegan", "imbalance-cyclegan-alt"):
        with pytest.raises(ValueError, match="binary method.*Select two classes"):
            recipes.get(name).check_data(10)
        recipes.get(name).check_data(2)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mode"):
        ImbalanceCycleGAN(_classifier(), _cycle_gan(), mode="both")
    with pytest.raises(ValueError, match="same image shape"):
        CycleGAN(_gen("g1"), _gen("g2", (12, 12, 1)), _disc("d1"), _disc("d2"))
    with pytest.raises(ValueError, match="value_range"):
        _cycle_gan(value_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="pairs"):
        model = _cycle_gan()
        model.compile()
        model.fit(tf.data.Dataset.from_tensor_slices(np.zeros((2, *SHAPE), "float32")).batch(2), epochs=1, verbose=0)


# Callbacks, metric, recipe -------------------------------------------------------------------


def test_linear_lr_decay_on_all_four_optimizers():
    x, y = _data()
    model = _cycle_gan()
    model.compile()
    decay = LinearLRDecay(2, 3)
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(
        [float(getattr(model, f"{n}_optimizer").learning_rate) for n in CycleGAN.player_names]))
    model.fit(unpaired_dataset(x[:2], x[10:11], batch_size=2), epochs=5, verbose=0, callbacks=[decay, record])
    expected = [2e-4 * (1 - max(0, e + 1 - 2) / 4) for e in range(5)]  # 1, 1, 3/4, 1/2, 1/4
    np.testing.assert_allclose(np.asarray(seen), np.repeat(np.asarray(expected)[:, None], 4, axis=1), rtol=1e-6)


def test_inception_accuracy_against_hand_computation():
    inputs = keras.Input((2,))
    judge = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))
    images = np.array([[1.0, 0.0], [0.2, 0.9], [0.7, 0.3], [0.1, 0.4], [0.6, 0.5]], "float32")
    labels = np.array([0, 1, 1, 1, 0])
    predicted = images.argmax(1)  # the identity judge's argmax
    assert inception_accuracy(judge, images, labels) == pytest.approx(np.mean(predicted == labels)) == pytest.approx(0.8)
    assert inception_accuracy(judge, images, 1) == pytest.approx(0.4)
    assert inception_accuracy(lambda z: z[:, :1] - 0.5, images, labels, from_logits=True) == pytest.approx(
        np.mean((images[:, 0] > 0.5).astype(int) == labels))
    with pytest.raises(ValueError, match="labels"):
        inception_accuracy(judge, images, labels[:3])


def test_recipe_trains_both_stages_and_returns_a_sample_grid():
    x, y = _data(12, 4, majority=1)
    recipe = recipes.get("imbalance-cyclegan", gan_epochs=1, generator_filters=4, residual_blocks=0, discriminator_filters=4)
    model = recipe.fit(lambda shape, c: _classifier(), x, y, epochs=1, batch_size=8, seed=0, num_classes=2)
    assert isinstance(model, ImbalanceCycleGAN) and model.majority_class == 1 and model.mode == "aug"
    assert len(recipe.gan_history_.history["generator_ab_loss"]) == 1
    assert int(model.cycle_gan.generator_ab_optimizer.iterations) == 2  # ceil(12 / 8) GAN steps
    grid, labels, value_range = recipe.sample_grid(model, 2)
    assert grid.shape == (4, 4, *SHAPE) and len(labels) == 4 and value_range[1] > value_range[0]
    np.testing.assert_array_equal(grid[0], x[y == 1][:4])
    assert recipes.get("imbalance-cyclegan-alt").mode == "alt"


def test_bare_cycle_gan_serves_its_translation_by_default(tmp_path):
    x, _ = _data()
    cycle_gan = _cycle_gan()
    cycle_gan(x[:1])
    path = serving.export_for_serving(cycle_gan, tmp_path / "cg", input_dtype="float32")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "translate_ab", "translate_ba"}
    out = loaded.signatures["serving_default"](images=tf.constant(x[:3]))["translated"].numpy()
    np.testing.assert_allclose(out, np.asarray(cycle_gan.translate_ab(x[:3])), atol=1e-5)
