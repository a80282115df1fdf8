import keras
import numpy as np

from keras_imbalance.applications import PreActResNet18


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _expected(num_classes=10, in_channels=3, final_bn=True, widths=(64, 128, 256, 512)):
    total = 9 * in_channels * widths[0]
    prev = widths[0]
    for w in widths:
        for _ in range(2):
            total += 2 * prev + 9 * prev * w + 2 * w + 9 * w * w  # bn1, conv1, bn2, conv2
            if prev != w:
                total += prev * w  # 1x1 projection shortcut, no bias
            prev = w
    if final_bn:
        total += 2 * widths[-1]
    return total + widths[-1] * num_classes + num_classes


def test_parameter_counts():
    # Built at 8x8: the count does not depend on the spatial size.
    assert _trainable(PreActResNet18(input_shape=(8, 8, 3), num_classes=10)) == 11_172_170 == _expected()
    assert _trainable(PreActResNet18(input_shape=(8, 8, 3), num_classes=10, final_bn=False)) == 11_171_146
    narrow = PreActResNet18(input_shape=(8, 8, 1), num_classes=397, widths=(8, 16, 32, 64))
    assert _trainable(narrow) == _expected(397, 1, widths=(8, 16, 32, 64))


def test_shapes_structure_and_round_trip(tmp_path):
    model = PreActResNet18(input_shape=(12, 12, 1), num_classes=5)
    assert model.output_shape == (None, 5)
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    assert model.get_layer("stem_conv").kernel.shape == (3, 3, 1, 64)
    shortcuts = [layer for layer in model.layers if layer.name.endswith("_shortcut")]
    assert [tuple(s.kernel.shape) for s in shortcuts] == [(1, 1, 64, 128), (1, 1, 128, 256), (1, 1, 256, 512)]
    # The final BN-ReLU comes right before pooling.
    assert isinstance(model.get_layer("avg_pool")._inbound_nodes[0].parent_nodes[0].operation, keras.layers.ReLU)
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 1)).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == (2, 5)
    model.save(tmp_path / "p.keras")
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(tmp_path / "p.keras")(x)), y, atol=1e-5)
    features = PreActResNet18(input_shape=(16, 16, 3), include_top=False, widths=(8, 16, 32, 64))
    assert features.output_shape == (None, 64)
    assert tuple(features.get_layer("stage4_block2_add").output.shape) == (None, 2, 2, 64)
