"""Where a method's train step spends its time: TF profiler op breakdown + Python overhead (cProfile).

For each method (default: erm, m2m, gamo; any method of
`benchmarks/step_time.py`, e.g. imbalance-cyclegan, imbalance-cyclegan-alt,
cyclegan, polarity-gan, erm-binary) on a backbone (default SmallCNN on 8x8
digits, batch 128; the CycleGAN methods and erm-binary on step_time's binary
data, B / 2 pairs), the compiled train function is warmed up, then

1. `tf.profiler.experimental` traces `--steps` steps; the XSpace file it
   writes is read back (`tensorflow/tsl/profiler/protobuf/xplane_pb2`) and
   the host CPU's op events are summed per op type (the part after ":" in
   "name:Type"), exclusive of nested function-call ops, as a percentage of
   the profiled wall time;
2. `cProfile` runs `--steps` more steps; the time inside the C call that
   executes the graph versus the rest of the Python call is the Python
   overhead per step.

py-spy is not installed here (and pip is not allowed), hence the TF profiler.

Usage:
    python benchmarks/profile_step.py [--backbone small_cnn] [--methods erm,m2m,gamo] [--steps 10] [--top 12]
"""

import argparse
import collections
import cProfile
import glob
import os
import pstats
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from benchmarks.step_time import (  # noqa: E402
    BINARY_METHODS,
    backbone_setup,
    binary_setup,
    build_model,
    make_runner,
    synthetic_iterator,
    timing_batch,
)

# Ops that only wrap other ops (their time is the time of their children).
_CONTAINERS = ("PartitionedCall", "While", "If", "Case", "__inference", "FunctionRun", "ExecutorState")


def op_breakdown(logdir):
    """{op type: seconds}, profiled wall seconds, from the host plane's op events.

    The returned Counter also has `.executed`, {op type: number of op events}.
    """
    files = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(files[0], "rb") as f:
        space.ParseFromString(f.read())
    per_type = collections.Counter()
    per_type.executed = collections.Counter()
    first, last = None, None
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "")
                if ":" not in name or "/" not in name:  # op events are "scope/name:Type"
                    continue
                op_type = name.rsplit(":", 1)[1]
                if any(c in op_type for c in _CONTAINERS):
                    continue
                per_type[op_type] += ev.duration_ps * 1e-12
                per_type.executed[op_type] += 1
                start = line.timestamp_ns * 1e-9 + ev.offset_ps * 1e-12
                first = start if first is None else min(first, start)
                last = start + ev.duration_ps * 1e-12 if last is None else max(last, start + ev.duration_ps * 1e-12)
    return per_type, (last - first) if first is not None else float("nan")


def python_overhead(run, steps):
    """(wall s/step, s/step inside the graph-executing C call) by cProfile."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(steps):
        run()
    prof.disable()
    wall = (time.perf_counter() - t0) / steps
    stats = pstats.Stats(prof)
    inside = 0.0
    for (filename, _, func), (_, _, tottime, _, _) in stats.stats.items():
        # The builtin that runs a graph function: TFE_Py_Execute (eager op/function execution).
        if "TFE_Py_Execute" in func:
            inside += tottime
    return wall, inside / steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="small_cnn")
    p.add_argument("--methods", default="erm,m2m,gamo")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--attack-steps", type=int, default=10)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--jit", action="store_true")
    args = p.parse_args()
    backbone_fn, x, y, counts, label = backbone_setup(args.backbone, args.batch_size)
    methods = args.methods.split(",")
    binary = binary_setup(args.backbone) if any(m in BINARY_METHODS for m in methods) else None
    print(f"{label}, batch {args.batch_size}, {args.steps} profiled steps, jit={args.jit}")
    for method in methods:
        mx, my, mc = binary if method in BINARY_METHODS else (x, y, counts)
        model = build_model(method, backbone_fn, mx, my, mc, args.jit, args.attack_steps)
        run = make_runner(model, synthetic_iterator(*timing_batch(method, mx, my, mc, args.batch_size)))
        for _ in range(3):
            run()
        with tempfile.TemporaryDirectory() as logdir:
            # Level 3: one event per executed op ("scope/name:Type"), not only per function run.
            tf.profiler.experimental.start(logdir, options=tf.profiler.experimental.ProfilerOptions(host_tracer_level=3))
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run()
            wall = (time.perf_counter() - t0) / args.steps
            tf.profiler.experimental.stop()
            per_type, _ = op_breakdown(logdir)
        total_ops = sum(per_type.values()) / args.steps
        executed = sum(per_type.executed.values()) / args.steps
        print(f"\n### {method}: {wall * 1e3:.1f} ms/step under the profiler; op time summed over both cores "
              f"{total_ops * 1e3:.1f} ms/step; {executed:.0f} ops executed per step, {total_ops / executed * 1e6:.1f} us per op")
        print("| op type | ms/step | % of op time |")
        print("|---|---:|---:|")
        for op, sec in per_type.most_common(args.top):
            print(f"| {op} | {sec / args.steps * 1e3:.2f} | {100 * sec / args.steps / total_ops:.1f} |")
        wall, inside = python_overhead(run, args.steps)
        print(f"Python (cProfile, {args.steps} steps): {wall * 1e3:.2f} ms/step wall, {inside * 1e3:.2f} ms inside "
              f"TFE_Py_Execute, Python overhead {max(wall - inside, 0) * 1e3:.2f} ms/step "
              f"({100 * max(wall - inside, 0) / wall:.1f} %)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
