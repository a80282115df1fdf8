"""PolarityGAN's convex generator with a class-conditional latent, and its autoencoder decoder.

Deepshikha & Naman, "Removing Class Imbalance using Polarity-GAN: An
Uncertainty Sampling Approach" (2021), Sec. 4: the generator
G(z | k) = sum_j P(Q(z | k))_j x_j (eq. 3) is a convex combination of the
class-k training samples, initialized from an autoencoder trained on all
images whose decoder has the generator's topology (BAGAN-style).

- `GaussianConvexGenerator` is `ConvexGenerator` (shared mapping Q = the
  cTMU, one softmax head P_k per generated class over the stored class-k
  samples) preceded by a class-conditional Gaussian: the input noise
  eps ~ N(0, I) becomes z = mu_k + L_k eps, with mu_k and L_k L_k^T the mean
  and covariance of the encoder's codes of class k (BAGAN Sec. 3.2). Before
  initialization mu_k = 0 and L_k = I, i.e. the plain ConvexGenerator.
- `ConvexDecoder` is the autoencoder's decoder: the same mapping Q (same
  widths, same class input, which the class-agnostic autoencoder feeds with
  zeros) followed by ONE softmax head over ALL N training samples, so it
  reconstructs an input as a convex combination of the training set.

`GaussianConvexGenerator.initialize_from_decoder` copies the decoder into the
generator: Q's weights unchanged (the class-input rows of the first kernel
set to zero, so that the initial generator ignores the class input exactly
as the decoder did, and class information enters only through the latent
Gaussian), and each head P_k from the decoder head's columns of the class-k
samples. With BN in inference mode the initial generator is then exactly the
decoder restricted to class k's samples (softmax renormalized over them):
G(eps | k) = softmax(h(z)[cols_k]) @ X_k with z = mu_k + L_k eps.
"""

import keras
import numpy as np
from keras import ops

from keras_imbalance.layers.convex_generator import ConvexGenerator


def _build_mapping(hidden_units, momentum):
    layers = []
    for k, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"ctmu_dense{k + 1}"))
        layers.append(keras.layers.BatchNormalization(momentum=momentum, name=f"ctmu_bn{k + 1}"))
    return layers


@keras.saving.register_keras_serializable(package="keras_imbalance")
class ConvexDecoder(keras.layers.Layer):
    """The decoder of PolarityGAN's autoencoder: Q followed by a softmax over all N training samples.

    decoder(c) = softmax(W h(c) + b) @ X, with h = Q([c, 0_C]) the generator's
    shared mapping (Dense-ReLU-BN blocks of `hidden_units`, fed a zero class
    input: the autoencoder has no class knowledge, paper Sec. 4) and X the
    (N, D) bank of all training samples (non-trainable; `set_bank`).

    Args:
        num_samples: N, the number of training samples (the head's width).
        sample_shape: shape of one sample.
        latent_dim: size of the code c.
        num_classes: C, the width of the (zero) class input, so Q's first
            kernel has the generator's shape (latent_dim + C, units).
        hidden_units: widths of Q, as the generator's (default (256, 64)).
        batchnorm_momentum: BN momentum of Q.

    Call: codes (B, latent_dim) -> samples (B, *sample_shape).
    """

    def __init__(self, num_samples, sample_shape, latent_dim, num_classes, hidden_units=(256, 64),
                 batchnorm_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = int(num_samples)
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.sample_dim = int(np.prod(self.sample_shape))
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.batchnorm_momentum = float(batchnorm_momentum)
        self.ctmu = _build_mapping(self.hidden_units, self.batchnorm_momentum)
        self.head = keras.layers.Dense(self.num_samples, name="head")
        width = self.latent_dim + self.num_classes
        for layer in self.ctmu:
            layer.build((None, width))
            if isinstance(layer, keras.layers.Dense):
                width = layer.units
        self.head.build((None, width))
        self.bank = self.add_weight(shape=(self.num_samples, self.sample_dim), initializer="zeros",
                                    trainable=False, name="bank")
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def set_bank(self, x):
        """Store the N training samples, (N, *sample_shape), in the head's column order."""
        x = np.asarray(x, dtype="float32")
        if x.shape != (self.num_samples, *self.sample_shape):
            raise ValueError(f"the bank must have shape {(self.num_samples, *self.sample_shape)}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("samples contain NaN or inf")
        self.bank.assign(x.reshape(self.num_samples, self.sample_dim))

    def recalibrate_batchnorm(self, codes):
        """Set each BN layer's moving mean and variance to the exact statistics of its inputs over `codes`.

        After a short training run the moving averages (momentum 0.99) still
        hold much of their initial 0 / 1, so the decoder in inference mode,
        and a generator copied from it, would differ from the decoder that
        was trained (in training mode, on batch statistics). Recomputing them
        over all codes makes inference mode match full-batch training mode.
        """
        h = ops.convert_to_tensor(np.asarray(codes, "float32"))
        h = ops.concatenate([h, ops.zeros((ops.shape(h)[0], self.num_classes), dtype=h.dtype)], axis=-1)
        for layer in self.ctmu:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(ops.mean(h, axis=0))
                layer.moving_variance.assign(ops.var(h, axis=0))
            h = layer(h, training=False)

    def transient(self, codes, training=None):
        h = ops.cast(codes, self.compute_dtype)
        h = ops.concatenate([h, ops.zeros((ops.shape(h)[0], self.num_classes), dtype=self.compute_dtype)], axis=-1)
        for layer in self.ctmu:
            h = layer(h, training=training)
        return h

    def convex_weights(self, codes, training=None):
        """Softmax weights over the N samples, (B, N)."""
        return ops.softmax(self.head(self.transient(codes, training=training)), axis=-1)

    def call(self, codes, training=None):
        out = ops.matmul(self.convex_weights(codes, training=training), ops.cast(self.bank, self.compute_dtype))
        return ops.reshape(out, (-1, *self.sample_shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.sample_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_samples": self.num_samples,
            "sample_shape": list(self.sample_shape),
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "hidden_units": list(self.hidden_units),
            "batchnorm_momentum": self.batchnorm_momentum,
        }


@keras.saving.register_keras_serializable(package="keras_imbalance")
class GaussianConvexGenerator(ConvexGenerator):
    """PolarityGAN's generator (eq. 3) with BAGAN's class-conditional latent.

    G(eps | k) = sum_j P_k(Q([z, onehot(k)]))_j x_j with z = mu_k + L_k eps,
    eps ~ N(0, I_latent_dim). `latent_mean` (C, d) and `latent_scale`
    (C, d, d, lower-triangular) are non-trainable weights, saved with the
    model; until `set_latent_gaussians` they are 0 and I. `initialized`
    (a non-trainable scalar) records whether `initialize_from_decoder` ran.

    Everything else (Q, the heads, the sample banks, which classes are
    generated, fixed shapes) is `ConvexGenerator`'s; all of its arguments
    are accepted.

    Call: `[eps (B, latent_dim), labels (B,)]` -> samples (B, *sample_shape).
    """

    def __init__(self, class_counts, sample_shape, latent_dim=32, **kwargs):
        super().__init__(class_counts, sample_shape, latent_dim=latent_dim, **kwargs)
        d = self.latent_dim
        self.latent_mean = self.add_weight(shape=(self.num_classes, d), initializer="zeros", trainable=False,
                                           name="latent_mean")
        eye = np.tile(np.eye(d, dtype="float32")[None], (self.num_classes, 1, 1))
        self.latent_scale = self.add_weight(shape=(self.num_classes, d, d),
                                            initializer=keras.initializers.Constant(eye), trainable=False,
                                            name="latent_scale")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False, name="initialized")

    def latent(self, eps, labels):
        """z = mu_k + L_k eps for each row's class k, (B, latent_dim)."""
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        mean = ops.take(ops.cast(self.latent_mean, self.compute_dtype), labels, axis=0)
        scale = ops.take(ops.cast(self.latent_scale, self.compute_dtype), labels, axis=0)
        return mean + ops.einsum("bij,bj->bi", scale, ops.cast(eps, self.compute_dtype))

    def transient(self, z, labels, training=None):
        return super().transient(self.latent(z, labels), labels, training=training)

    def set_latent_gaussians(self, means, scales):
        """Set mu (C, d) and the lower-triangular factors L (C, d, d) of the class covariances."""
        means = np.asarray(means, "float32")
        scales = np.asarray(scales, "float32")
        d, c = self.latent_dim, self.num_classes
        if means.shape != (c, d) or scales.shape != (c, d, d):
            raise ValueError(f"expected means {(c, d)} and scales {(c, d, d)}, got {means.shape} and {scales.shape}")
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(scales))):
            raise ValueError("latent means / scales contain NaN or inf")
        self.latent_mean.assign(means)
        self.latent_scale.assign(scales)

    def initialize_from_decoder(self, decoder, labels):
        """Copy a trained `ConvexDecoder` into this generator (see the module docstring).

        Args:
            decoder: a `ConvexDecoder` with the same latent_dim, class count and
                hidden_units.
            labels: (N,) class of each of the decoder's N bank columns; the
                class-k columns, in order, must be this generator's class-k
                bank (as `set_banks(x, labels)` stores them).
        """
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != decoder.num_samples:
            raise ValueError(f"{len(labels)} labels for a decoder over {decoder.num_samples} samples")
        if (decoder.latent_dim, decoder.num_classes, decoder.hidden_units) != (
            self.latent_dim, self.num_classes, self.hidden_units
        ):
            raise ValueError(
                "the decoder's topology (latent_dim, num_classes, hidden_units) "
                f"{(decoder.latent_dim, decoder.num_classes, decoder.hidden_units)} differs from the generator's "
                f"{(self.latent_dim, self.num_classes, self.hidden_units)}"
            )
        for src, dst in zip(decoder.ctmu, self.ctmu):
            dst.set_weights(src.get_weights())
        first = self.ctmu[0]
        kernel = np.asarray(first.kernel).copy()
        kernel[self.latent_dim:] = 0.0  # class-input rows: the decoder saw zeros there
        first.kernel.assign(kernel)
        head_kernel, head_bias = (np.asarray(w) for w in decoder.head.get_weights())
        for k, i in enumerate(self.minority_classes):
            cols = np.flatnonzero(labels == i)
            if len(cols) != self.igus[k].units:
                raise ValueError(f"class {i} has {len(cols)} decoder columns but its head has width {self.igus[k].units}")
            self.igus[k].set_weights([head_kernel[:, cols], head_bias[cols]])
        self.initialized.assign(1.0)
