"""The house plan: floors (no upward import) and the shared helpers the restructuring added."""

import ast
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance.datasets.sampling import choose_per_class
from keras_imbalance.datasets.validation import validated_xy
from keras_imbalance.models.base import deserialize_networks, serialize_networks

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_imbalance"

# module (or folder) -> top-level modules of the package it must never import
FORBIDDEN = {
    "models": {"presets", "compare", "cli", "recipes", "baselines", "serving"},
    "layers": {"models", "presets", "compare", "cli", "recipes", "baselines", "serving"},
    "datasets": {"models", "layers", "presets", "compare", "cli", "recipes", "baselines", "serving"},
    "distribute.py": {"models", "layers", "datasets", "presets", "compare", "cli", "recipes", "baselines", "serving"},
    "preset_store.py": {"models", "layers", "datasets", "presets", "compare", "cli", "recipes", "baselines", "serving"},
    "model_files.py": {"models", "layers", "datasets", "presets", "compare", "cli", "recipes", "baselines", "serving"},
}


def _imported_floors(path):
    floors = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "keras_imbalance" and len(parts) > 1:
                floors.add(parts[1])
    return floors


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_no_import_from_a_higher_floor(where):
    target = PACKAGE / where
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    for path in files:
        bad = _imported_floors(path) & FORBIDDEN[where]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_validated_xy_returns_counts_and_reads_datasets():
    x = np.random.default_rng(0).random((7, 4, 4, 1)).astype("float32")
    y = np.array([0, 1, 1, 2, 2, 2, 0])
    vx, vy, counts = validated_xy(x, y, num_classes=3, sample_shape=(4, 4, 1))
    assert counts.tolist() == [2, 2, 3] and vy.dtype == np.int64 and vx.shape == x.shape
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    dx, dy, dcounts = validated_xy(ds, caller="adapt")
    np.testing.assert_array_equal(dx, x)
    assert dcounts.tolist() == [2, 2, 3]
    with pytest.raises(ValueError, match="different lengths"):
        validated_xy(x, y[:-1])
    with pytest.raises(ValueError, match=r"class\(es\) \[3\] have no samples"):
        validated_xy(x, y, num_classes=4)
    assert validated_xy(x, y, num_classes=4, require_all=False)[2].tolist() == [2, 2, 3, 0]
    with pytest.raises(ValueError, match="adapt got an empty dataset"):
        validated_xy(ds.take(0), caller="adapt")


def test_choose_per_class_is_seeded_and_per_class():
    y = np.array([0, 1, 0, 1, 2, 0, 2, 1, 0])
    first = choose_per_class(y, [(0, 3), (2, 1)], seed=4)
    again = choose_per_class(y, [(0, 3), (2, 1)], seed=4)
    assert [a.tolist() for a in first] == [b.tolist() for b in again]
    assert np.all(y[first[0]] == 0) and len(set(first[0].tolist())) == 3 and np.all(y[first[1]] == 2)
    assert len(choose_per_class(y, [(1, 5)], seed=0, replace=True)[0]) == 5


def test_network_serialization_helpers_keep_none_lists_and_strings():
    class Holder:
        net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        nets = [keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])]
        missing = None

    config = serialize_networks(Holder(), ("net", "nets", "missing"))
    assert config["missing"] is None and isinstance(config["nets"], list)
    config["translator"] = "self"
    back = deserialize_networks(config, ("net", "nets", "missing", "translator", "absent"))
    assert isinstance(back["net"], keras.Model) and back["nets"][0].output_shape == (None, 3)
    assert back["missing"] is None and back["translator"] == "self" and "absent" not in back
