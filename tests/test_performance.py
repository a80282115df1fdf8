"""Every method model's `train_step` is traced once: no retracing across steps, epochs or `fit` calls.

A trace runs the Python body of `train_step`; executing the compiled graph
does not. Wrapping the class's `train_step` with a counter therefore counts
traces (per model instance), whatever Keras does around it.
"""

import collections
import functools
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_imbalance as ki
from keras_imbalance import applications, recipes
from keras_imbalance.datasets import long_tailed_counts, make_imbalanced

_TRACES = collections.Counter()


def _own_train_step_classes():
    """Classes of keras_imbalance.models that define their own train_step."""
    out = []
    for _, cls in inspect.getmembers(ki.models, inspect.isclass):
        if issubclass(cls, keras.Model) and "train_step" in cls.__dict__:
            out.append(cls)
    return out


@pytest.fixture
def count_traces(monkeypatch):
    """Patch every method class's train_step to count its traces per instance."""
    _TRACES.clear()
    for cls in _own_train_step_classes():
        original = cls.__dict__["train_step"]

        @functools.wraps(original)
        def counted(self, data, _original=original, _cls=cls):
            # Count in the most derived train_step only, so that a subclass
            # calling super().train_step does not count twice.
            owner = next(c for c in type(self).__mro__ if "train_step" in c.__dict__)
            if owner is _cls:
                _TRACES[id(self)] += 1
            return _original(self, data)

        monkeypatch.setattr(cls, "train_step", counted)
    return _TRACES


def _digits(counts):
    (x, y), _ = ki.datasets.load_digits()
    keep = y < len(counts)
    return make_imbalanced(x[keep], y[keep], counts, seed=0)


def _tiny_cnn(shape, c, name=None):
    return applications.SmallCNN(shape, c, filters=(4, 8), dense_units=8, name=name)


def _static_ds(x, y, batch):
    # drop_remainder: every batch has the same shape, so one trace must serve all.
    return ki.datasets.to_dataset(x, y, batch, balanced=True, seed=0, drop_remainder=True)


@pytest.mark.parametrize("translated_positions", ["all", "candidates"])
def test_m2m_traces_once_across_steps_epochs_the_deferred_switch_and_fit_calls(count_traces, translated_positions):
    # "candidates" translates a different number of rows every step: a dynamic size inside the one graph.
    counts = [40, 16, 8]
    x, y = _digits(counts)
    model = ki.models.M2m(_tiny_cnn((8, 8, 1), 3, "f"), _tiny_cnn((8, 8, 1), 3, "g"), class_counts=counts,
                          attack_steps=2, start_epoch=1, seed=0, translated_positions=translated_positions)
    model.compile(optimizer="sgd")
    ds = _static_ds(x, y, 16)  # 4 steps per epoch
    model.fit(ds, epochs=2, verbose=0)  # epoch 0 plain, epoch 1 translating (a tf.cond inside one graph)
    model.fit(ds, epochs=3, initial_epoch=2, verbose=0)  # a second fit reuses the train function
    assert int(model.optimizer.iterations) == 12
    assert count_traces[id(model)] == 1, f"M2m.train_step traced {count_traces[id(model)]} times in 12 steps"


@pytest.mark.parametrize("feature_space", [False, True], ids=["pixel", "feature"])
def test_gamo_traces_once_across_steps_epochs_and_bank_refreshes(count_traces, feature_space):
    counts = [40, 16, 8]
    x, y = _digits(counts)
    if feature_space:
        fe = applications.GAMOFeatureExtractor((8, 8, 1), filters=4, feature_dim=16)
        m = applications.GAMOClassifier((16,), 3, hidden_units=(16, 8))
        d = applications.GAMODiscriminator((16,), 3, hidden_units=(16, 8))
    else:
        fe = None
        m = applications.GAMOClassifier((8, 8, 1), 3, hidden_units=(16, 8))
        d = applications.GAMODiscriminator((8, 8, 1), 3, hidden_units=(16, 8))
    model = ki.models.GAMO(m, d, feature_extractor=fe, latent_dim=8, seed=0).adapt(x, y)
    model.compile()
    ds = _static_ds(x, y, 16)
    # In feature space RefreshFeatureBank reassigns the banks every epoch: a variable update, not a retrace.
    model.fit(ds, epochs=2, verbose=0)
    model.fit(ds, epochs=3, initial_epoch=2, verbose=0)
    assert int(model.classifier_optimizer.iterations) == 2 * 12  # two M updates per step
    assert count_traces[id(model)] == 1, f"GAMO.train_step traced {count_traces[id(model)]} times in 12 steps"


def _tiny_cycle_gan(shape=(8, 8, 1)):
    # One-conv players: tracing the GAN step of a ResnetGenerator takes seconds; the step's code is the same.
    def gen(name):
        return keras.Sequential([keras.Input(shape), keras.layers.Conv2D(shape[-1], 3, padding="same", activation="tanh")], name=name)

    def disc(name):
        return keras.Sequential([keras.Input(shape), keras.layers.Conv2D(1, 3, strides=2)], name=name)

    return ki.models.CycleGAN(gen("g_ab"), gen("g_ba"), disc("d_a"), disc("d_b"), pool_size=4, value_range=(0.0, 1.0), seed=0)


def test_cycle_gan_traces_once_across_steps_epochs_and_fit_calls(count_traces):
    x, y = _digits([32, 8])
    model = _tiny_cycle_gan()
    model.compile()
    a, b = x[y == 0], x[y == 1]
    model.fit(a, b, batch_size=16, epochs=2, verbose=0)  # 2 full batches per epoch (32 majority images)
    model.fit(a, b, batch_size=16, epochs=3, initial_epoch=2, verbose=0)
    assert int(model.generator_ab_optimizer.iterations) == 6
    assert count_traces[id(model)] == 1, f"CycleGAN.train_step traced {count_traces[id(model)]} times in 6 steps"


@pytest.mark.parametrize("mode", ["aug", "alt"])
def test_imbalance_cyclegan_traces_once_per_phase(count_traces, mode):
    """AUG: one trace. ALT switching every epoch: one trace per phase, reused at every later switch."""
    x, y = _digits([32, 8])
    model = ki.models.ImbalanceCycleGAN(_tiny_cnn((8, 8, 1), 2), _tiny_cycle_gan(), mode=mode, switch_every=1, seed=0)
    model.compile(classifier_optimizer="sgd")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)  # ALT phases 0, 1, 0
    model.fit(x, y, batch_size=16, epochs=4, initial_epoch=3, verbose=0)  # phase 1 again, in a new fit
    expected = 1 if mode == "aug" else 2
    assert count_traces[id(model)] == expected, f"{mode}: train_step traced {count_traces[id(model)]} times in 8 steps"


def test_polarity_gan_traces_once_across_steps_epochs_and_fit_calls(count_traces):
    counts = [40, 16, 8]
    x, y = _digits(counts)
    critic = applications.PolarityCritic((8, 8, 1), 3, hidden_units=(8,))
    model = ki.models.PolarityGAN(_tiny_cnn((8, 8, 1), 3), critic, latent_dim=4, hidden_units=(8, 4),
                                  autoencoder_epochs=0, critic_steps=2, seed=0).adapt(x, y)
    model.compile()
    ds = _static_ds(x, y, 16)
    model.fit(ds, epochs=2, verbose=0)
    model.fit(ds, epochs=3, initial_epoch=2, verbose=0)
    assert int(model.critic_optimizer.iterations) == 2 * 12  # critic_steps updates per step
    assert count_traces[id(model)] == 1, f"PolarityGAN.train_step traced {count_traces[id(model)]} times in 12 steps"


def test_the_counter_sees_a_retrace():
    # The instrument itself: a changed batch shape does retrace (else the tests above could not fail).
    traces = []

    class Probe(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            traces.append(1)
            return super().train_step(data)

    model = Probe()
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((10, 3), "float32")
    y = np.zeros((10, 2), "float32")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)  # batches 4, 4, 2: the partial batch retraces once
    assert len(traces) == 2


def _recipe_cases():
    names = recipes.available()
    return [pytest.param(n, id=n) for n in names]


@pytest.mark.parametrize("name", _recipe_cases())
def test_every_method_recipe_model_stops_tracing_after_its_first_epoch(count_traces, name):
    """Every registered method (and any model a recipe builds) traces at most twice in 3 epochs.

    The recipes' pipelines keep the last partial batch (`drop_remainder=False`,
    so every sample is seen each epoch), which costs exactly one extra trace
    with a relaxed batch dimension in the first epoch; a per-epoch retrace
    would show 3 or more.
    """
    recipe = recipes.get(name)
    num_classes = 3
    try:
        recipe.check_data(num_classes)
    except ValueError:
        num_classes = 2
    counts = long_tailed_counts(30, num_classes, 4)
    x, y = _digits(counts)
    y = y.astype("int64")
    if "m2m" in name:
        recipe = recipes.get(name, attack_steps=2, defer_epoch=1)
    if "cyclegan" in name:
        # No CycleGAN pre-training (its graph takes seconds to trace; its own trace
        # count is tested above), small networks for the classifier phase's translations.
        recipe = recipes.get(name, gan_epochs=0, generator_filters=4, residual_blocks=1, discriminator_filters=4)
    if name == "polarity-gan":  # stage 1 is an autoencoder fit, not the traced step
        recipe = recipes.get(name, autoencoder_fraction=0.0, critic_steps=2, latent_dim=4)
    model = recipe.fit(_tiny_cnn, x, y, epochs=3, batch_size=16, seed=0, optimizer="sgd", num_classes=num_classes)
    traced = {k: v for k, v in count_traces.items()}
    assert id(model) in traced or not any(isinstance(model, c) for c in _own_train_step_classes()), "the method model was never traced"
    n = traced.get(id(model), 0)
    assert 1 <= n <= 2, f"{name}: train_step traced {n} times in 3 epochs"
