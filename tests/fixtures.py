"""Tiny data and tiny players shared by every model test file.

One place for the batches and the small Keras players (classifiers,
discriminators, critics, generators) the model tests build on, so a change
of size or seed is made once. Plain functions rather than pytest fixtures:
tests call them with their own counts, shapes and names, and the model test
case (`tests.harness.run_model_case`) copies the players it is given.
"""

import importlib.util
import os

import numpy as np

from keras_imbalance import applications
from keras_imbalance.models import GAMO, CycleGAN, PolarityGAN

# Three classes, the majority is class 1: class ids are the user's.
COUNTS = [7, 12, 5]
IMAGE_SHAPE = (8, 8, 1)


def imbalanced_batch(counts=COUNTS, shape=IMAGE_SHAPE, value_range=(0.0, 1.0), seed=0):
    """Uniform random samples in `value_range`, labels 0,0,..,1,1,.. in `counts`; (x float32, y int)."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = rng.uniform(*value_range, (len(y), *shape)).astype("float32")
    return x, y


def two_domain_batch(n_a=10, n_b=3, majority=0, shape=IMAGE_SHAPE, seed=0):
    """A binary batch for the CycleGAN family: n_a majority images then n_b minority images, in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n_a + n_b, *shape)).astype("float32")
    y = np.array([majority] * n_a + [1 - majority] * n_b)
    return x, y


def random_batch(n=12, shape=IMAGE_SHAPE, num_classes=3, seed=0):
    """n uniform [0, 1) images with labels 0, 1, .., C-1, 0, 1, .. (every class present)."""
    x = np.random.default_rng(seed).random((n, *shape), dtype=np.float32)
    return x, np.arange(n) % num_classes


def adapt_to(x, y):
    """A `prepare` for the model test case: `model.adapt(x, y)` (GAMO, PolarityGAN)."""
    return lambda model: model.adapt(x, y)


# Classifiers -----------------------------------------------------------------------------


def small_cnn(num_classes=3, shape=IMAGE_SHAPE, name="small_cnn"):
    """The smallest SmallCNN (M2m's f and g)."""
    return applications.SmallCNN(shape, num_classes, filters=(4, 8), dense_units=8, name=name)


# GAMO ------------------------------------------------------------------------------------


def gamo_classifier(shape=IMAGE_SHAPE, num_classes=3, hidden_units=(16, 8)):
    return applications.GAMOClassifier(shape, num_classes, hidden_units=hidden_units)


def gamo_discriminator(shape=IMAGE_SHAPE, num_classes=3):
    return applications.GAMODiscriminator(shape, num_classes, hidden_units=(8,))


def gamo_feature_extractor(shape=IMAGE_SHAPE, feature_dim=8):
    return applications.GAMOFeatureExtractor(shape, filters=4, feature_dim=feature_dim)


def gamo_kwargs(shape=IMAGE_SHAPE, num_classes=3, discriminator=True, loss="least_squares", **kwargs):
    """Constructor arguments of a tiny pixel-space GAMO."""
    return dict(
        classifier=gamo_classifier(shape, num_classes),
        discriminator=gamo_discriminator(shape, num_classes) if discriminator else None,
        latent_dim=4,
        loss=loss,
        seed=1,
        **kwargs,
    )


def gamo(x, y, num_classes=3, **kwargs):
    """A tiny pixel-space GAMO adapted to (x, y)."""
    return GAMO(**gamo_kwargs(x.shape[1:], num_classes, **kwargs)).adapt(x, y)


# PolarityGAN -----------------------------------------------------------------------------


def polarity_critic(shape=IMAGE_SHAPE, num_classes=3):
    return applications.PolarityCritic(shape, num_classes, hidden_units=(8,))


def polarity_gan_kwargs(shape=IMAGE_SHAPE, num_classes=3, feature_extractor=None, autoencoder_epochs=1, critic=None,
                        **kwargs):
    """Constructor arguments of a tiny PolarityGAN (in F's feature space when `feature_extractor` is given)."""
    sample_shape = tuple(feature_extractor.output_shape[1:]) if feature_extractor is not None else tuple(shape)
    return dict(
        classifier=applications.GAMOClassifier(sample_shape, num_classes, hidden_units=(8,)),
        critic=critic if critic is not None else polarity_critic(sample_shape, num_classes),
        feature_extractor=feature_extractor,
        latent_dim=4,
        hidden_units=(8, 4),
        autoencoder_epochs=autoencoder_epochs,
        critic_steps=2,
        seed=1,
        **kwargs,
    )


def polarity_gan(x, y, num_classes=3, **kwargs):
    """A tiny PolarityGAN adapted to (x, y)."""
    return PolarityGAN(**polarity_gan_kwargs(x.shape[1:], num_classes, **kwargs)).adapt(x, y)


# CycleGAN family -------------------------------------------------------------------------


def resnet_generator(name, shape=IMAGE_SHAPE):
    return applications.ResnetGenerator(shape, filters=4, num_residual_blocks=0, name=name)


def patchgan(name, shape=IMAGE_SHAPE):
    return applications.PatchGANDiscriminator(shape, filters=4, num_layers=1, name=name)


def cycle_gan_kwargs(seed=0, shape=IMAGE_SHAPE, **kwargs):
    """Constructor arguments of a tiny CycleGAN on [0, 1] images."""
    kwargs.setdefault("value_range", (0.0, 1.0))
    return dict(
        generator_ab=resnet_generator("g_ab", shape),
        generator_ba=resnet_generator("g_ba", shape),
        discriminator_a=patchgan("d_a", shape),
        discriminator_b=patchgan("d_b", shape),
        seed=seed,
        **kwargs,
    )


def cycle_gan(seed=0, **kwargs):
    return CycleGAN(**cycle_gan_kwargs(seed=seed, **kwargs))


def imbalance_cyclegan_classifier(shape=IMAGE_SHAPE):
    return applications.ImbalanceCycleGANClassifier(shape, 2, filters=4, num_layers=1, dense_units=(16, 8))


def train_presets_script():
    """`saved_models/train_presets.py` imported as a module (it is a script, not part of the package)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", "train_presets.py")
    spec = importlib.util.spec_from_file_location("train_presets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
