"""The model test case (serialization, fit step, .keras round trip, SavedModel export) on every factory.

ResNet20 runs it in the default suite (test_resnet_cifar.py); the rest are slow-marked
to keep the default suite inside its time budget.
"""

import keras
import numpy as np
import pytest

from keras_imbalance import applications as A
from tests.harness import run_model_case

_CE = {"optimizer": "adam", "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
_MSE = {"optimizer": "adam", "loss": "mse"}

CASES = {
    "resnet32_cosine": (A.ResNet32, dict(input_shape=(8, 8, 3), num_classes=3, cosine_classifier=True), 3),
    "preact_resnet18": (A.PreActResNet18, dict(input_shape=(8, 8, 3), num_classes=3, widths=(8, 16, 32, 64)), 3),
    "resnet50": (A.ResNet50, dict(input_shape=(32, 32, 3), num_classes=3), 3),
    "imbalance_cyclegan_classifier": (
        A.ImbalanceCycleGANClassifier, dict(input_shape=(32, 32, 1), filters=8, dense_units=(16, 8)), 2),
    "mlp": (A.MLP, dict(input_shape=(12,), num_classes=4), 4),
    "resnet_generator": (A.ResnetGenerator, dict(input_shape=(8, 8, 3), filters=4, num_residual_blocks=1), None),
    "patchgan": (A.PatchGANDiscriminator, dict(input_shape=(24, 24, 3), filters=4), "patch"),
    "conv_encoder": (A.ConvEncoder, dict(input_shape=(8, 8, 1), latent_dim=4, filters=(4, 8)), "latent"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_factory_passes_the_harness(case, tmp_path):
    factory, init_kwargs, target = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(4, *init_kwargs["input_shape"])).astype("float32")
    if isinstance(target, int):
        y, compile_kwargs = rng.integers(0, target, size=4), _CE
    else:
        out_shape = factory(**init_kwargs).output_shape[1:]
        y, compile_kwargs = rng.uniform(-1, 1, size=(4, *out_shape)).astype("float32"), _MSE
    run_model_case(factory, init_kwargs, (x, y), compile_kwargs=compile_kwargs, tmp_path=tmp_path, atol=1e-5)


@pytest.mark.slow
def test_conv_decoder_passes_the_harness(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 6)).astype("float32")
    images = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    run_model_case(A.ConvDecoder, dict(latent_dim=6, output_shape=(8, 8, 1), filters=(8, 4)), (z, images),
                   compile_kwargs=_MSE, tmp_path=tmp_path, atol=1e-5)
