"""Batch normalization of image feature maps by TensorFlow's fused kernel (the ResNet and SmallCNN backbones)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_imbalance")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` (Ioffe and Szegedy 2015) computed by `FusedBatchNormV3` for (B, H, W, C) maps.

    Keras 3's layer normalizes with generic ops (moments, then scale and
    shift: Mul, Tile, SquaredDifference, Sum, Mean, Sub forward and their
    gradients backward); TensorFlow's fused kernel does each direction in
    one op. On this CPU the layer's forward + backward takes 0.40-0.63x the
    time (batch 128, 32x32x16 to 8x8x64 maps), and it was the largest gap
    between the Keras and PyTorch ResNet-32 steps (docs/performance.md, "Side
    by side with PyTorch"). The same layer otherwise: same arguments,
    variables, config and semantics, the same values up to float rounding
    (tests/layers/test_fused_batch_norm.py):

    - training: normalize by the batch mean and biased variance; update
      moving_mean and moving_variance by `momentum` with the batch mean and
      the *biased* variance, as Keras does (the fused op returns the
      unbiased variance, n / (n - 1) times larger; it is rescaled);
    - inference (or a frozen layer, `trainable=False`): normalize by the
      moving statistics.

    Anything the fused kernel does not cover falls back to the Keras layer's
    `call`: inputs that are not 4-D channels-last, a mask, batch
    renormalization, `synchronized=True`.

    Shapes: (B, H, W, C) -> (B, H, W, C), in the layer's compute dtype
    (float16 maps are normalized with float32 statistics, as Keras does).
    """

    def _fused(self, inputs, mask):
        return (mask is None and not self.renorm and not getattr(self, "synchronized", False)
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and inputs.shape[-1] is not None)

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = tf.cast(inputs, self.compute_dtype)
        if x.dtype not in (tf.float16, tf.bfloat16, tf.float32):
            x = tf.cast(x, tf.float32)
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones((channels,), tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros((channels,), tf.float32)
        if training and self.trainable:
            outputs, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            shape = tf.shape(x)
            n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
            variance = unbiased_variance * tf.maximum(n - 1.0, 0.0) / n
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + tf.cast(mean, self.moving_mean.dtype) * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + tf.cast(variance, self.moving_variance.dtype) * (1.0 - momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon, data_format="NHWC",
                is_training=False)
        return tf.cast(outputs, self.compute_dtype)
