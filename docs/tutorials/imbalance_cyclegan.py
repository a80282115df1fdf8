"""
Title: Repairing a long-tailed binary data set with ImbalanceCycleGAN
Author: keras-imbalance contributors
Date created: 2025/01/01
Last modified: 2025/01/01
Description: Translate majority images into minority images with a CycleGAN, and train a classifier on both (AUG and ALT modes).
Accelerator: None

## Introduction

When one class of a binary problem has a hundred times fewer images than the
other, a classifier learns to answer "majority" almost always. ImbalanceCycleGAN
(Sahoo et al., "Mitigating Dataset Imbalance via Joint Generation and
Classification") repairs the data by translation: a CycleGAN learns to turn a
majority image `a` into a minority-looking image `G_AB(a)` (and a minority image
`b` into a majority-looking `G_BA(b)`), and the classifier is trained on the real
images and on the translations, with the loss

    L_cls = L^B + (1 / gamma) L^A

where `L^B` scores everything labelled minority (real `b`, translated `G_AB(a)`),
`L^A` everything labelled majority (real `a`, translated `G_BA(b)`), and `gamma`
is the imbalance ratio N_A / N_B.

Two training modes:

- **AUG**: the pre-trained CycleGAN is frozen and only feeds the classifier.
- **ALT**: every few epochs the roles swap: the classifier is frozen and the
  CycleGAN trains with the classifier's loss added to its own objective.

This tutorial uses scikit-learn's 8 x 8 digits (they ship with scikit-learn,
nothing is downloaded): digit 3 is the majority class A, digit 8 the minority
class B.

Set `KERAS_IMBALANCE_TUTORIAL_FAST=1` to run a seconds-long version (fewer
epochs, smaller networks); the numbers are then meaningless but every step runs.
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
from keras_imbalance import plots
from keras_imbalance.callbacks import LinearLRDecay
from keras_imbalance.models import CycleGAN, ImbalanceCycleGAN

FAST = bool(os.environ.get("KERAS_IMBALANCE_TUTORIAL_FAST"))
GAN_EPOCHS = 1 if FAST else 60
CLASSIFIER_EPOCHS = 1 if FAST else 30
FILTERS, BLOCKS = (4, 0) if FAST else (16, 3)
BATCH_SIZE = 16
OUT = tempfile.mkdtemp(prefix="imbalance_cyclegan_")  # where the figure and saved models go
keras.utils.set_random_seed(0)

"""
## A long-tailed binary pair

We keep the 3s and 8s of the digits training split, relabel them 0 (majority,
3) and 1 (minority, 8), and keep 120 threes and only 10 eights. The test split
is balanced: 50 of each.
"""

(x_train, y_train), (x_test, y_test) = ki.datasets.load_digits()


def binary_pair(x, y, majority=3, minority=8):
    keep = np.isin(y, [majority, minority])
    return x[keep], (y[keep] == minority).astype("int64")


x_pool, y_pool = binary_pair(x_train, y_train)
x_test, y_test = binary_pair(x_test, y_test)
COUNTS = [32, 3] if FAST else [120, 10]
x, y = ki.datasets.make_imbalanced(x_pool, y_pool, COUNTS, seed=0)
print("training counts", np.bincount(y), "test counts", np.bincount(y_test))

"""
ImbalanceCycleGAN is a binary method. On data with more classes it raises a
`ValueError` that tells you to select two classes first, exactly as we did
above.

## Stage 1: the CycleGAN

The generators are CycleGAN's ResNet generator (two stride-2 down-samplings,
residual blocks, two up-samplings) and the discriminators the PatchGAN, both
from `keras_imbalance.applications`. The paper's sizes (64 filters, 9 blocks,
11.4 M parameters per generator) are made for 256 x 256 photographs; for 8 x 8
digits 16 filters and 3 blocks are plenty. The PatchGAN gets a single
stride-2 layer so its patches fit in 8 x 8.

`value_range=(0, 1)` tells the CycleGAN that our images are in [0, 1]; it maps
them to the generators' tanh range [-1, 1] and back.
"""

shape = x.shape[1:]


def generator(name):
    return ki.applications.ResnetGenerator(shape, filters=FILTERS, num_residual_blocks=BLOCKS, name=name)


def discriminator(name):
    return ki.applications.PatchGANDiscriminator(shape, filters=FILTERS, num_layers=1, name=name)


cycle_gan = CycleGAN(
    generator("generator_ab"),
    generator("generator_ba"),
    discriminator("discriminator_a"),
    discriminator("discriminator_b"),
    cycle_weight=10.0,  # beta in the paper
    identity_weight=5.0,  # alpha
    pool_size=50,  # history of generated images shown to the discriminators
    value_range=(0.0, 1.0),
    seed=0,
)
cycle_gan.compile()  # four Adam(2e-4, beta_1=0.5) optimizers

"""
`fit(a, b)` takes the majority and minority images as two arrays of any
lengths and pairs them without alignment: each epoch visits every majority
image once and cycles through the minority images. The learning rate is
constant for the first half and decays linearly to (almost) zero in the
second half, as in the paper's CUB recipe.
"""

a, b = x[y == 0], x[y == 1]
half = GAN_EPOCHS // 2
cycle_gan.fit(a, b, batch_size=BATCH_SIZE, epochs=GAN_EPOCHS, verbose=0,
              callbacks=[LinearLRDecay(GAN_EPOCHS - half, half)])

"""
Let's look at a few translations: threes turned into eights and eights turned
into threes. `translate_ab` and `translate_ba` return images in the data range.
"""

k = min(8, len(b))
fake_eights = np.asarray(cycle_gan.translate_ab(a[:k]))
fake_threes = np.asarray(cycle_gan.translate_ba(b[:k]))
plots.plot_image_grid(
    np.stack([a[:k], fake_eights, b[:k], fake_threes]),
    os.path.join(OUT, "translations.png"),
    row_labels=["3", "3 -> 8", "8", "8 -> 3"],
)

"""
How good are the translations? The paper's "inception accuracy" asks a
classifier trained on real, balanced data what it sees in translated images.
Here the judge is a small CNN trained on all 3s and 8s of the training split.
"""

judge = ki.baselines.get("os").fit(
    lambda s, c: ki.applications.SmallCNN(s, c), x_pool, y_pool,
    epochs=CLASSIFIER_EPOCHS, batch_size=32, optimizer="adam", num_classes=2,  # (in FAST mode: barely trained)
)
a_test, b_test = x_test[y_test == 0], x_test[y_test == 1]
print("inception accuracy 3 -> 8:",
      ki.metrics.inception_accuracy(judge, np.asarray(cycle_gan.translate_ab(a_test)), 1))
print("inception accuracy 8 -> 3:",
      ki.metrics.inception_accuracy(judge, np.asarray(cycle_gan.translate_ba(b_test)), 0))

"""
## Stage 2: the classifier, AUG mode

`ImbalanceCycleGAN` wraps a classifier (any Keras model with two output
logits) and the CycleGAN. `fit` takes ordinary `(x, y)` data: it counts the
classes (the larger is A), sets gamma = 120 / 10 = 12 and trains on
(majority, minority) batch pairs. In AUG mode the CycleGAN does not change.
`predict` is the classifier's.
"""

classifier = ki.applications.SmallCNN(shape, 2)
aug = ImbalanceCycleGAN(classifier, cycle_gan, mode="aug", seed=0)
aug.compile(classifier_optimizer=keras.optimizers.Adam(1e-3))
aug.fit(x, y, batch_size=BATCH_SIZE, epochs=CLASSIFIER_EPOCHS, verbose=0)
print("gamma (imbalance ratio)", aug.imbalance_ratio, "majority class", aug.majority_class)
report = ki.metrics.classification_report(y_test, aug.predict(x_test, verbose=0), 2, class_counts=COUNTS)
print(ki.metrics.format_report(report, title="AUG"))

"""
## ALT mode

ALT alternates every `switch_every` epochs (5 in the paper), starting with the
classifier; in the CycleGAN phases the generators also minimize the
classifier's loss on their translations (the paper's eq. 7), so the
translations become easier to classify. We give ALT its own copy of the
pre-trained CycleGAN, since it changes it.
"""

alt_gan = CycleGAN.from_config(cycle_gan.get_config())
alt_gan.set_weights(cycle_gan.get_weights())
alt = ImbalanceCycleGAN(ki.applications.SmallCNN(shape, 2), alt_gan, mode="alt", switch_every=1 if FAST else 5, seed=0)
alt.compile(classifier_optimizer=keras.optimizers.Adam(1e-3))
alt.fit(x, y, batch_size=BATCH_SIZE, epochs=CLASSIFIER_EPOCHS, verbose=0)
report = ki.metrics.classification_report(y_test, alt.predict(x_test, verbose=0), 2, class_counts=COUNTS)
print(ki.metrics.format_report(report, title="ALT"))

"""
## Saving and serving

The model saves as one `.keras` file (classifier, CycleGAN, optimizers and the
history pools), and `export_for_serving` writes a SavedModel whose default
signature classifies and whose `translate_ab` / `translate_ba` signatures
translate.
"""

aug.save(os.path.join(OUT, "imbalance_cyclegan.keras"))
restored = keras.saving.load_model(os.path.join(OUT, "imbalance_cyclegan.keras"))
np.testing.assert_allclose(restored.predict(x_test[:4], verbose=0), aug.predict(x_test[:4], verbose=0), atol=1e-6)
path = ki.serving.export_for_serving(aug, os.path.join(OUT, "export"), input_dtype="float32", overwrite=True)
print("exported to", path)

"""
## Comparing with the baselines

The `keras-imbalance compare` command and `benchmarks/imbalance_cyclegan_digits.py`
run the recipes `imbalance-cyclegan` and `imbalance-cyclegan-alt` next to the
baselines (vanilla, cost-sensitive, oversampling) on the same splits;
`docs/results.md` has the numbers we measured.
"""
