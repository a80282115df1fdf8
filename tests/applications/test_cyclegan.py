import keras
import numpy as np
import pytest

from keras_imbalance.applications import ImbalanceCycleGANClassifier, PatchGANDiscriminator, ResnetGenerator
from keras_imbalance.applications.cyclegan import _upsample_conv
from keras_imbalance.layers import ReflectionPadding2D


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _conv_params(k, cin, cout):
    return k * k * cin * cout + cout  # convs keep their bias (instance norm has no affine terms)


def _generator_params(c, f=64, blocks=9, c_out=None):
    c_out = c_out or c
    return (_conv_params(7, c, f) + _conv_params(3, f, 2 * f) + _conv_params(3, 2 * f, 4 * f)
            + blocks * 2 * _conv_params(3, 4 * f, 4 * f)
            + _conv_params(3, 4 * f, 2 * f) + _conv_params(3, 2 * f, f) + _conv_params(7, f, c_out))


def test_generator_parameter_count():
    # The count does not depend on the spatial size, so build it small.
    model = ResnetGenerator(input_shape=(16, 16, 3), filters=64, num_residual_blocks=9)
    assert _trainable(model) == 11_378_179 == _generator_params(3)
    assert not model.non_trainable_weights
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert len(norms) == 2 + 2 + 2 * 9 + 1 and all(not n.weights for n in norms)
    assert sum(isinstance(layer, ReflectionPadding2D) for layer in model.layers) == 2 + 2 * 9


@pytest.mark.parametrize("shape, blocks", [((16, 16, 1), 2), ((12, 20, 3), 1), ((32, 8, 4), 0)])
def test_generator_shapes_any_size_and_channels(shape, blocks):
    model = ResnetGenerator(input_shape=shape, filters=8, num_residual_blocks=blocks)
    assert _trainable(model) == _generator_params(shape[-1], 8, blocks)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, *shape)).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == (2, *shape)
    assert np.all(np.abs(y) <= 1)
    assert ResnetGenerator(input_shape=shape, filters=4, num_residual_blocks=0, output_channels=2).output_shape == (None, *shape[:2], 2)


def test_generator_rejects_sizes_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(input_shape=(18, 16, 3))
    with pytest.raises(ValueError, match="height, width, channels"):
        ResnetGenerator(input_shape=(16, 16))


def test_upsampling_matches_pytorch_conv_transpose_definition():
    """ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) written out as a scatter-add."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 4, 2)).astype("float32")
    inputs = keras.Input((3, 4, 2))
    model = keras.Model(inputs, _upsample_conv(inputs, 5, "up"))
    kernel, bias = (np.asarray(w) for w in model.get_layer("up_conv").weights)  # kernel (kh, kw, out, in)
    bias = rng.normal(size=bias.shape).astype("float32")
    model.get_layer("up_conv").set_weights([kernel, bias])
    h, w = 3, 4
    full = np.zeros((2 * h + 1 + 1, 2 * w + 1 + 1, 5), "float32")  # + output_padding room
    for i in range(h):
        for j in range(w):
            full[2 * i : 2 * i + 3, 2 * j : 2 * j + 3] += np.einsum("abok,k->abo", kernel, x[0, i, j])
    expected = full[1 : 1 + 2 * h, 1 : 1 + 2 * w] + bias  # drop `padding=1` at the start, keep 2H rows
    np.testing.assert_allclose(np.asarray(model(x))[0], expected, atol=1e-5)


def test_generator_keras_round_trip(tmp_path):
    model = ResnetGenerator(input_shape=(8, 8, 3), filters=4, num_residual_blocks=1)
    x = np.random.default_rng(1).uniform(-1, 1, size=(2, 8, 8, 3)).astype("float32")
    model.save(tmp_path / "g.keras")
    reloaded = keras.saving.load_model(tmp_path / "g.keras")
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6)


def _patch_size(s, num_layers):
    # PyTorch output size of k4/p1 convs: floor((s + 2 - 4) / stride) + 1.
    for _ in range(num_layers):
        s = (s - 2) // 2 + 1
    return s - 1 - 1


def test_discriminator_parameter_count_and_patch_map():
    model = PatchGANDiscriminator(input_shape=(256, 256, 3))
    expected = (_conv_params(4, 3, 64) + _conv_params(4, 64, 128) + _conv_params(4, 128, 256)
                + _conv_params(4, 256, 512) + _conv_params(4, 512, 1))
    assert _trainable(model) == 2_764_737 == expected
    assert model.output_shape == (None, 30, 30, 1) == (None, _patch_size(256, 3), _patch_size(256, 3), 1)


@pytest.mark.parametrize("shape, num_layers", [((32, 32, 1), 3), ((24, 40, 3), 3), ((28, 28, 1), 2)])
def test_discriminator_small_inputs(shape, num_layers, tmp_path):
    model = PatchGANDiscriminator(input_shape=shape, filters=8, num_layers=num_layers)
    out_hw = (_patch_size(shape[0], num_layers), _patch_size(shape[1], num_layers))
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, *shape)).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == (2, *out_hw, 1)
    model.save(tmp_path / "d.keras")
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(tmp_path / "d.keras")(x)), y, atol=1e-6)


def test_discriminator_rejects_too_small_inputs():
    with pytest.raises(ValueError, match=">= 24"):
        PatchGANDiscriminator(input_shape=(16, 16, 3))


def test_imbalance_cyclegan_classifier():
    model = ImbalanceCycleGANClassifier(input_shape=(256, 256, 3))
    trunk = (_conv_params(4, 3, 64) + _conv_params(4, 64, 128) + _conv_params(4, 128, 256)
             + _conv_params(4, 256, 512) + _conv_params(4, 512, 1))
    head = (30 * 30 + 1) * 1024 + (1024 + 1) * 256 + (256 + 1) * 2
    assert _trainable(model) == trunk + head
    assert model.output_shape == (None, 2)
    assert model.get_layer("dropout").rate == 0.5
    small = ImbalanceCycleGANClassifier(input_shape=(32, 32, 1), filters=8, dense_units=(16, 8), num_classes=3)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 32, 32, 1)).astype("float32")
    assert np.asarray(small(x)).shape == (2, 3)
    assert ImbalanceCycleGANClassifier(input_shape=(32, 32, 1), include_top=False).output_shape == (None, 256)
    with pytest.raises(ValueError, match="fixed input size"):
        ImbalanceCycleGANClassifier(input_shape=(None, None, 3))
