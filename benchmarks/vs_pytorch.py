"""The package's Keras train steps side by side with the same steps in PyTorch, on this machine.

Issue 21: the goal is a train step at least as fast as the authors' own
framework (PyTorch, for M2m and CycleGAN) running the same algorithm with
the same networks and batch. This script times, interleaved in one run:

- **erm**: ResNet-32 (option A; the same 464,154 parameters), batch 128,
  cross-entropy, SGD(0.1, momentum 0.9) with coupled L2 2e-4 (Keras: the
  recipes' `CoupledSGD`; PyTorch: `torch.optim.SGD(weight_decay=2e-4)`,
  which is the same update).
- **m2m** (`--positions all`, `candidates` or `both`): M2m's step as the
  paper's Algorithm 1 and the authors' generation() describe it: draw the
  generation slots, seeds and rejection coins for the batch, translate the
  seeds with T normalized-gradient steps on CE(g(x), k) + lam f_k0(x)
  through the frozen g and f (both in inference mode), one forward of g for
  the gamma test, then the classifier step on the mixed batch. `all`
  translates every position (the package's default fixed shapes),
  `candidates` only the positions whose acceptance can still succeed
  (`translated_positions="candidates"`); PyTorch translates the same rows.
  Keras: `models.M2m`; PyTorch: written here from the paper.
- **cyclegan**: the CycleGAN step (pre-training of ImbalanceCycleGAN):
  two ResNet generators and two PatchGANs of the recipe's sizes (16
  filters, 3 residual blocks; the same parameter counts), LSGAN + cycle (10)
  + identity (5) losses, one joint generator update, then both
  discriminators on real and history-pooled fakes (pools of 50), Adam(2e-4,
  beta_1 0.5); 64 (a, b) pairs of 32x32x3 per step, as
  `benchmarks/step_time.py` times it. PyTorch follows the reference
  implementation's optimize_parameters (separate network calls,
  discriminators' requires_grad off during the generator update).

Each framework runs in its own subprocess (so that neither's thread pools
spin while the other works); the parent sends "time one step of X" to them
in turn, alternating which goes first, so that load from other jobs on a
shared machine hits both alike. Both get the same random batch. Per round
and step: the median over `--repeats` steps of each, and Keras / PyTorch;
the whole interleave is repeated `--rounds` times. For the CycleGAN step it
also prints ratio / count: the step over the same framework's ERM step,
divided by its FLOP count (docs/performance.md; the count's ERM step is the
binary ResNet-32's, the timed ERM step the 10-class one: they differ only in
a 64x10 vs 64x2 dense layer).

Threads: PyTorch `torch.set_num_threads(--threads)`; TensorFlow's intra-op
pool `--threads` too, its inter-op pool `--tf-inter-op` (0 = TF's default,
the number of cores). `--onednn 0/1` sets TF_ENABLE_ONEDNN_OPTS for the
Keras process, `--jit` Keras' jit_compile, `--channels-last` PyTorch's
memory format. PyTorch's CPU build runs its threads on libgomp, whose
threads spin at every barrier by default: on a machine shared with other
jobs (more runnable threads than cores) a ResNet-8 step then took 1.3 s
with 2 threads against 0.15 s with OMP_WAIT_POLICY=PASSIVE and 0.04 s with
1 thread, so the PyTorch process runs with `--omp-wait-policy passive`
unless told otherwise.

Usage (needs `pip install -e .[bench]`, which installs torch; torch is never
a dependency of the package):
    python benchmarks/vs_pytorch.py [--steps erm,m2m,cyclegan] [--positions both]
        [--repeats 10] [--warmup 2] [--rounds 3] [--threads 2] [--quick]
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = ("erm", "m2m", "cyclegan")


def cyclegan_layers(size):
    """The recipe's PatchGAN depth for images of `size` (`recipes.ImbalanceCycleGANRecipe.build_cycle_gan`)."""
    return max(n for n in range(0, 4) if 3 * 2**n <= size)


def step_names(args):
    names = []
    for s in args.steps:
        if s == "m2m":
            names += [f"m2m-{p}" for p in (("all", "candidates") if args.positions == "both" else (args.positions,))]
        else:
            names.append(s)
    return names


# ------------------------------------------------------------------ Keras worker


def run_worker(name, cfg, conn):
    """Runs worker `name`; an exception is sent to the parent (which raises it) instead of a silent EOF."""
    try:
        WORKERS[name](cfg, conn)
    except BaseException as e:
        conn.send(RuntimeError(f"{name} worker: {type(e).__name__}: {e}"))
        raise


def keras_worker(cfg, conn):
    """Builds the Keras steps, sends the shared batch and parameter counts, then times steps on request."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if cfg["onednn"] is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = str(cfg["onednn"])
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.dirname(HERE))
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cfg["threads"])
    if cfg["tf_inter_op"]:
        tf.config.threading.set_inter_op_parallelism_threads(cfg["tf_inter_op"])
    import keras

    import keras_imbalance as ki
    import step_time as st

    keras.utils.set_random_seed(0)
    size, batch, depth = cfg["image_size"], cfg["batch"], cfg["depth"]

    def backbone_fn(shape, c, name=None):
        return ki.applications.CifarResNet(depth, input_shape=shape, num_classes=c, name=name)

    # The data of step_time.py's resnet32 rows: random images, long-tailed labels.
    counts = ki.datasets.long_tailed_counts(400, 10, 10)
    y = np.concatenate([np.full(n, k) for k, n in enumerate(counts)]).astype("int64")
    x = np.random.default_rng(0).random((len(y), size, size, 3), dtype=np.float32)
    xb, yb = st.timing_batch("erm", x, y, counts, batch)
    bin_counts = [400, 40]
    yy = np.concatenate([np.full(n, k) for k, n in enumerate(bin_counts)]).astype("int64")
    xx = np.random.default_rng(1).random((len(yy), size, size, 3), dtype=np.float32)
    pair_a, pair_b = st.timing_batch("cyclegan", xx, yy, bin_counts, batch)

    def trainable(model):  # PyTorch's parameters() are the trainable weights (BN's running stats are buffers)
        return int(sum(np.prod(w.shape) for w in model.trainable_weights))

    runners, params, counts_of = {}, {}, {}
    names = cfg["names"]
    jit = cfg["jit"]
    for name in names:
        if name == "erm":
            model = st.build_model("erm", backbone_fn, x, y, counts, jit, cfg["attack_steps"])
            params["resnet"] = trainable(model)
            runners[name] = st.make_runner(model, st.synthetic_iterator(xb, yb))
        elif name.startswith("m2m-"):
            method = "m2m" if name == "m2m-all" else "m2m-compact"
            model = st.build_model(method, backbone_fn, x, y, counts, jit, cfg["attack_steps"])
            params["resnet"] = trainable(model.classifier)
            runners[name] = st.make_runner(model, st.synthetic_iterator(xb, yb))
            if name == "m2m-candidates":
                counts_of["candidate_fraction"] = st.expected_candidate_fraction(model, yb)
        elif name == "cyclegan":
            model = st.build_gan_model("cyclegan", backbone_fn, xx, yy, bin_counts, jit)
            params["generator"] = trainable(model.generator_ab)
            params["discriminator"] = trainable(model.discriminator_a)
            runners[name] = st.make_runner(model, st.synthetic_iterator(pair_a, pair_b))
            img = tf.TensorSpec((batch, size, size, 3), tf.float32)
            counts_of["cyclegan"] = st.cyclegan_count("cyclegan", model, backbone_fn((size, size, 3), 2), img)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__,
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}
    conn.send({"batch": (xb, yb), "pairs": (pair_a, pair_b), "class_counts": list(map(int, counts)),
               "params": params, "counts": counts_of, "versions": versions})
    _serve(conn, runners, profile=keras_profile)


def keras_profile(run, steps):
    """TensorFlow's profiler over `steps` steps: {op type: exclusive seconds per step} (`profile_step.op_breakdown`)."""
    import tempfile

    import tensorflow as tf
    from profile_step import op_breakdown

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir, options=tf.profiler.experimental.ProfilerOptions(host_tracer_level=3))
        t0 = time.perf_counter()
        for _ in range(steps):
            run()
        wall = (time.perf_counter() - t0) / steps
        tf.profiler.experimental.stop()
        per_type, _ = op_breakdown(logdir)
    return {op: sec / steps for op, sec in per_type.items()}, wall


def _serve(conn, runners, profile=None):
    """Answers ("warmup", name, n), ("time", name) and ("profile", name, n) until ("stop",).

    `profile(run, n)` -> ({op name: seconds per step}, wall seconds per step under the profiler).
    """
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            conn.send(None)
            return
        run = runners[msg[1]]
        if msg[0] == "profile":
            conn.send(profile(run, msg[2]))
        elif msg[0] == "warmup":
            for _ in range(msg[2]):
                run()
            conn.send(None)
        else:
            t0 = time.perf_counter()
            run()
            conn.send(time.perf_counter() - t0)


# ------------------------------------------------------------------ PyTorch worker


def torch_worker(cfg, conn):
    """Builds the PyTorch steps on the batch the Keras worker made, checks parameter counts, then times steps."""
    # Read by libgomp when torch loads: must be set before the import.
    os.environ["OMP_WAIT_POLICY"] = cfg["omp_wait_policy"]
    import numpy as np
    import torch

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    sys.path.insert(0, HERE)
    import vs_pytorch_nets as nets

    info = cfg["keras"]
    fmt = torch.channels_last if cfg["channels_last"] else torch.contiguous_format

    def images(a):  # NHWC numpy -> NCHW tensor
        return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32).transpose(0, 3, 1, 2))).contiguous(memory_format=fmt)

    xb, yb = info["batch"]
    x, y = images(xb), torch.from_numpy(np.asarray(yb, dtype=np.int64))
    a, b = (images(t) for t in info["pairs"])
    runners, params = {}, {}
    for name in cfg["names"]:
        if name == "erm":
            net = nets.resnet_cifar(cfg["depth"], 10).to(memory_format=fmt)
            params["resnet"] = nets.count_params(net)
            runners[name] = nets.erm_step(net, x, y)
        elif name.startswith("m2m-"):
            f = nets.resnet_cifar(cfg["depth"], 10).to(memory_format=fmt)
            g = nets.resnet_cifar(cfg["depth"], 10).to(memory_format=fmt)
            params["resnet"] = nets.count_params(f)
            runners[name] = nets.m2m_step(f, g, x, y, info["class_counts"], attack_steps=cfg["attack_steps"],
                                          candidates_only=name == "m2m-candidates")
        elif name == "cyclegan":
            gens = [nets.resnet_generator(3, 16, 3).to(memory_format=fmt) for _ in range(2)]
            discs = [nets.patchgan(3, 16, cfg["disc_layers"]).to(memory_format=fmt) for _ in range(2)]
            params["generator"] = nets.count_params(gens[0])
            params["discriminator"] = nets.count_params(discs[0])
            runners[name] = nets.cyclegan_step(*gens, *discs, a, b)
    for k, v in params.items():
        if info["params"].get(k) != v:
            raise AssertionError(f"{k}: {v} parameters in PyTorch, {info['params'].get(k)} in Keras")
    conn.send({"params": params, "versions": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                                              "interop": torch.get_num_interop_threads(),
                                              "channels_last": bool(cfg["channels_last"]),
                                              "OMP_WAIT_POLICY": cfg["omp_wait_policy"]}})
    _serve(conn, runners, profile=torch_profile)


def torch_profile(run, steps):
    """torch.profiler over `steps` steps: {aten op: self CPU seconds per step}."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            run()
        wall = (time.perf_counter() - t0) / steps
    ops = {}
    for event in prof.key_averages():
        if event.self_cpu_time_total > 0:
            ops[event.key] = ops.get(event.key, 0.0) + event.self_cpu_time_total * 1e-6 / steps
    return ops, wall


WORKERS = {"keras": keras_worker, "torch": torch_worker}

# ------------------------------------------------------------------ parent


def start(target, cfg):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=run_worker, args=(target, cfg, child), daemon=True)
    proc.start()
    return proc, parent


def receive(conn):
    answer = conn.recv()
    if isinstance(answer, Exception):
        raise answer
    return answer


def ask(conn, *msg):
    conn.send(msg)
    return receive(conn)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default=",".join(STEPS))
    p.add_argument("--positions", choices=("all", "candidates", "both"), default="both", help="M2m's translated positions")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per framework, step and round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="times the whole interleave is repeated")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of both frameworks")
    p.add_argument("--tf-inter-op", type=int, default=0, help="TF inter-op threads (0: TF's default)")
    p.add_argument("--onednn", type=int, choices=(0, 1), default=None, help="TF_ENABLE_ONEDNN_OPTS for Keras")
    p.add_argument("--jit", action="store_true", help="Keras jit_compile=True")
    p.add_argument("--channels-last", action="store_true", help="PyTorch channels_last memory format")
    p.add_argument("--omp-wait-policy", choices=("passive", "active"), default="passive",
                   help="OMP_WAIT_POLICY of the PyTorch process (passive: its threads sleep at barriers; "
                        "active spins, and is many times slower when other jobs share the cores)")
    p.add_argument("--attack-steps", type=int, default=10)
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="instead of timing: profile N steps of each step in both frameworks (TF profiler, "
                        "torch.profiler) and print where the time goes, op by op and by kind of op")
    p.add_argument("--top", type=int, default=15, help="ops listed per framework with --profile")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: ResNet-8, batch 8, 16x16 images, T=2, 2 repeats, 1 round")
    args = p.parse_args(argv)
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(args.steps) - set(STEPS)
    if unknown:
        p.error(f"unknown steps {sorted(unknown)}; choose from {STEPS}")
    depth, batch, size = 32, 128, 32
    if args.quick:
        depth, batch, size = 8, 8, 16
        args.attack_steps, args.repeats, args.warmup, args.rounds = 2, 2, 1, 1
    names = step_names(args)
    cfg = {"names": names, "depth": depth, "batch": batch, "image_size": size, "attack_steps": args.attack_steps,
           "threads": args.threads, "tf_inter_op": args.tf_inter_op, "onednn": args.onednn, "jit": args.jit,
           "channels_last": args.channels_last, "omp_wait_policy": args.omp_wait_policy, "disc_layers": cyclegan_layers(size)}

    t0 = time.perf_counter()
    kproc, kconn = start("keras", cfg)
    kinfo = receive(kconn)
    tproc, tconn = start("torch", dict(cfg, keras=kinfo))
    tinfo = receive(tconn)
    workers = {"keras": kconn, "torch": tconn}
    print(f"ResNet-{depth}, batch {batch}, {size}x{size}x3 random images; M2m T={args.attack_steps}; "
          f"CycleGAN {batch // 2} pairs, 16-filter generators (3 blocks) and PatchGANs ({cfg['disc_layers']} layers)")
    print(f"Keras: {kinfo['versions']}; jit_compile={args.jit}")
    print(f"PyTorch: {tinfo['versions']}")
    print(f"parameters (equal in both): {tinfo['params']}; {os.cpu_count()} CPUs; built in {time.perf_counter() - t0:.0f} s")
    for name in names:
        for conn in workers.values():
            ask(conn, "warmup", name, args.warmup)

    if args.profile:
        for name in names:
            profiles = {fw: ask(conn, "profile", name, args.profile) for fw, conn in workers.items()}
            print_profile(name, profiles, args)
        for conn in workers.values():
            ask(conn, "stop")
        return profiles

    results = []  # (round, name, keras times, torch times, load before, load after)
    for r in range(args.rounds):
        for name in names:
            load0 = os.getloadavg()[0]
            times = {"keras": [], "torch": []}
            for i in range(args.repeats):
                order = ("keras", "torch") if (i + r) % 2 == 0 else ("torch", "keras")
                for fw in order:
                    times[fw].append(ask(workers[fw], "time", name))
            results.append((r, name, times["keras"], times["torch"], load0, os.getloadavg()[0]))
            k, t = statistics.median(times["keras"]), statistics.median(times["torch"])
            print(f"  round {r + 1} {name}: Keras {k * 1e3:.1f} ms, PyTorch {t * 1e3:.1f} ms, ratio {k / t:.2f}", flush=True)
    for conn in workers.values():
        ask(conn, "stop")
    for proc in (kproc, tproc):
        proc.join(timeout=30)
    print_table(results, kinfo, args)
    return results


# Kinds of op, matched on the lower-cased op name of either framework (first match wins).
OP_KINDS = (
    ("convolution: forward, input and filter gradients, transposed", ("conv",)),
    ("matmul / dense", ("matmul", "addmm", "aten::mm", "aten::bmm", "linear")),
    ("normalization (batch / instance norm kernels)", ("batchnorm", "batch_norm", "instance_norm", "native_layer_norm")),
    ("padding, slicing, gather and their gradients", ("pad", "slice", "gather", "segment", "index", "narrow", "select",
                                                      "cat", "concat", "stack", "split", "crop", "transpose", "permute")),
    ("optimizer updates", ("apply", "adam", "sgd", "foreach", "assignvariable", "assignsub", "assignadd")),
    ("reductions", ("mean", "sum", "max", "min", "norm", "prod", "argmax")),
)
OTHER = "elementwise and everything else (activations, losses, copies, casts)"


def op_kind(name):
    lower = name.lower()
    for kind, keys in OP_KINDS:
        if any(k in lower for k in keys):
            return kind
    return OTHER


def print_profile(name, profiles, args):
    """Per framework: its wall time per step, op time, the top ops; then op time by kind side by side."""
    print(f"\n## {name}: {args.profile} profiled steps per framework\n")
    kinds = {}
    for fw, (ops, wall) in profiles.items():
        total = sum(ops.values())
        print(f"{fw}: {wall * 1e3:.1f} ms per step under the profiler; op time {total * 1e3:.1f} ms per step "
              f"(summed over threads)\n")
        print(f"| {fw} op | kind | ms per step | % of op time |")
        print("|---|---|---:|---:|")
        for op, sec in sorted(ops.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"| {op} | {op_kind(op).split(':')[0].split(' (')[0]} | {sec * 1e3:.2f} | {100 * sec / total:.1f} |")
        print()
        for op, sec in ops.items():
            kinds.setdefault(op_kind(op), {}).setdefault(fw, 0.0)
            kinds[op_kind(op)][fw] += sec
    print("| kind of op | Keras ms | PyTorch ms | Keras / PyTorch |")
    print("|---|---:|---:|---:|")
    for kind in [k for k, _ in OP_KINDS] + [OTHER]:
        k, t = kinds.get(kind, {}).get("keras", 0.0), kinds.get(kind, {}).get("torch", 0.0)
        print(f"| {kind} | {k * 1e3:.1f} | {t * 1e3:.1f} | {k / t if t else float('nan'):.2f} |")
    k_total, t_total = sum(profiles["keras"][0].values()), sum(profiles["torch"][0].values())
    print(f"| all ops | {k_total * 1e3:.1f} | {t_total * 1e3:.1f} | {k_total / t_total:.2f} |")


def print_table(results, kinfo, args):
    med = statistics.median
    print(f"\n{args.repeats} timed steps per framework, step and round (after {args.warmup} warm-up); "
          f"medians; ratio = Keras / PyTorch\n")
    print("| round | step | Keras ms | PyTorch ms | Keras / PyTorch | load avg |")
    print("|---:|---|---:|---:|---:|---|")
    for r, name, k, t, l0, l1 in results:
        print(f"| {r + 1} | {name} | {med(k) * 1e3:.1f} | {med(t) * 1e3:.1f} | {med(k) / med(t):.2f} | {l0:.1f}-{l1:.1f} |")
    names = list(dict.fromkeys(n for _, n, *_ in results))
    print("\n| step | Keras / PyTorch per round | median |")
    print("|---|---|---:|")
    for name in names:
        ratios = [med(k) / med(t) for _, n, k, t, *_ in results if n == name]
        print(f"| {name} | {', '.join(f'{q:.2f}' for q in ratios)} | {med(ratios):.2f} |")
    count = kinfo["counts"].get("cyclegan")
    if count and "erm" in names and "cyclegan" in names:
        print(f"\nCycleGAN count {count[0]:.2f} ({count[1]}); step / ERM step / count per round:")
        for fw, idx in (("Keras", 2), ("PyTorch", 3)):
            per = []
            for r in sorted({row[0] for row in results}):
                rows = {row[1]: row for row in results if row[0] == r}
                per.append(med(rows["cyclegan"][idx]) / med(rows["erm"][idx]) / count[0])
            print(f"  {fw}: {', '.join(f'{q:.2f}' for q in per)}")
    if "candidate_fraction" in kinfo["counts"]:
        print(f"\nM2m candidates: expected translated fraction of the batch s = {kinfo['counts']['candidate_fraction']:.3f}")


if __name__ == "__main__":
    main()
