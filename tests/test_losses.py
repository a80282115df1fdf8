import keras
import numpy as np
import pytest
from sklearn.metrics import log_loss
from sklearn.utils.class_weight import compute_class_weight

from keras_imbalance import losses


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    y = np.array([0, 1, 2, 3, 3, 1, 0, 2, 2, 3])
    z = rng.uniform(-1, 1, size=(len(y), 4)).astype("float32")
    return y, z


COUNTS = [500, 120, 30, 4]


def test_class_balanced_weights_match_effective_number_formula():
    for beta in (0.9, 0.99, 0.999, 0.9999):
        n = np.array(COUNTS, float)
        effective = (1 - beta**n) / (1 - beta)  # Cui et al., eq. (3)
        expected = (1 / effective) / (1 / effective).sum() * len(n)
        np.testing.assert_allclose(losses.class_balanced_weights(COUNTS, beta), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.class_balanced_weights(COUNTS, 0.0), np.ones(4))
    np.testing.assert_allclose(losses.class_balanced_weights(COUNTS, 1.0), losses.inverse_frequency_weights(COUNTS))
    w = losses.class_balanced_weights(COUNTS, 0.9999)
    assert np.all(np.diff(w) > 0) and w.sum() == pytest.approx(4.0)


def test_inverse_frequency_weights_proportional_to_sklearn_balanced():
    y = np.repeat(np.arange(4), COUNTS)
    sk = compute_class_weight("balanced", classes=np.arange(4), y=y)
    np.testing.assert_allclose(losses.inverse_frequency_weights(COUNTS), sk / sk.sum() * 4, rtol=1e-6)


@pytest.mark.parametrize("bad", [[3, 0, 2], [], [[1, 2]], [1, float("nan")]])
def test_weights_reject_bad_counts(bad):
    with pytest.raises(ValueError):
        losses.class_balanced_weights(bad, 0.99)


def test_class_balanced_rejects_bad_beta():
    with pytest.raises(ValueError, match="beta"):
        losses.class_balanced_weights(COUNTS, 1.5)


def test_weighted_ce_equals_sklearn_weighted_log_loss(batch):
    y, z = batch
    w = np.array([0.2, 1.0, 2.5, 4.0], "float32")
    loss = losses.WeightedSparseCategoricalCrossentropy(class_weights=w)
    expected = log_loss(y, _softmax(z.astype(float)), sample_weight=w[y], labels=range(4))
    assert float(loss(y, z)) == pytest.approx(expected, rel=1e-5)
    # Batch-mean convention (M2m code): sum(w l) / B.
    per_sample = -np.log(_softmax(z.astype(float))[np.arange(len(y)), y])
    loss_b = losses.WeightedSparseCategoricalCrossentropy(class_weights=w, weighted_mean=False)
    assert float(loss_b(y, z)) == pytest.approx(np.mean(w[y] * per_sample), rel=1e-5)
    # (B, 1) labels and unit weights = Keras's own sparse CE.
    plain = losses.WeightedSparseCategoricalCrossentropy(num_classes=4)
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z)
    assert float(plain(y[:, None], z)) == pytest.approx(float(ref), rel=1e-5)


def test_focal_matches_formula(batch):
    y, z = batch
    p = _softmax(z.astype(float))[np.arange(len(y)), y]
    for gamma in (0.0, 1.0, 2.0):
        expected = np.mean(-((1 - p) ** gamma) * np.log(p))
        assert float(losses.SparseFocalLoss(gamma=gamma, num_classes=4)(y, z)) == pytest.approx(expected, rel=1e-4)
    w = np.array([1.0, 2.0, 3.0, 4.0], "float32")
    fl = -((1 - p) ** 2) * np.log(p)
    weighted = losses.SparseFocalLoss(gamma=2.0, class_weights=w)(y, z)
    assert float(weighted) == pytest.approx(np.sum(w[y] * fl) / np.sum(w[y]), rel=1e-4)


def test_ldam_margins_and_loss_match_numpy(batch):
    y, z = batch
    n = np.array(COUNTS, float)
    margins = 0.5 / n**0.25 / np.max(1 / n**0.25)
    np.testing.assert_allclose(losses.ldam_margins(COUNTS, 0.5), margins, rtol=1e-6)
    assert losses.ldam_margins(COUNTS).max() == pytest.approx(0.5)
    shifted = z.astype(float).copy()
    shifted[np.arange(len(y)), y] -= margins[y]
    per_sample = -np.log(_softmax(30.0 * shifted)[np.arange(len(y)), y])
    assert float(losses.LDAMLoss(COUNTS)(y, z)) == pytest.approx(per_sample.mean(), rel=1e-4)
    w = losses.class_balanced_weights(COUNTS, 0.9999).astype(float)
    ldam_w = losses.LDAMLoss(COUNTS, max_margin=0.5, scale=30, class_weights=w)
    assert float(ldam_w(y, z)) == pytest.approx(np.sum(w[y] * per_sample) / np.sum(w[y]), rel=1e-4)
    # The margin makes the loss larger than plain scaled CE for every sample.
    plain = -np.log(_softmax(30.0 * z.astype(float))[np.arange(len(y)), y])
    assert np.all(per_sample > plain)


def test_weights_variable_changes_loss_and_serializes(batch, tmp_path):
    y, z = batch
    loss = losses.WeightedSparseCategoricalCrossentropy(num_classes=4)
    before = float(loss(y, z))
    new = np.array([0.0, 0.0, 0.0, 1.0], "float32")
    loss.set_class_weights(new)
    per_sample = -np.log(_softmax(z.astype(float))[np.arange(len(y)), y])
    assert float(loss(y, z)) == pytest.approx(per_sample[y == 3].mean(), rel=1e-5)
    assert float(loss(y, z)) != pytest.approx(before)
    for cls, kwargs in [
        (losses.WeightedSparseCategoricalCrossentropy, {"num_classes": 4}),
        (losses.SparseFocalLoss, {"gamma": 1.5, "num_classes": 4}),
        (losses.LDAMLoss, {"class_counts": COUNTS, "scale": 10.0}),
    ]:
        original = cls(**kwargs)
        original.set_class_weights(new + 0.5)
        restored = keras.losses.deserialize(keras.losses.serialize(original))
        assert type(restored) is cls
        np.testing.assert_allclose(restored.class_weights.numpy(), new + 0.5)
        assert float(restored(y, z)) == pytest.approx(float(original(y, z)), rel=1e-6)
    # Through a compiled model saved as .keras.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    loss = losses.LDAMLoss(COUNTS)
    loss.set_class_weights([1.0, 2.0, 3.0, 4.0])
    model.compile(optimizer="sgd", loss=loss)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.loss, losses.LDAMLoss)
    np.testing.assert_allclose(reloaded.loss.class_weights.numpy(), [1, 2, 3, 4])


def test_bad_weights_raise():
    with pytest.raises(ValueError, match="class_weights"):
        losses.WeightedSparseCategoricalCrossentropy(class_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="num_classes"):
        losses.WeightedSparseCategoricalCrossentropy()
    loss = losses.WeightedSparseCategoricalCrossentropy(num_classes=3)
    with pytest.raises(ValueError, match="3 class weights"):
        loss.set_class_weights([1.0, 2.0])
    with pytest.raises(ValueError, match="gamma"):
        losses.SparseFocalLoss(gamma=-1, num_classes=3)
    with pytest.raises(ValueError, match="positive"):
        losses.LDAMLoss([10, 0, 3])
