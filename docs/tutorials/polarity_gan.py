"""
Title: PolarityGAN: uncertain minority samples from a convex generator
Author: keras-imbalance contributors
Date created: 2026/11/24
Last modified: 2026/11/24
Description: Train PolarityGAN on long-tailed digits, inspect its autoencoder initialization, and measure how uncertain its generated samples are.
Accelerator: None

## Introduction

PolarityGAN (Deepshikha & Naman, 2021) balances a training set by generating
samples of the rare classes while the classifier trains. Three networks play:

- a **generator** G whose samples are *convex combinations of real samples of
  one class* (eq. 3), so they stay inside that class's convex hull;
- a **Wasserstein critic** D, conditioned on the class, that keeps G's samples
  close to the real distribution of their class (eq. 5, with a gradient
  penalty);
- the **classifier** C, trained on real data and on generated data (eq. 6).

G plays *against* C: it looks for points of its class that C finds hard, i.e.
points near the class boundary. The paper measures this with four uncertainty
scores (eqs. 7-10): generated samples should be more uncertain than real ones.

Before the adversarial game, G is initialized from an **autoencoder** trained on
all images (BAGAN-style): its decoder has G's topology, and the per-class
Gaussian of the encoder's codes becomes G's class-conditional latent.

This tutorial runs both stages on scikit-learn's 8x8 digits, made long-tailed.
Set `KERAS_IMBALANCE_TUTORIAL_FAST=1` to run it in a few seconds with tiny budgets.
"""

"""
## Setup
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_imbalance as ki
from keras_imbalance import applications, datasets, metrics
from keras_imbalance.models import PolarityGAN

FAST = bool(os.environ.get("KERAS_IMBALANCE_TUTORIAL_FAST"))
AUTOENCODER_EPOCHS = 1 if FAST else 10
GAN_EPOCHS = 1 if FAST else 40
CRITIC_STEPS = 2 if FAST else 5

keras.utils.set_random_seed(0)

"""
## Data: long-tailed digits

`load_digits` gives 8x8 images in [0, 1] with a balanced test split (50 per
class). We keep 120 training images of class 0 down to 2 of class 9
(imbalance ratio 50).
"""

(x_train, y_train), (x_test, y_test) = datasets.load_digits()
counts = datasets.long_tailed_counts(120, 10, 50)
x, y = datasets.make_imbalanced(x_train, y_train, counts, seed=0)
print("training counts per class:", np.bincount(y).tolist())

"""
## The model

In pixel space the classifier reads the images directly and G mixes stored
images. Any Keras classifier that outputs logits works; here the package's
`SmallCNN`. The critic defaults to `applications.PolarityCritic` (a dense
network on the flattened sample and the one-hot class, linear output).

`adapt` reads the class counts: the largest class (0) is never generated,
and the other classes get one softmax head each over their stored images.
"""

model = PolarityGAN(
    applications.SmallCNN((8, 8, 1), 10),
    critic=None,
    latent_dim=32,
    autoencoder_epochs=AUTOENCODER_EPOCHS,
    critic_steps=CRITIC_STEPS,
    gradient_penalty=10.0,
    seed=0,
)
model.adapt(x, y)
print("generated classes:", model.minority_classes)

"""
## Stage 1: the autoencoder initialization

`fit` runs this stage by itself when G is not initialized yet; calling
`pretrain_autoencoder` first lets us look at it. The decoder reconstructs every
image as a convex combination of *all* training images, and G then starts
from the decoder's weights, with each class head taken from the decoder's
columns of that class.
"""

history = model.pretrain_autoencoder(batch_size=32)
print("autoencoder loss: first epoch %.4f, last epoch %.4f" % (history.history["loss"][0], history.history["loss"][-1]))
reconstructed = model.reconstruct(x[:8])
print("mean squared reconstruction error on 8 images: %.4f" % float(np.mean((reconstructed - x[:8]) ** 2)))

"""
## Stage 2: Algorithm 1

Each training step updates C on the real batch, draws generated labels in
proportion to each class's deficit `p_max - p_i`, updates C on generated
samples, runs `critic_steps` critic updates (with the gradient penalty), and
finally updates G against C and against D. Every player uses Adam(2e-4,
beta_1=0.6), the paper's setting; here the classifier gets a larger learning
rate so that the short budget suffices.
"""

model.compile(
    classifier_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.6),
    metrics=[metrics.BalancedAccuracy(10)],
)
model.fit(datasets.to_dataset(x, y, 32, seed=0, num_classes=10), epochs=GAN_EPOCHS, verbose=0)

report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10)
print(metrics.format_report(report, title="PolarityGAN on long-tailed digits"))

"""
## Generated samples and their uncertainty

Every generated image is a convex combination of the stored images of its
class. `uncertainty_report` scores C's predictions on generated samples and on
real samples of the same classes (here the test split) with the four
measures of eqs. 7-10 (0 = certain, 1 = maximally uncertain).
"""

samples = model.sample(4, class_id=9, seed=1)
print("four samples of class 9, shape", samples.shape, "value range", float(samples.min()), float(samples.max()))

result = model.uncertainty_report(50, x_test, y_test, seed=0)
for part in ("generated", "real"):
    print(part.ljust(10), {name: round(value, 3) for name, value in result[part].items()})

"""
## Saving and serving

The model saves like any Keras model; the generator and the class Gaussians
are part of the file, so a reloaded model generates the same samples for the
same seed. `serving.export_for_serving` adds a `generate` signature.
"""

path = os.path.join(tempfile.mkdtemp(), "polarity.keras")
model.save(path)
reloaded = keras.saving.load_model(path)
same = np.allclose(reloaded.sample(3, 9, seed=7), model.sample(3, 9, seed=7))
print("reloaded model generates the same samples:", same)
print("package version:", getattr(ki, "__version__", "unknown"))
