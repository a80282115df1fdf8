"""Serving: the exported folder is checked through the same SignatureDef path
the model server uses (tf.saved_model.load / saved_model_cli), and the REST and
gRPC message formats go through it end to end (gRPC over a loopback socket)."""

import json
import os
import subprocess
import sys
from concurrent import futures

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_imbalance import applications
from keras_imbalance import serving


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(1)
    model = applications.SmallCNN((8, 8, 1), 4, filters=(4, 8), dense_units=8)
    base = tmp_path_factory.mktemp("served") / "digits"
    path = serving.export_for_serving(model, base, version=3)
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype(np.uint8)
    logits = np.asarray(model.predict(images.astype("float32") / 255.0, verbose=0))
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return model, base, path, images, expected


def test_layout_and_signature_contract(exported):
    _, base, path, _, _ = exported
    assert path == os.path.join(str(base), "3")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(path, "variables"))
    signature = tf.saved_model.load(path).signatures["serving_default"]
    (inputs,) = signature.structured_input_signature[1].values()
    assert list(signature.structured_input_signature[1]) == ["images"]
    assert inputs.dtype == tf.uint8 and inputs.shape.as_list() == [None, 8, 8, 1]
    outputs = signature.structured_outputs
    assert set(outputs) == {"probabilities", "class_id"}
    assert outputs["probabilities"].dtype == tf.float32 and outputs["probabilities"].shape.as_list() == [None, 4]
    assert outputs["class_id"].dtype == tf.int64 and outputs["class_id"].shape.as_list() == [None]


def test_scaling_inside_the_graph_matches_training(exported):
    _, _, path, images, expected = exported
    out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(out["class_id"].numpy(), expected.argmax(1))


def test_value_range_and_float_input(tmp_path):
    model = applications.SmallCNN((8, 8, 1), 3, filters=(4,), dense_units=0)
    images = np.arange(2 * 64, dtype=np.uint8).reshape(2, 8, 8, 1)
    path = serving.export_for_serving(model, tmp_path / "m", value_range=(-1, 1))
    got = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))["probabilities"]
    logits = np.asarray(model(images.astype("float32") / 255.0 * 2 - 1))
    np.testing.assert_allclose(got.numpy(), tf.nn.softmax(logits).numpy(), atol=1e-5)
    path = serving.export_for_serving(model, tmp_path / "f", input_dtype="float32")
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    got = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(x))["probabilities"]
    np.testing.assert_allclose(got.numpy(), tf.nn.softmax(np.asarray(model(x))).numpy(), atol=1e-5)


def _cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([cli, *args], capture_output=True, text=True, env=env, timeout=300)


def test_saved_model_cli_show_and_run(exported, tmp_path):
    _, _, path, images, expected = exported
    shown = _cli("show", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default")
    assert shown.returncode == 0, shown.stderr
    assert "inputs['images'] tensor_info:" in shown.stdout and "dtype: DT_UINT8" in shown.stdout
    assert "outputs['class_id']" in shown.stdout and "outputs['probabilities']" in shown.stdout
    np.save(tmp_path / "images.npy", images)
    ran = _cli("run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
               "--inputs", f"images={tmp_path / 'images.npy'}", "--outdir", str(tmp_path / "out"))
    assert ran.returncode == 0, ran.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out" / "probabilities.npy"), expected, atol=1e-5)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "class_id.npy"), expected.argmax(1))


@pytest.mark.parametrize("fmt", ["instances", "inputs"])
def test_rest_round_trip(exported, fmt):
    _, _, path, images, expected = exported
    body = json.dumps(serving.rest_predict_body(images, format=fmt))
    response = json.dumps(serving.predict_rest_locally(path, body))
    parsed = serving.parse_rest_response(response)
    np.testing.assert_allclose(parsed["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(parsed["class_id"], expected.argmax(1))
    assert json.loads(body)["signature_name"] == "serving_default"


def test_rest_errors(exported):
    _, _, path, images, _ = exported
    with pytest.raises(ValueError, match="unknown input"):
        serving.predict_rest_locally(path, {"instances": [{"pixels": images[0].tolist()}]})
    with pytest.raises(ValueError, match="no signature 'nope'"):
        serving.predict_rest_locally(path, {"signature_name": "nope", "instances": [{"images": images[0].tolist()}]})
    with pytest.raises(RuntimeError, match="error"):
        serving.parse_rest_response({"error": "Servable not found"})
    with pytest.raises(ValueError, match="format"):
        serving.rest_predict_body(images, format="csv")


def test_grpc_round_trip_over_loopback(exported):
    grpc = pytest.importorskip("grpc")
    prediction_service_pb2_grpc = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    _, _, path, images, expected = exported

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return serving.predict_grpc_locally(path, request)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = serving.grpc_predict_request("digits", images, version=3)
            assert request.inputs["images"].dtype == tf.uint8.as_datatype_enum
            response = stub.Predict(request, timeout=60)
    finally:
        server.stop(0)
    parsed = serving.parse_grpc_response(response)
    np.testing.assert_allclose(parsed["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(parsed["class_id"], expected.argmax(1))
    assert response.model_spec.name == "digits"


def test_versions_are_not_overwritten_by_accident(exported, tmp_path):
    model, _, _, _, _ = exported
    path = serving.export_for_serving(model, tmp_path / "m", version=1)
    marker = os.path.join(path, "marker")
    open(marker, "w").close()
    with pytest.raises(FileExistsError, match="already exists"):
        serving.export_for_serving(model, tmp_path / "m", version=1)
    assert os.path.exists(marker)  # nothing already saved is lost
    serving.export_for_serving(model, tmp_path / "m", version=1, overwrite=True)
    assert not os.path.exists(marker)
    assert sorted(os.listdir(tmp_path / "m")) == ["1"]
    with pytest.raises(ValueError, match="version"):
        serving.export_for_serving(model, tmp_path / "m", version=0)
    with pytest.raises(ValueError, match="input_dtype"):
        serving.export_for_serving(model, tmp_path / "m", version=2, input_dtype="int8")


def test_method_model_exports_its_classifier_and_generate_signature(tmp_path):
    class TwoPlayer(keras.Model):
        """Stand-in for a generating method model: a classifier plus a generator([z, labels])."""

        latent_dim = 3

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.classifier = applications.SmallCNN((8, 8, 1), 3, filters=(4,), dense_units=0)
            z = keras.Input((3,))
            labels = keras.Input((), dtype="int32")
            bank = keras.layers.Embedding(3, 64, embeddings_initializer="uniform")(labels)
            samples = keras.layers.Reshape((8, 8, 1))(bank + 0.0 * keras.layers.Dense(64)(z))
            self.generator = keras.Model([z, labels], samples)
            self.built = True  # as every method model does once its players exist

        def call(self, x):
            return self.classifier(x)

    model = TwoPlayer()
    path = serving.export_for_serving(model, tmp_path / "two")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "generate"}
    samples = loaded.signatures["generate"](class_ids=tf.constant([2, 0]), seed=tf.constant(7))["samples"]
    expected = model.generator([np.zeros((2, 3), "float32"), np.array([2, 0])])
    np.testing.assert_allclose(samples.numpy(), np.asarray(expected), atol=1e-6)


def test_models_config(tmp_path):
    text = serving.write_models_config({"gamo": tmp_path / "gamo", "m2m": "/models/m2m"}, tmp_path / "models.config")
    assert text.count("config {") == 2 and 'name: "gamo"' in text and 'base_path: "/models/m2m"' in text
    assert 'model_platform: "tensorflow"' in text
    assert (tmp_path / "models.config").read_text() == text
    with pytest.raises(ValueError, match="name"):
        serving.write_models_config({"bad name": "/x"}, tmp_path / "x.config")


def test_gamo_exports_classifier_and_generate_signature(tmp_path):
    from keras_imbalance.models import GAMO

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [6, 3, 1])
    x = rng.uniform(-1, 1, (len(y), 8, 8, 1)).astype("float32")
    model = GAMO(applications.GAMOClassifier((8, 8, 1), 3, hidden_units=(8,)),
                 applications.GAMODiscriminator((8, 8, 1), 3, hidden_units=(8,)), latent_dim=4, seed=0,
                 pixel_range=(-1, 1)).adapt(x, y)
    model.compile()
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    # The model carries its range: an export that names another one is refused, not silently applied.
    with pytest.raises(ValueError, match=r"differs from the pixel_range \(-1.0, 1.0\) the model carries"):
        serving.export_for_serving(model, tmp_path / "bad", value_range=(0, 1))
    path = serving.export_for_serving(model, tmp_path / "gamo")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "generate"}
    images = rng.integers(0, 256, (3, 8, 8, 1)).astype(np.uint8)
    probs = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    logits = np.asarray(model.predict(images.astype("float32") / 255 * 2 - 1, verbose=0))
    np.testing.assert_allclose(probs, tf.nn.softmax(logits).numpy(), atol=1e-5)
    generate = loaded.signatures["generate"]
    samples = generate(class_ids=tf.constant([1, 1, 2]), seed=tf.constant(3))["samples"].numpy()
    again = generate(class_ids=tf.constant([1, 1, 2]), seed=tf.constant(3))["samples"].numpy()
    np.testing.assert_array_equal(samples, again)  # same seed, same samples
    # Each sample is a convex combination of its class's stored samples: inside the bank's bounding box,
    # and the single sample of class 2 comes back exactly.
    bank1 = x[y == 1]
    assert np.all(samples[:2] >= bank1.min(0) - 1e-5) and np.all(samples[:2] <= bank1.max(0) + 1e-5)
    np.testing.assert_allclose(samples[2], x[y == 2][0], atol=1e-5)


def test_feature_space_gamo_serves_its_classifier_on_images_and_gamo2pix_its_images(tmp_path):
    """Feature-space GAMO: serving_default is M(F(x)) on images, not M on features. GAMO2Pix (no classifier): its
    `generate` (and serving_default) gives images, GAMO's features decoded by each class's VAE."""
    from keras_imbalance.models import GAMO, GAMO2Pix

    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], [6, 3, 2])
    x = rng.uniform(-1, 1, (len(y), 8, 8, 1)).astype("float32")
    extractor = applications.GAMOFeatureExtractor((8, 8, 1), filters=4, feature_dim=6)
    gamo = GAMO(applications.GAMOClassifier((6,), 3, hidden_units=(8,)), feature_extractor=extractor, latent_dim=4,
                seed=0).adapt(x, y)
    path = serving.export_for_serving(gamo, tmp_path / "gamo", input_dtype="float32")
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert served.structured_input_signature[1]["images"].shape.as_list() == [None, 8, 8, 1]
    probs = served(images=tf.constant(x))["probabilities"].numpy()
    np.testing.assert_allclose(probs, tf.nn.softmax(np.asarray(gamo.predict(x, verbose=0))).numpy(), atol=1e-5)

    pix = GAMO2Pix.from_gamo(gamo, latent_dim=3, filters=4, seed=0)
    assert pix.generator_latent_dim == 4 and pix.latent_dim == 3 and pix.minority_classes == [1, 2]
    path = serving.export_for_serving(pix, tmp_path / "pix")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "generate"}
    images = loaded.signatures["generate"](class_ids=tf.constant([1, 2, 2]), seed=tf.constant(5))["samples"].numpy()
    assert images.shape == (3, 8, 8, 1) and images.dtype == np.float32
    # The same computation in Python: z and eps drawn from the seed as the signature draws them.
    z = tf.random.stateless_normal((3, 4), seed=[5, 0])
    eps = tf.random.stateless_normal((3, 3), seed=[5, 1])
    expected = np.asarray(pix.decode_samples(z, np.array([1, 2, 2]), eps))
    np.testing.assert_allclose(images, expected, atol=1e-5)
    # Sample i is decoded by the VAE of its own class.
    feats = np.asarray(gamo.generator([z, tf.constant([1, 2, 2])], training=False))
    mu, logvar = pix.vaes[2].mu_head(feats[2:3])
    np.testing.assert_allclose(images[2:3], np.asarray(pix.vaes[2].decoder(mu + tf.exp(0.5 * logvar) * eps[2:3])), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"classes the generator makes, \[1, 2\]"):
        loaded.signatures["generate"](class_ids=tf.constant([0]), seed=tf.constant(0))


def test_generate_signature_refuses_classes_without_a_generator(tmp_path):
    from keras_imbalance.models import GAMO

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [6, 3, 2])
    x = rng.uniform(0, 1, (len(y), 8, 8, 1)).astype("float32")
    model = GAMO(applications.GAMOClassifier((8, 8, 1), 3, hidden_units=(8,)), latent_dim=4, seed=0).adapt(x, y)
    path = serving.export_for_serving(model, tmp_path / "gamo")
    generate = tf.saved_model.load(path).signatures["generate"]
    assert generate(class_ids=tf.constant([1, 2]), seed=tf.constant(0))["samples"].shape == (2, 8, 8, 1)
    # The majority (0) has no generator unit; 3 and -1 are no class at all. Python's sample() refuses them too.
    for bad in ([0], [1, 3], [-1]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"classes the generator makes, \[1, 2\]"):
            generate(class_ids=tf.constant(bad), seed=tf.constant(0))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"classes the generator makes"):
            serving.predict_rest_locally(path, {"signature_name": "generate", "inputs": {"class_ids": bad, "seed": 0}})
    # The local server checks dtypes and shapes before the graph does: float class ids, a batch of seeds.
    for inputs, message in [({"class_ids": [1.0], "seed": 0}, "'class_ids' must hold integers"),
                            ({"class_ids": [1], "seed": [0, 1]}, r"'seed' has shape \(2,\)"),
                            ({"class_ids": [1], "seed": 2**40}, "int32 range"),
                            ({"class_ids": [1]}, r"missing input\(s\) \['seed'\]")]:
        with pytest.raises(ValueError, match=message):
            serving.predict_rest_locally(path, {"signature_name": "generate", "inputs": inputs})
    with pytest.raises(ValueError):
        model.sample(2, 0)


def test_request_helpers_refuse_what_a_cast_would_wrap(exported):
    _, _, path, images, _ = exported
    for bad, message in [
        (images.astype("float32") / 255.0, "fractional"),
        (images.astype("int32") + 300, r"0\.\.255"),
        (images.astype("int32") - 1000, r"0\.\.255"),
        (np.full(images.shape, np.nan), "NaN"),
        (images[0, 0, 0], "batch"),
    ]:
        with pytest.raises(ValueError, match=message):
            serving.rest_predict_body(bad)
        with pytest.raises(ValueError, match=message):
            serving.grpc_predict_request("digits", bad)
    # The local server refuses the same as the helpers (a hand-written body skips them).
    with pytest.raises(ValueError, match=r"0\.\.255"):
        serving.predict_rest_locally(path, {"instances": [{"images": (images[0].astype(int) + 256).tolist()}]})
    # An image of another size or channel count is refused by name, before the graph sees it.
    with pytest.raises(ValueError, match=r"'images' has shape \(1, 8, 8, 3\); the signature takes \(None, 8, 8, 1\)"):
        serving.predict_rest_locally(path, {"instances": [{"images": np.repeat(images[0], 3, -1).tolist()}]})
    # Floats are refused by a uint8 signature even when whole (the server refuses a JSON float for uint8);
    # integers in 0..255 of any integer dtype (as JSON decodes them) are pixels; float32 signatures take floats.
    for send in (lambda b: serving.rest_predict_body(b), lambda b: serving.grpc_predict_request("digits", b),
                 lambda b: serving.predict_rest_locally(path, {"inputs": {"images": b.tolist()}})):
        with pytest.raises(ValueError, match="float64 holding whole-number floats.*send uint8"):
            send(images.astype("float64"))
    body = serving.rest_predict_body(images.astype("int64"))
    assert body["instances"][0]["images"] == images[0].tolist()
    floats = serving.rest_predict_body(images / 255.0, signature_name="translate_ab")
    assert isinstance(floats["instances"][0]["images"][0][0][0], float)



def _classes_on_raw_pixels(model, pixels, tmp_path, capsys, monkeypatch):
    """Predicted classes of uint8 `pixels` through every path: {path: classes}.

    The `.keras` file (keras.saving.load_model), the SavedModel's
    serving_default, `keras-imbalance predict FILE` and `predict PRESET` on
    PNG files; none is told the model's pixel range.
    """
    from keras_imbalance import cli
    from keras_imbalance import presets

    # The preset folder holds all three: the .keras file, the SavedModel (from export_for_serving) and the name.
    folder = presets.save_preset(model, "ranged", tmp_path / "presets", {"method": "test"})
    monkeypatch.setenv("KERAS_IMBALANCE_PRESETS", str(tmp_path / "presets"))
    keras_path = os.path.join(folder, "ranged.keras")
    served = tf.saved_model.load(os.path.join(folder, "1"))
    pngs = []
    for i, image in enumerate(pixels):
        pngs.append(str(tmp_path / f"digit{i}.png"))
        keras.utils.save_img(pngs[-1], image, scale=False)

    def cli_classes(model_argument):
        capsys.readouterr()
        assert cli.main(["predict", model_argument, *pngs]) == 0
        return np.array([int(line.split(": class ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()])

    return {
        ".keras": np.asarray(keras.saving.load_model(keras_path).predict(pixels, verbose=0)).argmax(1),
        "SavedModel": served.signatures["serving_default"](images=tf.constant(pixels))["class_id"].numpy(),
        "predict FILE": cli_classes(keras_path),
        "predict PRESET": cli_classes("ranged"),
    }


def _digits_pixels(per_class):
    from keras_imbalance import datasets

    (x_pool, y_pool), (x_test, _) = datasets.load_digits(test_per_class=per_class)
    return x_pool, y_pool, np.round(x_test * 255).astype(np.uint8)


def _check_every_path(model, pixels, low, high, tmp_path, capsys, monkeypatch):
    expected = np.asarray(model.predict(pixels / 255.0 * (high - low) + low, verbose=0)).argmax(1)  # training range
    # The check can tell the ranges apart: the loaders' [0, 1] gives other classes for some images.
    assert np.any(np.asarray(model.predict(pixels / 255.0, verbose=0)).argmax(1) != expected)
    for path_name, got in _classes_on_raw_pixels(model, pixels, tmp_path, capsys, monkeypatch).items():
        np.testing.assert_array_equal(got, expected, err_msg=path_name)


def test_classifier_in_minus_one_one_agrees_on_raw_pixels_in_every_path(tmp_path, capsys, monkeypatch):
    """A plain classifier given the range (-1, 1) (the fast case of the GAMO test below)."""
    from keras_imbalance.models import with_pixel_range

    keras.utils.set_random_seed(0)
    _, _, pixels = _digits_pixels(2)
    model = with_pixel_range(applications.SmallCNN((8, 8, 1), 10, filters=(4,), dense_units=0), (-1, 1))
    _check_every_path(model, pixels, -1.0, 1.0, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
def test_gamo_trained_in_minus_one_one_agrees_on_raw_pixels_in_every_path(tmp_path, capsys, monkeypatch):
    """Issue 20: a GAMO trained in [-1, 1] (its paper's range) carries the range, so the `.keras` file, the
    SavedModel and `keras-imbalance predict` (a file and a preset) give the in-memory model's classes on raw
    uint8 PNGs, with no value-range flag anywhere."""
    from keras_imbalance import datasets
    from keras_imbalance.models import GAMO

    x_pool, y_pool, pixels = _digits_pixels(4)
    x, y = datasets.make_imbalanced(x_pool, y_pool, [12, 6, 3, 2, 2, 2, 2, 2, 2, 2], seed=0)
    model = GAMO(applications.GAMOClassifier((8, 8, 1), 10, hidden_units=(16,)),
                 applications.GAMODiscriminator((8, 8, 1), 10, hidden_units=(8,)), latent_dim=4, seed=0,
                 pixel_range=(-1, 1)).adapt(x * 2 - 1, y)
    model.compile()
    model.fit(x * 2 - 1, y, batch_size=16, epochs=1, verbose=0)
    _check_every_path(model, pixels, -1.0, 1.0, tmp_path, capsys, monkeypatch)
