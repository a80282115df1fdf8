"""Multi-device helpers: replica-consistent draws and gathers, the multi-worker workarounds.

Below `layers` and `models` (both use it; it imports neither): a layer with
state updated inside `train_step` (`layers.ImageHistoryPool`) and every
method model make their random draws and gathers through these functions, so
a run on R replicas uses the random numbers of one device with the same
global batch (docs/distributed.md).
"""

import keras
import tensorflow as tf


def num_replicas():
    """Replicas in sync under the current `tf.distribute` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_gradients(grads):
    """Divide each gradient by the replica count (unchanged on one replica).

    `tf.distribute` sums the replicas' gradients, so R replicas with
    per-replica mean losses then step like one device on the global batch.
    The gradients are scaled rather than the loss: the tape is closed when
    they are taken, so an op on the loss would not be recorded. Dense: the
    cross-replica sum of IndexedSlices (gradients of a gather, e.g. the
    bounded convex generator's IGU columns) did not match the single-device
    update in our test; dense sums do.
    """
    replicas = num_replicas()
    if replicas <= 1:
        return list(grads)
    return [None if g is None else tf.convert_to_tensor(g) / replicas for g in grads]


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


def replica_draws(local_batch, layout=None):
    """`draw(fn)` for a `train_step`: `fn(n)` makes n random rows; returns this replica's rows of the global draw.

    Resolves the replica layout once (`layout`, or `replica_layout(local_batch)`:
    one small all-gather under several replicas, nothing on one device) and
    returns the closure every method model uses for its per-sample draws
    (`draw_for_replica`).
    """
    if layout is None:
        layout = replica_layout(local_batch)

    def draw(fn):
        return draw_for_replica(fn, local_batch, layout)

    return draw


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
    if iterator is not None and strategy is not None and in_multi_worker_mode(strategy):
        data_batch = _local_first_batch(strategy, iterator)
        iterator = None
    return parent_build(iterator=iterator, data_batch=data_batch)


def in_multi_worker_mode(strategy=None):
    """True under a multi-worker collective strategy (`MultiWorkerMirroredStrategy`)."""
    strategy = strategy or tf.distribute.get_strategy()
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


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
    if not in_multi_worker_mode():
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
