"""Training schedules as Keras callbacks: deferred re-weighting / re-sampling, the papers' LR.

- `DeferredReweighting` (DRW, Cao et al. 2019, Sec. 3.3): train with the loss's
  initial class weights (ones), switch to new weights (class-balanced) at
  epoch E.
- `DeferredResampling` (DRS, same paper): train on the data as it is, switch
  to class-aware (class-balanced) sampling at epoch E. The callback owns a
  boolean `tf.Variable`; `make_dataset` builds a `tf.data` pipeline that reads
  it when each epoch's iterator starts, so one `fit` call switches its data.
- `PaperLRSchedule`: linear warm-up, then step decay, scaled to a total number
  of epochs (M2m / LDAM-DRW CIFAR recipe).
- `LinearLRDecay`: constant LR, then linear decay towards zero (CycleGAN's
  recipe), for every optimizer of a single- or multi-player model.
- `AlternatingPhases`: switch a model between training phases every few
  epochs (ImbalanceCycleGAN's ALT mode).

- `TerminateOnNaNPlayer`: stop a multi-player (GAN) training as soon as a
  player's loss is NaN or inf, naming the player and the epoch
  (`MultiPlayerModel.fit` adds it by default).
- `XLACompile`: XLA-compile (`jit_compile=True`) the train step of the fit
  it is given to, for code that compiles its models itself (the recipes).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.validation import check_xy
from keras_imbalance.losses import class_balanced_weights


def _check_epoch(start_epoch):
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, (int, np.integer)) or start_epoch < 0:
        raise ValueError(f"start_epoch must be an integer >= 0, got {start_epoch!r}")
    return int(start_epoch)


@keras.saving.register_keras_serializable(package="keras_imbalance")
class DeferredReweighting(keras.callbacks.Callback):
    """DRW: switch a loss's per-class weights at epoch `start_epoch`.

    Works with any loss of `keras_imbalance.losses` that holds its weights in
    `loss.class_weights` (weighted cross-entropy, focal, LDAM). Before
    `start_epoch` the loss uses `initial_weights` (default: ones, i.e. the
    plain loss), from `start_epoch` on it uses `weights`. The choice is made at
    every epoch begin, so resuming with `fit(initial_epoch=...)` is consistent.

    In LDAM-DRW and M2m the deferred weights are class-balanced with
    beta = 0.9999 and the switch happens at epoch 160 of 200 (use
    `DeferredReweighting.class_balanced(loss, counts, start_epoch)`).

    Args:
        loss: the loss object given to `compile` (has `set_class_weights`).
        weights: per-class weights (C,) from `start_epoch` on.
        start_epoch: 0-based epoch index of the switch.
        initial_weights: weights before the switch (default ones).

    Attributes:
        switched_at: the epoch at which the deferred weights were first
            assigned during the last `fit`, or None.
    """

    def __init__(self, loss, weights, start_epoch, initial_weights=None):
        super().__init__()
        if not hasattr(loss, "set_class_weights"):
            raise ValueError(f"loss {loss!r} has no class weights to switch; use a keras_imbalance.losses loss")
        self.loss = loss
        self.weights = np.asarray(weights, np.float32)
        n = loss.num_classes
        if self.weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},) to match the loss, got {self.weights.shape}")
        self.initial_weights = np.ones(n, np.float32) if initial_weights is None else np.asarray(initial_weights, np.float32)
        if self.initial_weights.shape != (n,):
            raise ValueError(f"initial_weights must have shape ({n},), got {self.initial_weights.shape}")
        self.start_epoch = _check_epoch(start_epoch)
        self.switched_at = None

    @classmethod
    def class_balanced(cls, loss, class_counts, start_epoch, beta=0.9999):
        """DRW with the class-balanced weights of Cui et al. (2019) (LDAM-DRW's choice)."""
        return cls(loss, class_balanced_weights(class_counts, beta), start_epoch)

    def on_train_begin(self, logs=None):
        self.switched_at = None

    def on_epoch_begin(self, epoch, logs=None):
        deferred = epoch >= self.start_epoch
        self.loss.set_class_weights(self.weights if deferred else self.initial_weights)
        if deferred and self.switched_at is None:
            self.switched_at = int(epoch)

    def get_config(self):
        # The loss is not part of the config: pass it again when rebuilding.
        return {"weights": self.weights.tolist(), "start_epoch": self.start_epoch, "initial_weights": self.initial_weights.tolist()}


@keras.saving.register_keras_serializable(package="keras_imbalance")
class DeferredResampling(keras.callbacks.Callback):
    """DRS: switch the training data to class-aware sampling at epoch `start_epoch`.

    Usage:

    >>> drs = DeferredResampling(start_epoch=160)
    >>> ds = drs.make_dataset(x, y, batch_size=128, seed=0)
    >>> model.fit(ds, epochs=200, callbacks=[drs])

    The dataset holds two pipelines built by `datasets.to_dataset`: the plain
    shuffled one (every sample once per epoch) and the class-balanced one
    (`balanced=True`, same number of batches). A selector reads the callback's
    flag for every batch, and the flag changes only in `on_epoch_begin`. Keras
    starts a fresh iterator for each epoch of a finite dataset *after*
    `on_epoch_begin`, so prefetching never mixes the two regimes; do not pass
    `steps_per_epoch` to `fit` with this dataset (then Keras keeps one
    iterator across epochs and the first batches after the switch may have
    been prefetched under the old regime).

    Args:
        start_epoch: 0-based epoch index of the switch.
    """

    def __init__(self, start_epoch):
        super().__init__()
        self.start_epoch = _check_epoch(start_epoch)
        self.balanced = tf.Variable(False, trainable=False, name="drs_balanced")
        self.switched_at = None

    def make_dataset(self, x, y, batch_size, seed=0, num_classes=None, augment=None):
        """The switchable `tf.data.Dataset` of `(x, y)` batches for this callback (`augment`: see `to_dataset`)."""
        x, y = check_xy(x, y, num_classes)
        plain = to_dataset(x, y, batch_size, shuffle=True, seed=seed, num_classes=num_classes, augment=augment)
        balanced = to_dataset(x, y, batch_size, balanced=True, seed=seed + 1, num_classes=num_classes, augment=augment)
        num_batches = math.ceil(len(y) / batch_size)
        flag = self.balanced
        selector = tf.data.Dataset.range(num_batches).map(lambda _: tf.cast(flag.read_value(), tf.int64))
        ds = tf.data.Dataset.choose_from_datasets([plain, balanced], selector, stop_on_empty_dataset=True)
        # Known length: Keras then counts steps and opens a new iterator per epoch.
        ds = ds.apply(tf.data.experimental.assert_cardinality(num_batches))
        return ds.prefetch(tf.data.AUTOTUNE)

    def on_train_begin(self, logs=None):
        self.switched_at = None

    def on_epoch_begin(self, epoch, logs=None):
        deferred = epoch >= self.start_epoch
        self.balanced.assign(deferred)
        if deferred and self.switched_at is None:
            self.switched_at = int(epoch)

    def get_config(self):
        return {"start_epoch": self.start_epoch}


def scale_epoch(epoch, total_epochs, reference_epochs=200):
    """An epoch index of the 200-epoch CIFAR recipe mapped to `total_epochs` (rounded)."""
    return int(round(epoch * total_epochs / reference_epochs))


@keras.saving.register_keras_serializable(package="keras_imbalance")
class PaperLRSchedule(keras.callbacks.Callback):
    """Linear warm-up then step decay, per epoch (M2m / LDAM-DRW CIFAR recipe).

    lr(e) = base * (e + 1) / W            for e < W (0-based epochs)
    lr(e) = base * factor ** k(e)         otherwise, k(e) = #milestones <= e

    The paper defaults (Kim et al. 2020, Sec. 4 and supp. A: 200 epochs,
    initial LR 0.1, "decay it by a factor of 100 at 160-th and 180-th epoch",
    5-epoch linear warm-up) give 0.1 -> 1e-3 at epoch 160 -> 1e-5 at 180; the
    M2m and LDAM-DRW reference code does the same (x0.01 at 160, x0.0001 at
    180 relative to the base). `warmup_epochs` and `milestones` are given for
    `reference_epochs` and scaled to `total_epochs` (rounded; a non-zero
    warm-up stays >= 1 epoch), so a 30-epoch run keeps the proportions.

    Args:
        total_epochs: epochs of this run.
        base_lr: initial LR; default: the optimizer's LR at `on_train_begin`.
        warmup_epochs: warm-up length for `reference_epochs` (5).
        milestones: decay epochs for `reference_epochs` ((160, 180)).
        factor: multiplicative decay at each milestone (0.01).
        reference_epochs: the epoch count the above are given for (200).
        player: None (the model's `optimizer`) or the player of a multi-player
            model whose optimizer is scheduled (`"classifier"`: the
            `classifier_optimizer` of GAMO, PolarityGAN, ImbalanceCycleGAN), so
            a method's classifier can follow the same schedule as a baseline
            while its other players keep their own settings.
    """

    def __init__(self, total_epochs, base_lr=None, warmup_epochs=5, milestones=(160, 180), factor=0.01, reference_epochs=200,
                 player=None):
        super().__init__()
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, (int, np.integer)) or total_epochs < 1:
            raise ValueError(f"total_epochs must be an integer >= 1, got {total_epochs!r}")
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        self.total_epochs = int(total_epochs)
        self.base_lr = None if base_lr is None else float(base_lr)
        self.warmup_epochs = int(warmup_epochs)
        self.milestones = tuple(int(m) for m in milestones)
        self.factor = float(factor)
        self.reference_epochs = int(reference_epochs)
        w = scale_epoch(self.warmup_epochs, self.total_epochs, self.reference_epochs)
        self.scaled_warmup = max(1, w) if self.warmup_epochs > 0 else 0
        self.scaled_milestones = tuple(scale_epoch(m, self.total_epochs, self.reference_epochs) for m in self.milestones)
        self.player = None if player is None else str(player)
        self._base = self.base_lr

    def _optimizer(self):
        if self.player is None:
            return self.model.optimizer
        opt = getattr(self.model, f"{self.player}_optimizer", None)
        if opt is None:
            raise ValueError(f"PaperLRSchedule: the model has no {self.player}_optimizer; compile it first")
        return opt

    def multiplier(self, epoch):
        """The LR multiplier of 0-based `epoch`."""
        if epoch < self.scaled_warmup:
            return (epoch + 1) / self.scaled_warmup
        return self.factor ** sum(1 for m in self.scaled_milestones if epoch >= m)

    def on_train_begin(self, logs=None):
        # Captured once, so a second `fit` (e.g. resuming) keeps the same base.
        if self._base is None:
            self._base = float(keras.ops.convert_to_numpy(self._optimizer().learning_rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._optimizer().learning_rate = self._base * self.multiplier(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            key = "learning_rate" if self.player is None else f"{self.player}_learning_rate"
            logs[key] = float(keras.ops.convert_to_numpy(self._optimizer().learning_rate))

    def get_config(self):
        return {
            "total_epochs": self.total_epochs,
            "base_lr": self.base_lr,
            "warmup_epochs": self.warmup_epochs,
            "milestones": list(self.milestones),
            "factor": self.factor,
            "reference_epochs": self.reference_epochs,
            "player": self.player,
        }


def _model_optimizers(model):
    """The optimizers of a model: one per player of a multi-player model, else `model.optimizer`."""
    names = getattr(model, "player_names", None)
    if names:
        opts = [getattr(model, f"{n}_optimizer", None) for n in names]
        return [o for o in opts if o is not None]
    return [model.optimizer] if getattr(model, "optimizer", None) is not None else []


@keras.saving.register_keras_serializable(package="keras_imbalance")
class LinearLRDecay(keras.callbacks.Callback):
    """Constant learning rate for `constant_epochs`, then linear decay over `decay_epochs` (CycleGAN).

    lr(e) = base * (1 - max(0, e + 1 - constant_epochs) / (decay_epochs + 1)) for the 0-based epoch e,
    the rule of the CycleGAN reference code (Zhu et al. 2017: 100 + 100
    epochs; ImbalanceCycleGAN Appendix A.2: 50 constant + 150 decay): the last
    epoch runs at base / (decay_epochs + 1) and the next would reach zero.
    Applied to every optimizer of the model (all four of a `CycleGAN`, or
    `model.optimizer` for an ordinary model), each relative to its own base
    learning rate.

    Args:
        constant_epochs: epochs at the base learning rate.
        decay_epochs: epochs of linear decay after them.
        base_learning_rate: None (each optimizer's LR when training first
            begins with this callback, kept across later `fit` calls) or a
            float for all of them (pass it when resuming a decayed model with
            a new callback).
    """

    def __init__(self, constant_epochs, decay_epochs, base_learning_rate=None):
        super().__init__()
        for value, what in ((constant_epochs, "constant_epochs"), (decay_epochs, "decay_epochs")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{what} must be an integer >= 0, got {value!r}")
        self.constant_epochs = int(constant_epochs)
        self.decay_epochs = int(decay_epochs)
        self.base_learning_rate = None if base_learning_rate is None else float(base_learning_rate)
        self._bases = None

    def multiplier(self, epoch):
        """The LR multiplier of 0-based `epoch`."""
        return 1.0 - max(0, epoch + 1 - self.constant_epochs) / float(self.decay_epochs + 1)

    def on_train_begin(self, logs=None):
        optimizers = _model_optimizers(self.model)
        if not optimizers:
            raise ValueError("LinearLRDecay: the model has no optimizer; compile it first")
        if self._bases is None:
            self._bases = [
                self.base_learning_rate if self.base_learning_rate is not None
                else float(keras.ops.convert_to_numpy(o.learning_rate)) for o in optimizers
            ]
        self._optimizers = optimizers

    def on_epoch_begin(self, epoch, logs=None):
        factor = max(0.0, self.multiplier(epoch))
        for opt, base in zip(self._optimizers, self._bases):
            opt.learning_rate = base * factor

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._optimizers:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self._optimizers[0].learning_rate))

    def get_config(self):
        return {"constant_epochs": self.constant_epochs, "decay_epochs": self.decay_epochs,
                "base_learning_rate": self.base_learning_rate}


@keras.saving.register_keras_serializable(package="keras_imbalance")
class AlternatingPhases(keras.callbacks.Callback):
    """Switch a model between `num_phases` training phases every `switch_every` epochs.

    At each epoch begin it calls `model.set_phase((epoch // switch_every) % num_phases)`
    (ImbalanceCycleGAN's ALT mode, Appendix A.1: 5 epochs of classifier
    training, then 5 of CycleGAN training, and so on). The phase depends only
    on the epoch index, so resuming with `fit(initial_epoch=...)` continues
    the same schedule.

    Attributes:
        phases: the phase set at each epoch of the last `fit`.
    """

    def __init__(self, switch_every=5, num_phases=2):
        super().__init__()
        if isinstance(switch_every, bool) or not isinstance(switch_every, (int, np.integer)) or switch_every < 1:
            raise ValueError(f"switch_every must be an integer >= 1, got {switch_every!r}")
        if isinstance(num_phases, bool) or not isinstance(num_phases, (int, np.integer)) or num_phases < 1:
            raise ValueError(f"num_phases must be an integer >= 1, got {num_phases!r}")
        self.switch_every = int(switch_every)
        self.num_phases = int(num_phases)
        self.phases = []

    def phase(self, epoch):
        return (int(epoch) // self.switch_every) % self.num_phases

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "set_phase", None)):
            raise ValueError(f"AlternatingPhases needs a model with a set_phase(phase) method; {type(self.model).__name__} has none")
        self.phases = []

    def on_epoch_begin(self, epoch, logs=None):
        p = self.phase(epoch)
        self.model.set_phase(p)
        self.phases.append(p)

    def get_config(self):
        return {"switch_every": self.switch_every, "num_phases": self.num_phases}

class PlayerDivergedError(FloatingPointError):
    """A player's loss became NaN or inf during `fit` (raised by `TerminateOnNaNPlayer`).

    Attributes: `players` (names), `epoch` (0-based), `batch` (0-based).
    """

    def __init__(self, message, players=(), epoch=None, batch=None):
        super().__init__(message)
        self.players = tuple(players)
        self.epoch = epoch
        self.batch = batch


class TerminateOnNaNPlayer(keras.callbacks.Callback):
    """Stop training at the first batch where a player's loss is NaN or inf.

    Reads the per-player loss logs (`<player>_loss`, as `MultiPlayerModel`
    logs them; a model without `player_names` is checked on every `*loss*`
    log) after every training batch and raises `PlayerDivergedError` naming
    the player(s) and the epoch. Raising, rather than setting
    `model.stop_training` as `keras.callbacks.TerminateOnNaN` does, skips the
    epoch's `on_epoch_end`, so a `ModelCheckpoint` / `BackupAndRestore`
    never overwrites the last good checkpoint with diverged weights; the
    weights in memory are the diverged ones, reload the checkpoint.

    Args:
        raise_error: True (default) raises; False logs the message, sets
            `model.stop_training` and keeps it in `self.message` (then the
            epoch still ends and checkpoint callbacks do run).
    """

    def __init__(self, raise_error=True):
        super().__init__()
        self.raise_error = bool(raise_error)
        self.message = None
        self._epoch = 0

    def _loss_keys(self, logs):
        names = getattr(self.model, "player_names", None)
        if names:
            return [(f"{n}_loss", n) for n in names if f"{n}_loss" in logs]
        player = getattr(self.model, "nan_player_name", "model")
        return [(k, player if k == "loss" else k) for k in logs if "loss" in k]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if not logs:
            return
        bad = []
        for key, player in self._loss_keys(logs):
            value = np.asarray(keras.ops.convert_to_numpy(logs[key]), dtype="float64")
            if not np.all(np.isfinite(value)):
                bad.append((player, float(np.ravel(value)[0])))
        if not bad:
            return
        epochs = self.params.get("epochs") if self.params else None
        shown = f"epoch {self._epoch + 1}" + (f"/{epochs}" if epochs else "")
        what = ", ".join(f"{p!r} (loss {v})" for p, v in bad)
        self.message = (
            f"training diverged at {shown} (0-based epoch {self._epoch}), batch {int(batch)}: "
            f"the loss of player(s) {what} is not finite. Reload the last checkpoint and lower that "
            "player's learning rate or check the inputs for NaN/inf."
        )
        if self.raise_error:
            raise PlayerDivergedError(self.message, [p for p, _ in bad], self._epoch, int(batch))
        print(self.message)
        self.model.stop_training = True


class RestoreBestBalancedAccuracy(keras.callbacks.Callback):
    """Model selection on a validation split: keep the epoch with the best balanced accuracy, restore it at the end.

    The evaluation protocol (DESIGN.md): model selection, when any, uses a
    balanced validation split carved from the pool, never the test split and
    never the training subset. After every epoch the model's logits on
    `(x_val, y_val)` are scored by balanced accuracy (mean per-class recall);
    the weights of the best epoch (the earliest on ties) are kept and put
    back into the model when training ends. `best_epoch` and `best_score`
    record the choice; each epoch's score is logged as `val_balanced_accuracy`.

    Args:
        x_val, y_val: the validation samples and sparse labels.
        num_classes: default max(y_val) + 1.
        batch_size: prediction batch size (256).
    """

    def __init__(self, x_val, y_val, num_classes=None, batch_size=256):
        super().__init__()
        self.x_val, self.y_val = check_xy(x_val, y_val, num_classes)
        self.x_val = self.x_val.astype("float32", copy=False)
        self.num_classes = int(num_classes) if num_classes is not None else int(self.y_val.max()) + 1
        self.batch_size = int(batch_size)
        self.best_epoch = None
        self.best_score = None
        self._best_weights = None

    def score(self):
        """Balanced accuracy of the model on the validation split now (classes absent from it are skipped)."""
        preds = []
        for i in range(0, len(self.y_val), self.batch_size):
            preds.append(np.asarray(self.model(self.x_val[i : i + self.batch_size], training=False)).argmax(-1))
        pred = np.concatenate(preds)
        recalls = [np.mean(pred[self.y_val == c] == c) for c in range(self.num_classes) if np.any(self.y_val == c)]
        return float(np.mean(recalls))

    def on_train_begin(self, logs=None):
        self.best_epoch, self.best_score, self._best_weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        s = self.score()
        if logs is not None:
            logs["val_balanced_accuracy"] = s
        if self.best_score is None or s > self.best_score:
            self.best_epoch, self.best_score = int(epoch), s
            self._best_weights = [np.array(w) for w in self.model.get_weights()]

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class XLACompile(keras.callbacks.Callback):
    """Train with an XLA-compiled step (`jit_compile=True`), whatever `compile` was given.

    For training code that compiles its models itself, such as the recipes
    `compare` runs (`keras-imbalance compare --jit-compile`): it reaches every
    model fitted with the callbacks given, without a change to the recipe.
    At train begin it sets `model.jit_compile = True` and makes the train
    function again (Keras makes it before the callbacks' `on_train_begin`,
    and traces it only at the first step, so nothing is traced twice).

    Keras silently trains without XLA (a warning only) when a layer does not
    support it or TensorFlow op determinism is on; this callback raises a
    ValueError instead, so a run asked to use XLA never runs without it.
    The recipes pass it on to their inner fits too (the CycleGAN pre-training
    of ImbalanceCycleGAN, PolarityGAN's stage-1 autoencoder).
    """

    def on_train_begin(self, logs=None):
        model = self.model
        if model.jit_compile:
            return
        if model.run_eagerly:
            raise ValueError(f"{model.name} runs eagerly (run_eagerly=True); it cannot also be XLA-compiled")
        model.jit_compile = True
        if not model.jit_compile:  # Keras' setter refused it
            raise ValueError(
                f"{model.name} cannot be XLA-compiled (jit_compile=True): a layer does not support XLA, or "
                "TensorFlow op determinism is enabled"
            )
        model.make_train_function(force=True)
