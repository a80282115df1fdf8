import keras
import numpy as np
import pytest

from keras_imbalance.optimizers import CoupledSGD


def _torch_sgd_reference(w0, grads, lrs, momentum, wd, nesterov):
    """torch.optim.SGD's documented update, written out in NumPy."""
    w = w0.copy()
    buf = None
    for g, lr in zip(grads, lrs):
        d = g + wd * w
        buf = d.copy() if buf is None else momentum * buf + d
        step = d + momentum * buf if nesterov else buf
        w = w - lr * step
    return w


@pytest.mark.parametrize("nesterov", [False, True])
def test_coupled_sgd_matches_hand_computed_update(nesterov):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(3, 2)).astype("float32")
    grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(4)]
    lrs = [0.1, 0.1, 0.001, 0.001]  # a step decay between steps 2 and 3
    var = keras.Variable(w0)
    opt = CoupledSGD(learning_rate=0.1, momentum=0.9, l2=0.05, nesterov=nesterov)
    for g, lr in zip(grads, lrs):
        opt.learning_rate = lr
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    expected = _torch_sgd_reference(w0, grads, lrs, 0.9, 0.05, nesterov)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_coupled_decay_differs_from_keras_decoupled_weight_decay():
    w0 = np.array([1.0, -2.0], "float32")
    g = np.array([0.5, 0.5], "float32")
    a, b = keras.Variable(w0), keras.Variable(w0)
    coupled = CoupledSGD(learning_rate=0.1, momentum=0.9, l2=0.1)
    decoupled = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        coupled.apply_gradients([(keras.ops.convert_to_tensor(g), a)])
        decoupled.apply_gradients([(keras.ops.convert_to_tensor(g), b)])
    np.testing.assert_allclose(a.numpy(), _torch_sgd_reference(w0, [g] * 3, [0.1] * 3, 0.9, 0.1, False), rtol=1e-5)
    assert not np.allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_config_round_trip_and_errors():
    opt = CoupledSGD(learning_rate=0.05, momentum=0.8, l2=1e-3, nesterov=True)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored, CoupledSGD)
    assert (restored.momentum, restored.l2, restored.nesterov) == (0.8, 1e-3, True)
    with pytest.raises(ValueError, match="weight_decay"):
        CoupledSGD(weight_decay=1e-4)
    with pytest.raises(ValueError, match="momentum"):
        CoupledSGD(momentum=1.5)
