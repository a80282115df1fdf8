"""CycleGAN step before / after the two speed changes of issue 12, timed in one process.

The changes (docs/performance.md, "ImbalanceCycleGAN and PolarityGAN"):

- `ReflectionPadding2D` gathers rows and columns by fixed indices instead of
  calling `ops.pad(mode="reflect")` (TensorFlow's CPU MirrorPadGrad is slow);
- `ImageHistoryPool` computes its per-image swap loop for the whole batch
  (`swap_batch`) instead of a `fori_loop` over the images;
- `ImbalanceCycleGAN` in ALT mode keeps the train function of each phase
  instead of retracing at every phase switch (`--alt-fit`).

Both give the same values (tests/layers/test_reflection_padding.py,
tests/models/test_imbalance_cyclegan.py). This script rebuilds the previous
implementations as "before" (the padding by `ops.pad`, the pool by the loop),
builds the same models with them and without, and times, interleaved:

- a `ResnetGenerator` training step alone (forward, backward, Adam) on B / 2 images,
- one history pool call on B / 2 images,
- the CycleGAN pre-training step and the ImbalanceCycleGAN ALT CycleGAN-phase
  step of `benchmarks/step_time.py` (B / 2 pairs).

`--compare stacking` instead times the CycleGAN and ALT steps with each
network's calls on independent inputs stacked into one call (after) or made
one per input (before, `stack_generator_calls` and
`stack_discriminator_calls` forced False); the padding and pool are the
current ones in both.

`--compare upsampling` instead times them with the generators' up-sampling
layers built as a "valid" `Conv2DTranspose` and a `Cropping2D` (before)
or as one `layers.CroppedConv2DTranspose` (after, session 5); the padding
and pool are the current ones in both.

`--alt-fit N` instead trains the `imbalance-cyclegan-alt` recipe (no
pre-training, phase switch every epoch) for N epochs of batch 32 on the
binary digits, once retracing at every switch (before) and once with the
kept functions (after), and prints the traces and the wall time of each fit.

Usage:
    python benchmarks/cyclegan_step_ab.py [--backbone small_cnn|resnet32] [--repeats 20] [--batch-size 128]
    python benchmarks/cyclegan_step_ab.py --compare stacking [--backbone ...]
    python benchmarks/cyclegan_step_ab.py --compare upsampling [--backbone ...]
    python benchmarks/cyclegan_step_ab.py --alt-fit 10
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from benchmarks.step_time import backbone_setup, binary_setup, build_model, make_runner, synthetic_iterator, timing_batch  # noqa: E402
from keras_imbalance import applications, recipes  # noqa: E402
from keras_imbalance.applications import cyclegan as cyclegan_networks  # noqa: E402
from keras_imbalance.layers.reflection_padding import ReflectionPadding2D  # noqa: E402
from keras_imbalance.models import ImageHistoryPool, ImbalanceCycleGAN  # noqa: E402

CURRENT = {"pad": ReflectionPadding2D.call, "swap": ImageHistoryPool._swap, "upsample": cyclegan_networks._upsample_conv}


def upsample_before(x, filters, name):
    """The up-sampling layer before session 5: the full "valid" transposed convolution, then the crop."""
    x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="valid", use_bias=True,
                                     kernel_initializer=cyclegan_networks._init(), name=f"{name}_conv")(x)
    return keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_crop")(x)


def upsampling_runners(version, backbone_fn, data, batch_size):
    """`runners_for` with the generators' up-sampling of `version`, every other layer the current one."""
    cyclegan_networks._upsample_conv = upsample_before if version == "before" else CURRENT["upsample"]
    try:
        return runners_for("after", backbone_fn, data, batch_size)
    finally:
        cyclegan_networks._upsample_conv = CURRENT["upsample"]


def pad_before(self, inputs):
    """The padding before the change: one MirrorPad op (its gradient is MirrorPadGrad)."""
    (top, bottom), (left, right) = self.padding
    return ops.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")


def swap_before(self, images):
    """The pool before the change: the per-image loop as a `fori_loop` (same draws, same results)."""
    n = ops.shape(images)[0]
    u = keras.random.uniform((n,), seed=self.seed_generator)
    idx = keras.random.randint((n,), 0, self.pool_size, seed=self.seed_generator)
    zeros = (0,) * len(self.image_shape)
    size = self.pool_size

    def body(i, state):
        out, pool, count = state
        img = ops.expand_dims(images[i], 0)
        filling = count < size
        swap = ops.logical_and(ops.logical_not(filling), u[i] < self.swap_probability)
        j = ops.where(filling, count, idx[i])
        old = ops.expand_dims(pool[j], 0)
        pool = ops.slice_update(pool, (j, *zeros), ops.where(ops.logical_or(filling, swap), img, old))
        out = ops.slice_update(out, (i, *zeros), ops.where(swap, old, img))
        return out, pool, count + ops.cast(filling, "int32")

    out, pool, count = ops.fori_loop(0, n, body, (images, ops.convert_to_tensor(self.images), ops.convert_to_tensor(self.count)))
    self.images.assign(pool)
    self.count.assign(count)
    return out


def use(version):
    """Make the layers trace with the implementations of `version` ("before" or "after")."""
    ReflectionPadding2D.call = pad_before if version == "before" else CURRENT["pad"]
    ImageHistoryPool._swap = swap_before if version == "before" else CURRENT["swap"]


def runners_for(version, backbone_fn, data, batch_size):
    """{name: run()} of one version; every function is traced (warmed up) while `version` is in place."""
    use(version)
    x, y, counts = data
    a, b = timing_batch("cyclegan", x, y, counts, batch_size)
    runs = {}
    for method in ("cyclegan", "imbalance-cyclegan-alt"):
        runs[f"{method} step"] = make_runner(build_model(method, backbone_fn, x, y, counts, False, 0), synthetic_iterator(a, b))
    gan = build_model("cyclegan", backbone_fn, x, y, counts, False, 0)
    gen, images = gan.generator_ab, tf.constant(a * 2.0 - 1.0)
    opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    opt.build(gen.trainable_variables)

    @tf.function
    def generator_step(z):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(gen(z, training=True) - z))
        opt.apply_gradients(zip(tape.gradient(loss, gen.trainable_variables), gen.trainable_variables))
        return loss

    pool = tf.function(lambda z: gan.pool_a(z, training=True))
    runs["ResnetGenerator step"] = lambda: float(generator_step(images))
    runs["history pool call"] = lambda: np.asarray(pool(images)).sum()
    for run in runs.values():
        for _ in range(3):
            run()
    return runs


def stacking_runners(version, backbone_fn, data, batch_size):
    """{name: run()} of the CycleGAN and ALT steps, calls stacked ("after") or one per input ("before")."""
    x, y, counts = data
    a, b = timing_batch("cyclegan", x, y, counts, batch_size)
    runs = {}
    for method in ("cyclegan", "imbalance-cyclegan-alt"):
        model = build_model(method, backbone_fn, x, y, counts, False, 0)
        gan = model if method == "cyclegan" else model.cycle_gan
        gan.stack_generator_calls = gan.stack_discriminator_calls = version == "after"
        runs[f"{method} step"] = make_runner(model, synthetic_iterator(a, b))
        for _ in range(3):
            runs[f"{method} step"]()
    return runs


def retrace_at_every_switch(self, phase):
    """The phase switch before the change: a new train function (a retrace) at every switch."""
    self._traced_phase = phase
    if getattr(self, "train_function", None) is not None:
        self.make_train_function(force=True)


def alt_fit(epochs):
    """Traces and wall time of an ALT fit switching every epoch, before and after."""
    x, y, _ = binary_setup("small_cnn")
    current = ImbalanceCycleGAN._switch_train_function
    original_step = ImbalanceCycleGAN.train_step
    for version in ("before", "after"):
        ImbalanceCycleGAN._switch_train_function = retrace_at_every_switch if version == "before" else current
        traces = []

        def counted(self, data):
            traces.append(self._traced_phase)  # runs once per trace, not per step
            return original_step(self, data)

        ImbalanceCycleGAN.train_step = counted
        recipe = recipes.get("imbalance-cyclegan-alt", gan_epochs=0, switch_every=1)
        t0 = time.perf_counter()
        recipe.fit(lambda shape, c: applications.SmallCNN(shape, c), x, y, epochs=epochs, batch_size=32, seed=0)
        print(f"{version}: ALT fit, {epochs} epochs of 4 steps, a switch every epoch: {len(traces)} traces, "
              f"{time.perf_counter() - t0:.1f} s (load avg {os.getloadavg()[0]:.1f})", flush=True)
    ImbalanceCycleGAN._switch_train_function = current
    ImbalanceCycleGAN.train_step = original_step


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="small_cnn")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--alt-fit", type=int, default=0, metavar="EPOCHS")
    p.add_argument("--compare", choices=("pad-pool", "stacking", "upsampling"), default="pad-pool")
    args = p.parse_args()
    if args.alt_fit:
        return alt_fit(args.alt_fit)
    backbone_fn, *_ = backbone_setup(args.backbone, args.batch_size)
    data = binary_setup(args.backbone)
    runs = {}
    for version in ("before", "after"):
        make = {"stacking": stacking_runners, "upsampling": upsampling_runners}.get(args.compare, runners_for)
        runs.update({(name, version): run for name, run in make(version, backbone_fn, data, args.batch_size).items()})
    use("after")
    times = {key: [] for key in runs}
    for _ in range(args.repeats):
        for key, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - t0)
    print(f"{args.backbone}, {args.batch_size // 2} pairs, {args.repeats} interleaved repeats ({args.compare}), "
          f"load avg {os.getloadavg()[0]:.1f}")
    print("| timed | before ms (median) | after ms (median) | after / before | before min-max | after min-max |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in dict.fromkeys(n for n, _ in runs):
        tb, ta = times[(name, "before")], times[(name, "after")]
        mb, ma = statistics.median(tb), statistics.median(ta)
        print(f"| {name} | {mb * 1e3:.1f} | {ma * 1e3:.1f} | {ma / mb:.2f} | {min(tb) * 1e3:.1f}-{max(tb) * 1e3:.1f} | "
              f"{min(ta) * 1e3:.1f}-{max(ta) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
