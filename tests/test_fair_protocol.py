"""Issue 18: one classifier recipe per comparison (optimizer, schedule, epochs, batch, augmentation)."""

import json
import os

import numpy as np
import pytest

from keras_imbalance import baselines
from keras_imbalance import compare
from keras_imbalance import recipes


def _classifier_optimizer(model):
    # Multi-player models (GAMO, PolarityGAN, ImbalanceCycleGAN) keep the classifier's optimizer as a player optimizer.
    return getattr(model, "classifier_optimizer", None) or model.optimizer


def _lr_history(recipe):
    h = recipe.history_.history
    return h.get("classifier_learning_rate", h.get("learning_rate"))


def _tiny_compare(tmp_path, monkeypatch, methods=("erm", "gamo", "polarity-gan", "m2m"), **options):
    trained = {}
    real = compare.train_and_score

    def spy(recipe, *args, **kwargs):
        model, run = real(recipe, *args, **kwargs)
        trained[run["method"]] = (recipe, model, kwargs.get("training"))
        return model, run

    monkeypatch.setattr(compare, "train_and_score", spy)
    results = compare.run_compare(dataset="digits", methods=list(methods), seeds=[0], epochs=2, batch_size=64, n_max=20,
                                  test_per_class=5, imbalance_ratio=10, out=str(tmp_path), verbose=0, plots=False,
                                  log=lambda m: None, **options)
    return trained, results


def test_compare_trains_every_classifier_the_same_way(tmp_path, monkeypatch):
    # 8x8 digits are not augmented by default (compare.MIN_AUGMENTED_SIDE); an Augmentation given is applied to all.
    from keras_imbalance import datasets

    trained, results = _tiny_compare(tmp_path, monkeypatch, augment=datasets.Augmentation())
    opts = {m: _classifier_optimizer(model) for m, (_, model, _) in trained.items()}
    configs = {m: {k: v for k, v in o.get_config().items() if k != "name"} for m, o in opts.items()}
    assert {type(o).__name__ for o in opts.values()} == {"CoupledSGD"}
    assert all(c == configs["erm"] for c in configs.values()), configs
    # Same warm-up + step-decay schedule over the same number of classifier epochs (PolarityGAN: all of them).
    lrs = {m: _lr_history(recipe) for m, (recipe, _, _) in trained.items()}
    assert all(lr is not None and np.allclose(lr, lrs["erm"]) for lr in lrs.values()), lrs
    assert len(lrs["erm"]) == 2
    setup = results["setup"]["classifier_training"]
    assert setup["protocol"] == "shared" and setup["shared"]["optimizer"] == "sgd"
    assert setup["reference_baselines"] == {"gamo": "erm", "polarity-gan": "erm", "m2m": "drs"}
    # Digits are grey 8 x 8 images: the given augmentation translates by 1 pixel, no flips.
    assert setup["augment"]["pad_pixels"] == 1 and setup["augment"]["flip"] is False and setup["select"] == "last"
    assert all(t.augment is not None for (_, _, t) in trained.values())
    report = open(os.path.join(tmp_path, "report.md")).read()
    assert "the same for every row" in report and "gamo vs erm" in report and "no flips" in report
    with open(os.path.join(tmp_path, "results.json")) as f:
        assert json.load(f)["setup"]["classifier_training"]["protocol"] == "shared"


def test_compare_with_paper_settings_keeps_each_methods_own_classifier_recipe(tmp_path, monkeypatch):
    trained, results = _tiny_compare(tmp_path, monkeypatch, methods=("erm", "gamo", "polarity-gan"), paper_settings=True)
    opts = {m: _classifier_optimizer(model) for m, (_, model, _) in trained.items()}
    assert type(opts["erm"]).__name__ == "CoupledSGD" and type(opts["gamo"]).__name__ == "Adam"
    assert opts["gamo"].get_config()["beta_1"] == 0.5 and opts["polarity-gan"].get_config()["beta_1"] == 0.6
    # PolarityGAN's paper split: the classifier gets 80 % of the epochs (1 of 2 here), without a schedule.
    assert len(trained["polarity-gan"][0].history_.history["classifier_loss"]) == 1
    assert results["setup"]["classifier_training"]["protocol"] == "paper"
    assert "paper settings" in open(os.path.join(tmp_path, "report.md")).read()


def test_classifier_training_value_object():
    t = baselines.ClassifierTraining("adam")
    a, b = t.make_optimizer(), t.make_optimizer()
    assert a is not b and type(a).__name__ == "Adam" and float(a.learning_rate) == pytest.approx(1e-3)
    assert [type(c).__name__ for c in t.lr_callbacks(10, player="classifier")] == ["PaperLRSchedule"]
    assert t.replace(schedule=None).lr_callbacks(10) == [] and t.get_config()["protocol"] == "shared"
    with pytest.raises(ValueError, match="classifier optimizer"):
        baselines.ClassifierTraining("rmsprop")
    with pytest.raises(ValueError, match="not both"):
        recipes.get("erm").fit(None, np.zeros((4, 2)), np.array([0, 0, 1, 1]), training=t, optimizer="sgd")
    # Direct use without `training` keeps each recipe's own settings.
    assert recipes.get("gamo").paper_settings().get_config()["optimizer_class"] == "Adam"
    assert recipes.get("erm").paper_settings().get_config()["optimizer_class"] == "CoupledSGD"
    assert recipes.get("ldam-m2m").reference_baseline == "ldam-drw" and recipes.get("erm").reference_baseline is None


def test_no_augment_and_best_val_selection(tmp_path, monkeypatch):
    pools = []
    real = compare.datasets.make_imbalanced

    def spy(x_pool, y_pool, counts, seed=0):
        pools.append(len(y_pool))
        return real(x_pool, y_pool, counts, seed=seed)

    monkeypatch.setattr(compare.datasets, "make_imbalanced", spy)
    (x_pool, _), _, _ = compare.load_data("digits", test_per_class=5)
    trained, results = _tiny_compare(tmp_path, monkeypatch, methods=("erm", "gamo"), augment=False, select="best-val",
                                     val_per_class=5)
    setup = results["setup"]["classifier_training"]
    assert setup["augment"] is None and setup["select"] == "best-val" and setup["validation_counts"] == [5] * 10
    # The validation split came out of the pool (the training subset is drawn from the rest), not from the test split.
    assert pools == [len(x_pool) - 50] and results["setup"]["test_counts"] == [5] * 10
    for m, (recipe, model, training) in trained.items():
        cb = recipe.selection_
        assert training.augment is None and len(training.validation[1]) == 50
        assert cb.best_epoch is not None and cb.score() == pytest.approx(cb.best_score)
        history = recipe.history_.history["val_balanced_accuracy"]
        assert cb.best_score == pytest.approx(max(history)) and cb.best_epoch == int(np.argmax(history))
        assert results["runs"][m][0]["selected_epoch"] == cb.best_epoch
    assert "model selection: the epoch with the best balanced accuracy" in open(os.path.join(tmp_path, "report.md")).read()


def _small_backbone(shape, c):
    from keras_imbalance import applications

    return applications.SmallCNN(shape, c, filters=(4,), dense_units=8)


def test_cyclegan_and_ldam_m2m_classifiers_follow_the_shared_recipe():
    from keras_imbalance.callbacks import PaperLRSchedule

    rng = np.random.default_rng(0)
    training = baselines.ClassifierTraining("sgd")
    schedule = [0.1 * PaperLRSchedule(2).multiplier(e) for e in range(2)]
    y2 = np.repeat([0, 1], [12, 4])
    x2 = rng.uniform(size=(len(y2), 8, 8, 1)).astype("float32")
    icg = recipes.get("imbalance-cyclegan", gan_epochs=1, generator_filters=4, residual_blocks=0, discriminator_filters=4)
    model = icg.fit(_small_backbone, x2, y2, epochs=2, batch_size=8, num_classes=2, training=training)
    assert type(model.classifier_optimizer).__name__ == "CoupledSGD"
    # The paper schedule scaled to 2 epochs, on the classifier only (the CycleGAN keeps its Adam).
    assert np.allclose(icg.history_.history["classifier_learning_rate"], schedule)
    assert type(model.cycle_gan.generator_ab_optimizer).__name__ == "Adam"
    y = np.repeat(np.arange(3), [20, 8, 4])
    x = rng.uniform(size=(len(y), 8, 8, 1)).astype("float32")
    ldam = recipes.get("ldam-m2m", attack_steps=1)
    model = ldam.fit(_small_backbone, x, y, epochs=2, batch_size=16, training=training)
    assert type(model.optimizer).__name__ == "CoupledSGD" and np.allclose(ldam.history_.history["learning_rate"], schedule)


def test_augmented_training_is_bit_identical_across_runs():
    from keras_imbalance import datasets

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), [20, 8, 4])
    x = rng.uniform(size=(len(y), 8, 8, 1)).astype("float32")

    def run(augment):
        training = baselines.ClassifierTraining("sgd", augment=augment)
        model = recipes.get("erm").fit(_small_backbone, x, y, epochs=2, batch_size=8, seed=3, training=training)
        return np.asarray(model.predict(x, verbose=0))

    a, b = run(datasets.Augmentation(seed=0)), run(datasets.Augmentation(seed=0))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, run(None))  # the augmentation reached the classifier's batches


def test_paper_settings_refuse_another_classifier_optimizer(tmp_path):
    with pytest.raises(ValueError, match="ignored"):
        compare.run_compare(methods="erm", paper_settings=True, classifier_optimizer="adam", out=str(tmp_path),
                            log=lambda m: None)
    with pytest.raises(ValueError, match="select"):
        compare.run_compare(methods="erm", select="best", out=str(tmp_path), log=lambda m: None)
    training = compare.classifier_training(recipes.get("gamo"), np.zeros((2, 32, 32, 3)), paper_settings=True)
    assert training.augment.flip and training.get_config()["optimizer_class"] == "Adam"
    assert compare.classifier_training(recipes.get("erm"), np.zeros((2, 8, 8, 1)), augment=False).augment is None
    # On by default from 16 x 16 (28x28 MNIST: yes; 8x8 digits: no), never for feature vectors.
    assert compare.default_augmentation(np.zeros((2, 28, 28, 1))).pad_for((28, 28, 1)) >= 1
    assert compare.default_augmentation(np.zeros((2, 16, 16, 1))) is not None
    assert compare.default_augmentation(np.zeros((2, 15, 15, 1))) is None
    assert compare.default_augmentation(np.zeros((2, 8, 8, 1))) is None and compare.default_augmentation(np.zeros((2, 64))) is None


def test_auto_classifier_optimizer_follows_the_backbone():
    # The papers' SGD 0.1 recipe for backbones with BatchNorm; Adam for LeNet / GAMO's classifier,
    # on which SGD 0.1 was unstable (docs/results.md).
    assert compare.resolve_classifier_optimizer("auto", "small_cnn") == "sgd"
    assert compare.resolve_classifier_optimizer("auto", "resnet32") == "sgd"
    assert compare.resolve_classifier_optimizer("auto", "lenet") == "adam"
    assert compare.resolve_classifier_optimizer("auto", "gamo_classifier") == "adam"
    assert compare.resolve_classifier_optimizer("sgd", "lenet") == "sgd"  # an explicit choice is kept
    with pytest.raises(ValueError, match="'auto', 'sgd' or 'adam'"):
        compare.resolve_classifier_optimizer("rmsprop", "lenet")
    x = np.zeros((4, 28, 28, 1), "float32")
    erm = recipes.get("erm")
    assert compare.classifier_training(erm, x, "auto", backbone="lenet").get_config()["optimizer"] == "adam"
    assert compare.classifier_training(erm, x, "auto", backbone="small_cnn").get_config()["optimizer"] == "sgd"
