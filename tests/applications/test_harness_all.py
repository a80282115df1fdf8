"""The shared model harness (fit step, .keras round trip, SavedModel export) on every factory.

ResNet20 runs it in the default suite (test_resnet_cifar.py); the rest are slow-marked
to keep the default suite inside its time budget.
"""

import keras
import numpy as np
import pytest

from keras_imbalance import applications as A
from tests.harness import run_model_test

_CE = {"optimizer": "adam", "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
_MSE = {"optimizer": "adam", "loss": "mse"}

CASES = {
    "resnet32_cosine": (lambda: A.ResNet32(input_shape=(8, 8, 3), num_classes=3, cosine_classifier=True), (8, 8, 3), 3),
    "preact_resnet18": (lambda: A.PreActResNet18(input_shape=(8, 8, 3), num_classes=3, widths=(8, 16, 32, 64)), (8, 8, 3), 3),
    "resnet50": (lambda: A.ResNet50(input_shape=(32, 32, 3), num_classes=3), (32, 32, 3), 3),
    "imbalance_cyclegan_classifier": (
        lambda: A.ImbalanceCycleGANClassifier(input_shape=(32, 32, 1), filters=8, dense_units=(16, 8)), (32, 32, 1), 2),
    "mlp": (lambda: A.MLP(input_shape=(12,), num_classes=4), (12,), 4),
    "resnet_generator": (lambda: A.ResnetGenerator(input_shape=(8, 8, 3), filters=4, num_residual_blocks=1), (8, 8, 3), None),
    "patchgan": (lambda: A.PatchGANDiscriminator(input_shape=(24, 24, 3), filters=4), (24, 24, 3), "patch"),
    "conv_encoder": (lambda: A.ConvEncoder((8, 8, 1), latent_dim=4, filters=(4, 8)), (8, 8, 1), "latent"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_factory_passes_the_harness(case, tmp_path):
    build, shape, target = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(4, *shape)).astype("float32")
    if isinstance(target, int):
        y, compile_kwargs = rng.integers(0, target, size=4), _CE
    else:
        out_shape = build().output_shape[1:]
        y, compile_kwargs = rng.uniform(-1, 1, size=(4, *out_shape)).astype("float32"), _MSE
    run_model_test(build, x, y, compile_kwargs=compile_kwargs, tmp_path=tmp_path, atol=1e-5)


@pytest.mark.slow
def test_conv_decoder_passes_the_harness(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 6)).astype("float32")
    images = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    run_model_test(lambda: A.ConvDecoder(6, (8, 8, 1), filters=(8, 4)), z, images, compile_kwargs=_MSE,
                   tmp_path=tmp_path, atol=1e-5)
