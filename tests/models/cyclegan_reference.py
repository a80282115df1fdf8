"""An independent reference for one CycleGAN / ImbalanceCycleGAN training step (shares no code with the package).

Written from the ImbalanceCycleGAN paper (Sahoo et al. 2020, eqs. 1-7) and
the CycleGAN recipe it follows (Zhu et al. 2017): least-squares adversarial
loss, L1 cycle loss weighted beta = 10, L1 identity loss weighted alpha = 5,
discriminator loss halved, discriminators trained on the history pool's
output. Computed with plain TensorFlow on copies (`keras.models.clone_model`
+ weights) of tiny players built here, so the package's own code is never
called; one SGD(momentum=0) step is `w - lr * grad`.

Readings pinned here (the paper does not spell them out; they follow the
CycleGAN reference training, and the package documents the same):
- each loss term is its own forward pass (G_AB(a), G_AB(b), G_AB(G_BA(b)),
  D(real), D(fake) are separate calls: with BatchNormalization the batch
  statistics are those of that call's inputs);
- all networks run in training mode in the CycleGAN step, the
  discriminators too while the generators step;
- the discriminators see the fakes the generators made before their update;
- generators work in [-1, 1]; data in (0, 1) is mapped by 2x - 1.
"""

import keras
import numpy as np
import tensorflow as tf

SHAPE = (4, 4, 1)
PIXELS = 16
GAN_PLAYERS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")


def _dense(units, seed, activation=None):
    return keras.layers.Dense(units, activation=activation,
                              kernel_initializer=keras.initializers.RandomNormal(stddev=0.6, seed=seed),
                              bias_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=seed + 1000))


def _bn():
    # momentum 0.5: one training call moves the moving statistics far.
    return keras.layers.BatchNormalization(momentum=0.5)


def _trunk(inputs, units, seed, batchnorm):
    """Flatten -> Dense(units) [-> BN] -> tanh: the first half of every tiny player."""
    h = _dense(units, seed)(keras.layers.Flatten()(inputs))
    if batchnorm:
        h = _bn()(h)
    return keras.layers.Activation("tanh")(h)


def generator(seed, batchnorm, name):
    """4x4x1 -> 4x4x1 in (-1, 1): Dense(8) [-> BN] -> tanh -> Dense(16, tanh)."""
    inputs = keras.Input(SHAPE)
    h = _dense(PIXELS, seed + 1, "tanh")(_trunk(inputs, 8, seed, batchnorm))
    return keras.Model(inputs, keras.layers.Reshape(SHAPE)(h), name=name)


def discriminator(seed, batchnorm, name):
    """4x4x1 -> (B, 2) patch scores: Dense(4) [-> BN] -> tanh -> Dense(2)."""
    inputs = keras.Input(SHAPE)
    return keras.Model(inputs, _dense(2, seed + 1)(_trunk(inputs, 4, seed, batchnorm)), name=name)


def classifier(seed, name="classifier"):
    """4x4x1 -> 2 logits: Dense(6) -> BN -> tanh -> Dense(2) (no dropout: deterministic)."""
    inputs = keras.Input(SHAPE)
    h = _bn()(_dense(6, seed)(keras.layers.Flatten()(inputs)))
    h = keras.layers.Activation("tanh")(h)
    return keras.Model(inputs, _dense(2, seed + 1)(h), name=name)


def gan_players(batchnorm, seed=0):
    return {
        "generator_ab": generator(seed + 10, batchnorm, "g_ab"),
        "generator_ba": generator(seed + 20, batchnorm, "g_ba"),
        "discriminator_a": discriminator(seed + 30, batchnorm, "d_a"),
        "discriminator_b": discriminator(seed + 40, batchnorm, "d_b"),
    }


def copy(model):
    """A separate model with the same architecture and the same weights (moving statistics included)."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def values(variables):
    return [np.array(v) for v in variables]


def images(n, seed):
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, *SHAPE)).astype("float32")


def sgd(variables, grads, lr):
    return [np.array(v) - lr * np.array(g) for v, g in zip(variables, grads)]


def cyclegan_step(players, a, b, lr, alpha=5.0, beta=10.0, pool=None, teacher_term=None):
    """One CycleGAN step (eqs. 1-3, LS form, recipe of [50]) on copies of `players`.

    Args:
        players: {name: model} of the four GAN players (copied, not modified).
        a, b: images in [-1, 1] (the generators' range).
        lr: SGD learning rate.
        pool: None (pool of size 0: D sees this step's fakes), or a function
            (name "a"/"b", fakes) -> the images the discriminator must see.
        teacher_term: None, or f(fake_a, fake_b) -> scalar added to the
            generators' objective (eq. 7's classifier terms).

    Returns a dict: `terms` (scalars), `logs` (expected tracker values),
    `weights` {player: trainable weights after the step}, `fakes` (fake_a, fake_b).
    """
    p = {name: copy(model) for name, model in players.items()}
    g_ab, g_ba, d_a, d_b = (p[n] for n in GAN_PLAYERS)
    a, b = tf.constant(a), tf.constant(b)
    g_vars = g_ab.trainable_variables + g_ba.trainable_variables
    with tf.GradientTape() as tape:
        fake_b = g_ab(a, training=True)  # G_AB(a)
        fake_a = g_ba(b, training=True)  # G_BA(b)
        t = {
            # Least-squares generator targets: D(fake) -> 1.
            "adversarial_ab": tf.reduce_mean(tf.square(d_b(fake_b, training=True) - 1.0)),
            "adversarial_ba": tf.reduce_mean(tf.square(d_a(fake_a, training=True) - 1.0)),
            # Eqs. 1-2: |G_BA(G_AB(a)) - a|_1, |G_AB(G_BA(b)) - b|_1 (per-pixel means).
            "cycle_a": tf.reduce_mean(tf.abs(g_ba(fake_b, training=True) - a)),
            "cycle_b": tf.reduce_mean(tf.abs(g_ab(fake_a, training=True) - b)),
            # Eq. 3: |G_AB(b) - b|_1 + |G_BA(a) - a|_1.
            "identity_ab": tf.reduce_mean(tf.abs(g_ab(b, training=True) - b)),
            "identity_ba": tf.reduce_mean(tf.abs(g_ba(a, training=True) - a)),
        }
        t["generator_ab"] = t["adversarial_ab"] + beta * t["cycle_a"] + alpha * t["identity_ab"]
        t["generator_ba"] = t["adversarial_ba"] + beta * t["cycle_b"] + alpha * t["identity_ba"]
        objective = t["generator_ab"] + t["generator_ba"]
        if teacher_term is not None:
            t["teacher"] = teacher_term(fake_a, fake_b)
            objective = objective + t["teacher"]
    grads = tape.gradient(objective, g_vars)
    n_ab = len(g_ab.trainable_variables)
    weights = {"generator_ab": sgd(g_vars[:n_ab], grads[:n_ab], lr), "generator_ba": sgd(g_vars[n_ab:], grads[n_ab:], lr)}

    fake_a, fake_b = np.array(fake_a), np.array(fake_b)
    seen_a = fake_a if pool is None else pool("a", fake_a)
    seen_b = fake_b if pool is None else pool("b", fake_b)
    for name, d, real, fake in (("discriminator_a", d_a, a, seen_a), ("discriminator_b", d_b, b, seen_b)):
        with tf.GradientTape() as tape:
            # Least squares, real -> 1, fake -> 0, halved.
            loss = 0.5 * (tf.reduce_mean(tf.square(d(real, training=True) - 1.0))
                          + tf.reduce_mean(tf.square(d(tf.constant(fake), training=True))))
        t[name] = loss
        weights[name] = sgd(d.trainable_variables, tape.gradient(loss, d.trainable_variables), lr)
    terms = {k: float(v) for k, v in t.items()}
    logs = {f"{n}_loss": terms[n] for n in GAN_PLAYERS}
    return {"terms": terms, "logs": logs, "weights": weights, "fakes": (fake_a, fake_b)}


def classifier_losses(clf, a, b, fake_a, fake_b, majority, training):
    """Eqs. 4-5 with a two-logit classifier, z = softmax[minority]; one call on all four groups.

    L^B = -E_b log z(b) - E_a log z(G_AB(a)); L^A = -E_a log(1 - z(a)) - E_b log(1 - z(G_BA(b))).
    Inputs in the data range. Returns (L^A, L^B) as tensors (differentiable).
    """
    minority = 1 - majority
    groups = [a, fake_a, b, fake_b]
    logits = clf(tf.concat([tf.convert_to_tensor(g) for g in groups], axis=0), training=training)
    log_p = tf.nn.log_softmax(logits, axis=-1)
    sizes = [int(g.shape[0]) for g in groups]
    lp_a, lp_fake_a, lp_b, lp_fake_b = tf.split(log_p, sizes, axis=0)
    loss_a = -tf.reduce_mean(lp_a[:, majority]) - tf.reduce_mean(lp_fake_a[:, majority])
    loss_b = -tf.reduce_mean(lp_b[:, minority]) - tf.reduce_mean(lp_fake_b[:, minority])
    return loss_a, loss_b


def assert_weights(got, expected, what, atol=1e-5):
    assert len(got) == len(expected), what
    for i, (u, v) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(np.array(u), v, rtol=0, atol=atol, err_msg=f"{what} variable {i}")
