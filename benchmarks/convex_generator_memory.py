"""Memory and step time of GAMO's convex generator vs. the size of a minority class's sample bank.

    python benchmarks/convex_generator_memory.py [--sizes 1000 10000 100000] [--dim 512] [--max-bank-size 1024] [--steps 10]

Each configuration runs in a fresh subprocess (peak RSS is per process): a
pixel-space GAMO on `dim`-dimensional samples (512 = the feature-space
GAMO's feature size), 2 classes, minority n, majority 1.1 n, the paper's
networks (M 256-128, D 256-128, cTMU 256-64, latent 100), batch 64, Adam.
Reported: parameters of the generator (trainable; the IGU has 64 n + n), bytes
of the stored bank, process peak RSS after `steps` training steps (ru_maxrss,
includes the data arrays and TensorFlow itself), and the median step time.
Prints a markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(n, dim, max_bank_size, steps):
    import resource

    sys.path.insert(0, ROOT)
    import keras
    import numpy as np

    from keras_imbalance import applications
    from keras_imbalance.models import GAMO

    rng = np.random.default_rng(0)
    counts = [int(n * 1.1), n]
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)]).astype("int64")
    x = rng.uniform(-1, 1, (len(y), dim)).astype("float32")
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    generator = applications.GAMOGenerator(counts, (dim,), latent_dim=100, max_bank_size=max_bank_size, seed=0)
    model = GAMO(applications.GAMOClassifier((dim,), 2), applications.GAMODiscriminator((dim,), 2), generator=generator, seed=0)
    model.adapt(x, y)
    model.compile()
    ds = __import__("tensorflow").data.Dataset.from_tensor_slices((x, y)).shuffle(4096, seed=0).batch(64, drop_remainder=True).take(steps + 2)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=1, verbose=0, callbacks=[Timer()])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    layer = model.convex_generator
    bank_bytes = sum(int(np.prod(b.shape)) * 4 for b in layer.banks)
    print(json.dumps({
        "n": n, "dim": dim, "max_bank_size": max_bank_size,
        "generator_params": int(sum(np.prod(v.shape) for v in model.generator.trainable_variables)),
        "bank_mib": bank_bytes / 2**20,
        "data_mib": x.nbytes / 2**20,
        "rss_before_model_mib": rss_data / 1024,
        "peak_rss_mib": rss / 1024,
        "median_step_s": float(np.median(times[2:])) if len(times) > 2 else float("nan"),
        "steps_timed": max(0, len(times) - 2),
    }))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--max-bank-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--child", nargs=4, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        n, dim, m, steps = args.child
        child(n, dim, None if m <= 0 else m, steps)
        return
    rows = []
    for n in args.sizes:
        for m in (0, args.max_bank_size):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            out = subprocess.run([sys.executable, __file__, "--child", str(n), str(args.dim), str(m), str(args.steps)],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("| bank samples n | dim | max_bank_size | generator trainable params | bank MiB | data MiB | peak RSS MiB | median step s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['dim']} | {r['max_bank_size'] or 'None (paper)'} | {r['generator_params']:,} | "
              f"{r['bank_mib']:.1f} | {r['data_mib']:.1f} | {r['peak_rss_mib']:.0f} | {r['median_step_s']:.3f} |")


if __name__ == "__main__":
    main()
