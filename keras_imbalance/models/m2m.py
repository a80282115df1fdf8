"""M2m: Major-to-minor translation (Kim, Jeong & Shin, CVPR 2020).

The classifier f is trained on class-balanced mini-batches in which some
over-sampled minority samples are replaced by majority samples "translated"
into the minority class by a frozen, separately pre-trained classifier g
(paper Sec. 2, Algorithm 1, eqs. 2-5; supplementary Sec. B for the ablations).

Per batch, after the deferred start epoch:

1. each sample of class k becomes a *generation slot* with probability
   1 - N_k / N_max (Sec. 2.3, "practical implementation via re-sampling");
2. its seed x0 is drawn from the same batch, its class k0 with
   Q(k0 | k) proportional to 1 - beta^((N_k0 - N_k)+) (eq. 5) and the sample
   uniformly within k0;
3. x* = clip(x0 + delta), delta a small random vector, then T steps of
   x* <- clip(x* - eta * grad / ||grad||_2) on
   L = CE(g(x*), k) + lambda * f_k0(x*) (eq. 2, Algorithm 1 lines 7-10),
   f and g in inference mode, the gradient taken w.r.t. the input only;
4. x* is accepted if softmax_g(x*)[k] >= gamma and a Bernoulli draw with
   P(accept) = 1 - beta^((N_k0 - N_k)+) succeeds (eq. 3, Algorithm 1 lines
   11-15); an accepted x* replaces its slot with label k, a rejected slot
   keeps its real minority sample, so the batch never changes size;
5. one optimizer step of f on the mixed batch with the compiled loss.

Step 3 runs on every position of the batch by default (fixed shapes);
`translated_positions="candidates"` translates only the positions that can
still be accepted (see the class docstring).
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_imbalance.datasets.validation import class_counts
from keras_imbalance.distribute import MultiWorkerSafeFit, replica_all_gather, replica_layout
from keras_imbalance.models.base import MethodModel
from keras_imbalance.models.m2m_translation import MajorToMinorTranslation

_ACCEPTANCE_CRITERIA = ("probability", "loss")
_TRANSLATED_POSITIONS = ("all", "candidates")
_STORED_AS_GIVEN = ("beta", "lam", "gamma", "step_size", "attack_steps", "start_epoch", "rejection", "noise_norm",
                    "acceptance_criterion", "translated_positions", "num_classes", "seed")


def check_translated_positions(value):
    """Raise a ValueError unless `value` is a `translated_positions` option of `M2m`."""
    if value not in _TRANSLATED_POSITIONS:
        raise ValueError(f"translated_positions must be one of {_TRANSLATED_POSITIONS}, got {value!r}")


def _num_outputs(model, what):
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[-1], int):
        return int(shape[-1])
    raise ValueError(
        f"cannot infer the number of classes from the {what} (output shape {shape!r}); "
        "pass num_classes=... explicitly"
    )


def _check_counts(counts, num_classes):
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"class_counts must be a 1-D list of per-class sample counts, got shape {arr.shape}")
    if len(arr) != num_classes:
        raise ValueError(
            f"class_counts has {len(arr)} entries but the classifier has {num_classes} classes; "
            "give one count per class, in class-id order"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("class_counts contains NaN or inf")
    if np.any(arr <= 0):
        bad = np.flatnonzero(arr <= 0).tolist()
        raise ValueError(
            f"class_counts must be > 0 for every class; class(es) {bad} have a count <= 0 "
            "(M2m divides by N_max and over-samples every class, so each needs a sample)"
        )
    return arr


class _EpochCounter(keras.callbacks.Callback):
    """Copies the epoch index `fit` is on into `model.current_epoch`."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.current_epoch.assign(int(epoch))


@keras.saving.register_keras_serializable(package="keras_imbalance")
class M2m(MajorToMinorTranslation, MultiWorkerSafeFit, MethodModel):
    """M2m: a classifier trained with major-to-minor translated over-samples.

    `call(x)` is the classifier f, so `predict`, `evaluate`, `export` and
    callbacks behave as for f alone. Only f is trained: compile with one
    optimizer and any Keras loss on f's outputs (default: sparse categorical
    cross-entropy on logits), e.g.

    ```python
    g = M2m.pretrain_translator(SmallCNN(), x, y, epochs=30)      # ERM on the imbalanced data
    model = M2m(SmallCNN(), g, start_epoch=24)                     # paper: 160 of 200 epochs
    model.adapt(y)                                                 # per-class counts N_k
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=[...])
    model.fit(to_dataset(x, y, 128, balanced=True), epochs=30)
    ```

    Feed a class-balanced stream (`keras_imbalance.datasets.to_dataset(x, y,
    batch_size, balanced=True)`, the paper's re-sampling): M2m then replaces
    part of the over-sampled minority samples with translated ones. The step
    itself works on any batch. Before `start_epoch` the step is exactly a
    plain Keras training step on the batch (ERM on an imbalanced stream, or
    DRS-like re-sampling on a balanced one); switch streams with two `fit`
    calls and `initial_epoch` as for DRS.

    Deferred start: `fit` adds a callback that writes the epoch index into
    the non-trainable variable `current_epoch`; the translation branch runs
    when `current_epoch >= start_epoch` (a `tf.cond`, so nothing retraces).
    Outside `fit` (custom loops, `train_on_batch`) set it yourself with
    `model.current_epoch.assign(epoch)`.

    Args:
        classifier: f, a `keras.Model` mapping (B, ...) -> (B, C) logits (or
            cosine scores for an LDAM head); trained.
        translator: g, the frozen pre-trained classifier with the same C
            outputs (logits). Also accepted: a list of such models (ensemble,
            supplementary Sec. B: the mean of their softmax outputs is used
            both in CE(g(x), k) and in the confidence test; the paper raises
            gamma for ensembles); `"self"` or `None` for M2m-Self (g = f, the
            current f translates for itself; supplementary Sec. B). Frozen
            (`trainable=False`), called with `training=False`, saved with the
            model.
        class_counts: per-class training counts N_k (list of C positive
            numbers), or None and call `adapt(y or dataset)` before `fit`.
            Any class may be the majority.
        beta: rejection / seed-sampling hyper-parameter in [0, 1) (eqs. 3, 5).
            Paper default 0.999 for CIFAR class sizes (hundreds to 5,000);
            with small counts choose it by the size of N_max - N_min, since
            1 - beta^(N_k0 - N_k) is the acceptance probability.
        lam: weight lambda of f's seed-class logit in eq. 2 (0 = the paper's
            "lambda = 0" ablation; also skips the forward pass of f).
        gamma: acceptance threshold. With the default
            `acceptance_criterion="loss"`, accept iff CE(g(x*), k) <= gamma
            (Algorithm 1 line 13 and Sec. 3.1: "accept x* only if L(g; x*, y_i)
            is less than gamma"; paper default 0.9, i.e. g's confidence in k
            at least exp(-0.9) = 0.41); `float("inf")` disables the test, the
            supplementary's "gamma = infinity" ablation.
        step_size: eta, the L2 length of each normalized-gradient step, in
            input units (paper 0.1 for [0, 1] CIFAR pixels, 1.0 for Reuters).
        attack_steps: T, the number of steps (paper 10).
        start_epoch: first epoch (0-based, as `fit` counts) that uses the
            translation; earlier epochs are plain training. Default 0; the
            paper defers it to 160 of 200 epochs (Sec. 3.1).
        input_range: (low, high) the translated inputs are clipped to after
            the noise and after every step, or None for no clipping.
        rejection: False = the "M2m-No-Reject" ablation (no Bernoulli
            rejection; the confidence test still applies unless gamma = 0).
        noise_norm: L2 norm of the random start delta (a uniformly random
            direction). Default 0.1 input units per sample: the paper says
            only "a small noise"; the authors' code draws noise whose
            per-sample norm is about 0.08 on CIFAR batches of 128.
        acceptance_criterion: `"loss"` (default; the paper, as above) or
            `"probability"` (softmax_g(x*)[k] >= gamma, the reading of
            METHODS.md and of the authors' code, whose run script uses gamma
            0.9; then gamma = 0 disables the test). The paper and METHODS.md
            disagree here; the paper wins, and its supplementary confirms the
            loss reading: no threshold is "gamma = infinity", and the ensemble
            "uses a higher gamma due to the smoothed prediction".
        translated_positions: which positions of the batch go through the T
            input-gradient steps (the bulk of the step's cost):
            - `"all"` (default): every one of the B positions, with fixed
              shapes throughout (the house rule for `train_step`, which XLA
              needs); x* is computed and discarded wherever it cannot be
              accepted. That is more than the method needs: Algorithm 1
              translates each generation (lines 4-10), then rejects (lines
              11-15), and the authors' code translates the generation slots
              that have a seed class, then draws the rejection.
            - `"candidates"`: only the *candidates*: generation slots with a
              seed whose Bernoulli acceptance draw (eq. 3) succeeds, a subset
              of what the authors' code translates. An x* is accepted iff its
              position is a slot, has a seed, passes the Bernoulli draw and
              passes the gamma test; only the last depends on x*, so the
              rejection can be drawn before translating. Every random draw
              is still made for the whole batch and in the default's order
              (slots, seeds, start noise, rejection); the candidates are
              then gathered (a data-dependent size inside the graph),
              translated, tested against gamma and scattered back, so the
              batch that reaches f keeps its (B, ...) shape. Equivalent to
              `"all"` for the same seed, draw for draw and not only in
              distribution: the random numbers are the same, and a row's x*
              depends only on that row (f and g in inference mode, per-row
              loss terms). Only float rounding differs (kernels on a smaller
              batch), which could flip a gamma test within ~1e-6 of the
              threshold. The fewer the candidates, the larger the saving
              (docs/performance.md measures it). Under
              `jit_compile=True` the training step falls back to `"all"`
              (XLA needs static shapes). Under `tf.distribute` each replica
              translates its own candidates. `oversample_batch` follows the
              option.
            Opt-in: the default keeps the fixed shapes.
        num_classes: C, inferred from the classifier's output shape if None.
        seed: int seed of the model's `keras.random.SeedGenerator`.

    Metrics logged by `fit` (per epoch): `acceptance_rate` (accepted /
    generation slots) and `generation_fraction` (generation slots / samples),
    both 0 before `start_epoch`.
    """

    # `callbacks.TerminateOnNaNPlayer` names f when the loss diverges (g is frozen).
    nan_player_name = "classifier"
    # translator: a model, a list of them, or "self" (kept as is by from_config).
    network_names = ("classifier", "translator")

    def __init__(
        self,
        classifier,
        translator=None,
        class_counts=None,
        beta=0.999,
        lam=0.5,
        gamma=0.9,
        step_size=0.1,
        attack_steps=10,
        start_epoch=0,
        input_range=(0.0, 1.0),
        rejection=True,
        noise_norm=0.1,
        acceptance_criterion="loss",
        translated_positions="all",
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, seed_generator_name="m2m_seed_generator", **kwargs)
        if not isinstance(classifier, keras.Model):
            raise ValueError(f"classifier must be a keras.Model, got {type(classifier).__name__}")
        self.classifier = classifier
        self.num_classes = int(num_classes) if num_classes is not None else _num_outputs(classifier, "classifier")

        self.self_translation = translator is None or (isinstance(translator, str) and translator == "self") or translator is classifier
        if isinstance(translator, str) and translator != "self":
            raise ValueError(f'translator must be a keras.Model, a list of them, "self" or None; got {translator!r}')
        if self.self_translation:
            translators = []
        else:
            translators = list(translator) if isinstance(translator, (list, tuple)) else [translator]
            if not translators:
                raise ValueError('translator list is empty; pass a model, a list of models, or "self"')
            for i, g in enumerate(translators):
                if not isinstance(g, keras.Model):
                    raise ValueError(f"translator[{i}] must be a keras.Model, got {type(g).__name__}")
                if g is classifier:
                    raise ValueError('a translator in the list is the classifier itself; use translator="self" for M2m-Self')
                c = _num_outputs(g, f"translator[{i}]") if num_classes is None else self.num_classes
                if c != self.num_classes:
                    raise ValueError(f"translator[{i}] has {c} outputs but the classifier has {self.num_classes} classes")
                # g is fixed during M2m training (paper Sec. 2.1): never in the optimizer.
                g.trainable = False
        self.translators = translators

        # Each hyper-parameter checked where it is stored, in argument order.
        self.beta = float(beta)
        if not 0.0 <= self.beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.lam = float(lam)
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if acceptance_criterion not in _ACCEPTANCE_CRITERIA:
            raise ValueError(f"acceptance_criterion must be one of {_ACCEPTANCE_CRITERIA}, got {acceptance_criterion!r}")
        self.acceptance_criterion = acceptance_criterion
        check_translated_positions(translated_positions)
        self.translated_positions = translated_positions
        self.gamma = float(gamma)
        if acceptance_criterion == "probability" and not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma is a probability threshold in [0, 1] with acceptance_criterion='probability', got {gamma}")
        self.step_size = float(step_size)
        if self.step_size <= 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if int(attack_steps) != attack_steps or attack_steps < 0:
            raise ValueError(f"attack_steps must be an integer >= 0, got {attack_steps}")
        self.attack_steps = int(attack_steps)
        if int(start_epoch) != start_epoch or start_epoch < 0:
            raise ValueError(f"start_epoch must be an integer >= 0, got {start_epoch}")
        self.start_epoch = int(start_epoch)
        self.noise_norm = float(noise_norm)
        if self.noise_norm < 0:
            raise ValueError(f"noise_norm must be >= 0, got {noise_norm}")
        if input_range is not None:
            input_range = tuple(float(v) for v in input_range)
            if len(input_range) != 2 or not input_range[0] < input_range[1]:
                raise ValueError(f"input_range must be (low, high) with low < high, or None; got {input_range}")
        self.input_range = input_range
        self.rejection = bool(rejection)

        self.current_epoch = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="current_epoch"
        )
        self.class_counts = self.add_weight(
            shape=(self.num_classes,), initializer="zeros", dtype="float32", trainable=False, name="class_counts"
        )
        self._counts_set = False
        if class_counts is not None:
            self.set_class_counts(class_counts)

        self.acceptance_tracker = keras.metrics.Mean(name="acceptance_rate")
        self.generation_tracker = keras.metrics.Mean(name="generation_fraction")

        input_shape = getattr(classifier, "input_shape", None)
        if isinstance(input_shape, tuple):
            self.build(input_shape)

    # ------------------------------------------------------------------ setup

    def build(self, input_shape):
        # The players are built already; recording the shape lets export and
        # `.keras` loading rebuild the wrapper without a call.
        self.built = True

    @property
    def translator(self):
        """g: the classifier itself for M2m-Self, one model, or the ensemble list."""
        if self.self_translation:
            return self.classifier
        return self.translators[0] if len(self.translators) == 1 else list(self.translators)

    def set_class_counts(self, counts):
        """Set N_k (C positive numbers in class-id order)."""
        arr = _check_counts(counts, self.num_classes)
        self.class_counts.assign(arr.astype("float32"))
        self._counts_set = True

    def adapt(self, data, num_classes=None):
        """Set N_k from labels: an array (N,) / (N, 1), or a dataset of `(x, y)` batches.

        One-hot labels (N, C) are accepted and arg-maxed. Raises ValueError
        when a class has no sample.
        """
        if isinstance(data, tf.data.Dataset):
            parts = []
            for element in data:
                y = element[1] if isinstance(element, (tuple, list)) else element
                parts.append(np.asarray(y))
            y = np.concatenate([p.reshape(len(p), -1) for p in parts])
        else:
            y = np.asarray(data)
        if y.ndim == 2 and y.shape[1] == self.num_classes and self.num_classes > 1:
            y = y.argmax(-1)
        counts = class_counts(y, num_classes or self.num_classes)
        self.set_class_counts(counts)
        return counts

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """Keras `compile` for f; `loss=None` means cross-entropy on logits."""
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        # Built now, so `load_weights` into a fresh compiled model (a
        # checkpoint, a backup) restores the slots instead of skipping them.
        if self.built and self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # Keras skips compile on load when `compile` is overridden; ours only
        # fills a default loss, so the stored config restores it exactly (and
        # the optimizer variables are then loaded from the `.keras` file).
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        # Once: a LossScaleOptimizer (mixed precision) adds its variables again at every build.
        if self.built and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit` plus the epoch counter that drives `start_epoch`."""
        epochs = kwargs.get("epochs", 1)
        if epochs > self.start_epoch and not self._counts_set:
            raise ValueError(
                "M2m needs the per-class training counts N_k before its translation epochs: "
                "pass class_counts=... or call model.adapt(y_train) before fit"
            )
        if epochs <= self.start_epoch:
            warnings.warn(
                f"fit(epochs={epochs}) ends before start_epoch={self.start_epoch}: "
                "this fit is plain training, no translation happens",
                stacklevel=2,
            )
        # MethodModel.fit puts TerminateOnNaNPlayer first.
        callbacks = [*list(callbacks or []), _EpochCounter()]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    fit_data = "classes"

    def fit_sample_shape(self):
        input_shape = getattr(self.classifier, "input_shape", None)
        return input_shape[1:] if isinstance(input_shape, tuple) else None

    @property
    def value_range(self):
        """The range `fit` expects image samples in: `input_range`, the translation's clipping range (None: any)."""
        return self.input_range

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    # ------------------------------------------------------------- training

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.convert_to_tensor(x)  # train_on_batch under run_eagerly passes NumPy arrays through
        if not x.dtype.is_floating:
            x = tf.cast(x, "float32")
        labels = self._labels_1d(y)
        batch = tf.shape(labels)[0]
        # Collectives outside the tf.cond: all replicas see the global batch.
        layout = replica_layout(batch)
        gathered = None
        if layout is not None:
            # all_gather drops the static shape; the networks need it back.
            x_all = tf.ensure_shape(replica_all_gather(x), [None, *x.shape[1:]])
            labels_all = tf.ensure_shape(replica_all_gather(labels), [None])
            gathered = (x_all, labels_all, layout)

        # XLA needs static shapes: whole-batch translation under jit_compile.
        compact = self.translated_positions == "candidates" and not self.jit_compile

        def m2m():
            out = self._m2m_batch(x, labels, gathered, compact=compact)
            return out["x"], out["generation_slot"], out["accepted"]

        def plain():
            false = tf.zeros((batch,), dtype=tf.bool)
            return x, false, false

        active = tf.logical_and(
            tf.convert_to_tensor(self.current_epoch) >= self.start_epoch,
            tf.reduce_max(tf.convert_to_tensor(self.class_counts)) > 0,
        )
        x_mixed, slot, accepted = tf.cond(active, m2m, plain)
        slot_f = tf.cast(slot, "float32")
        self.acceptance_tracker.update_state(tf.cast(accepted, "float32"), sample_weight=slot_f)
        self.generation_tracker.update_state(slot_f)
        # Keras' own step on the mixed batch; MultiWorkerSafeFit reduces its logs.
        return super().train_step((x_mixed, y, sample_weight))

    # -------------------------------------------------------- serialization

    def get_config(self):
        config = super().get_config()
        if self.self_translation:
            translator = "self"
        elif len(self.translators) == 1:
            translator = keras.saving.serialize_keras_object(self.translators[0])
        else:
            translator = [keras.saving.serialize_keras_object(g) for g in self.translators]
        counts = None
        if self._counts_set:
            counts = [float(v) for v in keras.ops.convert_to_numpy(self.class_counts)]
        config.update(
            classifier=keras.saving.serialize_keras_object(self.classifier),
            translator=translator,
            class_counts=counts,
            input_range=list(self.input_range) if self.input_range is not None else None,
            # The other arguments, each stored under its own name.
            **{name: getattr(self, name) for name in _STORED_AS_GIVEN},
        )
        return config

