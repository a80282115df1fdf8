import keras
import numpy as np
import pytest

from keras_imbalance.applications import CifarResNet, ResNet20, ResNet32, ResNet44, ResNet56, ResNet110
from keras_imbalance.layers import CosineDense, SubsampleZeroPadShortcut
from tests.harness import run_model_case


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _expected_params(depth, in_channels=3, num_classes=10, widths=(16, 32, 64)):
    """Counted by hand: 3x3 convs without bias, BN gamma+beta, option-A shortcuts (no weights), Linear."""
    n = (depth - 2) // 6
    total = 9 * in_channels * widths[0] + 2 * widths[0]
    prev = widths[0]
    for w in widths:
        for _ in range(n):
            total += 9 * prev * w + 9 * w * w + 4 * w
            prev = w
    return total + widths[-1] * num_classes + num_classes


def test_resnet32_has_the_reference_parameter_count():
    assert _trainable(ResNet32(input_shape=(32, 32, 3), num_classes=10)) == 464_154


@pytest.mark.parametrize("factory, depth", [(ResNet20, 20), (ResNet44, 44), (ResNet56, 56), (ResNet110, 110)])
def test_family_parameter_counts(factory, depth):
    model = factory(input_shape=(8, 8, 3), num_classes=10)
    assert _trainable(model) == _expected_params(depth)
    assert model.name == f"resnet{depth}"
    # Option-A shortcuts only where the width doubles: at the start of stages 2 and 3.
    assert sum(isinstance(layer, SubsampleZeroPadShortcut) for layer in model.layers) == 2
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == depth - 1


def test_cosine_classifier_head():
    model = ResNet32(num_classes=10, cosine_classifier=True, input_shape=(16, 16, 3))
    assert isinstance(model.layers[-1], CosineDense)
    assert _trainable(model) == 464_154 - 10  # NormedLinear has no bias
    y = np.asarray(model(np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")))
    assert y.shape == (2, 10) and np.all(np.abs(y) <= 1 + 1e-5)


@pytest.mark.parametrize("shape, pooled", [((32, 32, 3), (8, 8)), ((16, 16, 1), (4, 4)), ((28, 28, 3), (7, 7)), ((9, 13, 2), (3, 4))])
def test_output_shapes(shape, pooled):
    model = ResNet20(input_shape=shape, num_classes=7)
    assert model.output_shape == (None, 7)
    # The last feature map is the input downsampled twice (ceil), like PyTorch's padding=1 stride-2 convs.
    assert tuple(model.get_layer("stage3_block3_out").output.shape[1:3]) == pooled
    features = ResNet20(input_shape=shape, include_top=False)
    assert features.output_shape == (None, 64)
    x = np.zeros((2, *shape), "float32")
    assert np.asarray(model(x)).shape == (2, 7)


def test_batchnorm_and_initialization_follow_the_reference():
    model = ResNet32(input_shape=(8, 8, 3))
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 31 and all(bn.momentum == 0.9 and bn.epsilon == 1e-5 for bn in bns)
    kernel = np.asarray(model.get_layer("stage3_block5_conv2").kernel)
    fan_in = 3 * 3 * 64
    # kaiming_normal_: N(0, 2 / fan_in), untruncated (a truncated normal never exceeds 2 std).
    assert abs(kernel.std() / np.sqrt(2 / fan_in) - 1) < 0.03
    assert np.abs(kernel).max() > 3 * np.sqrt(2 / fan_in)


def test_harness_resnet20_fit_round_trip_and_savedmodel(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 10, size=8)
    run_model_case(
        ResNet20,
        dict(input_shape=(16, 16, 3), num_classes=10),
        (x, y),
        compile_kwargs={"optimizer": "sgd", "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
        tmp_path=tmp_path,
        expected_output_shape=(8, 10),
    )


def test_local_weights_and_errors(tmp_path):
    source = ResNet20(input_shape=(8, 8, 3), num_classes=3, cosine_classifier=True)
    path = tmp_path / "r20.weights.h5"
    source.save_weights(path)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    loaded = ResNet20(input_shape=(8, 8, 3), num_classes=3, cosine_classifier=True, weights=str(path))
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(source(x)))
    with pytest.raises(ValueError, match="never downloads"):
        ResNet20(weights="imagenet")
    with pytest.raises(ValueError, match="not found"):
        ResNet20(weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(depth=30)
    with pytest.raises(ValueError, match="height and width >= 4"):
        ResNet20(input_shape=(2, 2, 3))
    with pytest.raises(ValueError, match="num_classes"):
        ResNet20(num_classes=0)


def test_strided_conv_is_centred_on_the_shortcut_samples():
    """A centre-tap identity kernel in the stride-2 conv must reproduce the option-A shortcut
    exactly (PyTorch's symmetric padding=1); Keras "same" padding would shift it by a pixel."""
    model = ResNet20(input_shape=(8, 8, 3))
    conv = model.get_layer("stage2_block1_conv1")
    kernel = np.zeros(conv.kernel.shape, "float32")
    for c in range(16):
        kernel[1, 1, c, c + 8] = 1.0
    conv.set_weights([kernel])
    probe = keras.Model(model.input, [conv.output, model.get_layer("stage2_block1_shortcut").output])
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    conv_out, shortcut_out = (np.asarray(t) for t in probe(x))
    assert np.abs(shortcut_out).max() > 0
    np.testing.assert_allclose(conv_out, shortcut_out, atol=1e-6)
