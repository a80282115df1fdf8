"""M2m's translation (Kim, Jeong & Shin, CVPR 2020, Sec. 2, Algorithm 1): the part of `M2m` that makes x*.

`MajorToMinorTranslation` is a mixin of `models.M2m`: the input-gradient
attack x0 -> x* (eq. 2, Algorithm 1 lines 7-10), the gamma test (line 13),
the per-batch mix of generation slots, seeds and rejection draws (Sec. 2.3,
eqs. 3 and 5), and the ERM pre-training of the translator g (Sec. 3.1).
It reads the hyper-parameters `M2m` stores (beta, lam, gamma, step_size,
attack_steps, noise_norm, input_range, rejection, acceptance_criterion,
translated_positions), the networks (classifier, translators), the class
counts and the seed generator.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_imbalance.distribute import draw_for_replica, replica_draws


class MajorToMinorTranslation:
    """The translation and the batch mix of M2m; see `models.M2m` for the arguments it reads."""

    def _clip(self, x):
        if self.input_range is None:
            return x
        return ops.clip(x, self.input_range[0], self.input_range[1])

    def _translator_log_probs(self, x):
        """log softmax of g (the ensemble's mean softmax for a list), (B, C)."""
        models = [self.classifier] if self.self_translation else self.translators
        logps = [ops.log_softmax(ops.cast(g(x, training=False), "float32"), axis=-1) for g in models]
        if len(logps) == 1:
            return logps[0]
        stacked = ops.stack(logps, axis=0)
        return ops.logsumexp(stacked, axis=0) - math.log(len(logps))

    def _labels_1d(self, y):
        y = ops.convert_to_tensor(y)
        if len(y.shape) == 2 and y.shape[-1] == self.num_classes and self.num_classes > 1:
            y = ops.argmax(y, axis=-1)
        return ops.cast(ops.reshape(y, (-1,)), "int32")

    def _start_delta(self, batch, tail, layout=None):
        """The random start delta of Algorithm 1 line 7, (batch, *tail) float32, or None if noise_norm = 0.

        A uniformly random direction of L2 norm `noise_norm` per row. `layout`
        (see `distribute.replica_layout`) makes it this replica's rows of a
        draw for the global batch.
        """
        if self.noise_norm <= 0:
            return None
        noise = draw_for_replica(lambda n: keras.random.normal((n, *tail), seed=self.seed_generator), batch, layout)
        norm = ops.sqrt(ops.sum(ops.square(noise), axis=tuple(range(1, len(tail) + 1)), keepdims=True))
        return self.noise_norm * noise / ops.maximum(norm, 1e-12)

    def _translate(self, x0, target, seed_class, delta):
        """x0 -> x*, Algorithm 1 lines 7-10 (tensors; target / seed_class int (n,), delta from `_start_delta` or None)."""
        x = ops.cast(x0, "float32")
        reduce_axes = tuple(range(1, len(x.shape)))
        if delta is not None:
            x = x + delta
        x = self._clip(x)
        target_oh = ops.one_hot(target, self.num_classes, dtype="float32")
        seed_oh = ops.one_hot(seed_class, self.num_classes, dtype="float32")
        for _ in range(self.attack_steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                # Summed per-sample losses: f and g run in inference mode, so
                # sample i's gradient depends only on its own loss term.
                ce = -ops.sum(target_oh * self._translator_log_probs(x), axis=-1)
                loss = ops.sum(ce)
                if self.lam > 0:
                    f_logits = ops.cast(self.classifier(x, training=False), "float32")
                    loss = loss + self.lam * ops.sum(f_logits * seed_oh)
            grad = tape.gradient(loss, x)
            grad_norm = ops.sqrt(ops.sum(ops.square(grad), axis=reduce_axes, keepdims=True))
            x = self._clip(x - self.step_size * grad / (grad_norm + 1e-12))
        return x

    def translate(self, x_seed, target_class, seed_class=None):
        """Translate seeds into `target_class` (eq. 2); returns x* (B, ...) float32.

        Args:
            x_seed: (B, ...) seed inputs.
            target_class: int or int array (B,): the class k to translate to.
            seed_class: int or int array (B,): k0 for the lambda * f_k0 term;
                None uses f's predicted class of each seed.

        The noise comes from the model's seed generator; no acceptance test
        is applied (see `oversample_batch` or `translator_probabilities`).
        """
        x_seed = ops.convert_to_tensor(x_seed, dtype="float32")
        batch = int(x_seed.shape[0])
        target = self._broadcast_classes(target_class, batch, "target_class")
        if seed_class is None:
            seed = ops.cast(ops.argmax(self.classifier(x_seed, training=False), axis=-1), "int32")
        else:
            seed = self._broadcast_classes(seed_class, batch, "seed_class")
        return self._translate(x_seed, target, seed, self._start_delta(batch, tuple(x_seed.shape[1:])))

    def _broadcast_classes(self, classes, batch, name):
        arr = np.asarray(classes)
        if arr.ndim == 0:
            arr = np.full((batch,), int(arr))
        arr = arr.reshape(-1)
        if len(arr) != batch:
            raise ValueError(f"{name} has {len(arr)} entries for {batch} samples")
        if np.any(arr < 0) or np.any(arr >= self.num_classes):
            raise ValueError(f"{name} must be class ids in 0..{self.num_classes - 1}, got {arr.min()}..{arr.max()}")
        return ops.convert_to_tensor(arr.astype("int32"))

    def translator_probabilities(self, x):
        """softmax_g(x) (the ensemble mean for a list of translators), (B, C)."""
        return ops.exp(self._translator_log_probs(ops.convert_to_tensor(x, dtype="float32")))

    def _m2m_batch(self, x, labels, gathered=None, compact=False):
        """The M2m mix of one batch; fixed shapes in and out.

        `gathered` = (x of all replicas, labels of all replicas, (offset,
        global batch)) under `tf.distribute` with several replicas: the seeds
        are then drawn from the GLOBAL batch and every random draw is made for
        the global batch and sliced, so R replicas compute what one device
        computes for the same global batch. None: this batch is everything.

        `compact=False` translates every position (no boolean indexing);
        `compact=True` only the candidates (`translated_positions="candidates"`),
        gathered to a data-dependent size and scattered back. Both make the
        same random draws in the same order (slots, seeds, start noise,
        rejection), so they agree draw for draw.
        """
        if gathered is None:
            x_all, labels_all, layout = x, labels, None
        else:
            x_all, labels_all, layout = gathered
        local = ops.shape(labels)[0]

        def mine(t):
            return t if layout is None else t[layout[0] : layout[0] + local]

        draw = replica_draws(local, layout)

        counts = ops.convert_to_tensor(self.class_counts)
        n_all = ops.take(counts, labels_all)  # (G,)
        n_y = ops.take(counts, labels)  # (B,)

        # Generation slots: each sample of class k with probability 1 - N_k / N_max.
        gen_prob = 1.0 - n_y / ops.max(counts)
        slot = draw(lambda n: keras.random.uniform((n,), seed=self.seed_generator)) < gen_prob

        # Seeds from the same (global) batch. p_acc[i, j] = 1 - beta^((N_{y_j} - N_{y_i})+)
        # is the acceptance probability (eq. 3) of seed j for slot i. Dividing
        # by the in-batch size of y_j makes the seed CLASS follow eq. 5's
        # Q(k0 | k) exactly over the classes present, whatever the mix.
        delta = ops.relu(n_all[None, :] - n_all[:, None])
        p_acc = 1.0 - ops.power(ops.cast(self.beta, "float32"), delta)
        in_batch = ops.sum(ops.one_hot(labels_all, self.num_classes, dtype="float32"), axis=0)
        weight = p_acc / ops.take(in_batch, labels_all)[None, :]
        has_seed_all = ops.sum(weight, axis=-1) > 0
        logits = ops.where(weight > 0, ops.log(ops.maximum(weight, 1e-30)), -1e9)
        logits = ops.where(has_seed_all[:, None], logits, 0.0)
        # One (G, G) draw on every replica (same seed state), rows sliced.
        seed_index_all = ops.cast(keras.random.categorical(logits, 1, seed=self.seed_generator)[:, 0], "int32")
        p_seed = mine(ops.take_along_axis(p_acc, seed_index_all[:, None], axis=1)[:, 0])
        seed_index = mine(seed_index_all)
        has_seed = mine(has_seed_all)
        seed_class = ops.take(labels_all, seed_index)

        # The start noise for every position, then the rejection draw (eq. 3):
        # neither depends on x*, so both are drawn before any translation.
        start_delta = self._start_delta(local, tuple(x.shape[1:]), layout)
        candidate = ops.logical_and(slot, has_seed)
        if self.rejection:
            coin = draw(lambda n: keras.random.uniform((n,), seed=self.seed_generator)) < p_seed
            candidate = ops.logical_and(candidate, coin)

        if compact:
            translated, confidence, confident = self._translate_candidates(x, x_all, labels, seed_index, seed_class, candidate, start_delta)
        else:
            translated = self._translate(ops.take(x_all, seed_index, axis=0), labels, seed_class, start_delta)
            log_p = self._target_log_prob(translated, labels)
            confidence, confident = ops.exp(log_p), self._confident(log_p)
        accepted = ops.logical_and(candidate, confident)
        mask = ops.reshape(accepted, (-1,) + (1,) * (len(x.shape) - 1))
        mixed = ops.where(mask, ops.cast(translated, x.dtype), x)
        return {
            "x": mixed,
            "generation_slot": slot,
            "candidate": candidate,
            "accepted": accepted,
            "translated": translated,
            "seed_index": seed_index,
            "seed_class": seed_class,
            "accept_probability": p_seed,
            "has_seed": has_seed,
            "translator_confidence": confidence,
        }

    def _target_log_prob(self, x, target):
        """log softmax_g(x)[target], (n,)."""
        return ops.sum(ops.one_hot(target, self.num_classes, dtype="float32") * self._translator_log_probs(x), axis=-1)

    def _confident(self, log_p):
        """The gamma test (Algorithm 1 line 13) on log softmax_g(x*)[k]."""
        if self.acceptance_criterion == "probability":
            return ops.exp(log_p) >= self.gamma
        return -log_p <= self.gamma

    def _translate_candidates(self, x, x_all, labels, seed_index, seed_class, candidate, start_delta):
        """Translate the candidate rows only: (B, ...) x* (the input elsewhere), (B,) softmax_g(x*)[k] (0 elsewhere), (B,) gamma test.

        The gather/scatter has a data-dependent size, which is fine for graph
        mode and `tf.distribute` (per replica) but not for XLA.
        """
        idx = tf.where(candidate)[:, 0]
        rows = idx[:, None]
        target = tf.gather(labels, idx)
        x_seed = tf.gather(x_all, tf.gather(seed_index, idx))
        delta = None if start_delta is None else tf.gather(start_delta, idx)

        def run():
            x_star = self._translate(x_seed, target, tf.gather(seed_class, idx), delta)
            return x_star, self._target_log_prob(x_star, target)

        def empty():
            # A 0-row batch fails inside a graph (seen in SmallCNN's batch norm: a shape error); skip it.
            return tf.zeros_like(x_seed, dtype="float32"), tf.zeros_like(target, dtype="float32")

        x_star, log_p = tf.cond(tf.size(idx) > 0, run, empty)
        translated = tf.tensor_scatter_nd_update(tf.cast(x, "float32"), rows, x_star)
        batch_shape = tf.shape(candidate, out_type=tf.int64)
        confidence = tf.scatter_nd(rows, ops.exp(log_p), batch_shape)
        confident = tf.scatter_nd(rows, tf.cast(self._confident(log_p), "int32"), batch_shape) > 0
        return translated, confidence, confident

    def oversample_batch(self, x, y):
        """Run the M2m mix on one batch (ignores `start_epoch`); for inspection.

        Returns a dict of tensors: "x" the mixed batch (same shape as x; the
        labels are unchanged, an accepted x* takes its slot's label),
        "generation_slot", "candidate" (a slot with a seed that passed the
        Bernoulli rejection draw), "accepted" (a candidate that passed the
        gamma test), "has_seed" bool (B,), "translated" x*, "seed_index" /
        "seed_class" int (B,), "accept_probability" 1 - beta^((N_k0-N_k)+),
        "translator_confidence" softmax_g(x*)[k]. Follows
        `translated_positions`: with `"all"`, "translated" and
        "translator_confidence" are given at every position (only
        meaningful at slots); with `"candidates"`, only at candidates (the
        input x and 0 elsewhere), as the training step computes them.
        """
        if not self._counts_set:
            raise ValueError("set the class counts first (class_counts=... or adapt(y))")
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            x = tf.cast(x, "float32")
        return self._m2m_batch(x, self._labels_1d(y), compact=self.translated_positions == "candidates")

    @staticmethod
    def pretrain_translator(architecture, x, y=None, optimizer=None, loss=None, epochs=10, batch_size=128, metrics=None, verbose=0, **fit_kwargs):
        """Train g by ERM on the (imbalanced) training data (paper Sec. 3.1).

        Args:
            architecture: a `keras.Model` (cloned with fresh weights, so the
                argument itself is untouched) or a zero-argument callable that
                returns a new model.
            x, y: arrays, or a dataset in `x` with `y=None`.
            optimizer: optimizer (instance, name or config; an instance is
                copied from its config so it is never shared). Default SGD
                0.1, momentum 0.9, as in the paper.
            loss: default sparse cross-entropy on logits.
            epochs, batch_size, metrics, verbose, **fit_kwargs: for `fit`.

        Returns:
            The trained model, ready to pass as `translator` (M2m freezes it).
        """
        if isinstance(architecture, keras.Model):
            g = keras.models.clone_model(architecture)
        elif callable(architecture):
            g = architecture()
        else:
            raise ValueError(f"architecture must be a keras.Model or a callable returning one, got {type(architecture).__name__}")
        if optimizer is None:
            optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
        elif isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = optimizer.__class__.from_config(optimizer.get_config())
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        g.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        if isinstance(x, tf.data.Dataset):
            g.fit(x, epochs=epochs, verbose=verbose, **fit_kwargs)
        else:
            g.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, **fit_kwargs)
        return g
