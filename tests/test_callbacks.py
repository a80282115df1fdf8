import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance import callbacks, losses


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class _Recorder(keras.callbacks.Callback):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(self.fn(logs))


def test_drw_switches_weights_at_epoch_and_the_training_loss_uses_them():
    rng = np.random.default_rng(0)
    counts = [12, 3, 1]
    y = np.repeat(np.arange(3), counts)
    x = rng.normal(size=(len(y), 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    loss = losses.WeightedSparseCategoricalCrossentropy(num_classes=3)
    # lr = 0 freezes the model, so each epoch's logged loss is the loss of the
    # same logits under the weights in force during that epoch.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    drw = callbacks.DeferredReweighting.class_balanced(loss, counts, start_epoch=2, beta=0.99)
    seen = _Recorder(lambda logs: (loss.class_weights.numpy().copy(), logs["loss"]))
    model.fit(x, y, batch_size=len(y), epochs=4, shuffle=False, verbose=0, callbacks=[drw, seen])
    cb = losses.class_balanced_weights(counts, 0.99)
    z = model.predict(x, verbose=0).astype(float)
    per_sample = -np.log(_softmax(z)[np.arange(len(y)), y])
    for epoch, (w, logged) in enumerate(seen.values):
        expected_w = cb if epoch >= 2 else np.ones(3)
        np.testing.assert_allclose(w, expected_w, rtol=1e-6)
        expected_loss = np.sum(expected_w[y] * per_sample) / np.sum(expected_w[y])
        assert logged == pytest.approx(expected_loss, rel=1e-4), epoch
    assert drw.switched_at == 2
    assert seen.values[2][1] != pytest.approx(seen.values[1][1], rel=1e-3)


class _LabelCounter(keras.Model):
    """A linear classifier that counts the labels of every training batch it sees."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(num_classes)
        self.num_classes_ = num_classes
        self.seen = keras.Variable(np.zeros(num_classes, "float32"), trainable=False, name="seen")

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        _, y = data
        self.seen.assign_add(tf.math.bincount(tf.cast(y, tf.int32), minlength=self.num_classes_, maxlength=self.num_classes_, dtype=tf.float32))
        return super().train_step(data)


def test_drs_switches_to_class_balanced_batches_at_epoch():
    counts = [90, 10]
    y = np.repeat(np.arange(2), counts)
    x = np.random.default_rng(0).normal(size=(len(y), 3)).astype("float32")
    drs = callbacks.DeferredResampling(start_epoch=2)
    # One batch per epoch: a batch prefetched before the switch would show up
    # as a 90/10 batch at epoch 2.
    ds = drs.make_dataset(x, y, batch_size=100, seed=0)
    model = _LabelCounter(2, name="label_counter")
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    per_epoch = _Recorder(lambda logs: model.seen.numpy().copy())
    model.fit(ds, epochs=5, verbose=0, callbacks=[drs, per_epoch])
    totals = np.diff(np.concatenate([np.zeros((1, 2)), np.array(per_epoch.values)]), axis=0)
    assert totals.shape == (5, 2)
    np.testing.assert_array_equal(totals.sum(1), 100)  # same epoch length before and after
    np.testing.assert_array_equal(totals[:2], [[90, 10], [90, 10]])  # every sample once
    # Class-aware sampling: minority ~ Binomial(100, 0.5) per epoch (P(<= 30) < 1e-4).
    assert np.all(totals[2:, 1] > 30), totals
    assert drs.switched_at == 2


def _reference_lr(epoch, base=0.1):
    # M2m's and LDAM-DRW's adjust_learning_rate, re-derived from the paper's text.
    if epoch < 5:
        return base * (epoch + 1) / 5
    lr = base
    if epoch >= 160:
        lr /= 100
    if epoch >= 180:
        lr /= 100
    return lr


def test_paper_lr_schedule_matches_reference_and_scales():
    sched = callbacks.PaperLRSchedule(total_epochs=200)
    for e in range(200):
        assert 0.1 * sched.multiplier(e) == pytest.approx(_reference_lr(e)), e
    short = callbacks.PaperLRSchedule(total_epochs=30)
    assert (short.scaled_warmup, short.scaled_milestones) == (1, (24, 27))
    mult = [short.multiplier(e) for e in range(30)]
    assert mult[:24] == [1.0] * 24 and mult[24:27] == [pytest.approx(0.01)] * 3 and mult[27:] == [pytest.approx(1e-4)] * 3
    # Inside fit: the optimizer's LR follows the schedule epoch by epoch.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    sched = callbacks.PaperLRSchedule(total_epochs=10, warmup_epochs=40, milestones=(120, 160))
    hist = model.fit(np.ones((4, 2), "float32"), np.array([0, 1, 0, 1]), epochs=10, verbose=0, callbacks=[sched])
    expected = [0.5 * sched.multiplier(e) for e in range(10)]
    np.testing.assert_allclose(hist.history["learning_rate"], expected, rtol=1e-6)
    assert expected[0] == pytest.approx(0.25) and expected[6] == pytest.approx(0.005) and expected[9] == pytest.approx(5e-5)


def test_callback_argument_errors():
    loss = losses.WeightedSparseCategoricalCrossentropy(num_classes=3)
    with pytest.raises(ValueError, match="shape"):
        callbacks.DeferredReweighting(loss, [1.0, 2.0], start_epoch=1)
    with pytest.raises(ValueError, match="no class weights"):
        callbacks.DeferredReweighting(keras.losses.MeanSquaredError(), [1.0], start_epoch=1)
    with pytest.raises(ValueError, match="start_epoch"):
        callbacks.DeferredResampling(start_epoch=-1)
    with pytest.raises(ValueError, match="total_epochs"):
        callbacks.PaperLRSchedule(total_epochs=0)


class _NumpyOp(keras.layers.Layer):
    """An identity through tf.numpy_function: runs in a graph, but XLA cannot compile it."""

    def call(self, x):
        out = tf.numpy_function(lambda a: a, [x], tf.float32)
        return tf.ensure_shape(out, x.shape)


def _numpy_op_model():
    model = keras.Sequential([keras.Input((3,)), _NumpyOp(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_xla_compile_turns_xla_on_for_the_fit():
    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    plain = _numpy_op_model()
    plain.fit(x, y, epochs=1, verbose=0)  # without XLA the op runs
    model = _numpy_op_model()
    # With XLA the train step is compiled, and the op XLA cannot compile is refused: XLA really ran.
    with pytest.raises(Exception, match="(?i)xla|compil|PyFunc"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.XLACompile()])
    assert model.jit_compile is True
    eager = _numpy_op_model()
    eager.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    with pytest.raises(ValueError, match="runs eagerly"):
        eager.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.XLACompile()])
