"""Train the pretrained balancers in saved_models/ (reproducible, offline).

    python saved_models/train_presets.py                 # every preset not yet present
    python saved_models/train_presets.py gamo-digits-lt50 # one preset
    python saved_models/train_presets.py --upgrade [NAME ...] # no training: see `upgrade`

Each preset: scikit-learn digits (`load_digits(seed=0)`: balanced test split
of 50 per class), the long-tailed training set `long_tailed_counts(120, 10,
50)` drawn with `make_imbalanced(seed=0)`, the method's recipe from
`keras-imbalance compare` with the SmallCNN backbone, then the measured test
metrics go into metadata.json with the command and the manifest (the
SHA-256 of every file, `preset_store.write_manifest`). An existing preset
folder is never overwritten (delete it to retrain).
"""

import os
import sys
import time

import keras
import numpy as np

import keras_imbalance as ki
from keras_imbalance import compare
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
    with gets re-signed), re-saves the `.keras` file only if the model does
    not carry its pixel range yet (a baseline's plain classifier, saved
    before `PixelRangeClassifier` existed; a method model's old config
    already loads with the default (0, 1), the range it was trained in),
    then rewrites `metadata.json`: `pixel_range`, the saved `model_class`,
    and a fresh manifest of every file.
    """
    meta = ki.presets.verify(name, HERE)
    model = ki.presets.load(name, HERE)
    carried = with_pixel_range(model, meta.get("value_range", PIXEL_RANGE))
    if carried is not model:
        before = [w.copy() for w in model.get_weights()]
        carried.save(os.path.join(HERE, name, meta["keras_file"]))
        reloaded = keras.saving.load_model(os.path.join(HERE, name, meta["keras_file"]), safe_mode=True)
        if not all(np.array_equal(a, b) for a, b in zip(before, reloaded.get_weights(), strict=True)):
            raise RuntimeError(f"{name}: the re-saved weights differ from the shipped ones")
    meta = {k: v for k, v in meta.items() if k != "value_range"}  # renamed pixel_range, carried by the model
    fields = {**meta, "pixel_range": list(carried.pixel_range), "model_class": type(carried).__name__}
    write_manifest(os.path.join(HERE, name), fields)
    print(f"[presets] {name}: {'re-saved as ' + type(carried).__name__ + ', ' if carried is not model else ''}"
          f"manifest rewritten", flush=True)


def main(argv):
    if argv[:1] == ["--upgrade"]:
        for name in argv[1:] or ki.presets.list_presets(HERE):
            upgrade(name)
        return
    names = argv or [n for n in PRESETS if not os.path.exists(os.path.join(HERE, n))]
    for name in names:
        if name not in PRESETS:
            raise SystemExit(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
        train(name, *PRESETS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
