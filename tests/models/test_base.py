"""MultiPlayerModel: one optimizer per player, trackers, exact resume from a .keras file."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_imbalance.models.base import MultiPlayerModel


@keras.saving.register_keras_serializable(package="keras_imbalance_tests")
class TwoPlayers(MultiPlayerModel):
    """`a` regresses y from x; `b` regresses a's output plus noise (uses the seed generator)."""

    player_names = ("a", "b")

    def __init__(self, a=None, b=None, **kwargs):
        super().__init__(**kwargs)
        self.a = a or keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        self.b = b or keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        self.mark_built((3,))

    def default_optimizer(self, name):
        return keras.optimizers.Adam(0.01) if name == "a" else keras.optimizers.SGD(0.1, momentum=0.9)

    def call(self, x, training=False):
        return self.a(x, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss_a = ops.mean(ops.square(self.a(x, training=True) - y))
        self.apply_player_gradients("a", tape, loss_a)
        target = ops.stop_gradient(self.a(x)) + keras.random.normal((ops.shape(x)[0], 1), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            loss_b = ops.mean(ops.square(self.b(target, training=True) - y))
        self.apply_player_gradients("b", tape, loss_b)
        return self.metrics_result()

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {**super().get_config(), "a": ser(self.a), "b": ser(self.b)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["a"] = keras.saving.deserialize_keras_object(config["a"])
        config["b"] = keras.saving.deserialize_keras_object(config["b"])
        return cls(**config)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")


def test_compile_builds_one_optimizer_per_player_and_no_default():
    model = TwoPlayers(seed=1)
    model.compile(optimizers={"b": keras.optimizers.Adam(0.05)})
    assert model.optimizer is None  # no unused RMSprop
    assert isinstance(model.a_optimizer, keras.optimizers.Adam) and float(model.a_optimizer.learning_rate) == pytest.approx(0.01)
    assert float(model.b_optimizer.learning_rate) == pytest.approx(0.05)
    # Built before the first step: Adam has 2 slots per variable (+ iterations, lr).
    assert model.a_optimizer.built and model.b_optimizer.built
    assert len(model.a_optimizer.variables) == 2 + 2 * len(model.a.trainable_variables)
    with pytest.raises(ValueError, match="one optimizer per player"):
        model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="unknown players"):
        model.compile(optimizers={"c": "adam"})


def test_metrics_track_each_player_and_reset_per_epoch():
    x, y = _data()
    model = TwoPlayers(seed=1)
    model.compile()
    assert [m.name for m in model.metrics] == ["a_loss", "b_loss"]
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"a_loss", "b_loss"}
    # Reset each epoch: epoch 2's mean is of epoch-2 batches only, so it
    # differs from the running mean over both epochs.
    assert history.history["a_loss"][1] < history.history["a_loss"][0]


def test_keras_round_trip_resumes_training_exactly(tmp_path):
    x, y = _data()
    model = TwoPlayers(seed=3)
    model.compile()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for name in ("a", "b"):
        opt, opt2 = getattr(model, f"{name}_optimizer"), getattr(reloaded, f"{name}_optimizer")
        assert type(opt2) is type(opt)
        assert int(opt2.iterations) == int(opt.iterations) == 2
        assert len(opt2.variables) == len(opt.variables)
        for v, v2 in zip(opt.variables, opt2.variables):
            np.testing.assert_array_equal(np.asarray(v2), np.asarray(v))
    np.testing.assert_array_equal(np.asarray(reloaded.seed_generator.state), np.asarray(model.seed_generator.state))
    # Same weights, optimizer state and seed-generator state: the next step matches.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    reloaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for w, w2 in zip(model.weights, reloaded.weights):
        np.testing.assert_allclose(np.asarray(w2), np.asarray(w), atol=1e-6)


def test_scale_loss_divides_by_replicas(monkeypatch):
    model = TwoPlayers()
    assert float(model.scale_loss(6.0)) == 6.0

    class FakeStrategy:
        num_replicas_in_sync = 3

    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: FakeStrategy())
    assert float(model.scale_loss(6.0)) == pytest.approx(2.0)


class _Classes(MultiPlayerModel):
    """A one-player classifier on (4, 4, 1) images whose `fit` data MethodModel checks (fit_data = "classes")."""

    player_names = ("net",)
    fit_data = "classes"
    num_classes = 3

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
        self.mark_built((4, 4, 1))

    def fit_sample_shape(self):
        return (4, 4, 1)

    def call(self, x, training=False):
        return self.net(x, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, self.net(x, training=True), from_logits=True))
        self.apply_player_gradients("net", tape, loss)
        return self.metrics_result()


def test_fit_checks_arrays_and_datasets_through_one_path():
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 4, 4, 1)).astype("float32"), np.sort(np.arange(24) % 3)
    model = _Classes(seed=0)
    model.compile()

    def dataset(images, labels):
        return tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)

    # Labels out of range only in the last batches of a class-sorted dataset: found as fit reads them.
    with pytest.raises(ValueError, match=r"^the dataset's labels have class id 3 out of range for num_classes=3$"):
        model.fit(dataset(x, np.where(y == 2, 3, y)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^the dataset's x has values in .* divide them by 255"):
        model.fit(dataset(x * 255, y), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^x has values in .* divide them by 255"):
        model.fit(x * 255, y, epochs=1, verbose=0)  # arrays: before Keras sees them
    model.fit(dataset(x, y.astype("float32")), epochs=1, verbose=0)  # integer-valued float labels train
    model.value_range = None  # the documented opt-out
    model.fit(x * 255, y, epochs=1, verbose=0)
    # A regression (no fit_data) is not checked as classes: TwoPlayers' float targets train.
    regression = TwoPlayers(seed=0)
    regression.compile()
    regression.fit(*_data(), epochs=1, verbose=0)
