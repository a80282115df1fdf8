"""
Title: Minority oversampling with GAMO
Author: keras-imbalance developers
Date created: 2026/11/24
Description: Train GAMO's three players on long-tailed digits and look at the samples its convex generator makes.
"""

"""
## Introduction

GAMO (Mullick, Datta and Das, *Generative Adversarial Minority Oversampling*,
ICCV 2019) trains a classifier together with a generator whose samples are
**convex combinations of real minority samples**: for each minority class it
learns a softmax over that class's stored samples and mixes them. The
generator plays against the classifier (it tries to produce samples the
classifier gets wrong, Algorithm 1) and against a conditional discriminator
(which keeps the samples realistic), so it fills in the regions of the
minority classes the classifier is least sure about.

In keras-imbalance GAMO is a `keras.Model`: `adapt` stores the per-class
sample banks, `compile` takes one optimizer per player (the paper's
Adam(2e-4, beta_1=0.5) by default), `fit` runs Algorithm 1 in one
`train_step`, and `model(x)` is the classifier.
"""

"""
## Setup
"""

import os

import keras
import numpy as np

import keras_imbalance as ki

FAST = bool(os.environ.get("KERAS_IMBALANCE_TUTORIAL_FAST"))
EPOCHS = 2 if FAST else 150
keras.utils.set_random_seed(0)

"""
## A long-tailed data set

We use the digits that ship with scikit-learn (8x8 grey images) and keep the
imbalance profile of GAMO's MNIST experiment, scaled down to the ~130 digits
per class available: class 0 keeps 120 images, class 9 a single one. The test
split stays balanced (50 per class), as the evaluation protocol asks. GAMO
works in [-1, 1] pixel space, as in the paper.
"""

(x_pool, y_pool), (x_test, y_test) = ki.datasets.load_digits()
counts = [max(1, round(c * 120 / 4000)) for c in ki.datasets.paper_counts("gamo-mnist")]
x_train, y_train = ki.datasets.make_imbalanced(x_pool, y_pool, counts, seed=0)
x_train, x_test = x_train * 2 - 1, x_test * 2 - 1
print("training counts per class:", np.bincount(y_train).tolist())

"""
## The players

The paper's networks are in `keras_imbalance.applications`: a dense
classifier M (256 -> 128 -> C) and a conditional discriminator D([x, onehot]).
The convex generator is built by `adapt` from the counts: one shared mapping
(cTMU) and one head (IGU) per minority class; the largest class has none.
"""

classifier = ki.applications.GAMOClassifier(input_shape=(8, 8, 1), num_classes=10)
discriminator = ki.applications.GAMODiscriminator(input_shape=(8, 8, 1), num_classes=10)
# pixel_range: the range we train in, saved with the model, so the .keras file and the
# SavedModel scale raw uint8 pixels to it by themselves.
gamo = ki.models.GAMO(classifier, discriminator, latent_dim=100, loss="least_squares", seed=0, pixel_range=(-1, 1))
gamo.adapt(x_train, y_train)
print("classes with a generator unit:", gamo.minority_classes)

"""
## Training

One `fit` call. Each step trains M and D on the real batch, draws generated
labels in proportion to each class's deficit (n_max - n_i), trains M and D on
the generated samples, then the generator against both. The logs show each
player's loss and the balanced accuracy of the classifier on the real batch.

To watch the game in TensorBoard, add `keras.callbacks.TensorBoard` (the
players' losses) and `ki.tensorboard.BalancerTensorBoard`: every few epochs
it writes a grid of generated samples per minority class (from a fixed latent
draw, so the same z is followed through training) and the per-class recall
on validation data. Then `tensorboard --logdir runs/tutorial_gamo/logs`.
(It needs the `tensorboard` extra. Here the validation data is the test split
only to keep the tutorial short; select models on a validation split.)
"""

log_dir = os.path.join(os.environ.get("KERAS_IMBALANCE_TUTORIAL_RUNS", "runs/tutorial_gamo"), "logs")
gamo.compile(metrics=[ki.metrics.BalancedAccuracy(10)])
gamo.fit(
    ki.datasets.to_dataset(x_train, y_train, batch_size=32, seed=0),
    epochs=EPOCHS,
    verbose=2 if not FAST else 0,
    callbacks=[
        keras.callbacks.TensorBoard(log_dir),
        ki.tensorboard.BalancerTensorBoard(log_dir, validation_data=(x_test, y_test), every_n_epochs=5),
    ],
)

"""
## Evaluation on the balanced test split
"""

report = ki.metrics.classification_report(y_test, gamo.predict(x_test, verbose=0), 10, class_counts=counts)
print(ki.metrics.format_report(report, title="GAMO (least squares), balanced test split"))

"""
## What the generator makes

`sample(n, class_id)` draws new samples of a minority class. Every sample is a
convex combination of that class's stored images, so a class with a single
image always gets that image back, and a class with two gets blends of the
two.
"""

grid = np.stack([gamo.sample(8, k, seed=k) for k in gamo.minority_classes])
out_dir = os.environ.get("KERAS_IMBALANCE_TUTORIAL_OUT", "docs/images")
os.makedirs(out_dir, exist_ok=True)
ki.plots.plot_image_grid(grid, os.path.join(out_dir, "tutorial_gamo_samples.png"),
                         row_labels=[f"class {k}" for k in gamo.minority_classes], value_range=(-1, 1))

"""
## Saving and serving

The whole model (players, sample banks, optimizer states) is one `.keras`
file; `export_for_serving` writes a SavedModel whose `serving_default`
classifies raw uint8 images and whose `generate` signature samples the
generator.
"""

run_dir = os.environ.get("KERAS_IMBALANCE_TUTORIAL_RUNS", "runs/tutorial_gamo")
os.makedirs(run_dir, exist_ok=True)
gamo.save(os.path.join(run_dir, "gamo.keras"))
path = ki.serving.export_for_serving(gamo, os.path.join(run_dir, "serving"), overwrite=True)
print("exported to", path)
