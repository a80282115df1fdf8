"""Player-level step tests: one GAMO / GAMO2Pix `train_step` against a reference written from the paper.

GAMO (Mullick et al., ICCV 2019), Algorithm 1 in the authors' code order (the
GAMO class docstring), one minibatch:

1. M (and F) on the real batch, one-hot targets (eq. 4 L_i1 + L_i2; eq. 2
   J_i1 + J_i2 for cross entropy); D on the real batch with targets
   1 - U(0, noise) (eq. 5 L_i5; eq. 3 Q_i1).
2. Fake labels drawn in proportion to the deficit, fakes made with G's BN in
   inference mode; M on the fakes (L_i3 + L_i4); D on them with targets
   U(0, noise) (L_i6; Q_i2).
3. G against frozen M with target 1 - onehot(i) on the minority outputs
   (eq. 6 L_i7 + L_i8; all outputs with `majority_in_generator_target`),
   then G against frozen D with target 1 (L_i9).

The players are tiny (Dense -> BatchNormalization -> tanh -> Dense, BN with
non-trivial moving statistics) and every optimizer is plain SGD, so one
update is w - lr * grad. The reference below re-implements the players'
forward passes and the losses with TensorFlow ops on copies of the weights;
it shares no code with the package. Random draws: G's inputs (z, labels) are
read from a recording layer inside G; the label-noise draws for D's targets
are re-drawn from a copy of the model's seed-generator state in train_step's
order (checked against the recorded z's). Each player's loss is read through
the documented hook `apply_player_gradients` (name, loss in call order) and
through the returned `<player>_loss` logs.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance.layers import ConvexGenerator
from keras_imbalance.models import GAMO, GAMO2Pix, GAMO2PixVAE

C = 3
COUNTS = [4, 9, 8]  # majority is class 1; deficits 5, 0, 1
MINORITY = [0, 2]
MAJORITY = 1
LATENT = 3
SAMPLE_DIM = 5  # pixel-space sample size = F's feature size
RAW_DIM = 6  # F's input size in feature space
BN_EPS = 1e-3
BN_MOM = 0.9
LR = {"classifier": 0.3, "discriminator": 0.2, "generator": 0.5, "feature_extractor": 0.4}
ATOL = 1e-5
BATCH_IDX = [0, 1, 4, 6, 9, 14, 18]  # 7 real samples: classes 0, 0, 1, 1, 1, 2, 2


# Tiny players ----------------------------------------------------------------


class Recorder:
    """A plain list holder (Keras would copy a list assigned to a layer attribute)."""

    def __init__(self):
        self.items = []


class Tap(keras.layers.Layer):
    """Identity layer that records the concrete tensors it receives (eager calls only)."""

    def __init__(self, log, **kwargs):
        super().__init__(**kwargs)
        self.log = log

    def call(self, inputs):
        if tf.executing_eagerly():
            items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            self.log.items.append([np.asarray(t) for t in items])
        return inputs


def _mlp_head(h, units, out_units, prefix):
    """Dense -> BN -> tanh [-> Dense]."""
    h = keras.layers.Dense(units, name=f"{prefix}_dense1")(h)
    h = keras.layers.BatchNormalization(momentum=BN_MOM, epsilon=BN_EPS, name=f"{prefix}_bn")(h)
    h = keras.layers.Activation("tanh")(h)
    if out_units:
        h = keras.layers.Dense(out_units, name=f"{prefix}_dense2")(h)
    return h


def make_classifier(dim):
    x = keras.Input((dim,))
    return keras.Model(x, _mlp_head(x, 4, C, "m"), name="M")


def make_discriminator(dim):
    x, c = keras.Input((dim,)), keras.Input((C,))
    return keras.Model([x, c], _mlp_head(keras.layers.Concatenate()([x, c]), 4, 1, "d"), name="D")


def make_feature_extractor(input_shape, feature_dim=SAMPLE_DIM):
    x = keras.Input(input_shape)
    h = keras.layers.Flatten()(x) if len(input_shape) > 1 else x
    return keras.Model(x, _mlp_head(h, feature_dim, 0, "f"), name="F")


def make_generator(log):
    z = keras.Input((LATENT,))
    labels = keras.Input((), dtype="int32")
    zt, lt = Tap(log, name="g_tap")([z, labels])
    layer = ConvexGenerator(COUNTS, (SAMPLE_DIM,), latent_dim=LATENT, hidden_units=(4,), batchnorm_momentum=BN_MOM,
                            name="convex")
    return keras.Model([z, labels], layer([zt, lt]), name="G")


def mlp_vars(model, prefix):
    """{key: variable} of a tiny Dense-BN-tanh(-Dense) player."""
    d1, bn = model.get_layer(f"{prefix}_dense1"), model.get_layer(f"{prefix}_bn")
    out = {"W1": d1.kernel, "b1": d1.bias, "gamma": bn.gamma, "beta": bn.beta, "mm": bn.moving_mean,
           "mv": bn.moving_variance}
    try:
        d2 = model.get_layer(f"{prefix}_dense2")
        out.update(W2=d2.kernel, b2=d2.bias)
    except ValueError:
        pass
    return out


def generator_vars(G):
    layer = G.get_layer("convex")
    dense, bn = layer.ctmu
    out = {"W1": dense.kernel, "b1": dense.bias, "gamma": bn.gamma, "beta": bn.beta, "mm": bn.moving_mean,
           "mv": bn.moving_variance}
    assert layer.minority_classes == MINORITY
    for k, igu in enumerate(layer.igus):
        out[f"igu{k}_W"], out[f"igu{k}_b"], out[f"bank{k}"] = igu.kernel, igu.bias, layer.banks[k]
    return out


NON_TRAINABLE = ("mm", "mv", "bank0", "bank1")


def randomize(variables, rng):
    for key, v in variables.items():
        if key.startswith("bank"):
            continue
        shape = tuple(v.shape)
        if key == "mv":
            value = rng.uniform(0.5, 1.5, shape)
        elif key == "gamma":
            value = 1.0 + 0.3 * rng.normal(size=shape)
        else:
            value = 0.6 * rng.normal(size=shape)
        v.assign(value.astype("float32"))


def snapshot(variables):
    return {k: np.array(v) for k, v in variables.items()}


# Reference (TensorFlow ops on copies of the weights) ----------------------------


def ref_bn(h, p, training):
    """Keras BN: batch statistics (biased variance) in training, moving ones in inference."""
    if training:
        mean, var = tf.nn.moments(h, [0])
        stats = {"mm": p["mm"] * BN_MOM + mean * (1 - BN_MOM), "mv": p["mv"] * BN_MOM + var * (1 - BN_MOM)}
    else:
        mean, var, stats = p["mm"], p["mv"], {}
    return (h - mean) / tf.sqrt(var + BN_EPS) * p["gamma"] + p["beta"], stats


def ref_mlp(p, h, training):
    h, stats = ref_bn(tf.reshape(h, (h.shape[0], -1)) @ p["W1"] + p["b1"], p, training)
    h = tf.tanh(h)
    if "W2" in p:
        h = h @ p["W2"] + p["b2"]
    return h, stats


def ref_generator(p, z, labels, training):
    """Eq. 1: G(z|i) = sum_j softmax(IGU_i(cTMU(z|i)))_j x_j; cTMU = Dense ReLU -> BN."""
    h = tf.nn.relu(tf.concat([z, tf.one_hot(labels, C)], -1) @ p["W1"] + p["b1"])
    h, stats = ref_bn(h, p, training)
    out = tf.zeros((z.shape[0], SAMPLE_DIM))
    for k, i in enumerate(MINORITY):
        w = tf.nn.softmax(h @ p[f"igu{k}_W"] + p[f"igu{k}_b"], axis=-1)
        out += tf.cast(tf.equal(labels, i), tf.float32)[:, None] * (w @ p[f"bank{k}"])
    return out, stats


def ref_classifier_loss(logits, onehot, variant):
    """M's loss on labelled samples, mean over the batch and the C outputs.

    least squares, eq. 4: L_i1 = (1 - M_i(x))^2 for the true class, L_i2 = M_j(x)^2 for the others;
    cross entropy, eq. 2: J_i1 = -log M_i(x), J_i2 = -log(1 - M_j(x)).
    """
    p = tf.nn.softmax(logits, -1)
    if variant == "least_squares":
        own = tf.reduce_sum(onehot * (1 - p) ** 2, -1)
        others = tf.reduce_sum((1 - onehot) * p**2, -1)
    else:
        own = -tf.reduce_sum(onehot * tf.math.log(p), -1)
        others = -tf.reduce_sum((1 - onehot) * tf.math.log(1 - p), -1)
    return tf.reduce_mean((own + others) / C)


def ref_generator_vs_classifier(logits, onehot, variant, majority_in_target):
    """G's loss against M for samples of minority class i, eq. 6 (L_i7 + L_i8), mean over the scored outputs.

    LS: L_i7 = M_i(G(z|i))^2 (own class, target 0), L_i8 = (1 - M_j(G(z|i)))^2 for the other minority
    outputs j (target 1). CE (non-saturating): -log(1 - M_i) and -log M_j. The majority output is
    scored (target 1) only with majority_in_generator_target (the authors' code).
    """
    p = tf.nn.softmax(logits, -1)
    scored = np.isin(np.arange(C), MINORITY).astype("float32")
    if majority_in_target:
        scored[:] = 1.0
    if variant == "least_squares":
        own = tf.reduce_sum(onehot * p**2, -1)
        others = tf.reduce_sum(scored * (1 - onehot) * (1 - p) ** 2, -1)
    else:
        own = -tf.reduce_sum(onehot * tf.math.log(1 - p), -1)
        others = -tf.reduce_sum(scored * (1 - onehot) * tf.math.log(p), -1)
    return tf.reduce_mean((own + others) / scored.sum())


def ref_adversarial_loss(logit, target, variant):
    """D's terms: LS (eq. 5) (D - t)^2 on the sigmoid; CE (eq. 3) -t log D - (1 - t) log(1 - D)."""
    if variant == "least_squares":
        return tf.reduce_mean((tf.sigmoid(logit) - target) ** 2)
    return -tf.reduce_mean(target * tf.math.log_sigmoid(logit) + (1 - target) * tf.math.log_sigmoid(-logit))


def ref_sgd(params, lrs, loss_fn):
    """One SGD step (w - lr * grad) of the players in `lrs` on loss_fn(tensors) -> (loss, {player: bn stats}).

    Players not in `lrs` enter as constants (frozen); BN statistics are replaced by what loss_fn returns.
    """
    t = {name: {k: tf.constant(v) for k, v in p.items()} for name, p in params.items()}
    watched = [(name, k) for name in lrs for k in t[name] if k not in NON_TRAINABLE]
    with tf.GradientTape() as tape:
        tape.watch([t[n][k] for n, k in watched])
        loss, stats = loss_fn(t)
    grads = tape.gradient(loss, [t[n][k] for n, k in watched])
    new = {name: dict(p) for name, p in params.items()}
    for (n, k), g in zip(watched, grads):
        new[n][k] = params[n][k] - lrs[n] * np.asarray(g)
    for n, s in stats.items():
        for k, v in s.items():
            new[n][k] = np.asarray(v)
    return new, float(loss)


def reference_gamo_step(P, x, y, draws, variant, with_d, with_f, majority_in_target):
    """Algorithm 1 (authors' code order) on copies of the weights; returns (weights, [(player, loss)])."""
    P = {n: dict(p) for n, p in P.items()}
    onehot = tf.one_hot(y, C)
    log = []
    x = tf.constant(x)

    # 1. M (and F) on the real batch: one gradient of the real-batch loss, applied to both.
    def real(t):
        stats = {}
        feats = x
        if with_f:
            feats, stats["F"] = ref_mlp(t["F"], x, True)
        logits, stats["M"] = ref_mlp(t["M"], feats, True)
        return ref_classifier_loss(logits, onehot, variant), stats

    feats = ref_mlp(P["F"], x, True)[0] if with_f else x  # what D sees: F's output of this pass, held fixed
    lrs = {"M": LR["classifier"], **({"F": LR["feature_extractor"]} if with_f else {})}
    P, loss_real = ref_sgd(P, lrs, real)
    if with_f:
        log.append(("feature_extractor", loss_real))
    log.append(("classifier", loss_real))
    if with_d:
        def d_real(t):
            out, s = ref_mlp(t["D"], tf.concat([feats, onehot], -1), True)
            return ref_adversarial_loss(out, 1.0 - draws["u_real"], variant), {"D": s}

        P, loss = ref_sgd(P, {"D": LR["discriminator"]}, d_real)
        log.append(("discriminator", loss))

    # 2. Fakes from G in inference mode (G unchanged), M then D on them.
    z2, lab2 = draws["z2"], draws["lab2"]
    fakes, _ = ref_generator(P["G"], z2, lab2, training=False)
    fake_onehot = tf.one_hot(lab2, C)

    def m_fake(t):
        logits, s = ref_mlp(t["M"], fakes, True)
        return ref_classifier_loss(logits, fake_onehot, variant), {"M": s}

    P, loss = ref_sgd(P, {"M": LR["classifier"]}, m_fake)
    log.append(("classifier", loss))
    if with_d:
        def d_fake(t):
            out, s = ref_mlp(t["D"], tf.concat([fakes, fake_onehot], -1), True)
            return ref_adversarial_loss(out, draws["u_fake"], variant), {"D": s}

        P, loss = ref_sgd(P, {"D": LR["discriminator"]}, d_fake)
        log.append(("discriminator", loss))

    # 3. G against frozen M (inference mode), then against frozen D, same z and labels.
    z3, lab3 = draws["z3"], draws["lab3"]
    g_onehot = tf.one_hot(lab3, C)

    def g_m(t):
        samples, s = ref_generator(t["G"], z3, lab3, training=True)
        logits, _ = ref_mlp(t["M"], samples, False)
        return ref_generator_vs_classifier(logits, g_onehot, variant, majority_in_target), {"G": s}

    P, loss = ref_sgd(P, {"G": LR["generator"]}, g_m)
    log.append(("generator", loss))
    if with_d:
        def g_d(t):
            samples, s = ref_generator(t["G"], z3, lab3, training=True)
            out, _ = ref_mlp(t["D"], tf.concat([samples, g_onehot], -1), False)
            return ref_adversarial_loss(out, tf.ones_like(out), variant), {"G": s}

        P, loss = ref_sgd(P, {"G": LR["generator"]}, g_d)
        log.append(("generator", loss))
    return P, log


# The model under test -----------------------------------------------------------


def toy_data(with_f):
    rng = np.random.default_rng(7)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(COUNTS)]).astype("int32")
    x = rng.uniform(-1, 1, (len(y), RAW_DIM if with_f else SAMPLE_DIM)).astype("float32")
    return x, y


def build_gamo(variant, with_d, with_f, majority_in_target, label_noise, seed=3, feature_schedule="joint"):
    """Adapted, compiled GAMO on tiny players with randomized weights; returns (model, players, G's log)."""
    g_log = Recorder()
    rng = np.random.default_rng(11)
    players = {"M": make_classifier(SAMPLE_DIM), "G": make_generator(g_log)}
    if with_d:
        players["D"] = make_discriminator(SAMPLE_DIM)
    if with_f:
        players["F"] = make_feature_extractor((RAW_DIM,))
    variables = {"M": mlp_vars(players["M"], "m"), "G": generator_vars(players["G"])}
    if with_d:
        variables["D"] = mlp_vars(players["D"], "d")
    if with_f:
        variables["F"] = mlp_vars(players["F"], "f")
    for name in sorted(variables):
        randomize(variables[name], rng)
    model = GAMO(players["M"], players.get("D"), feature_extractor=players.get("F"), generator=players["G"],
                 latent_dim=LATENT, loss=variant, label_noise=label_noise,
                 majority_in_generator_target=majority_in_target, feature_schedule=feature_schedule, seed=seed)
    x, y = toy_data(with_f)
    model.adapt(x, y)
    sgd = {k: keras.optimizers.SGD(learning_rate=v, momentum=0.0) for k, v in LR.items()}
    model.compile(classifier_optimizer=sgd["classifier"], discriminator_optimizer=sgd["discriminator"],
                  generator_optimizer=sgd["generator"], feature_extractor_optimizer=sgd["feature_extractor"],
                  run_eagerly=True)
    return model, variables, g_log, (x, y)


def replay_draws(state, batch, label_noise, with_d):
    """train_step's draws, re-drawn from a copy of the seed-generator state in its order."""
    sg = keras.random.SeedGenerator(0)
    sg.state.assign(state)
    out = {}
    if with_d:
        out["u_real"] = np.asarray(keras.random.uniform((batch, 1), 0.0, label_noise, seed=sg))
    sg.next()  # the deficit-proportional fake labels (read from G's input instead)
    out["z2"] = np.asarray(keras.random.normal((batch, LATENT), seed=sg))
    if with_d:
        out["u_fake"] = np.asarray(keras.random.uniform((batch, 1), 0.0, label_noise, seed=sg))
    sg.next()  # G's uniform minority labels (read from G's input instead)
    out["z3"] = np.asarray(keras.random.normal((batch, LATENT), seed=sg))
    return out


def run_one_step(model, xb, yb, monkeypatch):
    """One train_step through train_on_batch (eager); returns (logs, [(player, loss)] in update order)."""
    calls = []
    original = model.apply_player_gradients

    def recording(name, tape, loss, variables=None):
        calls.append((name, float(loss)))
        return original(name, tape, loss, variables)

    monkeypatch.setattr(model, "apply_player_gradients", recording)
    logs = model.train_on_batch(xb, yb, return_dict=True)
    return {k: float(v) for k, v in logs.items()}, calls


CASES = [
    # (loss, feature space, discriminator, majority_in_generator_target)
    ("least_squares", False, True, False),
    ("least_squares", False, False, True),
    ("least_squares", True, True, True),
    ("least_squares", True, False, False),
    ("cross_entropy", False, True, True),
    ("cross_entropy", False, False, False),
    ("cross_entropy", True, True, False),
    ("cross_entropy", True, False, True),
]


@pytest.mark.parametrize("variant,with_f,with_d,majority_in_target", CASES,
                         ids=[f"{'ls' if v == 'least_squares' else 'ce'}-{'feat' if f else 'pix'}-{'D' if d else 'noD'}-maj{int(m)}"
                              for v, f, d, m in CASES])
def test_gamo_train_step_matches_algorithm1_reference(variant, with_f, with_d, majority_in_target, monkeypatch):
    """One train_step = Algorithm 1 lines 4, 9, 11, 14, 15 (code order) with eqs. 2-6, player by player.

    Pins: each loss term by term (eq. 4 / eq. 2 for M, eq. 5 / eq. 3 for D with 1 - U and U targets,
    eq. 6 L_i7 + L_i8 (+ majority) and L_i9 for G), the order of the updates, every player's weights and
    BN moving statistics after the step (F and M share one real-batch gradient; M/D frozen and in
    inference mode during G's updates; G in inference mode for the fakes; G's gradient never reaching F;
    D never updating G), the optimizers' iteration counts, and that G's banks are F's features.
    """
    noise = 0.1
    model, variables, g_log, (x, y) = build_gamo(variant, with_d, with_f, majority_in_target, noise)
    before = {name: snapshot(v) for name, v in variables.items()}
    if with_f:
        # The banks hold F's features of the minority samples (F in inference mode), in data order.
        feats = np.asarray(ref_mlp({k: tf.constant(v) for k, v in before["F"].items()}, tf.constant(x), False)[0])
        for k, i in enumerate(MINORITY):
            np.testing.assert_allclose(before["G"][f"bank{k}"], feats[y == i], atol=ATOL)
    else:
        for k, i in enumerate(MINORITY):
            np.testing.assert_array_equal(before["G"][f"bank{k}"], x[y == i])
    xb, yb = x[BATCH_IDX], y[BATCH_IDX]
    batch = len(yb)
    draws = replay_draws(np.asarray(model.seed_generator.state), batch, noise, with_d)
    g_log.items.clear()
    logs, calls = run_one_step(model, xb, yb, monkeypatch)

    # What G received: the fakes' batch, then G's own batch once per adversary (same z, same labels).
    assert len(g_log.items) == (3 if with_d else 2)
    (z2, lab2), (z3, lab3) = g_log.items[0], g_log.items[1]
    np.testing.assert_allclose(z2, draws["z2"], atol=1e-6)  # the replayed stream is train_step's
    np.testing.assert_allclose(z3, draws["z3"], atol=1e-6)
    if with_d:
        np.testing.assert_array_equal(g_log.items[2][0], z3)
        np.testing.assert_array_equal(g_log.items[2][1], lab3)
    assert set(lab2.tolist()) <= {0, 2} and set(lab3.tolist()) <= set(MINORITY)  # never the majority
    draws.update(lab2=lab2.astype("int32"), lab3=lab3.astype("int32"))

    ref, ref_calls = reference_gamo_step(before, xb, yb, draws, variant, with_d, with_f, majority_in_target)

    # The losses, term by term, in the order of Algorithm 1 (code order).
    assert [n for n, _ in calls] == [n for n, _ in ref_calls]
    np.testing.assert_allclose([v for _, v in calls], [v for _, v in ref_calls], rtol=1e-5, atol=1e-6)
    for player in {n for n, _ in ref_calls}:
        expected = np.mean([v for n, v in ref_calls if n == player])
        np.testing.assert_allclose(logs[f"{player}_loss"], expected, rtol=1e-5, atol=1e-6)

    # Every player's weights and BN statistics after the step equal its own updates only.
    for name, var in variables.items():
        for key, v in var.items():
            np.testing.assert_allclose(np.asarray(v), ref[name][key], atol=ATOL, err_msg=f"{name}.{key}")
    iterations = {"classifier": 2, "generator": 2 if with_d else 1}
    if with_d:
        iterations["discriminator"] = 2
    if with_f:
        iterations["feature_extractor"] = 1
    for player, n in iterations.items():
        assert int(getattr(model, f"{player}_optimizer").iterations) == n, player
    # The step never refreshes the banks (that is the epoch callback's job).
    for k in range(len(MINORITY)):
        np.testing.assert_array_equal(np.asarray(variables["G"][f"bank{k}"]), before["G"][f"bank{k}"])


def test_fake_labels_follow_the_deficit_and_generator_labels_are_uniform(monkeypatch):
    """Alg. 1 line 10 / Sec. 3.5: M's and D's fakes have P(i) proportional to n_max - n_i; line 13: G's batch
    is uniform over the minority classes. Read from what G receives in one step of batch 84 (deficits 5, 0, 1)."""
    model, _, g_log, (x, y) = build_gamo("least_squares", with_d=True, with_f=False, majority_in_target=False,
                                         label_noise=0.1)
    g_log.items.clear()
    model.train_on_batch(np.tile(x, (4, 1)), np.tile(y, 4))  # one step, batch 84
    fake_labels, g_labels = g_log.items[0][1], g_log.items[1][1]
    assert len(fake_labels) == len(g_labels) == 4 * len(y)
    assert MAJORITY not in fake_labels and MAJORITY not in g_labels
    share_fake = np.mean(fake_labels == 2)  # 1/6 under the deficit, 1/2 if uniform
    share_g = np.mean(g_labels == 2)  # 1/2 under uniform, 1/6 if deficit-proportional
    assert 0.05 < share_fake < 0.33, share_fake
    assert 0.33 < share_g < 0.67, share_g


# GAMO2Pix -----------------------------------------------------------------------

PIX_SHAPE = (2, 2, 1)
PIX_FEATURES = 3
PIX_LATENT = 2


def make_vae(k):
    f = keras.Input((PIX_FEATURES,))
    head = keras.Model(f, [keras.layers.Dense(PIX_LATENT, name="mean")(f),
                           keras.layers.Dense(PIX_LATENT, name="log_var")(f)], name=f"head_{k}")
    z = keras.Input((PIX_LATENT,))
    h = keras.layers.Dense(4, activation="tanh", name="dec1")(z)
    h = keras.layers.Reshape(PIX_SHAPE)(keras.layers.Dense(4, name="dec2")(h))
    return GAMO2PixVAE(mu_head=head, decoder=keras.Model(z, h, name=f"decoder_{k}"), name=f"vae_{k}")


def vae_vars(vae):
    head, dec = vae.mu_head, vae.decoder
    return {"Wm": head.get_layer("mean").kernel, "bm": head.get_layer("mean").bias,
            "Wl": head.get_layer("log_var").kernel, "bl": head.get_layer("log_var").bias,
            "W1": dec.get_layer("dec1").kernel, "b1": dec.get_layer("dec1").bias,
            "W2": dec.get_layer("dec2").kernel, "b2": dec.get_layer("dec2").bias}


def test_gamo2pix_step_matches_the_vae_reference():
    """GAMO2pix (Sec. 5): each class's VAE on its own samples, encoder = GAMO's F held fixed.

    Per sample of class k: sum over pixels of (decoder_k(z) - x)^2 (the code's MSE times the pixel count)
    + KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)), with
    z = mu + exp(logvar / 2) * eps (log-variance used consistently); loss = batch mean. Pins the loss,
    every VAE's SGD update, and F frozen: weights, BN moving statistics, inference-mode BN.
    """
    rng = np.random.default_rng(5)
    F = make_feature_extractor(PIX_SHAPE, feature_dim=PIX_FEATURES)
    f_vars = mlp_vars(F, "f")
    randomize(f_vars, rng)
    vaes = [make_vae(k) for k in range(2)]
    v_vars = [vae_vars(v) for v in vaes]
    for v in v_vars:
        randomize(v, rng)
    model = GAMO2Pix(F, 2, latent_dim=PIX_LATENT, vaes=vaes, seed=4)
    lr = 0.3
    model.compile(vae_optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.0), run_eagerly=True)
    x = rng.uniform(-1, 1, (6, *PIX_SHAPE)).astype("float32")
    y = np.array([0, 1, 1, 0, 1, 1], "int32")
    f_before = snapshot(f_vars)
    v_before = [snapshot(v) for v in v_vars]

    # Reference. eps: the step's one draw, from a copy of the seed-generator state.
    sg = keras.random.SeedGenerator(0)
    sg.state.assign(np.asarray(model.seed_generator.state))
    eps = keras.random.normal((len(y), PIX_LATENT), seed=sg)
    feats, _ = ref_mlp({k: tf.constant(v) for k, v in f_before.items()}, tf.constant(x), False)  # F in inference mode
    t = [{k: tf.constant(v) for k, v in p.items()} for p in v_before]
    with tf.GradientTape() as tape:
        tape.watch([v for p in t for v in p.values()])
        per_sample = []
        for k, p in enumerate(t):
            mu, logvar = feats @ p["Wm"] + p["bm"], feats @ p["Wl"] + p["bl"]
            z = mu + tf.exp(0.5 * logvar) * eps
            recon = tf.tanh(z @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
            pixel = tf.reduce_sum((recon - tf.reshape(x, (len(y), -1))) ** 2, -1)
            kl = -0.5 * tf.reduce_sum(1.0 + logvar - mu**2 - tf.exp(logvar), -1)
            per_sample.append(pixel + kl)
        own = tf.gather(tf.stack(per_sample, 1), y, axis=1, batch_dims=1)  # each sample through its class's VAE
        loss = tf.reduce_mean(own)
    grads = tape.gradient(loss, t)

    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(float(logs["vaes_loss"]), float(loss), rtol=1e-5)
    for k in range(2):
        for key, v in v_vars[k].items():
            np.testing.assert_allclose(np.asarray(v), v_before[k][key] - lr * np.asarray(grads[k][key]), atol=ATOL,
                                       err_msg=f"vae {k} {key}")
    for key, v in f_vars.items():  # the encoder F never moves, BN statistics included
        np.testing.assert_array_equal(np.asarray(v), f_before[key], err_msg=f"F {key}")
    assert int(model.vaes_optimizer.iterations) == 1
