"""M2m's attack loop alone, in a plain tf.function and under XLA, interleaved (issue 21: why XLA slows M2m on CPU).

T input-gradient passes through a frozen network in inference mode, each
followed by M2m's normalized-gradient step: the part of M2m's train step
that the translation costs. Threads default to 1 (intra and inter-op) so
that the kernels are compared, not thread synchronization under load.
Set XLA_FLAGS / TF_ENABLE_ONEDNN_OPTS in the environment to compare XLA:CPU
options or TF without oneDNN.

Usage:
    python benchmarks/xla_attack_loop.py [--backbone small_cnn|resnet32] [--repeats 10] [--threads 1] [--attack-steps 10]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", choices=("small_cnn", "resnet32"), default="small_cnn")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--attack-steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras_imbalance as ki

    if args.backbone == "small_cnn":
        net = ki.applications.SmallCNN((8, 8, 1), 10)
    else:
        net = ki.applications.ResNet32(input_shape=(32, 32, 3), num_classes=10)
    x0 = tf.random.uniform((args.batch_size, *net.input_shape[1:]))

    def attack(x):
        for _ in range(args.attack_steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(net(x, training=False))
            grad = tape.gradient(loss, x)
            norm = tf.norm(tf.reshape(grad, (args.batch_size, -1)), axis=1)
            x = x - 0.1 * grad / (tf.reshape(norm, (-1,) + (1,) * (len(x.shape) - 1)) + 1e-12)
        return x

    fns = {"graph": tf.function(attack), "xla": tf.function(attack, jit_compile=True)}
    for fn in fns.values():  # trace / compile, then one warm call
        fn(x0).numpy()
        fn(x0).numpy()
    times = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn(x0).numpy()
            times[k].append(time.perf_counter() - t0)
    g, x = statistics.median(times["graph"]), statistics.median(times["xla"])
    print(f"{args.backbone}, batch {args.batch_size}, T={args.attack_steps}, {args.threads} thread(s), "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}, "
          f"load avg {os.getloadavg()[0]:.1f}: tf.function {g * 1e3:.1f} ms, XLA {x * 1e3:.1f} ms, XLA / tf.function {x / g:.2f}")


if __name__ == "__main__":
    main()
