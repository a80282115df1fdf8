"""GAMO's convex generator: new samples as convex combinations of real ones."""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ConvexGenerator(keras.layers.Layer):
    """Convex generator G(z | i) of GAMO (Mullick et al., ICCV 2019, Sec. 3.2, eq. 1).

    G(z | i) = sum_j g_i(t(z | i))_j x_j over ALL n_i stored samples x_j of
    class i, where

    - t is the shared conditional transient mapping unit (cTMU):
      [z, one-hot(i)] -> Dense(256) ReLU -> BN -> Dense(64) ReLU -> BN
      (sizes of the authors' code; `hidden_units` changes them);
    - g_i is the instance generation unit (IGU) of class i: Dense(n_i)
      followed by a softmax, so the weights are >= 0 and sum to 1 and every
      generated sample lies in the convex hull of class i's samples.

    Only minority classes have an IGU and a sample bank; by default every
    class but the largest (`argmax(class_counts)`) is a minority class. A
    label of a class without an IGU yields zeros.

    The sample banks are non-trainable weights (`bank_<i>`, shape
    (n_i, prod(sample_shape))), created in `__init__` from `class_counts` and
    `sample_shape` (both in the config), so a reloaded layer has variables of
    the right shape before its weights are loaded. Fill them with
    `set_banks(x, y)`; they are saved with the model.

    Fixed shapes: every IGU runs on the whole batch and a one-hot mask picks
    each row's class, so the graph has no data-dependent shapes. That costs
    B x sum_i(n_i) weights and B x D x (#minority classes) outputs per call,
    negligible at the papers' minority sizes (<= a few thousand).

    Large classes (`max_bank_size=m`): for a class with n_i > m, every call
    draws one uniformly random subset S of m of its stored samples (without
    replacement, shared by the batch) and uses only the IGU logits of S:
    G(z | i) = sum_{j in S} softmax_S(g_i logits)_j x_j. The IGU keeps one
    unit per stored sample (unit j always means sample j), so what it learns
    stays attached to the same samples from step to step; each step's weights
    are the paper's softmax restricted to S, still >= 0 and summing to 1, so
    every sample stays in the convex hull of class i. Activations and the
    mixing matmul cost B x m (x D) instead of B x n_i (x D); the bank and the
    IGU's 64 x n_i kernel are still stored. Measured in `docs/memory.md`.
    The subset is drawn from the layer's own seed generator, whose state is
    saved with the layer.

    Under `tf.distribute` the cTMU's BatchNormalization layers are
    synchronized (`synchronized_batchnorm=True`): batch statistics over the
    global batch, so R replicas compute what one device computes.

    Args:
        class_counts: list of per-class counts n_i (length C >= 2).
        sample_shape: shape of one sample (e.g. (28, 28, 1) or (512,)).
        latent_dim: dimension of z (100 in the paper).
        minority_classes: class ids that get an IGU (default: all but the
            largest class).
        hidden_units: cTMU widths, default (256, 64).
        batchnorm_momentum: BN momentum (0.99, Keras' default as in the code).
        max_bank_size: None (default, the paper: every stored sample in every
            call) or m >= 1: classes with more than m samples use a random
            subset of m per call (see above).
        synchronized_batchnorm: cross-replica BN statistics under
            `tf.distribute` (TensorFlow backend; no effect on one device
            beyond float rounding).
        seed: seed of the subset draws (only used with `max_bank_size`).

    Call:
        inputs: `[z, labels]`, z float (B, latent_dim), labels int (B,).
        Returns samples (B, *sample_shape).
    """

    def __init__(
        self,
        class_counts,
        sample_shape,
        latent_dim=100,
        minority_classes=None,
        hidden_units=(256, 64),
        batchnorm_momentum=0.99,
        max_bank_size=None,
        synchronized_batchnorm=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        counts = [int(c) for c in class_counts]
        if len(counts) < 2:
            raise ValueError(f"class_counts needs at least 2 classes, got {counts}")
        if min(counts) < 1:
            missing = [i for i, c in enumerate(counts) if c < 1]
            raise ValueError(f"class(es) {missing} have no samples (class_counts={counts}); every class needs one")
        self.class_counts = counts
        self.num_classes = len(counts)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        if not self.sample_shape or min(self.sample_shape) < 1:
            raise ValueError(f"sample_shape must be a non-empty tuple of positive ints, got {sample_shape}")
        self.sample_dim = int(math.prod(self.sample_shape))
        self.latent_dim = int(latent_dim)
        if minority_classes is None:
            majority = int(np.argmax(counts))
            minority_classes = [i for i in range(self.num_classes) if i != majority]
        self.minority_classes = sorted(int(i) for i in minority_classes)
        if not self.minority_classes or any(not 0 <= i < self.num_classes for i in self.minority_classes):
            raise ValueError(f"minority_classes must be non-empty ids in 0..{self.num_classes - 1}, got {minority_classes}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.batchnorm_momentum = float(batchnorm_momentum)
        if max_bank_size is not None and (isinstance(max_bank_size, bool) or int(max_bank_size) != max_bank_size or max_bank_size < 1):
            raise ValueError(f"max_bank_size must be None or an integer >= 1, got {max_bank_size!r}")
        self.max_bank_size = None if max_bank_size is None else int(max_bank_size)
        self.synchronized_batchnorm = bool(synchronized_batchnorm) and keras.backend.backend() == "tensorflow"
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="bank_subset_seed") if self.max_bank_size is not None else None

        self.ctmu = []
        for k, units in enumerate(self.hidden_units):
            self.ctmu.append(keras.layers.Dense(units, activation="relu", name=f"ctmu_dense{k + 1}"))
            self.ctmu.append(keras.layers.BatchNormalization(
                momentum=self.batchnorm_momentum, synchronized=self.synchronized_batchnorm, name=f"ctmu_bn{k + 1}"
            ))
        # Lists in minority-class order (Keras tracks lists of layers/variables).
        self._slot = {i: k for k, i in enumerate(self.minority_classes)}
        self.igus = [keras.layers.Dense(counts[i], name=f"igu_{i}") for i in self.minority_classes]
        self.banks = []
        self._create_state()

    def _create_state(self):
        # Shapes are known from the config, so all state exists right after
        # construction (needed to load a saved bank of data-dependent size).
        width = self.latent_dim + self.num_classes
        for layer in self.ctmu:
            layer.build((None, width))
            if isinstance(layer, keras.layers.Dense):
                width = layer.units
        for k, i in enumerate(self.minority_classes):
            self.igus[k].build((None, width))
            self.banks.append(self.add_weight(
                shape=(self.class_counts[i], self.sample_dim),
                initializer="zeros",
                trainable=False,
                name=f"bank_{i}",
            ))
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # Banks ----------------------------------------------------------------

    def set_banks(self, x, y):
        """Store the samples of each minority class: x (N, *sample_shape), y (N,).

        The number of samples of each minority class must equal its count in
        `class_counts` (the IGU's width).
        """
        x = np.asarray(x, dtype="float32")
        y = np.asarray(y).reshape(-1).astype("int64")
        if x.shape[1:] != self.sample_shape:
            raise ValueError(f"samples have shape {x.shape[1:]}, the generator was built for {self.sample_shape}")
        if len(x) != len(y):
            raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")
        if not np.all(np.isfinite(x)):
            raise ValueError("samples contain NaN or inf")
        for i in self.minority_classes:
            xi = x[y == i]
            if len(xi) != self.class_counts[i]:
                raise ValueError(
                    f"class {i} has {len(xi)} samples but the generator's IGU for it has width {self.class_counts[i]}"
                )
            self.banks[self._slot[i]].assign(xi.reshape(len(xi), self.sample_dim))

    def bank(self, class_id):
        """The stored samples of a minority class, (n_i, *sample_shape)."""
        self._check_minority(class_id)
        return ops.reshape(self.banks[self._slot[int(class_id)]], (self.class_counts[int(class_id)], *self.sample_shape))

    def _check_minority(self, class_id):
        if int(class_id) not in self._slot:
            raise ValueError(
                f"class {class_id} has no instance generation unit (minority classes: {self.minority_classes}; "
                "the majority class is never generated)"
            )

    # Forward ----------------------------------------------------------------

    def transient(self, z, labels, training=None):
        """cTMU output t(z | i), (B, hidden_units[-1])."""
        onehot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), self.num_classes)
        h = ops.concatenate([ops.cast(z, self.compute_dtype), ops.cast(onehot, self.compute_dtype)], axis=-1)
        for layer in self.ctmu:
            h = layer(h, training=training)
        return h

    def _igu(self, k, h):
        logits = self.igus[k](h)
        if self.igus[k].units == 1:
            # A class with one sample: the only convex weight is 1.
            return ops.ones_like(logits)
        return ops.softmax(logits, axis=-1)

    def _subset(self, class_id):
        """Indices of the bank rows this call uses for a class, or None for all of them."""
        n = self.class_counts[class_id]
        if self.max_bank_size is None or n <= self.max_bank_size:
            return None
        perm = keras.random.shuffle(ops.arange(n, dtype="int32"), seed=self.seed_generator)
        return perm[: self.max_bank_size]

    def _combine(self, k, class_id, h):
        """sum_j w_j x_j for every row of h, over the whole bank or a random subset, (B, D)."""
        bank = ops.cast(self.banks[k], self.compute_dtype)
        idx = self._subset(class_id)
        if idx is None:
            return ops.matmul(self._igu(k, h), bank)
        igu = self.igus[k]
        logits = ops.matmul(h, ops.take(igu.kernel, idx, axis=1)) + ops.take(igu.bias, idx)
        return ops.matmul(ops.softmax(logits, axis=-1), ops.take(bank, idx, axis=0))

    def convex_weights(self, z, class_id, training=None):
        """IGU weights g_i(t(z | i)) of one minority class for a batch z, (B, n_i)."""
        self._check_minority(class_id)
        labels = ops.full((ops.shape(z)[0],), int(class_id), dtype="int32")
        return self._igu(self._slot[int(class_id)], self.transient(z, labels, training=training))

    def call(self, inputs, training=None):
        z, labels = inputs
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        h = self.transient(z, labels, training=training)
        out = ops.zeros((ops.shape(z)[0], self.sample_dim), dtype=self.compute_dtype)
        for k, i in enumerate(self.minority_classes):
            mask = ops.cast(ops.equal(labels, i), self.compute_dtype)[:, None]
            out = out + mask * self._combine(k, i, h)
        return ops.reshape(out, (-1, *self.sample_shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], *self.sample_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "class_counts": list(self.class_counts),
            "sample_shape": list(self.sample_shape),
            "latent_dim": self.latent_dim,
            "minority_classes": list(self.minority_classes),
            "hidden_units": list(self.hidden_units),
            "batchnorm_momentum": self.batchnorm_momentum,
            "max_bank_size": self.max_bank_size,
            "synchronized_batchnorm": self.synchronized_batchnorm,
            "seed": self.seed,
        }

    # The subset seed generator's state is not a layer variable; saving it
    # keeps a resumed run on the same subsets as an uninterrupted one.

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.seed_generator is not None:
            store["bank_subset_seed_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        if self.seed_generator is not None and "bank_subset_seed_state" in list(store.keys()):
            self.seed_generator.state.assign(store["bank_subset_seed_state"])
            store = {k: store[k] for k in store.keys() if k != "bank_subset_seed_state"}
        super().load_own_variables(store)
