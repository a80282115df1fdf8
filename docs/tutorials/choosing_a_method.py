"""
Title: Choosing a method for class-imbalanced data
Author: keras-imbalance developers
Date created: 2026/11/24
Description: Run the baselines and the generative balancers side by side on one split, and read the report.
"""

"""
## Introduction

Which method helps depends on the data: how many samples the rare classes
have, how large the imbalance ratio is, and how much compute you can spend.
The honest way to choose is to run the candidates on **your** data with the
same backbone and budget, and to compare them on a **balanced** test split
with metrics that weigh every class equally. This tutorial does that with
`keras_imbalance.compare`, the function behind `keras-imbalance compare`.

Rules of thumb from the papers and from our own measurements
(`docs/results.md`):

- Start with the cheap baselines: re-weighting (`rw`, `cb-rw`), deferred
  re-weighting (`drw`), `ldam-drw`, and post-hoc logit adjustment (`ts`).
  They cost one ERM training.
- GAMO and PolarityGAN generate minority samples inside the convex hull of
  the real ones; they need at least a few samples per class to mix, and they
  train three players (about 3-5x an ERM step).
- M2m translates majority samples with a frozen classifier; it pays T extra
  forward/backward passes per generation step.
- ImbalanceCycleGAN is for **binary** problems with images (a majority and a
  minority domain).
"""

"""
## Setup
"""

import os

import keras_imbalance as ki
from keras_imbalance import compare

FAST = bool(os.environ.get("KERAS_IMBALANCE_TUTORIAL_FAST"))
out = os.environ.get("KERAS_IMBALANCE_TUTORIAL_RUNS", "runs/choosing_a_method")

"""
## The data, the split, the budget

`compare.training_counts` picks the long-tailed training counts from the
pool: an exponential profile with imbalance ratio 50 (class 0 largest). Every
method trains on the same subset for each seed and is scored on the same
balanced test split.
"""

(x_pool, y_pool), _, _ = compare.load_data("digits")
print("pool counts:", ki.datasets.class_counts(y_pool).tolist())
print("training counts:", compare.training_counts(ki.datasets.class_counts(y_pool), "exp", 50))

"""
## Run the comparison

Each run writes `runs/<method>/seed_<s>.json` as soon as it finishes, so an
interrupted comparison picks up where it stopped. The report has balanced
accuracy, the geometric mean of recalls, macro-F1 and the minority-class F1,
as mean +- std over seeds, and the wall time of each method.
"""

results = compare.run_compare(
    dataset="digits",
    methods=["erm", "cb-rw", "drw", "ts", "gamo", "m2m"],
    seeds=1 if FAST else 3,
    epochs=1 if FAST else 30,
    imbalance_ratio=50,
    out=out,
    verbose=0,
)

"""
## Reading the report

`report.md` holds the table; `per_class_recall.png` shows where each method
wins (the tail classes on the right), and `confusion_matrices.png` which
classes absorb the errors. Prefer the method whose gain over ERM is larger
than the spread over seeds; with three seeds and a small test split,
differences of one standard deviation are not evidence.
"""

best = max(results["summary"], key=lambda m: results["summary"][m]["balanced_accuracy"]["mean"])
print(open(os.path.join(out, "report.md")).read())
print("highest mean balanced accuracy:", best)
