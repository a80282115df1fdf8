"""PolarityGAN on long-tailed digits: PolarityGAN vs the classifier alone (ERM) vs GAMO, plus uncertainty.

Data: scikit-learn's 8x8 digits (`datasets.load_digits`, balanced test split
of 50 per class), training set cut to `long_tailed_counts(120, 10, 50)`
(120, 77, 50, 32, 21, 13, 8, 5, 3, 2; a different subset per seed), pixels
in [0, 1]. Every method uses the same classifier (`applications.SmallCNN`),
the same classifier optimizer, batch 32 and the same epoch budget. The
classifier optimizer is Adam(1e-3, beta_1=0.6): PolarityGAN's Sec. 5.1 beta_1
with a 5x larger learning rate than its 2e-4, because at 2e-4 ERM underfits
this small budget (bACC 0.22 after 5 epochs); the other players (critic,
generator, GAMO's discriminator and generator) keep their papers' settings:

- ERM: the classifier alone, softmax cross-entropy, `epochs` epochs.
- GAMO: `recipes.get("gamo")` (pixel space, Mullick et al. 2019), `epochs` epochs.
- PolarityGAN: `recipes.get("polarity-gan")`: 20 % of the epochs for the
  autoencoder (stage 1), 80 % for Algorithm 1 (stage 2), 5 critic steps, lambda 10.

Prints balanced accuracy, geometric mean and macro-F1 (mean +- std over
seeds), then the uncertainty measures (eqs. 7-10, means, higher = more
uncertain) of PolarityGAN's classifier on its generated samples vs real
samples of the same (generated) classes, training and test; GAMO's classifier
on GAMO's samples for reference. Writes a grid of generated samples.

    python benchmarks/polarity_gan_digits.py --seeds 3 --epochs 40
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_imbalance import applications, datasets, metrics, plots, recipes  # noqa: E402

MEASURES = ("least_confidence", "margin_of_confidence", "ratio_of_confidence", "entropy")


def backbone(shape, num_classes):
    return applications.SmallCNN(shape, num_classes)


def optimizer():
    return keras.optimizers.Adam(1e-3, beta_1=0.6)


def run(method, x, y, seed, epochs, batch_size):
    keras.utils.set_random_seed(seed)
    if method == "erm":
        model = backbone(x.shape[1:], 10)
        model.compile(optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(datasets.to_dataset(x, y, batch_size, seed=seed, num_classes=10), epochs=epochs, verbose=0)
        return model
    return recipes.get(method).fit(backbone, x, y, epochs=epochs, batch_size=batch_size, seed=seed,
                                   optimizer=optimizer(), num_classes=10)


def diversity_ratio(model, x, y, n=100, seed=0):
    """Mean over generated classes with >= 2 samples of (mean pairwise L2 distance of n generated
    samples) / (mean pairwise L2 distance of the class's real training samples); 1 = as spread as the data."""
    ratios = []
    for k in model.minority_classes:
        real = x[y == k].reshape(int(np.sum(y == k)), -1)
        if len(real) < 2:
            continue
        fake = np.asarray(model.sample(n, k, seed=seed + k)).reshape(n, -1)
        ratios.append(pairwise(fake) / pairwise(real))
    return float(np.mean(ratios))


def pairwise(a):
    d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    return d[np.triu_indices(len(a), 1)].mean()


def gamo_uncertainty(model, n=100, seed=0):
    labels = np.repeat(model.minority_classes, n)
    fake = model.generate(labels, seed=seed)
    probs = keras.ops.softmax(model.classifier.predict(fake, verbose=0)).numpy()
    return metrics.uncertainty_scores(probs)


def init_ablation(seeds, epochs, batch_size):
    """Diversity right after stage 1 and after stage 2, with and without the autoencoder initialization."""
    from keras_imbalance.models import PolarityGAN

    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    counts = datasets.long_tailed_counts(120, 10, 50)
    stage1 = max(1, round(0.2 * epochs))
    for seed in range(seeds):
        x, y = datasets.make_imbalanced(x_train, y_train, counts, seed=seed)
        for ae in (stage1, 0):
            keras.utils.set_random_seed(seed)
            model = PolarityGAN(backbone((8, 8, 1), 10), autoencoder_epochs=ae, seed=seed).adapt(x, y)
            model.compile(classifier_optimizer=optimizer())
            if ae:
                model.pretrain_autoencoder(batch_size=batch_size)
            before = diversity_ratio(model, x, y, seed=seed)
            model.fit(datasets.to_dataset(x, y, batch_size, seed=seed, num_classes=10), epochs=epochs - stage1, verbose=0)
            after = diversity_ratio(model, x, y, seed=seed)
            report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)
            u = model.uncertainty_report(100, seed=seed)
            print(f"seed {seed} autoencoder_epochs {ae}: diversity after stage 1 {before:.3f}, after stage 2 {after:.3f}, "
                  f"bACC {report['balanced_accuracy']:.3f}, least confidence generated {u['generated']['least_confidence']:.3f} "
                  f"real train {u['real']['least_confidence']:.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--methods", default="erm,gamo,polarity-gan")
    parser.add_argument("--samples-png", default="docs/images/polarity_gan_digits_samples.png")
    parser.add_argument("--init-ablation", action="store_true",
                        help="only run the stage-1 ablation: diversity and bACC with and without the autoencoder init")
    args = parser.parse_args()
    if args.init_ablation:
        return init_ablation(args.seeds, args.epochs, args.batch_size)

    start = time.time()
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    counts = datasets.long_tailed_counts(120, 10, 50)
    methods = args.methods.split(",")
    print(f"counts {counts}, epochs {args.epochs}, seeds {args.seeds}, methods {methods}", flush=True)
    scores = {m: [] for m in methods}
    uncertainty = {"generated": [], "real train": [], "real test": [], "GAMO generated (GAMO's M)": []}
    diversity = {"polarity-gan": [], "gamo": []}
    for seed in range(args.seeds):
        x, y = datasets.make_imbalanced(x_train, y_train, counts, seed=seed)
        for method in methods:
            t = time.time()
            model = run(method, x, y, seed, args.epochs, args.batch_size)
            report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)
            scores[method].append((report["balanced_accuracy"], report["geometric_mean"], report["macro_f1"]))
            print(f"seed {seed} {method:13s} bACC {report['balanced_accuracy']:.4f} GM {report['geometric_mean']:.4f} "
                  f"F1 {report['macro_f1']:.4f} ({time.time() - t:.0f} s)", flush=True)
            if method in diversity:
                diversity[method].append(diversity_ratio(model, x, y, seed=seed))
                print(f"   diversity ratio (generated / real pairwise distance) {diversity[method][-1]:.3f}", flush=True)
            if method == "polarity-gan":
                train = model.uncertainty_report(100, seed=seed)
                test = model.uncertainty_report(100, x_test, y_test, seed=seed)
                uncertainty["generated"].append(train["generated"])
                uncertainty["real train"].append(train["real"])
                uncertainty["real test"].append(test["real"])
                print("   uncertainty generated", {k: round(v, 3) for k, v in train["generated"].items()},
                      "real train", {k: round(v, 3) for k, v in train["real"].items()},
                      "real test", {k: round(v, 3) for k, v in test["real"].items()}, flush=True)
                if seed == 0 and args.samples_png:
                    grid, labels, value_range = recipes.get("polarity-gan").sample_grid(model, 10, per_class=8)
                    labels = [f"{k}: n={counts[k]}" for k in model.minority_classes]
                    os.makedirs(os.path.dirname(args.samples_png), exist_ok=True)
                    plots.plot_image_grid(grid, args.samples_png, row_labels=labels, value_range=value_range,
                                          title="PolarityGAN samples, long-tailed digits (seed 0)")
            if method == "gamo":
                uncertainty["GAMO generated (GAMO's M)"].append(gamo_uncertainty(model, seed=seed))

    print("\n| Method | bACC | GM | macro-F1 |\n|---|---|---|---|")
    for method, vals in scores.items():
        v = np.asarray(vals)
        cells = " | ".join(f"{v[:, i].mean():.3f} ± {v[:, i].std():.3f}" for i in range(3))
        print(f"| {method} | {cells} |")
    print("\n| Samples (generated classes 1-9) | " + " | ".join(MEASURES) + " |\n|---|" + "---|" * len(MEASURES))
    for name, rows in uncertainty.items():
        if rows:
            cells = " | ".join(f"{np.mean([r[m] for r in rows]):.3f} ± {np.std([r[m] for r in rows]):.3f}" for m in MEASURES)
            print(f"| {name} | {cells} |")
    for method, vals in diversity.items():
        if vals:
            print(f"diversity ratio {method}: {np.mean(vals):.3f} ± {np.std(vals):.3f}")
    print(f"\nwall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
