"""GAN divergence: a NaN in a player's loss stops `fit` naming the player and epoch; the last good checkpoint survives."""

import keras
import numpy as np
import pytest

from keras_imbalance.callbacks import PlayerDivergedError, TerminateOnNaNPlayer
from tests.scripts import models_zoo as zoo


class PoisonAt(keras.callbacks.Callback):
    """Sets one player's weights to NaN when epoch `epoch` begins; snapshots weights at every epoch end.

    All of them: a NaN only in a first layer can be masked (TF's ReLU maps NaN to 0).
    """

    def __init__(self, player, epoch):
        super().__init__()
        self.player, self.epoch = player, epoch
        self.snapshots = {}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for v in getattr(self.model, self.player).trainable_variables:
                v.assign(np.full(v.shape, np.nan, "float32"))

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots[epoch] = [np.asarray(w) for w in self.model.weights]


@pytest.mark.parametrize("method, player", [("gamo_pixel", "discriminator"), ("m2m", "classifier")])
def test_nan_in_a_player_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, method, player):
    x, y = zoo.data()
    model = zoo.compile_model(zoo.build(method, x, y))
    ckpt = str(tmp_path / "last.weights.h5")
    poison = PoisonAt(player, epoch=2)
    with pytest.raises(PlayerDivergedError, match=rf"epoch 3/4 \(0-based epoch 2\), batch 0.*'{player}'") as info:
        model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[
            poison, keras.callbacks.ModelCheckpoint(ckpt, save_weights_only=True),
        ])
    assert player in info.value.players and info.value.epoch == 2 and info.value.batch == 0
    assert sorted(poison.snapshots) == [0, 1]  # epoch 2 never ended, so nothing overwrote the checkpoint
    fresh = zoo.compile_model(zoo.build(method, x, y))
    fresh.load_weights(ckpt)
    for saved, now in zip(poison.snapshots[1], fresh.weights):
        np.testing.assert_array_equal(np.asarray(now), saved)
    assert all(np.all(np.isfinite(np.asarray(w))) for w in fresh.weights if np.asarray(w).dtype.kind == "f")
    # The optimizers' state came back too (iterations of the last good epoch).
    for name, value in zoo.optimizer_variables(fresh).items():
        if name.endswith("iteration"):
            assert int(value) > 0, name


def test_gamo_divergence_names_every_player_whose_loss_is_nan():
    x, y = zoo.data()
    model = zoo.compile_model(zoo.build("gamo_pixel", x, y))
    # A NaN discriminator poisons D's own loss and G's loss against D in the same step; M's stays finite.
    with pytest.raises(PlayerDivergedError) as info:
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[PoisonAt("discriminator", 1)])
    assert set(info.value.players) == {"discriminator", "generator"}


def test_without_raising_the_callback_stops_training_and_keeps_the_message():
    x, y = zoo.data()
    model = zoo.compile_model(zoo.build("gamo_pixel", x, y))
    stop = TerminateOnNaNPlayer(raise_error=False)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[stop, PoisonAt("classifier", 1)])
    assert len(history.history["classifier_loss"]) == 2  # stopped during epoch 2 of 3
    assert "'classifier'" in stop.message and "epoch 2/3" in stop.message


@pytest.mark.parametrize("method, player", [("cyclegan", "discriminator_b"), ("icg_aug", "classifier"), ("polarity", "critic")])
def test_nan_in_a_gan_player_stops_training_naming_it(tmp_path, method, player):
    # Their `fit` overrides (pair streams, stage 1) must still reach the base's TerminateOnNaNPlayer.
    x, y = zoo.data_for(method)
    model = zoo.compile_model(zoo.build(method, x, y))
    ckpt = str(tmp_path / "last.weights.h5")
    poison = PoisonAt(player, epoch=1)
    args = zoo.fit_data(method, x, y, 8) if method == "cyclegan" else (x, y)
    with pytest.raises(PlayerDivergedError, match=rf"epoch 2/3 \(0-based epoch 1\), batch 0.*'{player}'") as info:
        model.fit(*args, batch_size=8, epochs=3, verbose=0, callbacks=[
            poison, keras.callbacks.ModelCheckpoint(ckpt, save_weights_only=True),
        ])
    assert player in info.value.players and info.value.epoch == 1
    fresh = zoo.compile_model(zoo.build(method, x, y))
    fresh.load_weights(ckpt)
    for saved, now in zip(poison.snapshots[0], fresh.weights):
        np.testing.assert_array_equal(np.asarray(now), saved)
