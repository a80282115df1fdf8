"""CycleGAN: one training step, player by player, against an independent reference (eqs. 1-3).

The reference (tests/models/cyclegan_reference.py) recomputes the step in
plain TensorFlow on copies of tiny players, from the paper's equations and
the CycleGAN recipe (least squares, beta = 10, alpha = 5, D loss x 0.5,
history pool). Every player uses SGD(momentum=0), so one step is
`w - lr * grad`; each player's weights after `fit` must equal the reference
update of its own objective.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance.models import CycleGAN
from tests.models import cyclegan_reference as ref

LR = 0.1
N = 4


def _batch():
    return ref.images(N, 1), ref.images(N, 2)


def _cycle_gan(players, pool_size=0, **kwargs):
    return CycleGAN(*(players[n] for n in ref.GAN_PLAYERS), pool_size=pool_size, value_range=(0.0, 1.0), seed=0,
                    **kwargs)


def _fit_one_step(gan, a, b):
    gan.compile(**{f"{n}_optimizer": keras.optimizers.SGD(learning_rate=LR, momentum=0.0) for n in ref.GAN_PLAYERS},
                run_eagerly=True)
    history = gan.fit(tf.data.Dataset.from_tensors((a, b)), epochs=1, verbose=0).history
    return {k: v[-1] for k, v in history.items()}


@pytest.mark.parametrize("batchnorm", [False, True], ids=["stacked", "batchnorm"])
def test_one_step_matches_the_reference_for_every_player(batchnorm):
    """Eqs. 1-3 in least-squares form, beta = 10 (cycle), alpha = 5 (identity), D loss 0.5 (real -> 1, fake -> 0).

    Pool size 0, so each discriminator sees this step's fakes. Checked:
    every loss term (`generator_losses`, `discriminator_loss`), the tracked
    `<player>_loss` logs, and each player's weights after one SGD step
    (generators: both step on the joint L_G; discriminators: each on its
    own halved LS loss). Without BatchNormalization the package stacks a
    network's calls on independent inputs; with it, it calls once per
    input: both paths must give the reference numbers.
    """
    players = ref.gan_players(batchnorm)
    a, b = _batch()
    a_g, b_g = 2.0 * a - 1.0, 2.0 * b - 1.0  # (0, 1) data -> the generators' [-1, 1]
    expected = ref.cyclegan_step(players, a_g, b_g, LR)
    gan = _cycle_gan(players)
    assert gan.stack_generator_calls == gan.stack_discriminator_calls == (not batchnorm)

    # Term by term, on the starting weights.
    terms, fake_a, fake_b = gan.generator_losses(a_g, b_g, training=True)
    for key in ("adversarial_ab", "adversarial_ba", "cycle_a", "cycle_b", "identity_ab", "identity_ba",
                "generator_ab", "generator_ba"):
        np.testing.assert_allclose(float(terms[key]), expected["terms"][key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(np.asarray(fake_a), expected["fakes"][0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(fake_b), expected["fakes"][1], atol=1e-6)
    for name, real, fake in (("discriminator_a", a_g, expected["fakes"][0]), ("discriminator_b", b_g, expected["fakes"][1])):
        got = float(gan.discriminator_loss(getattr(gan, name), real, fake))
        np.testing.assert_allclose(got, expected["terms"][name], rtol=1e-5, err_msg=name)

    logs = _fit_one_step(gan, a, b)
    assert set(logs) == set(expected["logs"])
    for key, value in expected["logs"].items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-5, err_msg=key)
    for name in ref.GAN_PLAYERS:
        ref.assert_weights(getattr(gan, name).trainable_variables, expected["weights"][name], name)
        assert int(getattr(gan, f"{name}_optimizer").iterations) == 1, name


def test_discriminators_train_on_the_history_pool_output():
    """The discriminators' fake inputs come through the image pool (CycleGAN recipe, Shrivastava et al.).

    A pool of one stored image Q with swap probability 1 is deterministic:
    image 0 of the batch is swapped for Q, image i >= 1 for image i - 1's
    fake (just written to the only slot), and the pool ends holding the
    last fake. So D_A must see [Q_a, G_BA(b)[:-1]] and D_B
    [Q_b, G_AB(a)[:-1]] (not this step's fakes), and the generators'
    update is unaffected. This test also sets beta = 3 and alpha = 0 (no
    identity term): the constructor's weights must be the ones used.
    """
    players = ref.gan_players(batchnorm=False)
    a, b = _batch()
    a_g, b_g = 2.0 * a - 1.0, 2.0 * b - 1.0
    stored = {"a": ref.images(1, 3) * 2.0 - 1.0, "b": ref.images(1, 4) * 2.0 - 1.0}
    gan = _cycle_gan(players, pool_size=1, cycle_weight=3.0, identity_weight=0.0)
    for key, pool in (("a", gan.pool_a), ("b", gan.pool_b)):
        pool.images.assign(stored[key])
        pool.count.assign(1)
        pool.swap_probability = 1.0

    def pooled(key, fakes):
        return np.concatenate([stored[key], fakes[:-1]], axis=0)

    expected = ref.cyclegan_step(players, a_g, b_g, LR, alpha=0.0, beta=3.0, pool=pooled)
    logs = _fit_one_step(gan, a, b)
    for key, value in expected["logs"].items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-5, err_msg=key)
    for name in ref.GAN_PLAYERS:
        ref.assert_weights(getattr(gan, name).trainable_variables, expected["weights"][name], name)
    fake_a, fake_b = expected["fakes"]
    np.testing.assert_allclose(np.asarray(gan.pool_a.images), fake_a[-1:], atol=1e-6)
    np.testing.assert_allclose(np.asarray(gan.pool_b.images), fake_b[-1:], atol=1e-6)
    # The fresh-fakes reading gives other discriminator weights: the pool matters here.
    fresh = ref.cyclegan_step(players, a_g, b_g, LR, alpha=0.0, beta=3.0)
    assert not np.allclose(fresh["weights"]["discriminator_b"][0], expected["weights"]["discriminator_b"][0], atol=1e-4)
