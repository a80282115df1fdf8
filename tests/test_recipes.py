"""`keras_imbalance.recipes`: the method recipes' fits raise no Keras warning of their own making; issue 19's
reading options reach the models; ImbalanceCycleGAN's best-validation selection.

(M2m's saved translator: tests/test_compare.py::test_m2m_recipe_takes_an_optimizer_instance, which trains one.)
"""

import warnings

import keras
import numpy as np
import pytest

from keras_imbalance import applications
from keras_imbalance import baselines
from keras_imbalance import recipes
from keras_imbalance.callbacks import XLACompile


def _tiny_data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), [24, 8, 4])
    return rng.uniform(size=(len(y), 8, 8, 1)).astype("float32"), y


def _tiny_backbone(shape, num_classes):
    return applications.SmallCNN(shape, num_classes, filters=(4,), dense_units=8)


def _messages(caught):
    return [str(w.message) for w in caught]


def test_gamo_fit_passes_no_shuffle_to_keras():
    x, y = _tiny_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recipes.get("gamo-d").fit(_tiny_backbone, x, y, epochs=1, batch_size=16)  # GAMO without D: the same fit, less to trace
    # Keras' "`shuffle=True` was passed, but will be ignored since the data `x` was provided as a tf.data.Dataset".
    assert not [m for m in _messages(caught) if "shuffle" in m], _messages(caught)


def _dense_backbone(shape, c):
    inputs = keras.Input(shape)
    h = keras.layers.Dense(6, activation="tanh")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(c)(h))


@pytest.mark.slow  # ~15-40 s: two traced GAMO phases
def test_gamo_reading_options_reach_the_model():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), [12, 6, 3])
    x = rng.uniform(size=(len(y), 4, 4, 1)).astype("float32")
    recipe = recipes.get("gamo", space="feature", feature_schedule="alternating", generator_columns="all", latent_dim=4)
    model = recipe.fit(_dense_backbone, x, y, epochs=2, batch_size=8, training=baselines.ClassifierTraining("adam"))
    assert model.feature_schedule == "alternating" and model.majority_in_generator_target
    assert model.feature_extractor.output_shape == (None, 6) and model.classifier.input_shape == (None, 6)
    # F's epoch, then M's: each optimizer stepped in its own phase only (3 batches per epoch).
    assert int(model.feature_extractor_optimizer.iterations) == 3 and int(model.classifier_optimizer.iterations) == 6
    config = recipe.get_config()
    assert (config["space"], config["feature_schedule"], config["generator_columns"]) == ("feature", "alternating", "all")
    assert recipes.get("gamo", **{k: v for k, v in config.items() if k != "name"}).get_config() == config
    assert recipe.sample_grid(model, 3) is None  # features are no images
    with pytest.raises(ValueError, match="needs space='feature'"):
        recipes.get("gamo", feature_schedule="alternating")
    with pytest.raises(ValueError, match="generator_columns must be one of"):
        recipes.get("gamo", generator_columns="majority")
    flat_head = lambda s, c: keras.Sequential([keras.Input(s), keras.layers.Flatten()])  # noqa: E731
    with pytest.raises(ValueError, match="must be Dense"):
        recipes.split_head(flat_head((4, 4, 1), 3))


@pytest.mark.slow  # ~10 s
def test_imbalance_cyclegan_natural_stream_and_best_validation_selection():
    """`stream` reaches the model; `training.validation` (compare --select best-val) restores the best epoch's classifier."""
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [12, 4])
    x = rng.uniform(size=(len(y), 8, 8, 1)).astype("float32")
    validation = (rng.uniform(size=(6, 8, 8, 1)).astype("float32"), np.repeat([0, 1], 3))
    recipe = recipes.get("imbalance-cyclegan", stream="natural", gan_epochs=0, generator_filters=4, residual_blocks=0,
                         discriminator_filters=4)
    model = recipe.fit(_dense_backbone, x, y, epochs=3, batch_size=8, num_classes=2,
                       training=baselines.ClassifierTraining("sgd", validation=validation))
    assert model.stream == "natural" and recipe.get_config()["stream"] == "natural"
    selection = recipe.selection_
    history = recipe.history_.history["val_balanced_accuracy"]
    assert selection.best_epoch == int(np.argmax(history)) and selection.score() == pytest.approx(selection.best_score)
    with pytest.raises(ValueError, match="AUG mode only"):
        recipes.get("imbalance-cyclegan-alt", stream="natural")


class _SeenBy(XLACompile):
    """An `XLACompile` that records which models it reached instead of compiling them (XLA tracing is slow on CPU)."""

    def __init__(self):
        super().__init__()
        self.models = []

    def on_train_begin(self, logs=None):
        self.models.append(self.model)


def test_xla_reaches_the_inner_fits_of_polarity_gan_and_imbalance_cyclegan():
    """`compare --jit-compile` asks through an `XLACompile` callback; the pre-training stages must get it too."""
    x, y = _tiny_data()
    seen = _SeenBy()
    recipes.get("polarity-gan", latent_dim=4).fit(_dense_backbone, x, y, epochs=2, batch_size=16, callbacks=[seen],
                                                  training=baselines.ClassifierTraining("adam"))
    assert [m.name for m in seen.models] == ["polarity_autoencoder", "polarity_gan"], [m.name for m in seen.models]
    pair = y < 2
    seen = _SeenBy()
    recipe = recipes.get("imbalance-cyclegan", gan_epochs=1, generator_filters=4, residual_blocks=0, discriminator_filters=4)
    model = recipe.fit(_dense_backbone, x[pair], y[pair], epochs=1, batch_size=8, num_classes=2, callbacks=[seen],
                       training=baselines.ClassifierTraining("sgd"))
    assert seen.models == [model.cycle_gan, model]
    assert recipes._inner_fit_callbacks({"callbacks": [keras.callbacks.History(), seen]}) == [seen]
