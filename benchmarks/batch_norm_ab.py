"""Keras' BatchNormalization against `layers.FusedBatchNormalization`, timed in one process (session 5).

The backbones' batch norm (SmallCNN, ResNet-32, pre-activation ResNet-18)
became `layers.FusedBatchNormalization`, which computes the same layer with
TensorFlow's `FusedBatchNormV3` kernel and its gradient instead of Keras 3's
generic ops (docs/performance.md, "Changes made"). This script builds each
timed model twice, with the current layer ("after") and with
`keras.layers.BatchNormalization` in its place ("before", the same
arguments), and times, interleaved (one timed call of every runner per
repeat, medians):

- the layer alone, forward + backward (the gradient of sum(y * w) for the
  input, gamma and beta, the moving statistics updated), on ResNet-32's map
  shapes at batch 128: 32x32x16, 16x16x32, 8x8x64;
- the ERM and M2m (candidate positions, T = 10) train steps of
  `benchmarks/step_time.py` on the chosen backbone.

`--instance-norm` times the CycleGAN networks' instance norm instead, on the
same map shapes: `GroupNormalization(groups=-1)` (the package's
`layers.InstanceNormalization`) against the same computation by the fused
kernel on maps transposed so that each (sample, channel) is one batch-norm
channel (`instance_norm_by_fused_kernel`, measured and not adopted:
docs/performance.md).

Usage:
    python benchmarks/batch_norm_ab.py [--backbone resnet32|small_cnn] [--repeats 10] [--batch-size 128]
    python benchmarks/batch_norm_ab.py --instance-norm [--repeats 30]
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.step_time import backbone_setup, build_model, make_runner, synthetic_iterator, time_interleaved, timing_batch  # noqa: E402
from keras_imbalance.applications import preact_resnet, resnet_cifar, small_cnn  # noqa: E402
from keras_imbalance.layers.fused_batch_norm import FusedBatchNormalization  # noqa: E402
from keras_imbalance.layers.instance_norm import InstanceNormalization  # noqa: E402

tf.get_logger().setLevel("ERROR")  # one small tf.function per timed layer: TF's retracing warning is expected here

BACKBONE_MODULES = (small_cnn, resnet_cifar, preact_resnet)
LAYER_SHAPES = ((32, 32, 16), (16, 16, 32), (8, 8, 64))


def use(version):
    """Make the backbone factories build the batch norm of `version` ("before": Keras', "after": the fused one)."""
    layer = keras.layers.BatchNormalization if version == "before" else FusedBatchNormalization
    for module in BACKBONE_MODULES:
        module.FusedBatchNormalization = layer


def instance_norm_by_fused_kernel(x, epsilon=1e-5):
    """Instance norm (no scale or offset) through `FusedBatchNormV3`: (B, H, W, C) -> (1, H, W, B*C), normalize, back.

    Each (sample, channel) pair becomes one batch-norm channel, so the
    kernel's statistics over "N, H, W" are the instance statistics over H, W;
    the two transposes are the price of the layout.
    """
    b, h, w, c = x.shape
    stacked = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (1, h, w, b * c))
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(stacked, tf.ones((b * c,)), tf.zeros((b * c,)), epsilon=epsilon,
                                               data_format="NHWC", is_training=True)
    return tf.transpose(tf.reshape(y, (h, w, b, c)), (2, 0, 1, 3))


def _forward_backward_runner(layer, shape, batch_size):
    """run(): one forward + backward of `layer` (training mode) on a fixed (batch, *shape) map."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch_size, *shape)).astype("float32"))
    w = tf.constant(rng.normal(size=(batch_size, *shape)).astype("float32"))
    variables, call = [], layer
    if isinstance(layer, keras.layers.Layer):
        layer.build(x.shape)
        variables = layer.trainable_variables
        call = lambda t: layer(t, training=True)  # noqa: E731

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
            loss = tf.reduce_sum(y * w)
        return tape.gradient(loss, [x, *variables])

    return lambda: np.asarray(step(x)[0]).sum()


def layer_runner(version, shape, batch_size):
    """One forward + backward of a freshly built batch-norm layer of `version` on a (batch, *shape) map."""
    layer = (keras.layers.BatchNormalization if version == "before" else FusedBatchNormalization)(momentum=0.9, epsilon=1e-5)
    return _forward_backward_runner(layer, shape, batch_size)


def instance_norm_runner(version, shape, batch_size):
    """The CycleGAN networks' instance norm: the package's `layers.InstanceNormalization` ("before", a
    `GroupNormalization(groups=-1)`) or `instance_norm_by_fused_kernel` ("after", a candidate not adopted)."""
    if version == "before":
        return _forward_backward_runner(InstanceNormalization(), shape, batch_size)
    return _forward_backward_runner(instance_norm_by_fused_kernel, shape, batch_size)


def step_runners(version, backbone, batch_size):
    """{name: run()}: the ERM and M2m train steps on `backbone`, built with the batch norm of `version`."""
    use(version)
    try:
        backbone_fn, x, y, counts, _ = backbone_setup(backbone, batch_size)
        xb, yb = timing_batch("erm", x, y, counts, batch_size)
        return {method: make_runner(build_model(method, backbone_fn, x, y, counts, False, 10), synthetic_iterator(xb, yb))
                for method in ("erm", "m2m-compact")}
    finally:
        use("after")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", choices=("resnet32", "small_cnn"), default="resnet32")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--skip-steps", action="store_true", help="time the layer alone only")
    p.add_argument("--instance-norm", action="store_true",
                   help="time the instance norm instead: GroupNormalization(groups=-1) vs the fused kernel on "
                        "transposed maps (layers only)")
    args = p.parse_args(argv)
    runners = {}
    make_layer = instance_norm_runner if args.instance_norm else layer_runner
    for version in ("before", "after"):
        for shape in LAYER_SHAPES:
            runners[(f"layer alone, {args.batch_size}x{'x'.join(map(str, shape))}", version)] = make_layer(
                version, shape, args.batch_size)
        if not (args.skip_steps or args.instance_norm):
            for name, run in step_runners(version, args.backbone, args.batch_size).items():
                runners[(f"{name} step, {args.backbone}", version)] = run
    load = os.getloadavg()[0]
    times = time_interleaved(runners, args.warmup, args.repeats)
    print(f"{'instance norm' if args.instance_norm else args.backbone}, batch {args.batch_size}, {args.repeats} interleaved repeats, "
          f"load avg {load:.1f}-{os.getloadavg()[0]:.1f}")
    print("| timed | Keras ms (median) | fused kernel ms (median) | fused / Keras |")
    print("|---|---:|---:|---:|")
    for name in dict.fromkeys(n for n, _ in times):
        before, after = statistics.median(times[(name, "before")]), statistics.median(times[(name, "after")])
        print(f"| {name} | {before * 1e3:.1f} | {after * 1e3:.1f} | {after / before:.2f} |")
    return times


if __name__ == "__main__":
    main()
