"""Metrics cross-checked against scikit-learn and imbalanced-learn."""

import keras
import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import balanced_accuracy_score
from sklearn.metrics import f1_score
from sklearn.metrics import precision_score
from sklearn.metrics import recall_score

from keras_imbalance import metrics


def _random_case(rng, n, c, absent=()):
    labels = [k for k in range(c) if k not in absent]
    y_true = rng.choice(labels, size=n)
    scores = rng.normal(size=(n, c)).astype("float32")
    # Make the predictions better than chance so recalls spread out.
    scores[np.arange(n), y_true] += rng.uniform(0, 2)
    return y_true, scores


def _streamed(metric, y_true, scores, chunks=3):
    metric.reset_state()
    for part in np.array_split(np.arange(len(y_true)), chunks):
        metric.update_state(y_true[part], scores[part])
    return np.asarray(metric.result())


@pytest.mark.parametrize("trial", range(6))
def test_streaming_metrics_match_references(trial):
    rng = np.random.default_rng(trial)
    c = int(rng.integers(2, 7))
    absent = (c - 1,) if trial % 2 else ()  # a class with no true samples
    y_true, scores = _random_case(rng, int(rng.integers(20, 80)), c, absent)
    y_pred = scores.argmax(1)
    present = np.unique(y_true)

    bacc = _streamed(metrics.BalancedAccuracy(c), y_true, scores)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_bacc = balanced_accuracy_score(y_true, y_pred)
    np.testing.assert_allclose(bacc, ref_bacc, atol=1e-6)

    gm = _streamed(metrics.GeometricMeanScore(c), y_true, scores)
    # imbalanced-learn averages over the labels given; ours over classes with true samples.
    np.testing.assert_allclose(gm, geometric_mean_score(y_true, y_pred, labels=present, average="multiclass"), atol=1e-6)

    recall = _streamed(metrics.ClassRecall(c), y_true, scores)
    ref_recall = recall_score(y_true, y_pred, labels=range(c), average=None, zero_division=0)
    np.testing.assert_allclose(recall, ref_recall, atol=1e-6)


def test_logits_probabilities_and_ids_agree():
    rng = np.random.default_rng(0)
    y_true, logits = _random_case(rng, 50, 4)
    probs = np.asarray(keras.ops.softmax(logits))
    values = [_streamed(metrics.BalancedAccuracy(4), y_true, s) for s in (logits, probs, logits.argmax(1))]
    np.testing.assert_allclose(values, values[0], atol=1e-7)


def test_binary_single_column():
    y_true = np.array([0, 0, 0, 1, 1])
    m = metrics.BalancedAccuracy(2)
    m.update_state(y_true, np.array([[0.1], [0.2], [0.7], [0.9], [0.4]]))
    np.testing.assert_allclose(m.result(), balanced_accuracy_score(y_true, [0, 0, 1, 1, 0]), atol=1e-6)
    m = metrics.BalancedAccuracy(2, from_logits=True)
    m.update_state(y_true, np.array([[-1.0], [-2.0], [3.0], [1.0], [-0.5]]))
    np.testing.assert_allclose(m.result(), balanced_accuracy_score(y_true, [0, 0, 1, 1, 0]), atol=1e-6)


def test_geometric_mean_is_zero_when_a_class_is_never_recalled():
    m = metrics.GeometricMeanScore(3)
    m.update_state([0, 1, 2], [[1, 0, 0], [1, 0, 0], [0, 0, 1.0]])
    assert float(m.result()) == 0.0


def test_sample_weight_and_reset():
    m = metrics.BalancedAccuracy(2)
    m.update_state([0, 0, 1], [[1, 0], [0, 1], [0, 1.0]], sample_weight=[3, 1, 1])
    np.testing.assert_allclose(m.result(), (0.75 + 1) / 2, atol=1e-6)
    m.reset_state()
    assert float(m.result()) == 0.0


def test_metric_in_fit_and_serialization(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[metrics.BalancedAccuracy(2), metrics.GeometricMeanScore(2)])
    logs = model.fit(x, y, epochs=2, verbose=0).history
    assert {"balanced_accuracy", "geometric_mean"} <= set(logs)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.evaluate(x, y, verbose=0, return_dict=True)["balanced_accuracy"] == pytest.approx(
        model.evaluate(x, y, verbose=0, return_dict=True)["balanced_accuracy"])
    cfg = metrics.BalancedAccuracy(5).get_config()
    assert metrics.BalancedAccuracy.from_config(cfg).num_classes == 5


@pytest.mark.parametrize("trial", range(4))
def test_classification_report_matches_sklearn(trial):
    rng = np.random.default_rng(10 + trial)
    c = 5
    y_true, scores = _random_case(rng, 60, c)
    y_pred = scores.argmax(1)
    report = metrics.classification_report(y_true, scores, c, class_counts=[50, 20, 10, 5, 5])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
        assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
        assert report["geometric_mean"] == pytest.approx(geometric_mean_score(y_true, y_pred, average="multiclass"))
        per_f1 = f1_score(y_true, y_pred, labels=range(c), average=None, zero_division=0)
        per_p = precision_score(y_true, y_pred, labels=range(c), average=None, zero_division=0)
    assert report["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    np.testing.assert_allclose(report["per_class"]["f1"], per_f1)
    np.testing.assert_allclose(report["per_class"]["precision"], per_p)
    assert report["per_class"]["support"] == np.bincount(y_true, minlength=c).tolist()
    assert report["minority_class"] == 4 and report["minority_f1"] == pytest.approx(per_f1[4])
    text = metrics.format_report(report)
    assert "balanced accuracy" in text and len(text.splitlines()) == 3 + c


def test_report_bad_inputs():
    with pytest.raises(ValueError, match="columns"):
        metrics.classification_report([0, 1], np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="out of range"):
        metrics.classification_report([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="NaN"):
        metrics.classification_report([0, 1], np.array([[np.nan, 1], [0, 1]]), 2)
    with pytest.raises(ValueError, match="2 labels but there are 3"):
        metrics.classification_report([0, 1], [0, 1, 1], 2)
    with pytest.raises(ValueError, match="num_classes"):
        metrics.BalancedAccuracy(1)


def test_streaming_metrics_refuse_shapes_that_fill_wrong_cells():
    metric = metrics.BalancedAccuracy(3)
    with pytest.raises(ValueError, match=r"balanced_accuracy: y_pred has 5 columns but num_classes=3"):
        metric.update_state([0, 1], np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"y_true must be sparse class ids \(N,\) or \(N, 1\), got shape \(2, 3\) \(one-hot"):
        metric.update_state(np.eye(3)[[0, 1]], np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match=r"y_true has 3 labels but y_pred has 2 predictions"):
        metric.update_state([0, 1, 2], np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match=r"y_true has class id 7 out of range for num_classes=3"):
        metrics.GeometricMeanScore(3).update_state([0, 7], np.zeros((2, 3), "float32"))
    metric.update_state([[0], [2]], np.eye(3, dtype="float32")[[0, 2]])  # (N, 1) labels are fine
    assert float(metric.result()) == pytest.approx(1.0)
