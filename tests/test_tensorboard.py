"""BalancerTensorBoard: the summaries it writes are read back from the event files."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance import applications
from keras_imbalance.models import GAMO, CycleGAN, ImbalanceCycleGAN, M2m
from keras_imbalance.tensorboard import BalancerTensorBoard, image_grid


def _events(log_dir):
    """{tag: [(step, value)]}: scalars as floats, images as decoded (H, W, C) uint8 arrays."""
    found = {}
    for path in glob.glob(os.path.join(log_dir, "balancer", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "images":
                    decoded = tf.io.decode_png(tensor[2]).numpy()  # [width, height, png...]
                    found.setdefault(value.tag, []).append((event.step, decoded))
                else:
                    found.setdefault(value.tag, []).append((event.step, float(tensor)))
    return found


def _data(rng, n_per_class=(20, 8, 4)):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    x = rng.random((len(y), 4, 4, 1), dtype=np.float32) * 0.5 + y[:, None, None, None] * 0.25
    return x, y


def test_gamo_writes_recall_scalars_and_a_sample_grid(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    model = GAMO(applications.GAMOClassifier((4, 4, 1), 3, hidden_units=(8,)),
                 applications.GAMODiscriminator((4, 4, 1), 3, hidden_units=(8,)), latent_dim=4, seed=0)
    model.adapt(x, y)
    model.compile()
    callback = BalancerTensorBoard(tmp_path, validation_data=(x, y), every_n_epochs=2, samples_per_class=3)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[callback])
    events = _events(str(tmp_path))
    # Written after epoch 2 (index 1) and after the last epoch (index 2).
    assert [s for s, _ in events["balanced_accuracy"]] == [1, 2]
    report_now = callback.per_class_report()
    for c in range(3):
        step, value = events[f"per_class_recall/class_{c}"][-1]
        assert value == pytest.approx(report_now["per_class"]["recall"][c], abs=1e-6)
    # Two minority classes x 3 samples of 4x4 (1-pixel padding), drawn as PNG.
    step, image = events["samples"][-1]
    assert image.shape == (2 * 5 - 1, 3 * 5 - 1, 1)
    # Fixed latent draw: the grid equals what the generator makes with that seed.
    expected = image_grid([model.generate(np.full(3, c, np.int32), seed=0) for c in (1, 2)])
    np.testing.assert_allclose(image[..., 0] / 255.0, expected[..., 0], atol=1 / 255 + 1e-6)


def test_m2m_translation_grid_leaves_the_training_draws_alone(tmp_path):
    rng = np.random.default_rng(1)
    x, y = _data(rng)

    def cnn(name):
        return applications.SmallCNN((4, 4, 1), 3, filters=(4, 4), dense_units=4, name=name)

    model = M2m(cnn("f"), cnn("g"), class_counts=[20, 8, 4], beta=0.9, attack_steps=2, seed=0)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = BalancerTensorBoard(tmp_path, validation_data=(x, y), samples_per_class=2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    before = np.asarray(model.seed_generator.state).copy()
    callback.set_model(model)
    callback.on_train_begin()
    callback.write(0)
    callback.on_train_end()
    np.testing.assert_array_equal(np.asarray(model.seed_generator.state), before)
    image = _events(str(tmp_path))["samples"][0][1]
    # Rows: the seeds (class 0), their translations into class 1 and into class 2.
    assert image.shape == (3 * 5 - 1, 2 * 5 - 1, 1)


def test_imbalance_cyclegan_grid_shows_both_translations(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = np.array([1] * 8 + [0] * 4)  # class 1 is the majority here

    def gen(name):
        return applications.ResnetGenerator((8, 8, 1), filters=2, num_residual_blocks=0, name=name)

    def disc(name):
        return applications.PatchGANDiscriminator((8, 8, 1), filters=2, num_layers=1, name=name)

    gan = CycleGAN(gen("g_ab"), gen("g_ba"), disc("d_a"), disc("d_b"), value_range=(0.0, 1.0), seed=0)
    model = ImbalanceCycleGAN(applications.ImbalanceCycleGANClassifier((8, 8, 1), 2, filters=2, num_layers=1,
                                                                       dense_units=(4,)), gan)
    model.adapt(x, y)
    callback = BalancerTensorBoard(tmp_path, validation_data=(x, y), samples_per_class=2)
    callback.set_model(model)
    callback.write(0)
    events = _events(str(tmp_path))
    image = events["samples"][0][1]
    assert image.shape == (4 * 9 - 1, 2 * 9 - 1, 1)  # a, G_AB(a), b, G_BA(b)
    a, b = x[y == 1][:2], x[y == 0][:2]
    expected = image_grid([a, np.asarray(model.translate_ab(a)), b, np.asarray(model.translate_ba(b))])
    np.testing.assert_allclose(image[..., 0] / 255.0, expected[..., 0], atol=1 / 255 + 1e-6)
    assert len(events["per_class_recall/class_1"]) == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="every_n_epochs"):
        BalancerTensorBoard("logs", every_n_epochs=0)
    with pytest.raises(ValueError, match="as many labels"):
        BalancerTensorBoard("logs", validation_data=(np.zeros((3, 2)), np.zeros(2)))
