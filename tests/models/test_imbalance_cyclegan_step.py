"""ImbalanceCycleGAN: one training step per phase, player by player, against an independent reference (eqs. 4-7).

- Classifier step (AUG mode, and ALT phase 0): only the classifier learns,
  on L_cls = L^B + (1 / gamma) L^A (eqs. 4-6) over real a, b and the frozen
  CycleGAN's G_AB(a) (labelled minority) and G_BA(b) (labelled majority);
  the four GAN players keep their weights, BatchNormalization statistics,
  pools and optimizer iterations.
- CycleGAN step (ALT phase 1): the generators minimize eq. 7 (the CycleGAN
  objective plus L^A + L^B of the frozen classifier, unweighted), the
  discriminators their own losses; the classifier keeps its weights,
  statistics and optimizer iterations.

The reference (tests/models/cyclegan_reference.py) is plain TensorFlow on
copies of tiny players, all trained with SGD(momentum=0).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance.callbacks import AlternatingPhases
from keras_imbalance.models import CycleGAN, ImbalanceCycleGAN
from tests.models import cyclegan_reference as ref

LR = 0.1
N = 4
GAMMA = 3.0


def _sgd():
    return keras.optimizers.SGD(learning_rate=LR, momentum=0.0)


def _setup(mode, majority, batchnorm, pool_size=0, stream="pairs"):
    """(model, players, classifier, a, b, x, y): N majority and N minority images; class counts give gamma = 3.

    `fit(x, y, batch_size=N)` pairs the classes with a random order of its
    own; with N images per class one step holds every a and every b once,
    in some order. Every quantity checked is a mean over a group (and
    BatchNormalization statistics are order-free), so the reference needs
    no knowledge of that order.
    """
    players = ref.gan_players(batchnorm)
    clf = ref.classifier(seed=50)
    gan = CycleGAN(*(players[n] for n in ref.GAN_PLAYERS), pool_size=pool_size, value_range=(0.0, 1.0), seed=0)
    # "Pre-trained" CycleGAN with optimizers of its own: the joint model must not step them.
    gan.compile(**{f"{n}_optimizer": _sgd() for n in ref.GAN_PLAYERS})
    counts = [12, 4] if majority == 0 else [4, 12]
    model = ImbalanceCycleGAN(clf, gan, mode=mode, class_counts=counts, stream=stream, seed=0)
    assert (model.majority_class, model.gamma) == (majority, GAMMA)
    model.compile(classifier_optimizer=_sgd(), **{f"{n}_optimizer": _sgd() for n in ref.GAN_PLAYERS},
                  run_eagerly=True)
    a, b = ref.images(N, 5), ref.images(N, 6)
    x = np.concatenate([a, b])
    y = np.array([majority] * N + [1 - majority] * N)
    return model, players, clf, a, b, x, y


def _state(model):
    return [np.array(v) for v in model.weights]


def _assert_same(before, after, what):
    assert len(before) == len(after), what
    for i, (u, v) in enumerate(zip(before, after)):
        np.testing.assert_array_equal(u, v, err_msg=f"{what} variable {i}")


def _translate(players, a, b):
    """The frozen CycleGAN's translations, in the data range: (G_BA(b), G_AB(a)), inference mode."""
    g_ab, g_ba = ref.copy(players["generator_ab"]), ref.copy(players["generator_ba"])
    fake_b = (np.array(g_ab(tf.constant(2.0 * a - 1.0), training=False)) + 1.0) / 2.0
    fake_a = (np.array(g_ba(tf.constant(2.0 * b - 1.0), training=False)) + 1.0) / 2.0
    return fake_a, fake_b


@pytest.mark.parametrize("mode,majority", [("aug", 0), ("alt", 1)], ids=["aug-majority0", "alt_phase0-majority1"])
def test_classifier_step_matches_eq_6_and_freezes_the_cyclegan(mode, majority):
    """Eqs. 4-6: L_cls = L^B + (1/gamma) L^A; only the classifier steps, the CycleGAN is frozen.

    L^B = -E_b log z(b) - E_a log z(G_AB(a)), L^A = -E_a log(1 - z(a)) - E_b log(1 - z(G_BA(b))),
    z = P(minority). The translations come from the frozen generators in
    inference mode (BatchNormalization moving statistics, not updated).
    The classifier (with BatchNormalization) runs once in training mode on
    all four groups together (pinned reading: one classifier batch per
    step). Checked: L^A and L^B (`classifier_losses`), the
    `classifier_loss` log, the classifier's weights and moving statistics
    after one SGD step; every GAN player's weights and statistics, both
    pools, and the optimizer iterations of all GAN optimizers (the joint
    model's and the CycleGAN's own) unchanged.
    """
    model, players, clf, a, b, x, y = _setup(mode, majority, batchnorm=True, pool_size=2)
    gan = model.cycle_gan
    for pool in (gan.pool_a, gan.pool_b):  # a pool holding images: it must not be touched
        pool.images.assign(ref.images(2, 7))
        pool.count.assign(2)
    fake_a, fake_b = _translate(players, a, b)
    np.testing.assert_allclose(np.asarray(model.translate_ab(a)), fake_b, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.translate_ba(b)), fake_a, atol=1e-6)

    # Term by term on the starting weights (inference mode: no state change).
    loss_a, loss_b, _, _ = model.classifier_losses(a, b, fake_a, fake_b, training=False)
    ref_a, ref_b = ref.classifier_losses(ref.copy(clf), a, b, fake_a, fake_b, majority, training=False)
    np.testing.assert_allclose(float(loss_a), float(ref_a), rtol=1e-5)
    np.testing.assert_allclose(float(loss_b), float(ref_b), rtol=1e-5)

    # The reference step.
    twin = ref.copy(clf)
    with tf.GradientTape() as tape:
        l_a, l_b = ref.classifier_losses(twin, a, b, fake_a, fake_b, majority, training=True)
        l_cls = l_b + l_a / GAMMA
    expected = ref.sgd(twin.trainable_variables, tape.gradient(l_cls, twin.trainable_variables), LR)
    expected_stats = ref.values(twin.non_trainable_variables)

    frozen = {n: _state(getattr(model, n)) for n in ref.GAN_PLAYERS}
    pools = _state(gan.pool_a) + _state(gan.pool_b)
    callbacks = [AlternatingPhases(1)] if mode == "alt" else []
    logs = model.fit(x, y, batch_size=N, epochs=1, verbose=0, callbacks=callbacks).history
    if mode == "alt":
        assert callbacks[0].phases == [0]

    np.testing.assert_allclose(logs["classifier_loss"][-1], float(l_cls), rtol=1e-5)
    ref.assert_weights(clf.trainable_variables, expected, "classifier")
    ref.assert_weights(clf.non_trainable_variables, expected_stats, "classifier moving statistics")
    assert int(model.classifier_optimizer.iterations) == 1
    for name in ref.GAN_PLAYERS:
        _assert_same(frozen[name], _state(getattr(model, name)), name)
        assert int(getattr(model, f"{name}_optimizer").iterations) == 0, name
        assert int(getattr(gan, f"{name}_optimizer").iterations) == 0, name
    _assert_same(pools, _state(gan.pool_a) + _state(gan.pool_b), "pools")


@pytest.mark.parametrize("batchnorm,majority", [(False, 0), (True, 1)], ids=["stacked-majority0", "batchnorm-majority1"])
def test_alt_cyclegan_phase_matches_eq_7_and_freezes_the_classifier(batchnorm, majority):
    """Eq. 7: the generators minimize the CycleGAN objective + L^A_cls + L^B_cls (no 1/gamma), classifier frozen.

    The classifier (with BatchNormalization) is a fixed teacher in
    inference mode; its terms see G_BA(b) (labelled majority) and G_AB(a)
    (labelled minority) in the data range. The discriminators take their
    usual step (LS, x 0.5, pool size 0 here). Checked: the generator and
    discriminator logs (the generator trackers hold the CycleGAN terms
    only), each GAN player's weights after one SGD step, and the
    classifier's weights, moving statistics and optimizer iterations
    unchanged; the CycleGAN's own optimizers are not used.
    """
    model, players, clf, a, b, x, y = _setup("alt", majority, batchnorm=batchnorm)
    gan = model.cycle_gan
    assert gan.stack_generator_calls == (not batchnorm)
    teacher = ref.copy(clf)

    def teacher_term(fake_a, fake_b):  # fakes in [-1, 1] -> the data range
        l_a, l_b = ref.classifier_losses(teacher, a, b, (fake_a + 1.0) / 2.0, (fake_b + 1.0) / 2.0, majority,
                                         training=False)
        return l_a + l_b

    expected = ref.cyclegan_step(players, 2.0 * a - 1.0, 2.0 * b - 1.0, LR, teacher_term=teacher_term)
    without = ref.cyclegan_step(players, 2.0 * a - 1.0, 2.0 * b - 1.0, LR)
    # The teacher's terms move the generators by more than the tolerance: a sign or weight error shows.
    assert not np.allclose(expected["weights"]["generator_ab"][0], without["weights"]["generator_ab"][0], atol=1e-4)
    assert not np.allclose(expected["weights"]["generator_ba"][0], without["weights"]["generator_ba"][0], atol=1e-4)

    # Eq. 7's classifier terms on this step's translations, term by term (inference mode: no state change).
    fake_a, fake_b = ((f + 1.0) / 2.0 for f in expected["fakes"])
    loss_a, loss_b, _, _ = model.classifier_losses(a, b, fake_a, fake_b, training=False)
    ref_a, ref_b = ref.classifier_losses(ref.copy(clf), a, b, fake_a, fake_b, majority, training=False)
    np.testing.assert_allclose(float(loss_a), float(ref_a), rtol=1e-5)
    np.testing.assert_allclose(float(loss_b), float(ref_b), rtol=1e-5)
    np.testing.assert_allclose(float(ref_a + ref_b), expected["terms"]["teacher"], rtol=1e-5)

    clf_before = _state(clf)
    phases = AlternatingPhases(1)
    logs = model.fit(x, y, batch_size=N, epochs=2, initial_epoch=1, verbose=0, callbacks=[phases]).history
    assert phases.phases == [1]

    for key, value in expected["logs"].items():
        np.testing.assert_allclose(logs[key][-1], value, rtol=1e-5, err_msg=key)
    for name in ref.GAN_PLAYERS:
        ref.assert_weights(getattr(model, name).trainable_variables, expected["weights"][name], name)
        assert int(getattr(model, f"{name}_optimizer").iterations) == 1, name
        assert int(getattr(gan, f"{name}_optimizer").iterations) == 0, name
    _assert_same(clf_before, _state(clf), "classifier (weights and moving statistics)")
    assert int(model.classifier_optimizer.iterations) == 0


def _np_log_softmax(logits):
    logits = np.asarray(logits, "float64")
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _np_natural_eq6(real_logits, translated_logits, y, majority, gamma):
    """Eq. 6 per sample over a natural-order batch, in NumPy: the mean over the batch of

    a (y = majority): (1/gamma) * -log P(majority | a) - log P(minority | G_AB(a));
    b (y = minority): -log P(minority | b) + (1/gamma) * -log P(majority | G_BA(b)).
    """
    minority = 1 - majority
    lr, lt = _np_log_softmax(real_logits), _np_log_softmax(translated_logits)
    is_b = np.asarray(y) == minority
    real = np.where(is_b, -lr[:, minority], -lr[:, majority] / gamma)
    translated = np.where(is_b, -lt[:, majority] / gamma, -lt[:, minority])
    return float(np.mean(real + translated))


def test_natural_stream_loss_is_eq_6_per_sample_over_the_batch():
    """`stream="natural"`: eq. 6 with the real images weighted as in the data (1/gamma on every L^A term).

    Checked against NumPy on a hand-made batch of 3 majority and 1 minority
    images (the natural proportions of gamma = 3): the model's loss in
    inference mode, then one SGD step of `fit` on that batch (the
    `classifier_loss` log = the formula on the training-mode logits; only the
    classifier steps). Over a natural epoch the real a's weigh N_A / gamma =
    N_B, as the real b's do; the pair stream's value on the same images differs.
    """
    model, players, clf, a, b, _, _ = _setup("aug", 0, batchnorm=True, stream="natural")
    x = np.concatenate([a[:3], b[:1]])
    y = np.array([0, 0, 0, 1])
    fake_a, fake_b = _translate(players, a[:3], b[:1])  # G_BA(b), G_AB(a)
    translated = np.concatenate([fake_b, fake_a])  # each sample's own translation, in batch order
    twin = ref.copy(clf)
    logits = np.asarray(twin(tf.concat([x, translated], 0), training=False))
    expected = _np_natural_eq6(logits[:4], logits[4:], y, 0, GAMMA)
    loss, _ = model.natural_classifier_loss(tf.constant(x), tf.constant(y), training=False)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # Not the pair stream's L^B + L^A / gamma on the same images (the other reading).
    l_a, l_b, _, _ = model.classifier_losses(a[:3], b[:1], fake_a, fake_b, training=False)
    assert abs(float(l_b + l_a / GAMMA) - expected) > 1e-3

    train_logits = np.asarray(ref.copy(clf)(tf.concat([x, translated], 0), training=True))
    frozen = {n: _state(getattr(model, n)) for n in ref.GAN_PLAYERS}
    logs = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["classifier_loss"][-1], _np_natural_eq6(train_logits[:4], train_logits[4:], y, 0, GAMMA),
                               rtol=1e-5)
    assert int(model.classifier_optimizer.iterations) == 1
    for name in ref.GAN_PLAYERS:
        _assert_same(frozen[name], _state(getattr(model, name)), name)
    assert model.get_config()["stream"] == "natural" and model.epoch_steps(4) == 4  # ceil(16 / 4): N_A + N_B


def test_natural_stream_is_aug_mode_only():
    with pytest.raises(ValueError, match="AUG mode only"):
        _setup("alt", 0, batchnorm=False, stream="natural")
