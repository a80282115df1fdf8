"""Baselines on long-tailed digits: balanced accuracy and GM, mean +- std over seeds.

Every method gets the same budget: the SmallCNN backbone, the same epochs and
batch size, and the papers' optimizer recipe (`optimizers.CoupledSGD`, LR 0.1,
momentum 0.9, coupled L2 2e-4, `callbacks.PaperLRSchedule` scaled to the
epochs; deferred schedules switch at 80% of the epochs). Training data: the
digits training split cut to `long_tailed_counts(120, 10, imbalance_ratio)`
(a different subset per seed); test: the balanced digits test split (50 per
class). No model selection: the model after the last epoch is evaluated.

    python benchmarks/baselines_digits.py --seeds 0 1 2 --epochs 30 --imbalance-ratio 50
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import keras_imbalance as ki  # noqa: E402
from keras_imbalance import baselines  # noqa: E402

DEFAULT_METHODS = "erm,rw,cb-rw,drw,ldam-drw,rs,drs,focal,ldam,ts"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (data subset and training)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--imbalance-ratio", type=float, default=50)
    p.add_argument("--n-max", type=int, default=120, help="count of the largest class")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated names from {baselines.available()}")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        baselines.get(m)  # fail fast on an unknown name
    (x_train, y_train), (x_test, y_test) = ki.datasets.load_digits()
    counts = ki.datasets.long_tailed_counts(args.n_max, 10, args.imbalance_ratio)
    print(f"train counts {counts} (IR {args.imbalance_ratio:g}), test {np.bincount(y_test).tolist()}")
    print(f"budget: SmallCNN, {args.epochs} epochs, batch {args.batch_size}, CoupledSGD(0.1, m=0.9, l2=2e-4) + PaperLRSchedule; seeds {args.seeds}")

    def backbone(shape, num_classes):
        return ki.applications.SmallCNN(shape, num_classes)

    results = {m: [] for m in methods}
    start = time.time()
    for seed in args.seeds:
        x, y = ki.datasets.make_imbalanced(x_train, y_train, counts, seed=seed)
        for m in methods:
            t0 = time.time()
            clf = baselines.get(m).fit(backbone, x, y, epochs=args.epochs, batch_size=args.batch_size, seed=seed)
            logits = clf.predict(x_test, verbose=0)
            rep = ki.metrics.classification_report(y_test, logits, 10, class_counts=counts)
            results[m].append((rep["balanced_accuracy"], rep["geometric_mean"], rep["minority_f1"]))
            print(f"  seed {seed} {m:9s} bACC {rep['balanced_accuracy']:.4f} GM {rep['geometric_mean']:.4f} ({time.time() - t0:.1f}s)", flush=True)
    wall = time.time() - start

    erm = np.array([r[0] for r in results["erm"]]) if "erm" in results else None
    print()
    print(f"| method | bACC (mean ± std) | GM (mean ± std) | minority-class F1 | bACC − ERM |")
    print("|---|---|---|---|---|")
    for m in methods:
        r = np.array(results[m])
        diff = f"{(r[:, 0] - erm).mean():+.4f}" if erm is not None else "n/a"
        print(f"| {m} | {r[:, 0].mean():.4f} ± {r[:, 0].std():.4f} | {r[:, 1].mean():.4f} ± {r[:, 1].std():.4f} | {r[:, 2].mean():.4f} ± {r[:, 2].std():.4f} | {diff} |")
    print(f"\n{len(args.seeds)} seeds x {len(methods)} methods, wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
