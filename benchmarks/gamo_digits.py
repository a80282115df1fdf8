"""GAMO on long-tailed digits: GAMO (least squares) vs the classifier alone vs GAMO\\D.

Data: scikit-learn's 8x8 digits (`datasets.load_digits`, balanced test split
of 50 per class), training set made long-tailed with GAMO's MNIST profile
(4000, 2000, ..., 40; Mullick et al. 2019, Sec. 4.1) scaled by
`--n-max / 4000` and rounded, at least 1 per class. Pixels in [-1, 1] as in
the paper. Pixel space (the paper's MNIST setting), networks of the authors'
code (`applications.GAMOClassifier`, `GAMODiscriminator`), Adam(2e-4, 0.5),
batch 32. The baseline is the same classifier trained alone with the same
least-squares loss (MSE on the softmax, the paper's "Baseline CN" LS column).

Prints a markdown table of balanced accuracy (ACSA) and geometric mean (GM),
mean +- std over seeds, and writes a grid of generated samples.

    python benchmarks/gamo_digits.py --seeds 3 --epochs 150
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_imbalance import applications, datasets, metrics  # noqa: E402
from keras_imbalance.models import GAMO  # noqa: E402


def scaled_counts(n_max):
    paper = datasets.paper_counts("gamo-mnist")
    return [max(1, int(round(c * n_max / paper[0]))) for c in paper]


def least_squares_softmax(y_true, logits):
    onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(logits)[-1])
    return ops.mean(ops.square(ops.softmax(logits, axis=-1) - onehot), axis=-1)


def run(method, x, y, x_test, y_test, seed, epochs, batch_size, code_target=False):
    keras.utils.set_random_seed(seed)
    classifier = applications.GAMOClassifier((8, 8, 1), 10)
    data = datasets.to_dataset(x, y, batch_size, seed=seed)
    if method == "baseline":
        model = classifier
        model.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), loss=least_squares_softmax)
    else:
        disc = applications.GAMODiscriminator((8, 8, 1), 10) if method == "gamo" else None
        model = GAMO(classifier, disc, loss="least_squares", majority_in_generator_target=code_target, seed=seed).adapt(x, y)
        model.compile()
    model.fit(data, epochs=epochs, verbose=0)
    report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)
    return model, report["balanced_accuracy"], report["geometric_mean"]


def sample_grid(model, x, y, path, per_class=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = model.class_counts
    fig, axes = plt.subplots(10, per_class, figsize=(per_class * 0.8, 10 * 0.85))
    for c in range(10):
        if c in model.convex_generator.minority_classes:
            images, label = model.sample(per_class, c, seed=c), f"{c} gen (n={counts[c]})"
        else:
            images, label = x[y == c][:per_class], f"{c} real (majority)"
        for j in range(per_class):
            ax = axes[c, j]
            ax.imshow((images[j, ..., 0] + 1) / 2, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[c, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("GAMO-LS samples on long-tailed digits (pixel space)", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-max", type=int, default=120)
    parser.add_argument(
        "--code-generator-target",
        action="store_true",
        help="G's target 1 - onehot on all outputs as in the authors' code (default: eq. 6, minority outputs only)",
    )
    parser.add_argument("--samples-png", default="docs/images/gamo_digits_samples.png")
    args = parser.parse_args()

    start = time.time()
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_test = 2 * x_test - 1
    counts = scaled_counts(args.n_max)
    print(f"counts {counts} (IR {max(counts) / min(counts):g}), epochs {args.epochs}, seeds {args.seeds}")
    results = {m: [] for m in ("baseline", "gamo_no_d", "gamo")}
    for seed in range(args.seeds):
        x, y = datasets.make_imbalanced(x_train, y_train, counts, seed=seed)
        x = 2 * x - 1
        for method in results:
            t = time.time()
            model, bacc, gm = run(method, x, y, x_test, y_test, seed, args.epochs, args.batch_size, args.code_generator_target)
            results[method].append((bacc, gm))
            print(f"seed {seed} {method:10s} bACC {bacc:.4f} GM {gm:.4f} ({time.time() - t:.0f} s)", flush=True)
            if method == "gamo" and seed == 0 and args.samples_png:
                sample_grid(model, x, y, args.samples_png)
    names = {"baseline": "Baseline CN (LS)", "gamo_no_d": "GAMO\\D (LS)", "gamo": "GAMO (LS)"}
    print("\n| Method | bACC (ACSA) | GM |\n|---|---|---|")
    for method, vals in results.items():
        v = np.asarray(vals)
        print(f"| {names[method]} | {v[:, 0].mean():.3f} ± {v[:, 0].std():.3f} | {v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} |")
    print(f"\nwall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
