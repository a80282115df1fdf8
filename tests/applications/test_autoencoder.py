import keras
import numpy as np
import pytest

from keras_imbalance.applications import ConvDecoder, ConvEncoder
from keras_imbalance.datasets import load_digits


@pytest.mark.parametrize("shape, filters", [((8, 8, 1), (16, 32)), ((28, 28, 1), (32, 64)), ((32, 32, 3), (16, 32, 64))])
def test_shapes_mirror(shape, filters):
    enc = ConvEncoder(shape, latent_dim=10, filters=filters)
    dec = ConvDecoder(10, shape, filters=filters[::-1])
    assert enc.output_shape == (None, 10)
    assert dec.output_shape == (None, *shape)
    y = np.asarray(dec(enc(np.zeros((2, *shape), "float32"))))
    assert y.shape == (2, *shape) and np.all((y >= 0) & (y <= 1))


def test_autoencoder_learns_digits_and_round_trips(tmp_path):
    (x, _), _ = load_digits()
    x = x[:256]
    keras.utils.set_random_seed(0)
    enc = ConvEncoder((8, 8, 1), latent_dim=16, filters=(16, 32))
    dec = ConvDecoder(16, (8, 8, 1), filters=(32, 16))
    inputs = keras.Input((8, 8, 1))
    ae = keras.Model(inputs, dec(enc(inputs)))
    ae.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    mean_image_mse = float(np.mean((x - x.mean(axis=0)) ** 2))
    ae.fit(x, x, batch_size=32, epochs=15, verbose=0)
    mse = float(ae.evaluate(x, x, verbose=0))
    # Better than the best constant image: the codes carry information about each digit.
    assert mse < 0.5 * mean_image_mse, (mse, mean_image_mse)
    ae.save(tmp_path / "ae.keras")
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(tmp_path / "ae.keras").predict(x[:8], verbose=0)),
                               np.asarray(ae.predict(x[:8], verbose=0)), atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvEncoder((10, 10, 1), filters=(8, 8))
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvDecoder(4, (28, 28, 1), filters=(8, 8, 8))
    with pytest.raises(ValueError, match="latent_dim"):
        ConvEncoder((8, 8, 1), latent_dim=0)
