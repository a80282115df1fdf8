"""Forward+backward throughput of ResNet-32 (batch 128, 32x32x3) on this machine.

Prints images/second for one SGD training step (forward, loss, gradients,
update) inside a `tf.function`, median over timed steps after warm-up, for
`keras_imbalance.applications.ResNet32` and for a plain `keras.Sequential`
conv stack of the same depth and widths (the same 31 conv-BN-ReLU layers,
no residual additions, no custom shortcut layer, "same" padding), so that
later speed work has a baseline and the cost of the residual plumbing
(Add, option-A shortcut, explicit stride-2 padding) is visible.

Usage:
    python benchmarks/resnet32_throughput.py [--batch-size 128] [--steps 10] [--warmup 3] [--jit]
"""

import argparse
import os
import statistics
import sys
import time

# Run from a checkout without installing: import this repository's package first.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_imbalance.applications import ResNet32  # noqa: E402


def plain_stack(input_shape=(32, 32, 3), num_classes=10, n=5, widths=(16, 32, 64)):
    """ResNet-32's conv/BN/ReLU sequence without shortcuts, as a Sequential model."""
    stack = [keras.Input(input_shape), keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False),
             keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5), keras.layers.ReLU()]
    for stage, filters in enumerate(widths):
        for block in range(n):
            strides = 2 if stage > 0 and block == 0 else 1
            for conv_strides in (strides, 1):
                stack += [keras.layers.Conv2D(filters, 3, strides=conv_strides, padding="same", use_bias=False),
                          keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5), keras.layers.ReLU()]
    stack += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)]
    return keras.Sequential(stack, name="plain_conv_stack")


def measure(model, batch_size, steps, warmup, jit):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(batch_size, *model.input_shape[1:])).astype("float32"))
    y = tf.constant(rng.integers(0, model.output_shape[-1], size=batch_size))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=jit)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    for _ in range(warmup):
        train_step(x, y).numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(x, y).numpy()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return batch_size / median, median, min(times), max(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    models = [("ResNet32 (keras_imbalance)", ResNet32(input_shape=(32, 32, 3), num_classes=10)),
              ("plain Sequential conv stack", plain_stack())]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, CPUs {os.cpu_count()}, batch {args.batch_size}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, jit_compile={args.jit}")
    print()
    print("| model | trainable params | images/s (median) | step s (median) | step s (min-max) |")
    print("|---|---:|---:|---:|---:|")
    for label, model in models:
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        ips, median, lo, hi = measure(model, args.batch_size, args.steps, args.warmup, args.jit)
        print(f"| {label} | {params:,} | {ips:.1f} | {median:.3f} | {lo:.3f}-{hi:.3f} |")


if __name__ == "__main__":
    main()
