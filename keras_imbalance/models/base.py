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
- `apply_player_gradients` is the one place where a tape meets an optimizer;
- `draw_for_replica` makes random draws inside `train_step` independent of
  the replica count: every replica draws for the GLOBAL batch from the same
  (mirrored) seed state and keeps its own rows, so a run on R devices uses
  the same random numbers as a run on one device with the same global batch;
- `fit` adds `callbacks.TerminateOnNaNPlayer` (set the class attribute
  `terminate_on_nan = False` to opt out), which stops training with an error
  naming the player whose loss became NaN / inf and the epoch.

Subclasses set `player_names` (class attribute, tuple of attribute names)
and implement `default_optimizer(name)`; a player attribute may be `None`
(an optional player such as GAMO's discriminator) and is then skipped.
"""

import keras
import tensorflow as tf

from keras_imbalance.models.preset_loading import PresetLoadingMixin
from keras_imbalance.callbacks import TerminateOnNaNPlayer

_RESERVED_COMPILE_KEYS = ("optimizer", "loss")


def replica_all_gather(value):
    """`all_gather` along axis 0 in a replica context, for tensors with or without a device annotation.

    A multi-worker collective strategy takes the gather's destination from the
    tensor's device and refuses an unplaced tensor (such as an input batch
    inside `train_step`: "destinations can not be empty"); an identity on the
    replica's device places it.
    """
    ctx = tf.distribute.get_replica_context()
    value = tf.convert_to_tensor(value)
    # `ctx.devices` indexes the local device list with the global replica id
    # (IndexError on worker 1 of MultiWorkerMirroredStrategy), so look the
    # device up from the strategy's local devices instead.
    local = tuple(getattr(tf.distribute.get_strategy().extended, "worker_devices", ()))
    rid = tf.get_static_value(ctx.replica_id_in_sync_group)
    if not value.device and local and rid is not None:
        with tf.device(local[int(rid) % len(local)]):
            value = tf.identity(value)
    return ctx.all_gather(value, axis=0)


def replica_layout(local_batch):
    """Where this replica's rows sit in the global batch: `(offset, global_batch)`, or None.

    None outside a multi-replica `tf.distribute` replica context (one device,
    or no strategy). Otherwise one small all-gather of the per-replica batch
    sizes; `tf.distribute` splits a global batch into consecutive chunks in
    replica order, so replica r's rows start at the sum of the sizes of
    replicas 0..r-1.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    sizes = replica_all_gather(tf.reshape(tf.cast(local_batch, tf.int32), (1,)))
    before = tf.range(ctx.num_replicas_in_sync) < tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(tf.where(before, sizes, tf.zeros_like(sizes)))
    return offset, tf.reduce_sum(sizes)


def draw_for_replica(draw, local_batch, layout):
    """`draw(n)` makes n random rows; returns this replica's rows of the global draw.

    With `layout=None` this is just `draw(local_batch)` (bit-identical to the
    single-device code). Every replica holds the same seed-generator state,
    so they all draw the same global tensor and each keeps its own slice.
    """
    if layout is None:
        return draw(local_batch)
    offset, total = layout
    return draw(total)[offset : offset + local_batch]


@keras.saving.register_keras_serializable(package="keras_imbalance")
def _local_first_batch(strategy, iterator):
    """The first batch of Keras' epoch iterator, this worker's first replica's part."""
    for _, _, it in iterator:
        batch = next(it)
        return tf.nest.map_structure(
            lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
            batch,
        )
    return None


def multi_worker_safe_symbolic_build(model, parent_build, iterator=None, data_batch=None):
    """Work around Keras' `_maybe_symbolic_build` under `MultiWorkerMirroredStrategy`.

    Keras 3.15 (TF backend) reduces the first data batch with
    `strategy.reduce("MEAN", batch, axis=None)` to build the model
    symbolically; under a multi-worker collective strategy that call fails
    ("Attempt to convert a value (PerReplica:...) ... to a Tensor"). The
    reduced values only serve as example shapes, so this hands Keras the
    local replica's batch instead. Other strategies take Keras' own path.
    """
    strategy = getattr(model, "_distribute_strategy", None)
    extended = getattr(strategy, "extended", None)
    if iterator is not None and extended is not None and getattr(extended, "_in_multi_worker_mode", lambda: False)():
        data_batch = _local_first_batch(strategy, iterator)
        iterator = None
    return parent_build(iterator=iterator, data_batch=data_batch)


def _in_multi_worker_mode(strategy=None):
    strategy = strategy or tf.distribute.get_strategy()
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


def multi_worker_logs(logs):
    """Work around Keras' scalar-log reduction under `MultiWorkerMirroredStrategy`.

    Keras 3.15 reduces what `train_step` returns with
    `strategy.reduce("MEAN", value, axis=0)` when the strategy is a
    multi-worker collective one, which fails on the scalar metric values
    ("Invalid reduction dimension 0 for input with 0 dimensions"). The values
    are metric results, already aggregated across replicas, so returning them
    as shape (1,) makes that reduction a mean of equal numbers: the same
    scalar. Elsewhere the logs are returned unchanged.
    """
    if not _in_multi_worker_mode():
        return logs
    out = {}
    for key, value in logs.items():
        value = tf.convert_to_tensor(value)
        out[key] = tf.reshape(value, (1,)) if value.shape.rank == 0 else value
    return out



class MultiWorkerSafeFit:
    """Mixin for a `keras.Model` that trains with Keras' own `train_step`: makes its `fit` work under
    `MultiWorkerMirroredStrategy` (Keras 3.15), with the two workarounds above.

    Without it, `fit` of a plain Keras model created in a multi-worker
    strategy scope fails at the first batch (`multi_worker_safe_symbolic_build`)
    and at the first step's logs (`multi_worker_logs`). Elsewhere it changes
    nothing. Put it before `keras.Model` in the bases.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return multi_worker_safe_symbolic_build(self, super()._maybe_symbolic_build, iterator, data_batch)

    def train_step(self, data):
        return multi_worker_logs(super().train_step(data))

    def test_step(self, data):
        return multi_worker_logs(super().test_step(data))


class MultiPlayerModel(PresetLoadingMixin, keras.Model):
    """Base class: several players, one optimizer and one loss tracker each.

    Args:
        seed: int or None, seeds `self.seed_generator` (all randomness inside
            `train_step` goes through it, so runs are reproducible).
        **kwargs: passed to `keras.Model` (name, dtype, ...).
    """

    player_names = ()
    terminate_on_nan = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
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

    def default_optimizer(self, name):
        """The paper's default optimizer for player `name` (override)."""
        return keras.optimizers.Adam(learning_rate=1e-3)

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
        for name in self.player_names:
            opt = optimizers.get(name)
            opt = self.default_optimizer(name) if opt is None else keras.optimizers.get(opt)
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

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, with `TerminateOnNaNPlayer` first in the callbacks (unless present or disabled)."""
        if not isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = list(callbacks or [])
            if self.terminate_on_nan and not any(isinstance(c, TerminateOnNaNPlayer) for c in callbacks):
                # First, so it raises before any checkpoint callback saves this batch.
                callbacks.insert(0, TerminateOnNaNPlayer())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    @property
    def metrics(self):
        trackers = [self.loss_trackers[name] for name in self.active_players()]
        compiled = [self._compile_metrics] if getattr(self, "_compile_metrics", None) is not None else []
        return trackers + compiled

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return multi_worker_safe_symbolic_build(self, super()._maybe_symbolic_build, iterator, data_batch)

    def scale_loss(self, loss):
        """Divide a hand-written (ops.mean) loss by the number of replicas."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def apply_player_gradients(self, name, tape, loss, variables=None):
        """One optimizer step of player `name` on `loss` (recorded on `tape`).

        The gradient is divided by the replica count (tf.distribute sums the
        replicas' gradients, so R replicas with per-replica mean losses then
        step like one device on the global batch); the unscaled loss is
        recorded in the player's loss tracker, whose sum/count variables are
        aggregated across replicas, so the logged value is the global mean.
        """
        variables = self.player_variables(name) if variables is None else variables
        # The tape is closed here, so an op on `loss` (such as scale_loss's
        # division) would not be recorded and every gradient would be None:
        # scale the gradients instead (same result, d(l / R) = dl / R).
        grads = tape.gradient(loss, variables)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            # Dense: the cross-replica sum of IndexedSlices (gradients of a
            # gather, e.g. the bounded convex generator's IGU columns) did not
            # match the single-device update in our test; dense sums do.
            grads = [None if g is None else tf.convert_to_tensor(g) / replicas for g in grads]
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if pairs:
            getattr(self, f"{name}_optimizer").apply_gradients(pairs)
        self.loss_trackers[name].update_state(loss)

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

    # The seed generator's state is not a layer variable, so Keras would not
    # save it; storing it makes a reloaded model draw the same random numbers
    # as the original would have (exact resume).

    def save_own_variables(self, store):
        own = self._trainable_variables + self._non_trainable_variables
        for i, v in enumerate(own):
            store[f"{i}"] = v
        store["seed_generator_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        own = self._trainable_variables + self._non_trainable_variables
        for i, v in enumerate(own):
            v.assign(store[f"{i}"])
        if "seed_generator_state" in list(store.keys()):
            self.seed_generator.state.assign(store["seed_generator_state"])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
