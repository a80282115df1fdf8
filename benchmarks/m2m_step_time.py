"""Cost of one M2m training step vs one plain ERM step on the same f and batch.

Both steps are the compiled Keras train function (`train_on_batch`), same
backbone, same batch, same optimizer. M2m runs its translation branch on
every step (start_epoch=0). The expected ratio counts passes in units of one
forward pass F of f (g has the same architecture, so the same cost):

    ERM step  = F + backward(weights and input) ~ F + 2F = 3F
    M2m step  = ERM step + T * (forward + backward-to-input through g and f)
                + 1 forward of g (the acceptance test)
              = 3F + T * 2 * (1 + b) F + F

with b the cost of a backward-to-input pass relative to a forward pass,
between ~1 (no weight gradients) and ~2 (as costly as a full backward), i.e.
a ratio of (4 + 4T) / 3 to (4 + 6T) / 3: 14.7 to 21.3 for T = 10. The
last column uses the measured forward time F and the measured ERM step
instead of 3F: 1 + (4T + 1) F / ERM to 1 + (6T + 1) F / ERM (fixed per-step
costs such as the optimizer update and Python dispatch make a small net's
ERM step cost more than 3F).
The translation runs on the whole batch (fixed shapes), not only on the
generation slots, so the cost does not depend on the acceptance rate.

    python benchmarks/m2m_step_time.py [--repeats 30] [--warmup 5] [--batch-size 128]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_imbalance as ki  # noqa: E402
from keras_imbalance.models import M2m  # noqa: E402


def _time_steps(model, x, y, warmup, repeats):
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name, make_backbone, x, y, counts, attack_steps, warmup, repeats):
    keras.utils.set_random_seed(0)
    f_plain = make_backbone("f_plain")
    f = make_backbone("f")
    f.set_weights(f_plain.get_weights())
    g = make_backbone("g")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    f_plain.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=loss)
    model = M2m(f, g, class_counts=counts, attack_steps=attack_steps, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=loss)
    erm = _time_steps(f_plain, x, y, warmup, repeats)
    m2m = _time_steps(model, x, y, warmup, repeats)

    forward = tf.function(lambda inputs: f_plain(inputs, training=False))
    xt = tf.constant(x)
    for _ in range(warmup):
        forward(xt).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward(xt).numpy()
        times.append(time.perf_counter() - t0)
    return name, erm, m2m, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--attack-steps", type=int, default=10)
    args = parser.parse_args()

    (x_train, y_train), _ = ki.datasets.load_digits()
    counts = ki.datasets.long_tailed_counts(120, 10, 50)
    x_lt, y_lt = ki.datasets.make_imbalanced(x_train, y_train, counts, seed=0)
    ds = ki.datasets.to_dataset(x_lt, y_lt, args.batch_size, balanced=True, seed=0, drop_remainder=True)
    xb, yb = next(iter(ds))
    xb, yb = np.asarray(xb), np.asarray(yb)

    rows = [
        bench(
            f"SmallCNN 8x8 digits, batch {args.batch_size}",
            lambda name: ki.applications.SmallCNN((8, 8, 1), 10, name=name),
            xb, yb, counts, args.attack_steps, args.warmup, args.repeats,
        )
    ]
    if hasattr(ki.applications, "ResNet32"):
        rng = np.random.default_rng(0)
        x32 = rng.random((args.batch_size, 32, 32, 3), dtype=np.float32)
        rows.append(
            bench(
                f"ResNet32 32x32x3 random, batch {args.batch_size}",
                lambda name: ki.applications.ResNet32(input_shape=(32, 32, 3), num_classes=10, name=name),
                x32, yb, counts, args.attack_steps, args.warmup, args.repeats,
            )
        )

    t = args.attack_steps
    low, high = (4 + 4 * t) / 3, (4 + 6 * t) / 3
    print(f"M2m step vs ERM step: median of {args.repeats} timed train_on_batch calls after {args.warmup} warm-up, T = {t}")
    print(f"{'backbone':<36} {'fwd F ms':>8} {'ERM ms':>8} {'M2m ms':>8} {'ratio':>6} {'pass count':>11} {'with meas. F':>13}")
    for name, erm, m2m, fwd in rows:
        # Same count, but the ERM step's measured time replaces its 3F estimate.
        m_low = 1 + (4 * t + 1) * fwd / erm
        m_high = 1 + (6 * t + 1) * fwd / erm
        print(
            f"{name:<36} {fwd * 1e3:8.2f} {erm * 1e3:8.2f} {m2m * 1e3:8.2f} {m2m / erm:6.1f} "
            f"{low:5.1f}-{high:<5.1f} {m_low:6.1f}-{m_high:<6.1f}"
        )


if __name__ == "__main__":
    main()
