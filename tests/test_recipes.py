"""`keras_imbalance.recipes`: the method recipes' fits raise no Keras warning of their own making.

(M2m's saved translator: tests/test_compare.py::test_m2m_recipe_takes_an_optimizer_instance, which trains one.)
"""

import warnings

import numpy as np

from keras_imbalance import applications
from keras_imbalance import recipes


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
