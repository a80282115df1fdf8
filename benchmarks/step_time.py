"""Train-step time of every method and baseline, as a ratio to the ERM step measured in the same run.

For each backbone (SmallCNN on 8x8 digits, ResNet32 on 32x32x3) and batch
(128 by default), every method's compiled Keras train function
(`model.make_train_function()`, then `model.train_function(iterator)`) is
timed on an iterator over one repeated in-memory batch (`--data synthetic`),
and, for ERM / M2m / GAMO, also on the real `datasets.to_dataset` pipeline,
balanced and not (`--data pipeline`), to show whether tf.data starves the
step. Measurements are interleaved: every model is warmed up, then each
repeat times one step of every model in turn, so that load from other jobs
on a shared machine hits all methods alike. The median over repeats is
reported, with its ratio to the ERM step of the same backbone and jit
setting, and images/second.

The expected cost ("count") of a method is in units of the classifier's ERM
step, from per-network forward FLOPs (TensorFlow's graph profiler) and the
usual rule: a forward pass costs 1, a backward pass to weights and inputs 2,
a backward pass to the input only (no weight gradients) 1. So an ERM step is
3 Phi_f; an input-gradient pass through a frozen network is 2 Phi.

- baselines (erm, rw, drw, ldam, focal): 1 (a different loss on the logits).
- M2m: f step 3 Phi_f + T x input-gradient passes through g and f on the
  whole batch (fixed shapes: all B positions are translated, not only the
  generation slots) 2 T (Phi_g + Phi_f) + one forward of g for the acceptance
  test Phi_g.
- m2m-compact: `M2m(translated_positions="candidates")`, only the positions
  that can still be accepted are translated: 1 + s [2T(g+f) + g]/3f, with the
  translated fraction s measured on the benchmark batch.
- GAMO: M on the real batch and on the fakes 2 x 3 Phi_M; G through frozen
  M: M input-gradient 2 Phi_M; D on real and fakes 2 x 3 Phi_D; G through
  frozen D: 2 Phi_D; G: 3 forwards (fakes, G vs M, G vs D) + 2 backwards
  (2 Phi_G each) = 7 Phi_G.
- ImbalanceCycleGAN (binary; timed on B / 2 (majority, minority) pairs, i.e.
  B real images per step like ERM, and divided by the binary ERM step
  `erm-binary` of the same classifier on a binary batch of B). All Phi at
  batch B; G = one generator, D = one PatchGAN discriminator.
  AUG (`imbalance-cyclegan`): G_AB(a) and G_BA(b) forward (B / 2 each) Phi_G;
  the classifier on [a, G_BA(b), b, G_AB(a)] (2B images) 2 x 3 Phi_f.
  ALT, CycleGAN phase (`imbalance-cyclegan-alt`; its classifier phase is the
  AUG step): six generator passes of B / 2 images (translations, cycle,
  identity), forward + backward 9 Phi_G; D_A, D_B on the fakes with an
  input-backward 2 Phi_D; D_A, D_B on real and pooled fakes, forward +
  backward 6 Phi_D; the frozen classifier on the 2B images of eq. 7,
  forward + input-backward 4 Phi_f.
  CycleGAN pre-training step (`cyclegan`): 9 Phi_G + 8 Phi_D.
- PolarityGAN (n = critic_steps): C on the real batch and on a generated
  batch 2 x 3 Phi_C; G vs frozen C 2 Phi_C (forward + input-backward);
  G: n forwards for the critic's fakes + 2 x (forward + backward) 3 Phi_G;
  critic per step: real and fake forward + backward 6 Phi_D, gradient
  penalty 6 Phi_D (forward, input-gradient, and the backward of both: double
  backprop); G vs frozen D 2 Phi_D:
  [8 Phi_C + (n + 6) Phi_G + (12 n + 2) Phi_D] / 3 Phi_C.

Usage:
    python benchmarks/step_time.py [--backbones small_cnn,resnet32] [--methods erm,rw,...]
        [--repeats 5] [--warmup 2] [--jit off,on] [--data synthetic,pipeline] [--batch-size 128]
        [--cyclegan-size recipe|paper] [--threads 0]
"""

import argparse
import os
import statistics
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import tree  # noqa: E402

import keras_imbalance as ki  # noqa: E402
from keras_imbalance import baselines, recipes  # noqa: E402
from keras_imbalance.applications.gamo import GAMODiscriminator  # noqa: E402
from keras_imbalance.applications.polarity_gan import PolarityCritic  # noqa: E402
from keras_imbalance.losses import LDAMLoss  # noqa: E402
from keras_imbalance.optimizers import CoupledSGD  # noqa: E402

BASELINES = ("erm", "rw", "drw", "ldam", "focal")
METHODS = ("m2m", "ldam-m2m", "gamo", "gamo-d")
# Options of a method timed as their own rows: m2m-compact is M2m(translated_positions="candidates").
VARIANTS = ("m2m-compact",)
# The GAN-based methods. ImbalanceCycleGAN is binary: it and its CycleGAN
# pre-training step (`cyclegan`) run on binary data and are divided by the
# binary ERM step of the same classifier (`erm-binary`).
GAN_METHODS = ("imbalance-cyclegan", "imbalance-cyclegan-alt", "polarity-gan")
BINARY_REFERENCE = "erm-binary"
CYCLEGAN_METHODS = ("cyclegan", "imbalance-cyclegan", "imbalance-cyclegan-alt")
BINARY_METHODS = (BINARY_REFERENCE,) + CYCLEGAN_METHODS
# `--cyclegan-size`: the recipe's small networks (16 filters, 3 residual blocks,
# 16-filter PatchGAN) or the paper's (CycleGAN's ResnetGenerator with 64
# filters and 9 blocks, the 64-filter PatchGAN).
CYCLEGAN_SIZES = {"recipe": {}, "paper": {"generator_filters": 64, "residual_blocks": 9, "discriminator_filters": 64}}
cyclegan_options = {}


def reference_of(method):
    """The ERM row a method's step time is divided by."""
    return BINARY_REFERENCE if method in BINARY_METHODS else "erm"


# ------------------------------------------------------------------ data


def backbone_setup(name, batch_size):
    """(backbone_fn, x, y, counts, label) for a backbone; long-tailed, imbalance ratio 10."""
    if name == "small_cnn":
        (x, y), _ = ki.datasets.load_digits()
        counts = ki.datasets.long_tailed_counts(120, 10, 10)
        x, y = ki.datasets.make_imbalanced(x, y, counts, seed=0)
        return (lambda shape, c, name=None: ki.applications.SmallCNN(shape, c, name=name)), x, y, counts, "SmallCNN 8x8x1 digits"
    if name == "resnet32":
        # No CIFAR offline: random images with long-tailed labels (the cost does not depend on pixel values).
        counts = ki.datasets.long_tailed_counts(400, 10, 10)
        rng = np.random.default_rng(0)
        y = np.concatenate([np.full(n, k) for k, n in enumerate(counts)]).astype("int64")
        x = rng.random((len(y), 32, 32, 3), dtype=np.float32)
        return (lambda shape, c, name=None: ki.applications.ResNet32(input_shape=shape, num_classes=c, name=name)), x, y, counts, "ResNet32 32x32x3 random"
    raise ValueError(f"unknown backbone {name!r}")


def binary_setup(name):
    """(x, y, counts) of the binary long-tailed data for ImbalanceCycleGAN; label 0 = majority.

    SmallCNN: digits 3 (majority) vs 8 (minority), counts [120, 10] (the
    shipped preset's pair, imbalance ratio 12). ResNet32: random 32x32x3
    images, counts [400, 40].
    """
    if name == "small_cnn":
        (x, y), _ = ki.datasets.load_digits()
        keep = np.isin(y, [3, 8])
        x, y = x[keep], (y[keep] == 8).astype("int64")
        counts = [120, 10]
        x, y = ki.datasets.make_imbalanced(x, y, counts, seed=0)
        return x, y, counts
    if name == "resnet32":
        counts = [400, 40]
        y = np.concatenate([np.full(n, k) for k, n in enumerate(counts)]).astype("int64")
        x = np.random.default_rng(1).random((len(y), 32, 32, 3), dtype=np.float32)
        return x, y, counts
    raise ValueError(f"unknown backbone {name!r}")


def timing_batch(method, x, y, counts, batch_size):
    """The one batch a method's synthetic iterator repeats, as numpy arrays.

    The class-balanced first batch of `to_dataset`; for the CycleGAN methods
    the first (majority, minority) batch of `unpaired_dataset` with
    batch_size / 2 pairs, so that a step sees batch_size real images as ERM does.
    """
    if method in CYCLEGAN_METHODS:
        majority = int(np.argmax(counts))
        pairs = ki.models.unpaired_dataset(x[y == majority], x[y != majority], batch_size // 2, seed=0)
        return tuple(np.asarray(t) for t in next(iter(pairs)))
    ds = ki.datasets.to_dataset(x, y, batch_size, balanced=True, seed=0, drop_remainder=True)
    return tuple(np.asarray(t) for t in next(iter(ds)))


# ------------------------------------------------------------------ models


def _sgd():
    return CoupledSGD(learning_rate=0.1, momentum=0.9, l2=2e-4)


def build_model(method, backbone_fn, x, y, counts, jit, attack_steps):
    """A compiled model for `method`; every classifier uses the recipes' CoupledSGD."""
    shape, c = tuple(x.shape[1:]), len(counts)
    if method in GAN_METHODS or method == "cyclegan":
        return build_gan_model(method, backbone_fn, x, y, counts, jit)
    if method in BASELINES or method == BINARY_REFERENCE:
        recipe = baselines.get("erm" if method == BINARY_REFERENCE else method)
        model = backbone_fn(shape, c)
        if recipe.loss == "ldam":
            model = baselines.cosine_head(model, c)
        # DRW is timed after its switch (class-balanced weights on).
        loss = recipe._make_loss(counts, recipe.class_weights(counts))
        model.compile(optimizer=_sgd(), loss=loss, jit_compile=jit)
        return model
    if method in ("m2m", "ldam-m2m", "m2m-compact"):
        g = backbone_fn(shape, c, name="translator")
        f = backbone_fn(shape, c, name="classifier")
        if method == "ldam-m2m":
            f = baselines.cosine_head(f, c)
            loss = LDAMLoss(counts, max_margin=0.5, scale=30.0)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        # The recipes' beta: 0.999 ** (5000 / N_max), the paper's acceptance at CIFAR-10-LT scale.
        model = ki.models.M2m(f, g, class_counts=counts, attack_steps=attack_steps, start_epoch=0, seed=0,
                              beta=0.999 ** (5000.0 / float(max(counts))),
                              translated_positions="candidates" if method == "m2m-compact" else "all")
        model.compile(optimizer=_sgd(), loss=loss, jit_compile=jit)
        return model
    if method in ("gamo", "gamo-d"):
        d = GAMODiscriminator(shape, c) if method == "gamo" else None
        model = ki.models.GAMO(backbone_fn(shape, c), d, seed=0).adapt(x, y)
        model.compile(classifier_optimizer=_sgd(), jit_compile=jit)
        return model
    raise ValueError(f"unknown method {method!r}")


def build_gan_model(method, backbone_fn, x, y, counts, jit):
    """ImbalanceCycleGAN (AUG; ALT in its CycleGAN phase), its CycleGAN pre-training step, or PolarityGAN.

    The networks and hyper-parameters are the recipes' defaults
    (`recipes.get(method)`; the CycleGAN's sizes as `--cyclegan-size`
    sets `cyclegan_options`); the classifier is `backbone_fn` with the
    benchmark's CoupledSGD, the other players keep their papers' Adam.
    PolarityGAN's stage 1 (the autoencoder) is not run: it sets weights,
    not shapes, so the stage-2 step costs the same.
    """
    shape, c = tuple(x.shape[1:]), len(counts)
    if method in CYCLEGAN_METHODS:
        recipe = recipes.get("imbalance-cyclegan" if method == "cyclegan" else method, **cyclegan_options)
        cycle_gan = recipe.build_cycle_gan(shape, (0.0, 1.0), seed=0)
        if method == "cyclegan":
            cycle_gan.compile(jit_compile=jit)
            return cycle_gan
        model = ki.models.ImbalanceCycleGAN(backbone_fn(shape, 2), cycle_gan, mode=recipe.mode,
                                            switch_every=recipe.switch_every, class_counts=counts, seed=0)
        model.compile(classifier_optimizer=_sgd(), jit_compile=jit)
        if recipe.mode == "alt":
            model.set_phase(1)  # phase 0 is the AUG step, timed as `imbalance-cyclegan`
        return model
    if method == "polarity-gan":
        recipe = recipes.get(method)
        model = ki.models.PolarityGAN(backbone_fn(shape, c), PolarityCritic(shape, c), latent_dim=recipe.latent_dim,
                                      autoencoder_epochs=0, critic_steps=recipe.critic_steps,
                                      gradient_penalty=recipe.gradient_penalty, seed=0).adapt(x, y)
        model.compile(classifier_optimizer=_sgd(), jit_compile=jit)
        return model
    raise ValueError(f"unknown method {method!r}")



# ------------------------------------------------------------------ FLOPs


def forward_flops(model, input_specs):
    """Forward FLOPs of `model` (inference mode) on the given input specs, by TF's graph profiler."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda *a: model(list(a) if len(a) > 1 else a[0], training=False))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(*input_specs))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=frozen.graph, options=opts).total_float_ops


def expected_candidate_fraction(model, labels):
    """s: the expected fraction of the batch `M2m(translated_positions="candidates")` translates.

    Exact expectation over the random draws for this batch's labels (paper
    Sec. 2.3 and eqs. 3, 5): position i is a candidate with probability
    (1 - N_i / N_max) * sum_j Q(j | i) (1 - beta^((N_j - N_i)+)), Q the
    in-batch seed distribution (eq. 5 over the classes present).
    """
    counts = np.asarray(model.class_counts, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    n = counts[labels]
    p_acc = 1.0 - model.beta ** np.maximum(n[None, :] - n[:, None], 0.0)  # [slot i, seed j]
    if not model.rejection:
        p_acc = (p_acc > 0).astype(np.float64)
    weight = p_acc / np.bincount(labels, minlength=len(counts))[labels][None, :]
    total = weight.sum(axis=1)
    q = np.divide(weight, total[:, None], out=np.zeros_like(weight), where=total[:, None] > 0)
    return float(np.mean((1.0 - n / counts.max()) * (q * p_acc).sum(axis=1)))


def expected_counts(methods, models, x, batch, attack_steps, labels):
    """{method: (count in ERM steps, formula)} from forward FLOPs of each network (`labels`: the timed batch's)."""
    shape = tuple(x.shape[1:])
    img = tf.TensorSpec((batch, *shape), tf.float32)
    counts = {}
    phi_f = None
    for method in methods:
        model = models.get(method)
        if model is None:
            continue
        if method in BASELINES or method == BINARY_REFERENCE:
            counts[method] = (1.0, "1 f step")
        elif method in ("m2m", "ldam-m2m", "m2m-compact"):
            pf = forward_flops(model.classifier, [img])
            pg = forward_flops(model.translators[0], [img])
            t = attack_steps
            if method == "m2m-compact":
                s = expected_candidate_fraction(model, labels)
                counts[method] = ((3 * pf + s * (2 * t * (pg + pf) + pg)) / (3 * pf),
                                  f"1 + s [2T(g+f) + g]/3f, T={t}, s = {s:.3f} expected translated fraction of the timed batch")
            else:
                counts[method] = ((3 * pf + 2 * t * (pg + pf) + pg) / (3 * pf), f"1 + [2T(g+f) + g]/3f, T={t}")
            phi_f = phi_f or pf
        elif method in ("gamo", "gamo-d"):
            c = model.num_classes
            pm = forward_flops(model.classifier, [img])
            pgen = forward_flops(model.generator, [tf.TensorSpec((batch, model.latent_dim), tf.float32), tf.TensorSpec((batch,), tf.int32)])
            pd = 0.0
            if model.discriminator is not None:
                pd = forward_flops(model.discriminator, [img, tf.TensorSpec((batch, c), tf.float32)])
            total = 8 * pm + 8 * pd + 7 * pgen
            counts[method] = (total / (3 * pm), f"[8M + 8D + 7G]/3M, D/M={pd / pm:.3f}, G/M={pgen / pm:.3f}")
        elif method in CYCLEGAN_METHODS:
            counts[method] = cyclegan_count(method, model, models[BINARY_REFERENCE], img)
        elif method == "polarity-gan":
            counts[method] = polarity_gan_count(model, img, batch)
    return counts


def cyclegan_count(method, model, reference, img):
    """(count, formula) of a CycleGAN method step, in binary ERM steps (`reference`'s 3 Phi_f).

    Phi at batch B: the step's B / 2 pairs are B images per domain pair.
    """
    gan = model if method == "cyclegan" else model.cycle_gan
    pg = forward_flops(gan.generator_ab, [img])
    pd = forward_flops(gan.discriminator_a, [img])
    pf = forward_flops(reference, [img])
    ratios = f"G/f={pg / pf:.3f}, D/f={pd / pf:.3f}"
    if method == "imbalance-cyclegan":
        return (6 * pf + pg) / (3 * pf), f"[6f + G]/3f, {ratios}"
    if method == "imbalance-cyclegan-alt":
        return (9 * pg + 8 * pd + 4 * pf) / (3 * pf), f"[9G + 8D + 4f]/3f, {ratios}"
    return (9 * pg + 8 * pd) / (3 * pf), f"[9G + 8D]/3f, {ratios}"


def polarity_gan_count(model, img, batch):
    """(count, formula) of a PolarityGAN step, all Phi at batch B."""
    n = model.critic_steps
    pc = forward_flops(model.classifier, [img])
    pgen = forward_flops(model.generator, [tf.TensorSpec((batch, model.latent_dim), tf.float32), tf.TensorSpec((batch,), tf.int32)])
    pd = forward_flops(model.critic, [img, tf.TensorSpec((batch, model.num_classes), tf.float32)])
    total = 8 * pc + (n + 6) * pgen + (12 * n + 2) * pd
    return total / (3 * pc), f"[8C + (n+6)G + (12n+2)D]/3C, n={n}, G/C={pgen / pc:.3f}, D/C={pd / pc:.3f}"


# ------------------------------------------------------------------ timing


def _sync(logs):
    for v in tree.flatten(logs):
        return float(np.asarray(v))


def make_runner(model, iterator):
    model.make_train_function()
    fn = model.train_function

    def run():
        _sync(fn(iterator))

    return run


def synthetic_iterator(xb, yb):
    return iter(tf.data.Dataset.from_tensors((tf.constant(xb), tf.constant(yb))).repeat())


def pipeline_iterator(x, y, batch, balanced):
    ds = ki.datasets.to_dataset(x, y, batch, balanced=balanced, seed=0, drop_remainder=True)
    return iter(ds.repeat())


def time_interleaved(runners, warmup, repeats):
    """{key: [seconds]}: warm-up each runner, then one timed call of every runner per repeat."""
    for key, run in list(runners.items()):
        try:
            for _ in range(warmup):
                run()
        except Exception as e:  # a jit failure must not stop the whole table
            runners.pop(key)
            print(f"  ! {key}: {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
    times = {key: [] for key in runners}
    for _ in range(repeats):
        for key, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - t0)
    return times


def pipeline_batch_time(x, y, batch, balanced, n=30):
    """Seconds per batch the tf.data pipeline alone delivers (after warm-up)."""
    it = pipeline_iterator(x, y, batch, balanced)
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    return (time.perf_counter() - t0) / n


# ------------------------------------------------------------------ main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", default="small_cnn,resnet32")
    p.add_argument("--methods", default=",".join(BASELINES + METHODS))
    p.add_argument("--repeats", type=int, default=None, help="timed steps per model (default 30 small_cnn, 5 resnet32)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--jit", default="off,on", help="off, on, or off,on")
    p.add_argument("--data", default="synthetic,pipeline")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--attack-steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=0,
                   help="TF intra- and inter-op threads (0: TF's defaults); 1 separates kernel speed from thread synchronization")
    p.add_argument("--cyclegan-size", choices=sorted(CYCLEGAN_SIZES), default="recipe",
                   help="networks of the CycleGAN methods: the recipe's defaults or the paper's")
    args = p.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cyclegan_options.update(CYCLEGAN_SIZES[args.cyclegan_size])

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if methods == ["all"]:
        methods = list(BASELINES + METHODS + VARIANTS + GAN_METHODS)
    if "erm" not in methods:
        methods.insert(0, "erm")
    if any(m in BINARY_METHODS for m in methods) and BINARY_REFERENCE not in methods:
        methods.insert(1, BINARY_REFERENCE)
    jits = [{"off": False, "on": True}[j.strip()] for j in args.jit.split(",")]
    data_modes = [d.strip() for d in args.data.split(",")]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}, "
          f"batch {args.batch_size}, M2m T={args.attack_steps}")

    for backbone in [b.strip() for b in args.backbones.split(",")]:
        backbone_fn, x, y, counts, label = backbone_setup(backbone, args.batch_size)
        repeats = args.repeats or (30 if backbone == "small_cnn" else 5)
        ds = ki.datasets.to_dataset(x, y, args.batch_size, balanced=True, seed=0, drop_remainder=True)
        xb, yb = (np.asarray(t) for t in next(iter(ds)))
        print(f"\n## {label}: N={len(y)}, counts {list(counts)}, {repeats} timed steps after {args.warmup} warm-up (interleaved)")
        binary = binary_setup(backbone) if BINARY_REFERENCE in methods else None
        if binary is not None:
            print(f"   binary data ({', '.join(m for m in methods if m in BINARY_METHODS)}): counts {binary[2]}; "
                  f"CycleGAN steps take {args.batch_size // 2} (majority, minority) pairs = {args.batch_size} real images; "
                  f"CycleGAN networks: {args.cyclegan_size} {cyclegan_options or ''}")
        rows = {}
        exp = None
        # All models of every XLA setting are timed in one interleaved loop,
        # so that XLA on/off see the same machine load.
        keras.utils.clear_session(free_memory=False)
        keras.utils.set_random_seed(0)
        runners, all_models = {}, {}
        for jit in jits:
            models = {}
            for m in methods:
                mx, my, mc = binary if m in BINARY_METHODS else (x, y, counts)
                try:
                    models[m] = build_model(m, backbone_fn, mx, my, mc, jit, args.attack_steps)
                except Exception as e:
                    print(f"  ! build {m} jit={jit}: {type(e).__name__}: {e}")
                    continue
                if "synthetic" in data_modes:
                    batch = timing_batch(m, mx, my, mc, args.batch_size) if m in BINARY_METHODS else (xb, yb)
                    runners[(m, "synthetic", jit)] = make_runner(models[m], synthetic_iterator(*batch))
            if "pipeline" in data_modes:
                for m in ("erm", "m2m", "gamo", "polarity-gan"):
                    if m in models:
                        # A fresh model per pipeline: Keras' train function is bound to one model, not one iterator.
                        for balanced in (False, True):
                            mm = build_model(m, backbone_fn, x, y, counts, jit, args.attack_steps)
                            key = (m, "balanced pipeline" if balanced else "plain pipeline", jit)
                            runners[key] = make_runner(mm, pipeline_iterator(x, y, args.batch_size, balanced))
            if exp is None:
                exp = expected_counts(methods, models, x, args.batch_size, args.attack_steps, yb)
            all_models.update({m: mod for m, mod in models.items() if m not in all_models})
        rows = time_interleaved(runners, args.warmup, repeats)
        models = all_models
        if "pipeline" in data_modes:
            for balanced in (False, True):
                t = pipeline_batch_time(x, y, args.batch_size, balanced)
                print(f"  tf.data alone ({'balanced' if balanced else 'plain'}): {t * 1e3:.2f} ms/batch")

        print()
        print("| method | data | XLA | median step ms | min-max ms | ratio to ERM | expected count | ratio / count | images/s |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for (m, data, jit), ts in rows.items():
            med = statistics.median(ts)
            reference = reference_of(m)
            erm = rows.get((reference, "synthetic", jit))
            ratio = med / statistics.median(erm) if erm else float("nan")
            count = exp.get(m, (float("nan"), ""))[0]
            name = m if reference == "erm" or m == reference else f"{m} (/ {reference})"
            print(f"| {name} | {data} | {'on' if jit else 'off'} | {med * 1e3:.1f} | {min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f} | "
                  f"{ratio:.2f} | {count:.2f} | {ratio / count:.2f} | {args.batch_size / med:.0f} |")
        print()
        for m, (count, formula) in exp.items():
            print(f"  count {m}: {count:.2f} = {formula}")
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
