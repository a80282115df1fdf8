"""Shared plumbing for models with several players (GANs and their kin).

`MultiPlayerModel` is a `keras.Model` whose `call(x)` is one network's forward
pass (usually the classifier) and whose `train_step` updates several
*players*, each a Keras model stored as an attribute with its own optimizer.
It implements the "Conventions for multi-player models" of DESIGN.md once, so
that GAMO, ImbalanceCycleGAN and PolarityGAN only write their `train_step`:

- `compile(optimizers={name: optimizer}, **kwargs)` (subclasses expose named
  keyword arguments and forward them) calls `super().compile(optimizer=None,
  ...)` so Keras does not create and save an unused RMSprop, and builds each
  optimizer on its player's trainable variables (the first step under
  `tf.distribute` fails otherwise);
- one `keras.metrics.Mean` per player, named `<player>_loss`, listed by the
  `metrics` property so `fit` resets them every epoch;
- `seed_generator` for `keras.random.*(seed=self.seed_generator)`;
- `get_compile_config` / `compile_from_config` serialize every optimizer, and
  each optimizer is an attribute (`<player>_optimizer`), so the `.keras` file
  stores its iterations and slot variables and a reloaded model resumes
  training exactly;
- `scale_loss` divides a hand-written loss by the replica count, since under
  `tf.distribute` gradients are summed across replicas;
- `apply_player_gradients` (one player) and `apply_joint_gradients` (players
  sharing one objective) are the one place where a tape meets an optimizer;
  gradients are divided by the replica count there;
- mixed precision: under a `mixed_float16` dtype policy `compile` wraps each
  player's optimizer in a `keras.optimizers.LossScaleOptimizer` (as
  `keras.Model.compile` does for its one optimizer), and the gradient of
  each player is taken of its loss times that optimizer's current scale
  (`optimizer.scale_loss`, what Keras' own `train_step` applies), so small
  float16 gradients do not flush to zero; the optimizer divides it out and
  skips a step whose gradients overflowed. Hand-written losses must be
  float32 (cast float16 network outputs first);
- random draws inside `train_step` go through `distribute.replica_draws`:
  every replica draws for the GLOBAL batch from the same (mirrored) seed
  state and keeps its own rows, so a run on R devices uses the same random
  numbers as a run on one device with the same global batch;
- `fit` adds `callbacks.TerminateOnNaNPlayer` (set the class attribute
  `terminate_on_nan = False` to opt out), which stops training with an error
  naming the player whose loss became NaN / inf and the epoch.

Subclasses set `player_names` (class attribute, tuple of attribute names)
and implement `default_optimizer(name)`; a player attribute may be `None`
(an optional player such as GAMO's discriminator) and is then skipped.
"""

import keras

from keras_imbalance.callbacks import TerminateOnNaNPlayer
from keras_imbalance.datasets.validation import IMAGE_VALUE_RANGE, check_fit_data, input_check_errors
from keras_imbalance.distribute import multi_worker_logs, multi_worker_safe_symbolic_build, num_replicas, scale_gradients
from keras_imbalance.layers.seed_state import SeedStateSaving
from keras_imbalance.models.preset_loading import PresetLoadingMixin
from keras_imbalance.models.pixel_range import DEFAULT_PIXEL_RANGE, PixelRangeInput


def serialize_networks(owner, names):
    """{name: the Keras config of `owner.<name>`} for `get_config`: a network, a list of them, or None."""
    ser = keras.saving.serialize_keras_object
    out = {}
    for name in names:
        value = getattr(owner, name)
        out[name] = None if value is None else [ser(v) for v in value] if isinstance(value, list) else ser(value)
    return out


def deserialize_networks(config, names, custom_objects=None):
    """A copy of `config` with the networks `names` deserialized, for `from_config`.

    A list is deserialized item by item; None, a missing key and a string
    (M2m's `translator="self"`) stay as they are.
    """
    config = dict(config)
    for name in names:
        value = config.get(name)
        if isinstance(value, list):
            config[name] = [keras.saving.deserialize_keras_object(v, custom_objects=custom_objects) for v in value]
        elif isinstance(value, dict):
            config[name] = keras.saving.deserialize_keras_object(value, custom_objects=custom_objects)
    return config

_RESERVED_COMPILE_KEYS = ("optimizer", "loss")


def _loss_scale(optimizer):
    """What `optimizer.scale_loss` multiplies a loss by (a `LossScaleOptimizer`'s dynamic scale), or None for 1."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or optimizer.loss_scale_factor is not None:
        return optimizer.scale_loss(keras.ops.convert_to_tensor(1.0, "float32"))
    return None


class MethodModel(PixelRangeInput, SeedStateSaving, PresetLoadingMixin, keras.Model):
    """What every method model shares, whatever its training step (`MultiPlayerModel`, `M2m`).

    - `self.seed_generator`, seeded by `seed`: all randomness inside
      `train_step` goes through it, and its state is saved with the model
      (`layers.SeedStateSaving`), so runs are reproducible and resume exactly;
    - `fit` adds `callbacks.TerminateOnNaNPlayer` first in the callbacks
      (set the class attribute `terminate_on_nan = False` to opt out), which
      stops training with an error naming the player whose loss became NaN /
      inf and the epoch;
    - `fit` checks its data first when the class sets `fit_data`
      (`datasets.validation.check_fit_data`): arrays whole, a
      `tf.data.Dataset` inside its pipeline (the labels of every batch, the
      samples of the first batches), against `fit_sample_shape()`,
      `num_classes` and `value_range` (image samples must lie in it,
      default (0, 1); set `model.value_range = None` to accept any range);
      a failed check is a ValueError naming the problem;
    - `from_preset(name)` (`PresetLoadingMixin`);
    - `pixel_range` (`models.pixel_range.PixelRangeInput`): the range the
      model was trained in, saved in its config; uint8 input (raw pixels
      0..255) is scaled to it before `call`, floating input is taken as
      already in it;
    - the first-batch symbolic build works under `MultiWorkerMirroredStrategy`
      (`distribute.multi_worker_safe_symbolic_build`).

    Args:
        seed: int or None.
        seed_generator_name: the generator's name.
        pixel_range: (low, high) of the training images, default (0, 1) (the
            loaders' range; (-1, 1) for GAMO's paper scaling).
        **kwargs: passed to `keras.Model` (name, dtype, ...).
    """

    terminate_on_nan = True
    # The constructor arguments that are networks (or lists of them): stored
    # under their own name, serialized by `get_config` of the subclass with
    # `serialize_networks`, deserialized by `from_config` here.
    network_names = ()
    # The (low, high) range of the image samples `fit` accepts (`datasets.validation.check_value_range`); None: any.
    value_range = IMAGE_VALUE_RANGE
    # What `fit` checks its data as: "classes" (samples and class ids 0..num_classes-1), "pairs" (two
    # image batches a, b, as CycleGAN's domains) or None (unchecked here: a model whose `fit` validates
    # all of its data itself, or one that is not a classifier, such as a regression).
    fit_data = None

    def __init__(self, seed=None, seed_generator_name="seed_generator", pixel_range=DEFAULT_PIXEL_RANGE, **kwargs):
        super().__init__(**kwargs)
        self.pixel_range = pixel_range
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name=seed_generator_name)

    def fit_sample_shape(self):
        """One sample's shape (no batch axis) that `fit` checks its data against, or None (unchecked)."""
        return None

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit` on checked data, with `TerminateOnNaNPlayer` first in the callbacks (unless present or disabled)."""
        if self.fit_data is not None:
            args, kwargs = self._checked_fit_data(args, kwargs)
        if not isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = list(callbacks or [])
            if self.terminate_on_nan and not any(isinstance(c, TerminateOnNaNPlayer) for c in callbacks):
                # First, so it raises before any checkpoint callback saves this batch.
                callbacks.insert(0, TerminateOnNaNPlayer())
        # A dataset's first batches are checked as fit reads them: their failure becomes a ValueError here.
        with input_check_errors():
            return super().fit(*args, callbacks=callbacks, **kwargs)

    def _checked_fit_data(self, args, kwargs):
        """(args, kwargs) of `fit` with x validated (a dataset is replaced by its checked version)."""
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        x = check_fit_data(x, y, self.fit_sample_shape(), getattr(self, "num_classes", None),
                           value_range=self.value_range, pairs=self.fit_data == "pairs")
        if args:
            return (x, *args[1:]), kwargs
        return args, {**kwargs, "x": x} if "x" in kwargs else kwargs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return multi_worker_safe_symbolic_build(self, super()._maybe_symbolic_build, iterator, data_batch)

    def get_config(self):
        return {**super().get_config(), "pixel_range": list(self.pixel_range)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**deserialize_networks(config, cls.network_names, custom_objects))


class MultiPlayerModel(MethodModel):
    """Base class: several players, one optimizer and one loss tracker each.

    Args:
        seed: int or None, seeds `self.seed_generator` (see `MethodModel`).
        **kwargs: passed to `keras.Model` (name, dtype, ...).
    """

    player_names = ()

    def __init__(self, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.loss_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in self.player_names}
        for name in self.player_names:
            setattr(self, f"{name}_optimizer", None)

    # Players -----------------------------------------------------------

    def player(self, name):
        if name not in self.player_names:
            raise ValueError(f"Unknown player {name!r}; players are {self.player_names}")
        return getattr(self, name, None)

    def active_players(self):
        """Names of the players that exist (optional players may be None)."""
        return [name for name in self.player_names if self.player(name) is not None]

    # Adam's arguments for every player by default (a method sets its paper's).
    default_adam = {"learning_rate": 1e-3}

    def default_optimizer(self, name):
        """The paper's default optimizer for player `name`: `Adam(**default_adam)` (override for others)."""
        return keras.optimizers.Adam(**self.default_adam)

    def mark_built(self, input_shape):
        """Mark the model built once its players exist; `input_shape` (no batch axis) is `call`'s input.

        Recording the shape lets `model.export` infer the serving signature
        of a subclassed model.
        """
        self._build_shapes_dict = {"input_shape": (None, *tuple(input_shape))}
        self.built = True

    # Compile / restore --------------------------------------------------

    def compile(self, optimizers=None, **kwargs):
        """Compile with one optimizer per player.

        Args:
            optimizers: dict {player name: optimizer, string or config};
                missing players get `default_optimizer(name)`.
            **kwargs: `keras.Model.compile` arguments other than `optimizer`
                and `loss` (e.g. `metrics` for the classifier's outputs,
                `run_eagerly`, `jit_compile`).
        """
        optimizers = dict(optimizers or {})
        unknown = set(optimizers) - set(self.player_names)
        if unknown:
            raise ValueError(f"Optimizers given for unknown players {sorted(unknown)}; players are {self.player_names}")
        for key in _RESERVED_COMPILE_KEYS:
            if key in kwargs:
                raise ValueError(
                    f"{type(self).__name__}.compile takes one optimizer per player "
                    f"({', '.join(n + '_optimizer' for n in self.player_names)}); '{key}' is not accepted"
                )
        super().compile(optimizer=None, **kwargs)
        self._player_compile_kwargs = dict(kwargs)
        # Keras wraps its one optimizer under mixed_float16 (`auto_scale_loss`);
        # compile(optimizer=None) leaves that to us, once per player.
        scale = kwargs.get("auto_scale_loss", True) and self.dtype_policy.name == "mixed_float16"
        for name in self.player_names:
            opt = optimizers.get(name)
            opt = self.default_optimizer(name) if opt is None else keras.optimizers.get(opt)
            if scale and not isinstance(opt, keras.optimizers.LossScaleOptimizer):
                opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale_optimizer")
            setattr(self, f"{name}_optimizer", opt)
        self.build_optimizers()

    def build_optimizers(self):
        """Create each optimizer's variables on its player's weights (idempotent)."""
        for name in self.active_players():
            opt = getattr(self, f"{name}_optimizer", None)
            if opt is not None and not opt.built:
                opt.build(self.player_variables(name))

    def player_variables(self, name):
        """The variables player `name`'s optimizer updates (override to share or split)."""
        return self.player(name).trainable_variables

    def get_compile_config(self):
        if not self.compiled:
            return {}
        config = {
            "optimizers": {
                name: keras.optimizers.serialize(getattr(self, f"{name}_optimizer"))
                for name in self.player_names
                if getattr(self, f"{name}_optimizer", None) is not None
            }
        }
        for key, value in getattr(self, "_player_compile_kwargs", {}).items():
            config[key] = keras.saving.serialize_keras_object(value)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        optimizers = {name: keras.optimizers.deserialize(c) for name, c in config.pop("optimizers", {}).items()}
        kwargs = {key: keras.saving.deserialize_keras_object(value) for key, value in config.items()}
        # The base signature, since subclasses rename the optimizer arguments.
        MultiPlayerModel.compile(self, optimizers=optimizers, **kwargs)

    # Training helpers ---------------------------------------------------

    @property
    def metrics(self):
        trackers = [self.loss_trackers[name] for name in self.active_players()]
        compiled = [self._compile_metrics] if getattr(self, "_compile_metrics", None) is not None else []
        return trackers + compiled

    def scale_loss(self, loss):
        """Divide a hand-written (ops.mean) loss by the number of replicas."""
        replicas = num_replicas()
        return loss / replicas if replicas > 1 else loss

    def apply_player_gradients(self, name, tape, loss, variables=None):
        """One optimizer step of player `name` on `loss` (recorded on `tape`).

        The gradient is divided by the replica count (`distribute.scale_gradients`);
        the unscaled loss is recorded in the player's loss tracker, whose
        sum/count variables are aggregated across replicas, so the logged
        value is the global mean.
        """
        self.apply_joint_gradients((name,), tape, loss, (loss,), variables=None if variables is None else (variables,))

    def apply_joint_gradients(self, names, tape, loss, tracked, variables=None):
        """One gradient computation of `loss`, then one optimizer step per player in `names`.

        For players trained on one joint objective (CycleGAN's two generators,
        its two discriminators): their variables are disjoint, so the joint
        gradient split by player equals each player's own gradient.
        `tracked[i]` is the value recorded in player `names[i]`'s loss
        tracker; `variables[i]` (default `player_variables(names[i])`) what
        its optimizer updates.
        """
        groups = [self.player_variables(n) for n in names] if variables is None else [list(v) for v in variables]
        optimizers = [getattr(self, f"{n}_optimizer") for n in names]
        # Loss scaling (mixed precision): the gradient of scale * loss, through
        # `output_gradients` since the loss was computed on the tape already.
        # Players of one objective may hold different dynamic scales: the
        # gradient is taken with the first scale and rescaled for the others.
        scales = [_loss_scale(opt) for opt in optimizers]
        reference = next((s for s in scales if s is not None), None)
        if reference is not None and keras.backend.standardize_dtype(loss.dtype) != "float32":
            raise ValueError(
                f"the loss of {', '.join(names)} is {loss.dtype}; under loss scaling (mixed precision) a loss "
                "must be float32: cast the network outputs to float32 before the loss"
            )
        flat = [v for group in groups for v in group]
        grads = tape.gradient(loss, flat, output_gradients=reference)
        grads = scale_gradients(grads)
        start = 0
        for name, group, value, opt_scale in zip(names, groups, tracked, scales):
            ratio = None if opt_scale is reference else (1.0 if opt_scale is None else opt_scale) / reference
            pairs = [(g if ratio is None else keras.ops.multiply(g, ratio), v)
                     for g, v in zip(grads[start : start + len(group)], group) if g is not None]
            start += len(group)
            if pairs:
                getattr(self, f"{name}_optimizer").apply_gradients(pairs)
            self.loss_trackers[name].update_state(value)

    def metrics_result(self):
        """{tracker name: value} for every active player, plus compiled metrics."""
        result = {self.loss_trackers[name].name: self.loss_trackers[name].result() for name in self.active_players()}
        if getattr(self, "_compile_metrics", None) is not None:
            result.update(self._compile_metrics.result())
        return multi_worker_logs(result)

    def update_compiled_metrics(self, y, y_pred):
        if getattr(self, "_compile_metrics", None) is not None:
            self._compile_metrics.update_state(y, y_pred)

    def test_step(self, data):
        """Evaluate the `call` network with the compiled metrics only."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None:
            self.update_compiled_metrics(y, self(x, training=False))
        return self.metrics_result()

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class PhasedTrainFunctions:
    """One compiled train function per training phase, switched in Python (a mixin for `MultiPlayerModel`s).

    A model whose `train_step` picks its updates by `self._traced_phase`
    (ImbalanceCycleGAN's ALT mode, GAMO's Algorithm 1 schedule) calls
    `_switch_train_function(phase)` from its `set_phase`. The step is chosen
    in Python, one train function per phase: a tf.cond around optimizer
    steps fails under tf.distribute (a merge_call inside control flow). Both
    functions are kept until the next `compile` (`_reset_phase_functions`),
    so a switch back reuses the traced graph instead of retracing it at every
    switch (docs/performance.md measures the cost).
    """

    def _reset_phase_functions(self):
        self._phase_train_functions = {}  # phase -> compiled train function

    def _switch_train_function(self, phase):
        """Make the train function the one of `phase`, tracing it only the first time."""
        previous, self._traced_phase = self._traced_phase, phase
        current = getattr(self, "train_function", None)
        if current is None:
            return  # not made yet: fit makes the function of the current phase
        self._phase_train_functions[previous] = current
        cached = self._phase_train_functions.get(phase)
        if cached is not None:
            self.train_function = cached
        else:
            self.make_train_function(force=True)
