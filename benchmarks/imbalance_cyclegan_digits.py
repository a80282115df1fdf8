"""ImbalanceCycleGAN (AUG, ALT) vs vanilla, CS and OS on a long-tailed binary digit pair.

Data: scikit-learn digits (8 x 8, values in [0, 1]); majority A = digit 3
(label 0), minority B = digit 8 (label 1); training: `--n-majority` 3s and
`--n-minority` 8s drawn from the training split (a different subset per
seed); test: the balanced digits test split restricted to 3 and 8 (50 each).
No model selection: the model after the last epoch is evaluated.

Every method trains the same SmallCNN classifier for `--epochs` epochs with
batch `--batch-size` and the same optimizer (a fresh Adam(`--lr`) each run).
Vanilla = the `erm` baseline, CS = `cs` (inverse-frequency class weights),
OS = `os` (random oversampling). AUG / ALT = `recipes.get("imbalance-cyclegan"
/ "imbalance-cyclegan-alt")`: a small CycleGAN (ResNet generator with 16
filters and 3 residual blocks, PatchGAN with 16 filters and one stride-2
layer, history pool 50, Adam(2e-4, 0.5)) pre-trained for `--gan-epochs`
epochs (constant LR for half, then linear decay), then the classifier (ALT
alternates every `--switch-every` epochs, starting with the classifier).
The generator works at 8 x 8 directly (two down-samplings to 2 x 2), so no
padding is needed.

Inception accuracy (paper Table 2): a SmallCNN judge trained on all 3s and
8s of the training split (balanced, disjoint from the test set) scores the
translated test images (3 -> 8 should be judged 8, 8 -> 3 judged 3), for
the pre-trained CycleGAN (the one AUG uses) and the one after ALT training.

    python benchmarks/imbalance_cyclegan_digits.py --seeds 0 1 2
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_imbalance as ki  # noqa: E402
from keras_imbalance import baselines, plots, recipes  # noqa: E402

METHODS = ("vanilla", "cs", "os", "aug", "alt")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--majority-digit", type=int, default=3)
    p.add_argument("--minority-digit", type=int, default=8)
    p.add_argument("--n-majority", type=int, default=120)
    p.add_argument("--n-minority", type=int, default=10)
    p.add_argument("--epochs", type=int, default=30, help="classifier epochs (every method)")
    p.add_argument("--gan-epochs", type=int, default=60, help="CycleGAN pre-training epochs (AUG, ALT)")
    p.add_argument("--switch-every", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--png", default="docs/images/imbalance_cyclegan_translations.png")
    return p.parse_args(argv)


def binary_pair(x, y, maj, mino):
    keep = np.isin(y, [maj, mino])
    return x[keep], (y[keep] == mino).astype(np.int64)


def main(argv=None):
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    (x_train, y_train), (x_test, y_test) = ki.datasets.load_digits()
    x_pool, y_pool = binary_pair(x_train, y_train, args.majority_digit, args.minority_digit)
    x_test, y_test = binary_pair(x_test, y_test, args.majority_digit, args.minority_digit)
    counts = [args.n_majority, args.n_minority]
    print(f"digits {args.majority_digit} (A, label 0) vs {args.minority_digit} (B, label 1): train {counts} "
          f"(gamma {counts[0] / counts[1]:g}) from a pool of {np.bincount(y_pool).tolist()}, test {np.bincount(y_test).tolist()}")
    print(f"budget: SmallCNN, {args.epochs} epochs, batch {args.batch_size}, Adam({args.lr:g}); "
          f"CycleGAN pre-training {args.gan_epochs} epochs; seeds {args.seeds}", flush=True)

    def backbone(shape, num_classes):
        return ki.applications.SmallCNN(shape, num_classes)

    def optimizer():
        return keras.optimizers.Adam(args.lr)

    # The inception-accuracy judge: trained once on the whole balanced-ish pool.
    keras.utils.set_random_seed(1234)
    judge = baselines.get("os").fit(backbone, x_pool, y_pool, epochs=30, batch_size=32, seed=1234, optimizer=optimizer, num_classes=2)
    judge_acc = float(np.mean(judge.predict(x_test, verbose=0).argmax(1) == y_test))
    print(f"judge (SmallCNN on {len(y_pool)} real training images) test accuracy {judge_acc:.4f}", flush=True)

    def make(m):
        if m == "vanilla":
            return baselines.get("erm")
        if m in ("cs", "os"):
            return baselines.get(m)
        return recipes.get("imbalance-cyclegan" if m == "aug" else "imbalance-cyclegan-alt",
                           gan_epochs=args.gan_epochs, switch_every=args.switch_every)

    results = {m: [] for m in methods}
    inception = {"pre-trained CycleGAN (AUG)": [], "after ALT": []}
    start = time.time()
    for seed in args.seeds:
        x, y = ki.datasets.make_imbalanced(x_pool, y_pool, counts, seed=seed)
        for m in methods:
            t0 = time.time()
            recipe = make(m)
            model = recipe.fit(backbone, x, y, epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                               optimizer=optimizer, num_classes=2)
            rep = ki.metrics.classification_report(y_test, model.predict(x_test, verbose=0), 2, class_counts=counts)
            results[m].append((rep["minority_f1"], rep["balanced_accuracy"], rep["per_class"]["recall"][1]))
            extra = ""
            if m in ("aug", "alt"):
                a_t, b_t = x_test[y_test == 0], x_test[y_test == 1]
                acc = 0.5 * (ki.metrics.inception_accuracy(judge, np.asarray(model.translate_ab(a_t)), 1)
                             + ki.metrics.inception_accuracy(judge, np.asarray(model.translate_ba(b_t)), 0))
                inception["pre-trained CycleGAN (AUG)" if m == "aug" else "after ALT"].append(acc)
                extra = f", inception acc {acc:.4f}"
                if m == "aug" and seed == args.seeds[0] and args.png:
                    grid, labels, value_range = recipe.sample_grid(model, 2)
                    plots.plot_image_grid(grid, args.png, row_labels=labels, value_range=value_range,
                                             title=f"CycleGAN translations, digits {args.majority_digit} (A) <-> {args.minority_digit} (B), seed {seed}")
                    print(f"  wrote {args.png}")
            print(f"  seed {seed} {m:8s} minority F1 {rep['minority_f1']:.4f} bACC {rep['balanced_accuracy']:.4f} "
                  f"minority recall {rep['per_class']['recall'][1]:.4f}{extra} ({time.time() - t0:.1f}s)", flush=True)
    wall = time.time() - start

    print()
    print("| method | minority-class F1 | balanced accuracy | minority recall |")
    print("|---|---|---|---|")
    names = {"vanilla": "vanilla (ERM)", "cs": "CS", "os": "OS", "aug": "ImbalanceCycleGAN AUG", "alt": "ImbalanceCycleGAN ALT"}
    for m in methods:
        r = np.array(results[m])
        print(f"| {names[m]} | {r[:, 0].mean():.4f} ± {r[:, 0].std():.4f} | {r[:, 1].mean():.4f} ± {r[:, 1].std():.4f} "
              f"| {r[:, 2].mean():.4f} ± {r[:, 2].std():.4f} |")
    if any(inception.values()):
        print()
        print("| CycleGAN | inception accuracy on translated test images |")
        print("|---|---|")
        for k, v in inception.items():
            if v:
                print(f"| {k} | {np.mean(v):.4f} ± {np.std(v):.4f} |")
    print(f"\n{len(args.seeds)} seeds x {len(methods)} methods, wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
