"""Optimizers the papers' reference code uses, as Keras 3 optimizers."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_imbalance")
class CoupledSGD(keras.optimizers.Optimizer):
    """SGD with momentum and *coupled* L2 weight decay, as `torch.optim.SGD`.

    The M2m and LDAM-DRW reference code trains ResNet-32 with
    `torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=2e-4)`, whose update is

        d = g + wd * w            (L2 added to the gradient, before momentum)
        b = momentum * b + d      (b = d at the first step; no dampening)
        d = d + momentum * b      (only with nesterov=True)
        w = w - lr * (b or d)

    This differs from Keras's `weight_decay=` argument, which is decoupled
    (w -= lr * wd * w outside the momentum, as in AdamW/SGDW), and from
    `keras.optimizers.SGD`'s momentum, which folds the learning rate into the
    velocity (a learning-rate drop then only takes effect gradually). Like the
    reference, decay applies to every trainable variable, including biases and
    batch-norm parameters.

    Args:
        learning_rate: float or a `keras.optimizers.schedules` schedule (0.1 in
            the papers).
        momentum: float in [0, 1] (0.9).
        l2: coupled weight-decay coefficient (2e-4 for CIFAR in M2m / LDAM).
        nesterov: Nesterov momentum as in PyTorch.
        **kwargs: base optimizer arguments (clipnorm, ...); `weight_decay`
            (decoupled) is refused to avoid applying two kinds of decay.
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, l2=2e-4, nesterov=False, name="coupled_sgd", **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError("CoupledSGD applies coupled L2 decay through `l2`; do not also pass the decoupled `weight_decay`")
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if float(l2) < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        if nesterov and float(momentum) == 0.0:
            raise ValueError("nesterov momentum needs momentum > 0")
        self.momentum = float(momentum)
        self.l2 = float(l2)
        self.nesterov = bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        d = ops.cast(gradient, variable.dtype)
        if self.l2:
            d = ops.add(d, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        if self.momentum != 0:
            b = self.momentums[self._get_variable_index(variable)]
            momentum = ops.cast(self.momentum, variable.dtype)
            self.assign(b, ops.add(ops.multiply(b, momentum), d))
            d = ops.add(d, ops.multiply(b, momentum)) if self.nesterov else b
        self.assign_sub(variable, ops.multiply(d, learning_rate))

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "l2": self.l2, "nesterov": self.nesterov})
        return config
