"""M2m player-level step tests: one whole `train_step` against a reference written here from the paper.

Paper: Kim, Jeong & Shin, "M2m: Imbalanced Classification via Major-to-minor Translation", CVPR 2020
(/work/shared/papers/m2m__*.txt). What each step must do (Algorithm 1 and Sec. 2.3, "Practical
implementation via re-sampling"):

- every sample i of the batch is a generation slot with probability 1 - N_{y_i} / N_max;
- its seed x0 comes from the same batch, of class k0 ~ Q(k0 | k) prop. to 1 - beta^((N_k0 - N_k)+) (eq. 5);
- x* = x0 + delta, then T steps x* <- clip(x* - eta * grad / ||grad||_2) of CE(g(x*), k) + lambda * f_k0(x*)
  (eq. 2, Algorithm 1 lines 7-10), f and g in inference mode;
- x* is rejected with probability beta^((N_k0 - N_k)+) (eq. 3, Algorithm 1 lines 11-13) or when g is not
  confident enough (Algorithm 1 line 13 / Sec. 2.3: CE(g(x*), k) < gamma; the package also offers the
  "probability" reading softmax_g(x*)[k] >= gamma); a rejected slot keeps its real minority sample, an
  accepted one becomes (x*, k);
- one SGD step of f on the mixed batch (cross-entropy, or LDAM: margins prop. to n_j^(-1/4), largest 0.5,
  scale s), after `start_epoch` epochs of plain ERM (Sec. 3.1, deferred schedule); g never changes.

The reference below shares no code with the package: the tiny players (Dense -> BatchNormalization -> ReLU
-> Dense) are re-written as float64 TensorFlow functions on copies of their weights, and the attack, the
acceptance test, the mix, the loss and the SGD update are written from the equations above.

Random draws. The slot and Bernoulli uniforms and the start noise are re-drawn from a copy of the model's
`seed_generator` state, in the documented order (slots, seed indices, start noise, rejection; see the
`translated_positions` docstring). The seed indices are not re-drawn: they are read from what g actually
received (its first input of the step is clip(x[seed] + delta)), and checked against eq. 5's support;
the distributions themselves (slots, Q, acceptance) are checked statistically on a large batch through
`train_step` in `test_step_draws_follow_the_papers_distributions`. Each player's first layer is a `_Tap` that
records, in eager mode (`run_eagerly=True`), every input and `training` flag the player received.

A vanishing input gradient (all ReLUs of a player dead at x*) leaves x* in place: the paper's delta / ||delta||_2
is undefined there; the package divides by ||delta|| + 1e-12, i.e. no move, and the reference does the same.
No private attribute of M2m is used; f's optimizer is read through `_optimizer` only.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_imbalance.losses import LDAMLoss
from keras_imbalance.models import M2m

D = 6  # features
H = 5  # hidden units
EPS = 1e-3  # BatchNormalization epsilon of the tiny players
BN_MOMENTUM = 0.9
LR = 0.5
COUNTS = np.array([40.0, 10.0, 2.0])  # N_k; class 0 is the majority
LDAM_SCALE = 3.0


def _optimizer(model):
    """f's optimizer (one place to change if M2m exposes it as `classifier_optimizer`)."""
    return model.optimizer


# --------------------------------------------------------------------------- tiny recorded players


class _Tap(keras.layers.Layer):
    """Identity layer that records, in eager mode, each input batch and the `training` flag it was called with."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def call(self, x, training=None):
        if tf.executing_eagerly() and hasattr(x, "numpy"):
            self.calls.append((np.array(x, dtype=np.float64), training))
        return x


def _player(name, seed, num_classes=3):
    """x -> Dense(H) -> BN -> ReLU -> Dense(C), with a `_Tap` in front and non-trivial BN moving statistics."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((D,))
    tap = _Tap(name=f"{name}_tap")
    h = keras.layers.Dense(H, name="dense1")(tap(inputs))
    h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=EPS, name="bn")(h)
    h = keras.layers.ReLU()(h)
    out = keras.layers.Dense(num_classes, name="dense2")(h)
    model = keras.Model(inputs, out, name=name)
    model.get_layer("dense1").set_weights([rng.normal(size=(D, H)) * 1.5, rng.normal(size=H) * 0.2])
    model.get_layer("bn").set_weights([1.0 + 0.3 * rng.normal(size=H), 0.3 * rng.normal(size=H),
                                       0.5 * rng.normal(size=H), rng.uniform(0.5, 2.0, size=H)])
    model.get_layer("dense2").set_weights([rng.normal(size=(H, num_classes)) * 1.5, rng.normal(size=num_classes) * 0.2])
    model.tap = tap
    return model


def _params(model):
    """float64 copies of a player's weights, by role."""
    k1, b1 = model.get_layer("dense1").get_weights()
    gamma, beta, mm, mv = model.get_layer("bn").get_weights()
    k2, b2 = model.get_layer("dense2").get_weights()
    return {k: np.asarray(v, np.float64) for k, v in dict(k1=k1, b1=b1, gamma=gamma, beta=beta, mm=mm, mv=mv, k2=k2, b2=b2).items()}


TRAINABLE = ("k1", "b1", "gamma", "beta", "k2", "b2")


def _forward(p, x, training):
    """Reference player: logits and the batch statistics (training) or moving statistics (inference)."""
    h = tf.matmul(x, p["k1"]) + p["b1"]
    if training:
        mean = tf.reduce_mean(h, axis=0)
        var = tf.reduce_mean(tf.square(h - mean), axis=0)  # biased, as BatchNormalization
    else:
        mean, var = tf.constant(p["mm"]), tf.constant(p["mv"])
    h = (h - mean) / tf.sqrt(var + EPS) * p["gamma"] + p["beta"]
    return tf.matmul(tf.nn.relu(h), p["k2"]) + p["b2"], (mean, var)


def _g_log_probs(gs, x):
    """log softmax_g(x); for an ensemble, log of the MEAN of the members' softmax (supplementary Sec. B)."""
    probs = [tf.nn.softmax(_forward(p, x, False)[0]) for p in gs]
    return tf.math.log(tf.add_n(probs) / len(probs))


def _ldam_margins(counts, max_margin=0.5):
    m = np.asarray(counts, np.float64) ** -0.25
    return m * max_margin / m.max()


def _f_loss(p, x, y, loss, counts):
    """Mean per-sample loss of f (training mode) on (x, y): CE on logits, or LDAM CE(s (z - Delta_y e_y), y)."""
    logits, stats_ = _forward(p, x, True)
    onehot = tf.one_hot(y, logits.shape[-1], dtype=tf.float64)
    if loss == "ldam":
        logits = LDAM_SCALE * (logits - onehot * _ldam_margins(counts)[y][:, None])
    return tf.reduce_mean(-tf.reduce_sum(onehot * tf.nn.log_softmax(logits), axis=-1)), stats_


def _sgd_reference(f0, x, y, loss, counts):
    """One plain SGD step of f: (loss value, weights after w - lr * grad, BN moving statistics after)."""
    variables = {k: tf.Variable(f0[k]) for k in TRAINABLE}
    with tf.GradientTape() as tape:
        value, (mean, var) = _f_loss({**f0, **variables}, tf.constant(x), y, loss, counts)
    grads = tape.gradient(value, variables)
    new = {k: f0[k] - LR * grads[k].numpy() for k in TRAINABLE}
    new["mm"] = BN_MOMENTUM * f0["mm"] + (1 - BN_MOMENTUM) * mean.numpy()
    new["mv"] = BN_MOMENTUM * f0["mv"] + (1 - BN_MOMENTUM) * var.numpy()
    return float(value), new


def _redraw(state, batch, noise_norm):
    """The step's uniforms and start noise from a copy of the seed-generator state, in the step's draw order."""
    gen = keras.random.SeedGenerator(0)
    gen.state.assign(state)
    slot_u = np.asarray(keras.random.uniform((batch,), seed=gen), np.float64)
    gen.next()  # the seed-index draw (keras.random.categorical); read from what g received instead
    delta = None
    if noise_norm > 0:
        z = np.asarray(keras.random.normal((batch, D), seed=gen), np.float64)
        delta = noise_norm * z / np.linalg.norm(z, axis=1, keepdims=True)
    coin_u = np.asarray(keras.random.uniform((batch,), seed=gen), np.float64)
    return slot_u, delta, coin_u


def _m2m_reference(cfg, f0, gs0, x, y, state, g_first_input):
    """The paper's M2m batch and f-step, reproduced: a dict with every intermediate."""
    batch = len(y)
    counts, beta = cfg["counts"], cfg["beta"]
    lo, hi = cfg["input_range"]
    slot_u, delta, coin_u = _redraw(state, batch, cfg["noise_norm"])
    n = counts[y]
    slot = slot_u < 1.0 - n / counts.max()  # Sec. 2.3: generate with probability 1 - N_{y_i} / N_1
    # Eq. 3: P(accept | k0, k) = 1 - beta^((N_k0 - N_k)+); eq. 5: Q(k0 | k) is prop. to it (support: N_k0 > N_k).
    p_acc = 1.0 - beta ** np.maximum(n[None, :] - n[:, None], 0.0)
    has_seed = (p_acc > 0).any(axis=1)

    # The seed indices, read from g's first input clip(x[seed] + delta) (the noise is the re-drawn one).
    start_all = x[None, :, :] + (0.0 if delta is None else delta[:, None, :])  # [i, s] = x_s + delta_i
    start_all = np.clip(start_all, lo, hi)
    dist = np.abs(start_all - g_first_input[:, None, :]).max(axis=-1)
    seed = dist.argmin(axis=1)
    assert np.all(dist[np.arange(batch), seed] < 1e-5), "g's first input is not clip(x[seed] + delta) for any seed"
    seed_class = y[seed]
    assert np.all(p_acc[np.arange(batch), seed][has_seed] > 0), "a seed outside eq. 5's support (N_k0 > N_k)"

    # Algorithm 1 lines 7-10: T normalized-gradient steps on CE(g(x), k) + lambda f_k0(x), f and g in inference mode.
    iterates = [start_all[np.arange(batch), seed]]
    xs = tf.constant(iterates[0])
    target = tf.one_hot(y, 3, dtype=tf.float64)
    seed_oh = tf.one_hot(seed_class, 3, dtype=tf.float64)
    for _ in range(cfg["attack_steps"]):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            obj = -tf.reduce_sum(target * _g_log_probs(gs0, xs))
            obj += cfg["lam"] * tf.reduce_sum(seed_oh * _forward(f0, xs, False)[0])
        grad = tape.gradient(obj, xs)
        norm = tf.norm(grad, axis=1, keepdims=True)
        step = tf.where(norm > 0, grad / tf.where(norm > 0, norm, 1.0), 0.0)  # a vanishing gradient: no move
        xs = tf.clip_by_value(xs - cfg["step_size"] * step, lo, hi)
        iterates.append(xs.numpy())
    x_star = xs.numpy()

    conf = np.exp(np.sum(target.numpy() * _g_log_probs(gs0, xs).numpy(), axis=1))  # softmax_g(x*)[k]
    if cfg["acceptance_criterion"] == "probability":
        confident, margin = conf >= cfg["gamma"], np.abs(conf - cfg["gamma"])
    else:  # Algorithm 1 line 13: reject if CE(g(x*), k) > gamma
        confident, margin = -np.log(conf) <= cfg["gamma"], np.abs(-np.log(conf) - cfg["gamma"])
    coin = coin_u < p_acc[np.arange(batch), seed]  # eq. 3 (R = 0)
    if not cfg["rejection"]:  # the "M2m-No-Reject" ablation: no Bernoulli draw
        coin = np.ones(batch, bool)
    accepted = slot & has_seed & coin & confident
    mixed = np.where(accepted[:, None], x_star, x)  # rejected slots keep the real minority sample
    value, f1 = _sgd_reference(f0, mixed, y, cfg["loss"], counts)
    return dict(slot=slot, has_seed=has_seed, seed=seed, seed_class=seed_class, coin=coin, confident=confident,
                gamma_margin=margin, conf=conf, accepted=accepted, iterates=iterates, x_star=x_star, mixed=mixed,
                loss=value, f1=f1)


# --------------------------------------------------------------------------- building and running a step


def _batch():
    rng = np.random.default_rng(11)
    x = rng.uniform(0.15, 0.85, size=(12, D))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    return x, y


def _config(**overrides):
    cfg = dict(counts=COUNTS, beta=0.97, lam=0.5, gamma=0.5, step_size=0.4, attack_steps=2, noise_norm=0.1,
               input_range=(0.0, 1.0), acceptance_criterion="probability", loss="ce", ensemble=False, seed=5, start_epoch=0,
               rejection=True)
    cfg.update(overrides)
    return cfg


def _build(cfg):
    f = _player("f", 1)
    gs = [_player("g1", 2)] + ([_player("g2", 3)] if cfg["ensemble"] else [])
    model = M2m(f, gs if cfg["ensemble"] else gs[0], class_counts=cfg["counts"], beta=cfg["beta"], lam=cfg["lam"],
                gamma=cfg["gamma"], step_size=cfg["step_size"], attack_steps=cfg["attack_steps"],
                start_epoch=cfg["start_epoch"], input_range=cfg["input_range"], noise_norm=cfg["noise_norm"],
                acceptance_criterion=cfg["acceptance_criterion"], rejection=cfg["rejection"], seed=cfg["seed"])
    loss = LDAMLoss(cfg["counts"], max_margin=0.5, scale=LDAM_SCALE) if cfg["loss"] == "ldam" else None
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=0.0), loss=loss, run_eagerly=True)
    return model, f, gs


def _snapshot(model, f, gs):
    for p in [f, *gs]:
        p.tap.calls.clear()
    state = np.asarray(keras.ops.convert_to_numpy(model.seed_generator.state))
    return state, _params(f), [_params(g) for g in gs], [[np.array(w) for w in g.weights] for g in gs]


def _assert_players(model, f, gs, g_weights_before, f_expected, f_calls_expected):
    """f holds the reference weights; g did not change at all; only f is trained."""
    after = _params(f)
    for k in (*TRAINABLE, "mm", "mv"):
        np.testing.assert_allclose(after[k], f_expected[k], atol=1e-5, err_msg=f"f's {k} after one step")
    for g, before in zip(gs, g_weights_before):
        assert not g.trainable
        for w, b in zip(g.weights, before):  # kernels, biases, BN gamma/beta AND moving mean/variance
            np.testing.assert_array_equal(np.asarray(w), b, err_msg=f"{g.name}/{w.path} changed")
    assert {id(v) for v in model.trainable_variables} == {id(v) for v in f.trainable_variables}
    assert len(f.tap.calls) == f_calls_expected


def _run_m2m_step(cfg, x=None, y=None):
    if x is None:
        x, y = _batch()
    model, f, gs = _build(cfg)
    state, f0, gs0, g_before = _snapshot(model, f, gs)
    logs = model.train_on_batch(tf.constant(x, "float32"), tf.constant(y), return_dict=True)
    ref = _m2m_reference(cfg, f0, gs0, x.astype("float32").astype(np.float64), y, state, gs[0].tap.calls[0][0])
    return model, f, gs, g_before, logs, ref, x, y


# --------------------------------------------------------------------------- the tests

STEP_CASES = {
    # name: (loss, acceptance_criterion, gamma, ensemble)
    "ce-probability-single": ("ce", "probability", 0.97, False),
    "ce-loss-ensemble": ("ce", "loss", 0.6, True),
    "ldam-loss-single": ("ldam", "loss", 0.03, False),
    "ldam-probability-ensemble": ("ldam", "probability", 0.7, True),
}


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_one_m2m_step_matches_the_papers_reference(case):
    """Algorithm 1 / Sec. 2.3 in one `train_step`: slots (1 - N_k/N_max), eq. 5 seeds, eq. 2 translation with
    f and g in inference mode, the gamma test, eq. 3 rejection, rejected slots keep the real sample, then one
    SGD step of f on the mixed batch with labels y (the target class k) under CE or LDAM; g never changes."""
    loss, criterion, gamma, ensemble = STEP_CASES[case]
    cfg = _config(loss=loss, acceptance_criterion=criterion, gamma=gamma, ensemble=ensemble)
    model, f, gs, g_before, logs, ref, x, y = _run_m2m_step(cfg)
    T = cfg["attack_steps"]

    # The configuration exercises every branch: accepted slots, slots rejected by the Bernoulli draw (eq. 3) and
    # by the gamma test, non-slots among the minority, and the majority (no seed, never a slot).
    slot_seeded = ref["slot"] & ref["has_seed"]
    assert ref["accepted"].sum() >= 2
    assert (slot_seeded & ~ref["coin"]).any(), "no Bernoulli rejection in this draw"
    assert (slot_seeded & ref["coin"] & ~ref["confident"]).any(), "no gamma rejection in this draw"
    assert (~ref["slot"] & (y > 0)).any()
    assert np.all(ref["gamma_margin"][slot_seeded] > 1e-3), "a confidence too close to gamma to compare"
    assert not ref["slot"][y == 0].any() and not ref["has_seed"][y == 0].any()

    # g: T + 1 calls (T attack steps, then the acceptance test), all in inference mode, on the reference iterates.
    for g in gs:
        assert [t for _, t in g.tap.calls] == [False] * (T + 1)
        for t, (got, _) in enumerate(g.tap.calls):
            np.testing.assert_allclose(got, ref["iterates"][min(t, T)], atol=1e-5, err_msg=f"{g.name} input {t}")
    # f: T attack calls in inference mode (lambda > 0), then ONE training call on the reference mixed batch.
    assert [t for _, t in f.tap.calls] == [False] * T + [True]
    for t in range(T):
        np.testing.assert_allclose(f.tap.calls[t][0], ref["iterates"][t], atol=1e-5)
    mixed_got = f.tap.calls[-1][0]
    np.testing.assert_allclose(mixed_got, ref["mixed"], atol=1e-5)
    keep = ~ref["accepted"]
    np.testing.assert_array_equal(mixed_got[keep], x.astype("float32")[keep])  # real samples, bit for bit

    # The loss of that step, with the slot's label k on accepted x*, and f's weights: w - lr * grad.
    np.testing.assert_allclose(logs["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    _assert_players(model, f, gs, g_before, ref["f1"], T + 1)
    # The step's metrics: accepted / slots, slots / samples.
    np.testing.assert_allclose(logs["generation_fraction"], ref["slot"].mean(), atol=1e-6)
    np.testing.assert_allclose(logs["acceptance_rate"], ref["accepted"].sum() / ref["slot"].sum(), atol=1e-6)
    assert int(_optimizer(model).iterations) == 1


class _StepRecorder(keras.callbacks.Callback):
    """Per training batch: the seed-generator state, f's and g's weights before, and what each player received."""

    def __init__(self, f, gs):
        super().__init__()
        self.f, self.gs, self.steps = f, gs, []

    def on_train_batch_begin(self, batch, logs=None):
        state, f0, gs0, g_before = _snapshot(self.model, self.f, self.gs)
        self.steps.append(dict(state=state, f0=f0, gs0=gs0, epoch=int(self.model.current_epoch)))

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1].update(f1=_params(self.f), f_calls=list(self.f.tap.calls), g_calls=[list(g.tap.calls) for g in self.gs])


@pytest.mark.parametrize("loss", ["ce", "ldam"])
def test_deferred_start_is_plain_erm_then_m2m(loss):
    """Sec. 3.1 deferred schedule: before `start_epoch` the step is ERM on the REAL batch (g is never called, f
    takes w - lr * grad of the plain loss); from `start_epoch` on, the step is the Algorithm 1 step of the reference."""
    cfg = _config(loss=loss, start_epoch=1, gamma=0.97 if loss == "ce" else 0.03,
                  acceptance_criterion="probability" if loss == "ce" else "loss")
    x, y = _batch()
    model, f, gs = _build(cfg)
    g_before = [[np.array(w) for w in g.weights] for g in gs]
    recorder = _StepRecorder(f, gs)
    history = model.fit(x.astype("float32"), y, batch_size=len(y), epochs=2, shuffle=False, verbose=0,
                        callbacks=[recorder]).history
    erm, m2m = recorder.steps
    xf = x.astype("float32").astype(np.float64)

    # Epoch 0: plain ERM. f sees the real batch once, in training mode; g is not consulted; no slot is counted.
    assert erm["epoch"] == 0 and erm["g_calls"] == [[]]
    assert [t for _, t in erm["f_calls"]] == [True]
    np.testing.assert_array_equal(erm["f_calls"][0][0], xf)
    value, f1 = _sgd_reference(erm["f0"], xf, y, loss, cfg["counts"])
    np.testing.assert_allclose(history["loss"][0], value, rtol=1e-5, atol=1e-6)
    for k in (*TRAINABLE, "mm", "mv"):
        np.testing.assert_allclose(erm["f1"][k], f1[k], atol=1e-5, err_msg=k)
    assert history["generation_fraction"][0] == 0.0

    # Epoch 1: the M2m step, from the weights ERM left.
    assert m2m["epoch"] == 1
    ref = _m2m_reference(cfg, m2m["f0"], m2m["gs0"], xf, y, m2m["state"], m2m["g_calls"][0][0][0])
    assert ref["accepted"].any() and (ref["slot"] & ~ref["accepted"]).any()
    np.testing.assert_allclose(m2m["f_calls"][-1][0], ref["mixed"], atol=1e-5)
    assert [t for _, t in m2m["f_calls"]] == [False] * cfg["attack_steps"] + [True]
    np.testing.assert_allclose(history["loss"][1], ref["loss"], rtol=1e-5, atol=1e-6)
    _assert_players(model, f, gs, g_before, ref["f1"], cfg["attack_steps"] + 1)
    np.testing.assert_allclose(history["generation_fraction"][1], ref["slot"].mean(), atol=1e-6)


@pytest.mark.parametrize("translated_positions", ["all", "candidates"])
def test_step_draws_follow_the_papers_distributions(translated_positions):
    """One `train_step` on a large unbalanced batch, read from what the players received: slots with probability
    1 - N_k / N_max (Sec. 2.3), seed classes k0 ~ Q(k0 | k) prop. to 1 - beta^((N_k0 - N_k)+) whatever the batch's
    class mix (eq. 5), acceptance by the Bernoulli draw of eq. 3, so accepted seeds ~ Q * P_accept; the majority
    class never generates. T = 0, no noise, lambda = 0 and gamma = 0 ("probability"), so x* = x0 exactly and only
    the random selection is left."""
    counts = np.array([12.0, 60.0, 4.0, 25.0])  # class 1 is the majority
    beta = 0.9
    sizes = np.array([300, 80, 300, 150])
    y = np.repeat(np.arange(4), sizes)
    batch = len(y)
    rng = np.random.default_rng(3)
    x = np.concatenate([np.arange(batch)[:, None], rng.uniform(size=(batch, D - 1))], axis=1)  # column 0: row id
    f, g = _player("f", 1, num_classes=4), _player("g", 2, num_classes=4)
    model = M2m(f, g, class_counts=counts, beta=beta, lam=0.0, gamma=0.0, acceptance_criterion="probability",
                attack_steps=0, noise_norm=0.0, input_range=None, translated_positions=translated_positions, seed=13)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=0.0), run_eagerly=True)
    logs = model.train_on_batch(tf.constant(x, "float32"), tf.constant(y), return_dict=True)

    [(mixed, training)] = f.tap.calls
    assert training
    accepted = np.any(mixed != x.astype("float32"), axis=1)
    seed_of_accepted = mixed[accepted, 0].astype(int)  # x* = x0: the accepted row is its seed
    np.testing.assert_array_equal(mixed[accepted], x.astype("float32")[seed_of_accepted])
    [(g_input, g_training)] = g.tap.calls  # the gamma test is g's only call (T = 0)
    assert g_training is False
    if translated_positions == "all":
        seeds = g_input[:, 0].astype(int)
        np.testing.assert_array_equal(seeds[accepted], seed_of_accepted)
    else:  # only the candidates reach g; with gamma = 0 every candidate is accepted
        np.testing.assert_array_equal(g_input[:, 0].astype(int), seed_of_accepted)

    p_acc = 1.0 - beta ** np.maximum(counts[None, :] - counts[:, None], 0.0)  # [k, k0], eq. 3
    q = p_acc / np.maximum(p_acc.sum(axis=1, keepdims=True), 1e-300)  # eq. 5
    assert not accepted[y == 1].any()
    expected_slots = np.mean(1.0 - counts[y] / counts.max())
    assert abs(logs["generation_fraction"] - expected_slots) < 4 * np.sqrt(expected_slots * (1 - expected_slots) / batch)
    for k in (0, 2, 3):
        rows = y == k
        if translated_positions == "all":
            observed = np.bincount(y[seeds[rows]], minlength=4)
            assert observed[q[k] == 0].sum() == 0, (k, observed)
            if (q[k] > 0).sum() > 1:
                _, p = stats.chisquare(observed[q[k] > 0], q[k][q[k] > 0] * rows.sum())
                assert p > 1e-3, (k, observed, q[k])
        rate = (1.0 - counts[k] / counts.max()) * np.sum(q[k] * p_acc[k])
        assert abs(accepted[rows].mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / rows.sum()), (k, accepted[rows].mean(), rate)
        # Accepted seeds: Q(k0 | k) * P_accept(k0 | k), renormalized.
        got = np.bincount(y[mixed[rows & accepted, 0].astype(int)], minlength=4)
        w = q[k] * p_acc[k]
        assert got[w == 0].sum() == 0
        if (w > 0).sum() > 1:
            _, p = stats.chisquare(got[w > 0], w[w > 0] / w.sum() * got.sum())
            assert p > 1e-3, (k, got, w)


def test_m2m_self_step_matches_the_reference():
    """M2m-Self (supplementary Sec. B): g = f. The translation's CE(g(x), k) and the gamma test use the current f in
    inference mode (its BN moving statistics must not move during the attack); then one SGD step of f on the mix."""
    cfg = _config(gamma=0.5)
    x, y = _batch()
    f = _player("f", 1)
    model = M2m(f, "self", class_counts=cfg["counts"], beta=cfg["beta"], lam=cfg["lam"], gamma=cfg["gamma"],
                step_size=cfg["step_size"], attack_steps=cfg["attack_steps"], input_range=cfg["input_range"],
                noise_norm=cfg["noise_norm"], acceptance_criterion=cfg["acceptance_criterion"], seed=cfg["seed"])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=0.0), run_eagerly=True)
    state, f0, _, _ = _snapshot(model, f, [])
    # NumPy arrays, as a user passes them: under run_eagerly, train_on_batch hands them to train_step unconverted.
    logs = model.train_on_batch(x.astype("float32"), y, return_dict=True)
    T = cfg["attack_steps"]
    ref = _m2m_reference(cfg, f0, [f0], x.astype("float32").astype(np.float64), y, state, f.tap.calls[0][0])
    slot_seeded = ref["slot"] & ref["has_seed"]
    assert ref["accepted"].any() and (slot_seeded & ref["coin"] & ~ref["confident"]).any()
    assert np.all(ref["gamma_margin"][slot_seeded] > 1e-3)
    # Per attack step: f as g, then f for the lambda term; then f as g for the gamma test; then f's training call.
    assert [t for _, t in f.tap.calls] == [False] * (2 * T + 1) + [True]
    for c in range(2 * T + 1):
        np.testing.assert_allclose(f.tap.calls[c][0], ref["iterates"][c // 2], atol=1e-5)
    np.testing.assert_allclose(f.tap.calls[-1][0], ref["mixed"], atol=1e-5)
    np.testing.assert_allclose(logs["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    _assert_players(model, f, [], [], ref["f1"], 2 * T + 2)


def test_no_reject_ablation_and_slots_without_a_larger_class_in_the_batch():
    """"M2m-No-Reject" (supplementary Sec. B): no Bernoulli draw (eq. 3), so with gamma = inf every seeded slot is
    replaced. A slot whose class is the largest one present has no seed in the batch (Sec. 2.3: k0 ~ Q(k0 | k)
    "until k0 in the batch"; Q's support is N_k0 > N_k), so it keeps its real sample even without rejection."""
    cfg = _config(rejection=False, acceptance_criterion="loss", gamma=float("inf"))
    rng = np.random.default_rng(12)
    x = rng.uniform(0.15, 0.85, size=(8, D))
    y = np.array([1, 2, 1, 2, 1, 2, 1, 2])  # no sample of the majority class 0
    model, f, gs, g_before, logs, ref, x, y = _run_m2m_step(cfg, x, y)
    assert not ref["has_seed"][y == 1].any() and ref["has_seed"][y == 2].all()
    assert (ref["slot"] & (y == 1)).any(), "no seedless slot in this draw"
    # With rejection on, eq. 3 would reject most of these (P(accept | 1 -> 2) = 1 - 0.97^8 = 0.22).
    np.testing.assert_array_equal(ref["accepted"], ref["slot"] & (y == 2))
    assert ref["accepted"].sum() >= 2
    mixed_got = f.tap.calls[-1][0]
    np.testing.assert_allclose(mixed_got, ref["mixed"], atol=1e-5)
    np.testing.assert_array_equal(mixed_got[y == 1], x.astype("float32")[y == 1])
    np.testing.assert_allclose(logs["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    _assert_players(model, f, gs, g_before, ref["f1"], cfg["attack_steps"] + 1)
