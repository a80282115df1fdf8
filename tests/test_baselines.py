import keras
import numpy as np
import pytest
from imblearn.over_sampling import SMOTE

from keras_imbalance import baselines
from keras_imbalance.layers import CosineDense, LogitAdjustment
from tests.harness import run_model_test

NAMES = ["erm", "rs", "us", "os", "smote", "rw", "cb-rw", "cs", "drs", "drw", "focal", "ldam", "ldam-drw", "ts", "os+cs", "us+cs"]
COUNTS = [30, 16, 10, 8]


def _data(counts=COUNTS, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    x = (rng.uniform(size=(len(y), 4, 4, 1)) + y[:, None, None, None] * 0.1).astype("float32")
    x /= x.max()  # images in [0, 1], the range the recipes check
    return x, y


def tiny_backbone(input_shape, num_classes):
    return keras.Sequential(
        [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(num_classes)],
        name="tiny",
    )


def test_available_and_unknown_names():
    assert baselines.available() == NAMES
    with pytest.raises(ValueError, match="known: erm, rs"):
        baselines.get("nope")
    with pytest.raises(ValueError, match="bad option"):
        baselines.get("erm", not_an_option=1)
    with pytest.raises(ValueError, match="sampling"):
        baselines.get("erm", sampling="sideways")
    assert baselines.get("LDAM-DRW").name == "ldam-drw"


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_trains_one_epoch(name):
    x, y = _data()
    recipe = baselines.get(name, defer_epoch=0) if name in ("drs", "drw", "ldam-drw") else baselines.get(name)
    clf = recipe.fit(tiny_backbone, x, y, epochs=1, batch_size=16, seed=0)
    assert recipe.name == name
    out = clf.predict(x, verbose=0)
    assert out.shape == (len(y), 4) and np.all(np.isfinite(out))
    assert np.all(np.isfinite(recipe.history_.history["loss"]))
    config = recipe.get_config()
    assert baselines.get(config).get_config() == config
    if name.startswith("ldam"):
        assert isinstance(clf.layers[-1], CosineDense)
    if name == "ts":
        assert isinstance(clf.layers[-1], LogitAdjustment)


def test_same_seed_same_model_and_deferred_epoch_default():
    x, y = _data()
    a = baselines.get("erm").fit(tiny_backbone, x, y, epochs=1, batch_size=16, seed=3)
    b = baselines.get("erm").fit(tiny_backbone, x, y, epochs=1, batch_size=16, seed=3)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_drw_recipe_switches_at_defer_epoch():
    x, y = _data()
    recipe = baselines.get("drw", beta=0.99)
    seen = []
    spy = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(spy.model.loss.class_weights.numpy().copy()))
    recipe.fit(tiny_backbone, x, y, epochs=5, batch_size=32, seed=0, callbacks=[spy])  # default switch: round(0.8 * 5) = 4
    from keras_imbalance.losses import class_balanced_weights

    for e, w in enumerate(seen):
        np.testing.assert_allclose(w, class_balanced_weights(COUNTS, 0.99) if e >= 4 else np.ones(4), rtol=1e-6)


def test_under_and_over_sampling():
    x, y = _data()
    xu, yu = baselines.random_under_sample(x, y, seed=1)
    np.testing.assert_array_equal(np.bincount(yu), [8, 8, 8, 8])
    xo, yo = baselines.random_over_sample(x, y, seed=1)
    np.testing.assert_array_equal(np.bincount(yo), [30, 30, 30, 30])
    for xs, ys in ((xu, yu), (xo, yo)):
        # Every resampled image is an original one of the same class.
        flat, orig = xs.reshape(len(xs), -1), x.reshape(len(x), -1)
        match = (flat[:, None, :] == orig[None]).all(-1)
        assert match.any(1).all()
        assert np.all(y[match.argmax(1)] == ys)
    np.testing.assert_array_equal(xo[: len(x)], x)  # originals kept
    assert len(np.unique(xu.reshape(len(xu), -1), axis=0)) == len(xu)  # without replacement


def test_smote_matches_imbalanced_learn_and_keeps_image_shape():
    x, y = _data()
    xs, ys = baselines.smote(x, y, seed=0, k_neighbors=5)
    ref_x, ref_y = SMOTE(k_neighbors=5, random_state=0).fit_resample(x.reshape(len(x), -1), y)
    assert xs.shape == (120, 4, 4, 1) and xs.dtype == np.float32
    np.testing.assert_array_equal(ys, ref_y)
    np.testing.assert_allclose(xs.reshape(len(xs), -1), ref_x, rtol=1e-6)
    with pytest.raises(ValueError, match="at least 2 samples"):
        baselines.smote(*_data([5, 1]))


def test_smote_without_imbalanced_learn_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("imblearn"):
            raise ImportError("no imblearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install keras-imbalance\[smote\]"):
        baselines.smote(*_data())


def test_ts_recipe_subtracts_log_prior():
    x, y = _data()
    clf = baselines.get("ts", tau=0.5).fit(tiny_backbone, x, y, epochs=1, batch_size=16, seed=0)
    inner = clf.layers[1]
    prior = np.array(COUNTS) / sum(COUNTS)
    np.testing.assert_allclose(clf.predict(x, verbose=0), inner.predict(x, verbose=0) - 0.5 * np.log(prior), rtol=1e-5, atol=1e-5)


def test_bad_backbones_and_data():
    x, y = _data()
    softmax_head = lambda s, c: keras.Sequential([keras.Input(s), keras.layers.Flatten(), keras.layers.Dense(c, activation="softmax")])
    with pytest.raises(ValueError, match="logits"):
        baselines.get("erm").fit(softmax_head, x, y, epochs=1)
    with pytest.raises(ValueError, match="outputs 3 values"):
        baselines.get("erm").fit(lambda s, c: tiny_backbone(s, 3), x, y, epochs=1)
    no_dense = lambda s, c: keras.Sequential([keras.Input(s), keras.layers.Flatten(), keras.layers.Dense(c), keras.layers.Activation("linear")])
    with pytest.raises(ValueError, match="CosineDense"):
        baselines.get("ldam").fit(no_dense, x, y, epochs=1)
    with pytest.raises(ValueError, match="no samples"):
        baselines.get("erm").fit(tiny_backbone, x, y, epochs=1, num_classes=5)
    with pytest.raises(ValueError, match="epochs"):
        baselines.get("erm").fit(tiny_backbone, x, y, epochs=0)


def test_ldam_classifier_passes_harness(tmp_path):
    x, y = _data()
    clf = baselines.get("ldam-drw", defer_epoch=0).fit(tiny_backbone, x, y, epochs=1, batch_size=32, seed=0)
    run_model_test(lambda: clf, x[:8], y[:8], tmp_path=tmp_path, expected_output_shape=(8, 4))


def test_one_registry_for_baselines_and_methods():
    from keras_imbalance import recipes

    assert baselines.normalize_name(" LDAM-DRW ") == "ldam-drw"
    assert baselines.registered_names("baseline") == NAMES
    assert recipes.available() == baselines.registered_names("method")
    assert recipes.available(None) == NAMES + recipes.available()
    for name in recipes.available(None):  # every name, through the one lookup, round-trips its config
        recipe = recipes.get(name.upper())
        assert recipe.name == name and recipe.kind in baselines.RECIPE_KINDS
        assert recipes.get(recipe.get_config()).get_config() == recipe.get_config()
    with pytest.raises(ValueError, match="'gamo' is a method recipe"):
        baselines.get("gamo")  # the baseline view of the registry
    with pytest.raises(ValueError, match="unknown method 'nope'; known: erm.*gamo"):
        recipes.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        baselines.register(lambda **o: None, name="ERM", kind="baseline")
    with pytest.raises(ValueError, match="kind"):
        baselines.register(lambda **o: None, name="new-one", kind="other")
    assert "new-one" not in baselines.registered_names()


def test_hooks_have_defaults():
    recipe = baselines.get("erm")
    assert recipe.check_data(7) is None and recipe.sample_grid(None, 7) is None


def test_resolve_optimizer_and_cosine_head_are_public():
    from keras_imbalance.optimizers import CoupledSGD

    default = baselines.resolve_optimizer(None)
    assert isinstance(default, CoupledSGD) and float(default.learning_rate) == pytest.approx(0.1) and default.l2 == 2e-4
    assert isinstance(baselines.resolve_optimizer(None, default=lambda: keras.optimizers.Adam(1e-3)), keras.optimizers.Adam)
    assert isinstance(baselines.resolve_optimizer("sgd"), keras.optimizers.SGD)
    assert isinstance(baselines.resolve_optimizer(lambda: keras.optimizers.Adam()), keras.optimizers.Adam)
    used = keras.optimizers.SGD()
    used.build(tiny_backbone((4, 4, 1), 4).trainable_variables)
    with pytest.raises(ValueError, match="already used"):
        baselines.resolve_optimizer(used)
    with pytest.raises(ValueError, match="optimizer must be"):
        baselines.resolve_optimizer(3)
    head = baselines.cosine_head(tiny_backbone((4, 4, 1), 4), 4)
    assert isinstance(head.layers[-1], CosineDense) and head.output_shape == (None, 4)
    assert baselines.cosine_head(head, 4) is head


def test_classifier_training_config_does_not_depend_on_how_many_optimizers_exist():
    # A resumed comparison in another process compares these configs: the optimizer's instance name
    # ("adam_43", counted per process) must not be part of them.
    import keras

    from keras_imbalance.baselines import ClassifierTraining

    for name in ("adam", "sgd"):
        training = ClassifierTraining(name)
        before = training.get_config()
        for _ in range(3):
            keras.optimizers.Adam()
            keras.optimizers.SGD()
        assert training.get_config() == before
        assert before["optimizer_config"]["learning_rate"] > 0
