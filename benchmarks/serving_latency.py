"""Serving latency: the exported SavedModel signature vs `model.predict` vs a direct call, same model.

For each classifier (SmallCNN on 8x8x1 digits, ResNet32 on 32x32x3), the
model is exported with `keras_imbalance.serving.export_for_serving`
(float32 input, so every path gets the same array), reloaded with
`tf.saved_model.load` and called through `signatures["serving_default"]`.
Each path is timed from a NumPy batch to NumPy outputs (input conversion and
the copy back included, as a server pays them):

- `signature`: `sig(images=tf.constant(x))`, outputs `.numpy()`;
- `model.predict`: `model.predict(x, verbose=0)`;
- `predict_on_batch`: `model.predict_on_batch(x)`;
- `model(x)`: the eager call `model(x, training=False)`, `.numpy()`.

Batch 1: p50 / p99 latency over `--calls` calls after warm-up. Batch 256:
images/second from the median call. The paths are interleaved call by call
so that load from other jobs hits them alike.

Usage:
    python benchmarks/serving_latency.py [--calls 200] [--throughput-calls 20] [--models small_cnn,resnet32]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_imbalance as ki  # noqa: E402


def build(name):
    keras.utils.set_random_seed(0)
    if name == "small_cnn":
        return ki.applications.SmallCNN((8, 8, 1), 10), (8, 8, 1)
    if name == "resnet32":
        return ki.applications.ResNet32(input_shape=(32, 32, 3), num_classes=10), (32, 32, 3)
    raise ValueError(f"unknown model {name!r}")


def paths(model, signature):
    return {
        "signature": lambda x: signature(images=tf.constant(x))["probabilities"].numpy(),
        "model.predict": lambda x: model.predict(x, verbose=0),
        "predict_on_batch": lambda x: model.predict_on_batch(x),
        "model(x)": lambda x: model(x, training=False).numpy(),
    }


def time_calls(fns, x, calls, warmup=5):
    for fn in fns.values():
        for _ in range(warmup):
            fn(x)
    times = {k: [] for k in fns}
    for _ in range(calls):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn(x)
            times[k].append(time.perf_counter() - t0)
    return {k: np.asarray(v) for k, v in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="small_cnn,resnet32")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--throughput-calls", type=int, default=20)
    p.add_argument("--throughput-batch", type=int, default=256)
    args = p.parse_args()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    print()
    print("| model | path | batch 1 p50 ms | batch 1 p99 ms | predict p50 / path p50 | "
          f"batch {args.throughput_batch} images/s |")
    print("|---|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for name in [m.strip() for m in args.models.split(",")]:
        model, shape = build(name)
        with tempfile.TemporaryDirectory() as tmp:
            path = ki.serving.export_for_serving(model, tmp, input_dtype="float32")
            loaded = tf.saved_model.load(path)
            signature = loaded.signatures["serving_default"]
            fns = paths(model, signature)
            x1 = rng.random((1, *shape), dtype=np.float32)
            # Same answers on every path (else the comparison is meaningless).
            ref = tf.nn.softmax(model(x1, training=False)).numpy()
            np.testing.assert_allclose(fns["signature"](x1), ref, rtol=1e-4, atol=1e-5)
            lat = time_calls(fns, x1, args.calls)
            xb = rng.random((args.throughput_batch, *shape), dtype=np.float32)
            thr = time_calls(fns, xb, args.throughput_calls, warmup=2)
        predict_p50 = np.percentile(lat["model.predict"], 50)
        for k in fns:
            p50, p99 = np.percentile(lat[k], 50), np.percentile(lat[k], 99)
            ips = args.throughput_batch / np.median(thr[k])
            print(f"| {name} | {k} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} | {predict_p50 / p50:.1f}x | {ips:.0f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
