"""Player-level step tests for PolarityGAN: stage 1 and one step of Algorithm 1 against references written here.

Deepshikha & Naman (2021): eq. 3 (the convex generator G), eq. 5 (the critic D), eq. 6 (the classifier C),
Algorithm 1 (one training round), Sec. 4 (the autoencoder initialization). Where the paper is ambiguous the
test pins the reading documented in `PolarityGAN`'s docstring (eq. 5 with both terms weighted by the deficit
through the sampled labels, eq. 6 with the positive-term weights realized by sampling, WGAN's n_critic reading
of the "for j steps" loop, G's two losses the negated eq. 6 generated terms and -mean D).

Every player is a tiny network with a BatchNormalization layer, and every player has its own plain SGD
(momentum 0, a different learning rate each), so one update is w - lr * grad. The references are plain
TensorFlow (float64) forward passes and GradientTapes on copies of the weights; they share no code with the
package. The random draws of `train_step` (generated labels, eps, the critic's real samples, the interpolation
weights) are read from what the players received: an identity "tap" layer at each player's input logs its
inputs, its `training` flag and a snapshot of every player's state (all weights, BN moving statistics,
optimizer iterations) at the moment of the call, so each sub-update is checked on its own.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from scipy import stats

from keras_imbalance.layers.convex_autoencoder import GaussianConvexGenerator
from keras_imbalance.models import PolarityGAN

FEATURES, LATENT, CLASSES = 4, 3, 3
COUNTS = [4, 7, 3]  # the majority is class 1; classes 0 and 2 are generated
MINORITY = (0, 2)
LR = {"classifier": 0.1, "critic": 0.05, "generator": 0.2}
LAMBDA = 7.0  # not the default 10, so a hard-coded coefficient fails
BN_EPS = 1e-3  # keras.layers.BatchNormalization's default epsilon
PLAYERS = ("classifier", "critic", "generator")


# Recording ----------------------------------------------------------------------------------------------


class _Log:
    def __init__(self):
        self.events, self.losses, self.active, self.model = [], [], False, None

    def record(self, player, inputs, training):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self.events.append(
            {"player": player, "inputs": [np.asarray(t) for t in inputs], "training": training,
             "state": _state(self.model)}
        )


class _Tap(keras.layers.Layer):
    """Identity; when executed eagerly and the log is active, logs the player's inputs and everyone's state."""

    def __init__(self, player, log, **kwargs):
        super().__init__(**kwargs)
        self.player = player
        self.log = log

    def call(self, inputs, training=None):
        if tf.executing_eagerly() and self.log.active:
            self.log.record(self.player, inputs, training)
        return inputs


def _state(model):
    out = {}
    for name in PLAYERS:
        player = getattr(model, name)
        out[name] = {v.path: np.array(v) for v in player.weights}
        assert len(out[name]) == len(player.weights), "variable paths must be unique for the snapshot"
        out[f"{name}_iterations"] = int(getattr(model, f"{name}_optimizer").iterations)
    return out


# Tiny players ------------------------------------------------------------------------------------------------


def _classifier(log):
    x_in = keras.Input((FEATURES,))
    h = _Tap("classifier", log, name="c_tap")(x_in)
    h = layers.Dense(5, name="c_dense")(h)
    h = layers.BatchNormalization(name="c_bn")(h)
    h = layers.ReLU(name="c_relu")(h)
    return keras.Model(x_in, layers.Dense(CLASSES, name="c_out")(h), name="tiny_classifier")


def _critic(log):
    x_in, c_in = keras.Input((FEATURES,)), keras.Input((CLASSES,))
    x, c = _Tap("critic", log, name="d_tap")([x_in, c_in])
    h = layers.Concatenate(name="d_concat")([x, c])
    h = layers.Dense(6, name="d_dense")(h)
    h = layers.BatchNormalization(name="d_bn")(h)
    h = layers.LeakyReLU(0.2, name="d_lrelu")(h)
    return keras.Model([x_in, c_in], layers.Dense(1, name="d_out")(h), name="tiny_critic")


def _generator(log, counts):
    eps_in, labels_in = keras.Input((LATENT,)), keras.Input((), dtype="int32")
    eps, labels = _Tap("generator", log, name="g_tap")([eps_in, labels_in])
    convex = GaussianConvexGenerator(counts, (FEATURES,), latent_dim=LATENT, hidden_units=(5,), name="g_convex")
    out = convex([eps, labels])
    return keras.Model([eps_in, labels_in], out, name="tiny_generator")


def _randomize(player, rng):
    """Random weights everywhere, BN moving statistics far from 0 / 1, so training and inference modes differ."""
    for v in player.weights:
        name = v.path.rsplit("/", 1)[-1]
        shape = tuple(v.shape)
        value = {
            "kernel": lambda: rng.normal(0, 0.7, shape),
            "bias": lambda: rng.normal(0, 0.3, shape),
            "gamma": lambda: rng.uniform(0.6, 1.4, shape),
            "beta": lambda: rng.normal(0, 0.3, shape),
            "moving_mean": lambda: rng.normal(0, 0.5, shape),
            "moving_variance": lambda: rng.uniform(0.4, 2.0, shape),
        }.get(name)
        if value is not None:
            v.assign(value().astype("float32"))


def _data(counts, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype("int32")
    x = rng.normal(0, 1, (len(y), FEATURES)).astype("float32")
    return x, y


def _deficit(counts):
    priors = np.asarray(counts, "float64") / np.sum(counts)
    return priors.max() - priors  # p_k - p_i


def _build(counts=COUNTS, seed=0):
    """A PolarityGAN over the tiny players, adapted, random latent Gaussians, SGD per player, eager."""
    log = _Log()
    rng = np.random.default_rng(seed)
    C, D, G = _classifier(log), _critic(log), _generator(log, counts)
    for player in (C, D, G):
        _randomize(player, rng)
    model = PolarityGAN(C, D, generator=G, latent_dim=LATENT, hidden_units=(5,), autoencoder_epochs=0,
                        critic_steps=2, gradient_penalty=LAMBDA, seed=3)
    x, y = _data(counts, seed)
    model.adapt(x, y)
    means = rng.normal(0, 1, (CLASSES, LATENT))
    scales = np.tril(rng.normal(0, 0.4, (CLASSES, LATENT, LATENT)), -1)
    scales += np.eye(LATENT) * rng.uniform(0.5, 1.5, (CLASSES, 1, LATENT))
    model.convex_generator.set_latent_gaussians(means, scales)
    model.compile(**{f"{n}_optimizer": keras.optimizers.SGD(LR[n], momentum=0.0) for n in PLAYERS}, run_eagerly=True)
    log.model = model
    # The loss each optimizer step receives, in order (`apply_player_gradients`, the documented place where a
    # tape meets an optimizer).
    apply = model.apply_player_gradients

    def recording_apply(name, tape, loss, *args, **kwargs):
        log.losses.append((name, float(loss)))
        return apply(name, tape, loss, *args, **kwargs)

    model.apply_player_gradients = recording_apply
    return model, log, x, y


def _one_step(model, log, xb, yb):
    log.active = True
    try:
        logs = model.train_on_batch(xb, yb, return_dict=True)
    finally:
        log.active = False
    return {k: float(np.asarray(v)) for k, v in logs.items()}, _state(model)


# References (TensorFlow float64, written from the paper) ------------------------------------------------------


def _t(a):
    return tf.constant(np.asarray(a, "float64"))


def _bn(h, p, name, training):
    if training:
        # Batch statistics (biased variance). tf.nn.moments, as Keras' BN does: it stops the gradient of the
        # mean inside the variance, which is exact to first order but not in the second-order gradient that
        # the gradient penalty takes through the critic's BN; the exact second derivative would differ.
        mean, var = tf.nn.moments(h, axes=[0])
    else:
        mean, var = p[f"{name}/moving_mean"], p[f"{name}/moving_variance"]
    return p[f"{name}/gamma"] * (h - mean) / tf.sqrt(var + BN_EPS) + p[f"{name}/beta"]


def _dense(h, p, name):
    return h @ p[f"{name}/kernel"] + p[f"{name}/bias"]


def ref_classifier(p, x, training):
    """C(x): logits."""
    h = _bn(_dense(_t(x) if not tf.is_tensor(x) else x, p, "c_dense"), p, "c_bn", training)
    return _dense(tf.nn.relu(h), p, "c_out")


def ref_critic(p, x, onehot, training):
    """D(x | i), (B,)."""
    x = _t(x) if not tf.is_tensor(x) else x
    h = _bn(_dense(tf.concat([x, _t(onehot)], axis=1), p, "d_dense"), p, "d_bn", training)
    h = tf.where(h > 0, h, 0.2 * h)
    return _dense(h, p, "d_out")[:, 0]


def ref_generator(p, eps, labels, training):
    """Eq. 3 with the class-conditional latent: sum_j softmax(P_k(Q([mu_k + L_k eps, onehot k])))_j x_j."""
    labels = np.asarray(labels).astype("int64")
    z = tf.gather(p["g_convex/latent_mean"], labels) + tf.einsum(
        "bij,bj->bi", tf.gather(p["g_convex/latent_scale"], labels), _t(eps))
    h = tf.concat([z, _t(np.eye(CLASSES)[labels])], axis=1)
    h = _bn(tf.nn.relu(_dense(h, p, "ctmu_dense1")), p, "ctmu_bn1", training)
    rows = []
    for b, k in enumerate(labels):
        w = tf.nn.softmax(_dense(h[b : b + 1], p, f"igu_{k}"), axis=-1)
        rows.append(w @ p[f"g_convex/bank_{k}"])
    return tf.concat(rows, axis=0)


def ref_eq6(logits, labels, deficit):
    """Eq. 6 per sample, batch mean: -log C_i(x) - sum_{j != i} (p_k - p_j) log(1 - C_j(x))."""
    p = tf.nn.softmax(logits, axis=-1)
    onehot = _t(np.eye(CLASSES)[np.asarray(labels).astype("int64")])
    positive = -tf.reduce_sum(onehot * tf.math.log(p), axis=1)
    negative = -tf.reduce_sum((1.0 - onehot) * _t(deficit)[None] * tf.math.log(1.0 - p), axis=1)
    return tf.reduce_mean(positive + negative)


def ref_critic_loss(p, real, fake, onehot, alpha, lam):
    """Eq. 5 as documented (minimized): mean D(G(z|i)|i) - mean D(x|i) + lam * E[(||grad D(x_hat|i)|| - 1)^2]."""
    a = _t(alpha)[:, None]
    x_hat = a * _t(real) + (1.0 - a) * _t(fake)
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        out = tf.reduce_sum(ref_critic(p, x_hat, onehot, True))
    grad = inner.gradient(out, x_hat)
    penalty = tf.reduce_mean(tf.square(tf.norm(grad, axis=1) - 1.0))
    loss = tf.reduce_mean(ref_critic(p, fake, onehot, True)) - tf.reduce_mean(ref_critic(p, real, onehot, True))
    return loss + lam * penalty, penalty


def _params(state, player, model):
    """float64 copies of a player's weights: tf.Variables for the trainable ones, constants for the rest."""
    trainable = [v.path for v in getattr(model, player).trainable_weights]
    params = {k: tf.Variable(np.asarray(v, "float64")) if k in trainable else _t(v) for k, v in state[player].items()}
    return params, trainable


def ref_sgd_step(state, player, model, loss_fn):
    """One step of plain SGD on loss_fn(params): returns (loss, {path: new value}, extra outputs)."""
    params, trainable = _params(state, player, model)
    with tf.GradientTape() as tape:
        loss, *extra = loss_fn(params)
    grads = tape.gradient(loss, [params[k] for k in trainable])
    assert all(g is not None for g in grads), f"a trainable weight of {player} gets no gradient"
    new = {k: params[k].numpy() - LR[player] * g.numpy() for k, g in zip(trainable, grads)}
    return float(loss), new, [float(e) for e in extra]


def _assert_weights(state, player, expected, atol=1e-5):
    for path, value in expected.items():
        np.testing.assert_allclose(state[player][path], value, atol=atol, err_msg=f"{player} {path}")


def _assert_frozen(before, after, player):
    """Weights, BN moving statistics (all of `player.weights`) and optimizer iterations unchanged, bit for bit."""
    for path, value in before[player].items():
        np.testing.assert_array_equal(after[player][path], value, err_msg=f"frozen {player} changed {path}")
    assert after[f"{player}_iterations"] == before[f"{player}_iterations"], f"frozen {player}'s optimizer stepped"


def _alpha_of(x_hat, real, fake):
    """The interpolation weight of each row (projection on the segment), and the distance off the segment."""
    d = real.astype("float64") - fake
    alpha = np.sum((x_hat - fake) * d, axis=1) / np.sum(d * d, axis=1)
    off = np.abs(x_hat - (alpha[:, None] * real + (1 - alpha[:, None]) * fake)).max()
    return alpha, off


def _is_stored_sample_of(rows, labels, x, y):
    return all(np.any(np.all(np.isclose(x[y == k], row, atol=1e-6), axis=1)) for row, k in zip(rows, labels))


# One step of Algorithm 1 ----------------------------------------------------------------------------------

# Expected player calls of one train_step (pixel space, critic_steps = 2), as (player, training):
SEQUENCE = [
    ("classifier", True),  # line 4: C on the real batch
    ("generator", False),  # lines 5-6: G samples deficit-proportional labels, inference mode
    ("classifier", True),  # line 7: C on the generated samples
    ("critic", True), ("critic", True), ("critic", True),  # critic step 1: real, generated, interpolated
    ("generator", False),  # fresh generated samples for critic step 2
    ("critic", True), ("critic", True), ("critic", True),  # critic step 2
    ("generator", True), ("classifier", False),  # line 10: G against frozen C
    ("generator", True), ("critic", False),  # line 11: G against frozen D
]
BATCH = [0, 5, 11, 6, 12, 1]  # rows of every class


@pytest.fixture(scope="module")
def step():
    keras.utils.set_random_seed(0)
    model, log, x, y = _build()
    logs, final = _one_step(model, log, x[BATCH], y[BATCH])
    ev = log.events
    return {"model": model, "log": log, "x": x, "y": y, "logs": logs, "final": final, "ev": ev,
            "S": [e["state"] for e in ev] + [final]}


def test_players_are_called_in_algorithm_1_order_with_their_modes(step):
    """Algorithm 1's order: C on real data (line 4), G -> C (lines 5-7), critic_steps critic updates, G vs C
    (line 10), G vs D (line 11); G only generates in inference mode, and frozen C / D run in inference mode."""
    assert [(e["player"], e["training"]) for e in step["ev"]] == SEQUENCE
    assert [name for name, _ in step["log"].losses] == ["classifier"] * 2 + ["critic"] * 2 + ["generator"] * 2


def test_classifier_steps_are_eq6_on_real_then_generated_samples(step):
    """Alg. 1 lines 4 and 7: one SGD step of C on eq. 6 over the real batch, then one on G's samples.

    Eq. 6 as implemented and documented: -log C_i - sum_{j != i} (p_k - p_j) log(1 - C_j) per sample, with the
    positive weights (p_i, the deficit) realized by the sampled labels. The generated samples are G's output in
    inference mode for the labels and eps G received.
    """
    model, ev, S, x, y = step["model"], step["ev"], step["S"], step["x"], step["y"]
    deficit = _deficit(COUNTS)
    xb, yb = x[BATCH], y[BATCH]
    np.testing.assert_array_equal(ev[0]["inputs"][0], xb)
    loss_real, c1, _ = ref_sgd_step(S[0], "classifier", model,
                                    lambda p: (ref_eq6(ref_classifier(p, xb, True), yb, deficit),))
    _assert_weights(S[1], "classifier", c1)

    eps, labels = ev[1]["inputs"]
    assert set(labels.tolist()) <= set(MINORITY)
    g_params, _ = _params(S[1], "generator", model)
    fakes = ref_generator(g_params, eps, labels, training=False).numpy()
    np.testing.assert_allclose(ev[2]["inputs"][0], fakes, atol=1e-5)  # C saw G's samples
    loss_fake, c2, _ = ref_sgd_step(S[2], "classifier", model,
                                    lambda p: (ref_eq6(ref_classifier(p, fakes, True), labels, deficit),))
    _assert_weights(S[3], "classifier", c2)

    got = [loss for name, loss in step["log"].losses if name == "classifier"]
    np.testing.assert_allclose(got, [loss_real, loss_fake], rtol=1e-5)
    assert step["logs"]["classifier_loss"] == pytest.approx((loss_real + loss_fake) / 2, rel=1e-5)


def test_critic_steps_are_eq5_with_the_gradient_penalty(step):
    """critic_steps updates of D, each on eq. 5 (documented reading) + lambda * GP (Gulrajani et al. 2017).

    Loss minimized: mean D(G(z|i)|i) - mean D(x|i) + lambda E[(||grad_x D(x_hat|i)||_2 - 1)^2], x_hat on the
    segment between a real and a generated sample of the same class; the real samples are stored samples of
    the generated labels' classes (so both terms weigh class i by the deficit), fresh labels / samples per step.
    """
    model, ev, S, x, y = step["model"], step["ev"], step["S"], step["x"], step["y"]
    losses, penalties = [], []
    for k, (g_event, first) in enumerate(((1, 3), (6, 7))):
        eps, labels = ev[g_event]["inputs"]
        assert set(labels.tolist()) <= set(MINORITY)
        g_params, _ = _params(S[g_event], "generator", model)
        fakes = ref_generator(g_params, eps, labels, training=False).numpy()
        (real, oh_r), (fake, oh_f), (x_hat, oh_i) = (ev[first + j]["inputs"] for j in range(3))
        onehot = np.eye(CLASSES)[labels]
        for oh in (oh_r, oh_f, oh_i):
            np.testing.assert_array_equal(oh, onehot)  # D(. | i) with the generated labels
        np.testing.assert_allclose(fake, fakes, atol=1e-5)  # the generated term sees G's samples
        assert _is_stored_sample_of(real, labels, x, y), "the real term must see stored samples of the same classes"
        alpha, off = _alpha_of(x_hat, real, fake)
        # x_hat on the segment, strictly between its real and generated ends (a ~ U(0, 1) is never 0 or 1 here).
        assert off < 1e-5 and np.all(alpha > 1e-4) and np.all(alpha < 1 - 1e-4)
        loss, new, (penalty,) = ref_sgd_step(S[first], "critic", model,
                                             lambda p: ref_critic_loss(p, real, fake, onehot, alpha, LAMBDA))
        after = S[first + 3]  # the next event's snapshot: after this critic update
        _assert_weights(after, "critic", new)
        # The gradient penalty really is in the critic's gradient: without it the update differs.
        _, without, _ = ref_sgd_step(S[first], "critic", model,
                                     lambda p: ref_critic_loss(p, real, fake, onehot, alpha, 0.0))
        assert max(np.abs(without[p] - after["critic"][p]).max() for p in without) > 1e-3
        losses.append(loss)
        penalties.append(penalty)
    assert not np.allclose(ev[1]["inputs"][0], ev[6]["inputs"][0]), "each critic step draws fresh eps"
    assert S[-1]["critic_iterations"] == 2  # critic_steps updates per train step
    got = [loss for name, loss in step["log"].losses if name == "critic"]
    np.testing.assert_allclose(got, losses, rtol=1e-5)
    assert step["logs"]["critic_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert step["logs"]["gradient_penalty"] == pytest.approx(np.mean(penalties), rel=1e-5)
    assert min(penalties) > 1e-3


def test_generator_steps_against_frozen_classifier_then_frozen_critic(step):
    """Alg. 1 lines 10 and 11, one SGD step each on the same eps and labels (uniform over the generated classes).

    Line 10: G minimizes the negated eq. 6 generated terms, -l_eq6(C(G(z|i)), i), C in inference mode.
    Line 11: G minimizes -mean D(G(z|i) | i) (Wasserstein, target "1"), D in inference mode, after line 10's step.
    """
    model, ev, S = step["model"], step["ev"], step["S"]
    deficit = _deficit(COUNTS)
    eps, labels = ev[10]["inputs"]
    assert set(labels.tolist()) <= set(MINORITY)
    c_params, _ = _params(S[10], "classifier", model)
    g_params, _ = _params(S[10], "generator", model)
    np.testing.assert_allclose(ev[11]["inputs"][0], ref_generator(g_params, eps, labels, True).numpy(), atol=1e-5)
    loss_c, g1, _ = ref_sgd_step(
        S[10], "generator", model,
        lambda p: (-ref_eq6(ref_classifier(c_params, ref_generator(p, eps, labels, True), False), labels, deficit),))
    _assert_weights(S[12], "generator", g1)

    eps2, labels2 = ev[12]["inputs"]
    np.testing.assert_array_equal(eps2, eps)  # X'' and Y'' of lines 8-9 serve both updates
    np.testing.assert_array_equal(labels2, labels)
    d_params, _ = _params(S[12], "critic", model)
    g_params, _ = _params(S[12], "generator", model)
    np.testing.assert_allclose(ev[13]["inputs"][0], ref_generator(g_params, eps, labels, True).numpy(), atol=1e-5)
    np.testing.assert_array_equal(ev[13]["inputs"][1], np.eye(CLASSES)[labels])
    onehot = np.eye(CLASSES)[labels]
    loss_d, g2, _ = ref_sgd_step(
        S[12], "generator", model,
        lambda p: (-tf.reduce_mean(ref_critic(d_params, ref_generator(p, eps, labels, True), onehot, False)),))
    _assert_weights(S[-1], "generator", g2)

    got = [loss for name, loss in step["log"].losses if name == "generator"]
    np.testing.assert_allclose(got, [loss_c, loss_d], rtol=1e-5)
    assert step["logs"]["generator_loss"] == pytest.approx((loss_c + loss_d) / 2, rel=1e-5)


def test_frozen_players_keep_weights_bn_statistics_and_optimizer_iterations(step):
    """Alg. 1: each update keeps the other players fixed ("keeping G fixed", "keeping C fixed", ...).

    Checked between consecutive snapshots: all weights (BN moving statistics included) and the optimizer
    iterations of every player that is not being updated, and of G whenever it only generates (inference mode).
    """
    S = step["S"]
    # C's real step (S0 -> S1): D and G frozen.
    for p in ("critic", "generator"):
        _assert_frozen(S[0], S[1], p)
    assert (S[1]["classifier_iterations"], S[3]["classifier_iterations"]) == (1, 2)
    # G generates for C and C steps on the samples (S1 -> S3): G (BN statistics included) and D frozen.
    for p in ("critic", "generator"):
        _assert_frozen(S[1], S[3], p)
    # The critic steps (S3 -> S10): C and G frozen, G's generation for step 2 included.
    for p in ("classifier", "generator"):
        _assert_frozen(S[3], S[10], p)
    assert (S[6]["critic_iterations"], S[10]["critic_iterations"]) == (1, 2)
    # G against C, then against D (S10 -> end): C and D frozen, BN statistics included.
    for p in ("classifier", "critic"):
        _assert_frozen(S[10], S[-1], p)
    assert (S[10]["generator_iterations"], S[12]["generator_iterations"], S[-1]["generator_iterations"]) == (0, 1, 2)
    # The updated players did change.
    for p, (a, b) in {"classifier": (0, 3), "critic": (3, 10), "generator": (10, -1)}.items():
        assert any(not np.array_equal(S[a][p][k], S[b][p][k]) for k in S[a][p])


def test_generated_labels_follow_the_deficit_and_the_generator_labels_are_uniform():
    """Alg. 1 line 6: C's and D's generated labels ~ p_k - p_i; line 9: G's labels uniform over the generated classes.

    Also: the interpolation weights of the gradient penalty are U(0, 1), and the critic's real samples are
    stored samples of their row's class. One step on a large batch, read from what the players received.
    """
    counts = [2, 12, 10]  # deficits 10/24 and 2/24: probabilities 5/6 and 1/6, far from uniform
    model, log, x, y = _build(counts=counts, seed=1)
    rows = np.random.default_rng(0).integers(0, len(y), 1200)
    _one_step(model, log, x[rows], y[rows])
    ev = log.events
    assert [e["player"] for e in ev] == [player for player, _ in SEQUENCE]
    deficit = _deficit(counts)
    expected = deficit[[0, 2]] / deficit.sum()
    for g_event in (1, 6):
        labels = ev[g_event]["inputs"][1]
        observed = np.bincount(labels, minlength=3)
        assert observed[1] == 0  # the majority is never generated
        assert stats.chisquare(observed[[0, 2]], expected * len(labels)).pvalue > 1e-4
    g_labels = ev[10]["inputs"][1]
    observed = np.bincount(g_labels, minlength=3)
    assert observed[1] == 0
    assert stats.chisquare(observed[[0, 2]]).pvalue > 1e-4  # uniform
    alphas = []
    for g_event, first in ((1, 3), (6, 7)):
        (real, _), (fake, _), (x_hat, _) = (ev[first + j]["inputs"] for j in range(3))
        labels = ev[g_event]["inputs"][1]
        assert _is_stored_sample_of(real, labels, x, y)
        alpha, off = _alpha_of(x_hat, real, fake)
        assert off < 1e-5
        alphas.append(alpha)
    assert stats.kstest(np.concatenate(alphas), "uniform").pvalue > 1e-4


# Stage 1: the autoencoder ------------------------------------------------------------------------------------


def _encoder():
    x_in = keras.Input((FEATURES,))
    h = layers.Dense(5, name="e_dense")(x_in)
    h = layers.BatchNormalization(name="e_bn")(h)
    h = layers.Activation("tanh", name="e_tanh")(h)
    return keras.Model(x_in, layers.Dense(LATENT, name="e_out")(h), name="tiny_encoder")


def ref_encoder(p, x, training):
    h = _bn(_dense(_t(x), p, "e_dense"), p, "e_bn", training)
    return _dense(tf.tanh(h), p, "e_out")


def ref_decoder(p, codes, training):
    """Q([c, 0_C]) then ONE softmax head over all N training samples: a convex combination of the training set."""
    h = tf.concat([codes, tf.zeros((codes.shape[0], CLASSES), codes.dtype)], axis=1)
    h = _bn(tf.nn.relu(_dense(h, p, "ctmu_dense1")), p, "ctmu_bn1", training)
    return tf.nn.softmax(_dense(h, p, "head"), axis=-1) @ p["bank"]


@pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`:UserWarning")
def test_stage1_autoencoder_step_and_class_conditional_gaussians():
    """Sec. 4 (BAGAN-style initialization), as documented: one full-batch SGD step of encoder + decoder on the
    squared reconstruction error over all training samples (no class input: zeros), then per class k the mean
    mu_k and Cholesky factor of Sigma_k + r I of the encoder's codes (inference mode; Sigma_k the unbiased
    covariance, r = latent_ridge x the mean per-dimension variance of all codes).
    """
    keras.utils.set_random_seed(0)
    log = _Log()
    rng = np.random.default_rng(2)
    encoder = _encoder()
    _randomize(encoder, rng)
    ridge = 0.05
    model = PolarityGAN(_classifier(log), _critic(log), encoder=encoder, latent_dim=LATENT, hidden_units=(5,),
                        autoencoder_epochs=1, latent_ridge=ridge, seed=4)
    x, y = _data(COUNTS, seed=2)
    model.adapt(x, y)
    e0 = {v.path: np.array(v) for v in encoder.weights}
    before = []

    class SnapshotSGD(keras.optimizers.SGD):
        """Plain SGD that keeps the values its variables had before each update."""

        def apply(self, grads, trainable_variables=None):
            before.append([(v, np.array(v)) for v in trainable_variables])
            return super().apply(grads, trainable_variables)

    lr = 0.3
    tf.config.run_functions_eagerly(True)
    try:
        history = model.pretrain_autoencoder(epochs=1, batch_size=len(x), optimizer=SnapshotSGD(lr, momentum=0.0))
    finally:
        tf.config.run_functions_eagerly(False)
    assert len(before) == 1  # one full-batch step
    decoder_layer = next(layer for layer in model.decoder.layers if hasattr(layer, "bank"))
    np.testing.assert_array_equal(np.asarray(decoder_layer.bank), x)  # the decoder mixes all N training samples
    trained = {id(v) for v in encoder.trainable_weights + decoder_layer.trainable_weights}
    assert {id(v) for v, _ in before[0]} == trained  # encoder and decoder are trained, nothing else

    pre = {v.path: value for v, value in before[0]}
    assert len(pre) == len(before[0])
    params = {k: tf.Variable(np.asarray(v, "float64")) for k, v in pre.items()}
    consts = {k: _t(v) for k, v in e0.items() if k not in params}
    consts["bank"] = _t(x)
    p = {**consts, **params}
    with tf.GradientTape() as tape:
        recon = ref_decoder(p, ref_encoder(p, x, True), True)
        loss = tf.reduce_mean(tf.square(recon - _t(x)))
    names = list(params)
    grads = dict(zip(names, tape.gradient(loss, [params[k] for k in names])))
    assert history.history["loss"][0] == pytest.approx(float(loss), rel=1e-5)
    now = {v.path: np.array(v) for v in encoder.trainable_weights + decoder_layer.trainable_weights}
    for k in names:
        np.testing.assert_allclose(now[k], pre[k] - lr * grads[k].numpy(), atol=1e-5, err_msg=k)

    # The encoder's BN moving statistics after its one training-mode call (momentum 0.99).
    mean, var = tf.nn.moments(_dense(_t(x), p, "e_dense"), axes=[0])
    e1 = {v.path: np.array(v) for v in encoder.weights}
    np.testing.assert_allclose(e1["e_bn/moving_mean"], 0.99 * e0["e_bn/moving_mean"] + 0.01 * mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(e1["e_bn/moving_variance"], 0.99 * e0["e_bn/moving_variance"] + 0.01 * var.numpy(),
                               atol=1e-6)

    # Class-conditional Gaussians of the codes (BAGAN): computed here from the trained encoder in inference mode.
    codes = ref_encoder({k: _t(v) for k, v in e1.items()}, x, False).numpy()
    r = ridge * np.mean(np.var(codes, axis=0))
    cg = model.convex_generator
    for k in range(CLASSES):
        ck = codes[y == k]
        mu = ck.mean(axis=0)
        sigma = (ck - mu).T @ (ck - mu) / (len(ck) - 1)
        np.testing.assert_allclose(np.asarray(cg.latent_mean)[k], mu, atol=1e-5)
        chol = np.linalg.cholesky(sigma + r * np.eye(LATENT))
        np.testing.assert_allclose(np.asarray(cg.latent_scale)[k], chol, atol=1e-5)
    assert model.autoencoder_initialized
