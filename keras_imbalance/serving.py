"""Export for TensorFlow Serving, and the request formats its clients speak.

`export_for_serving` writes the layout `tensorflow_model_server` loads
(`export_dir/<version>/saved_model.pb` + `variables/`) with a
`serving_default` signature that takes raw uint8 images and returns class
probabilities and ids, scaled inside the graph to the pixel range the model
carries (`models.pixel_range`), so the SavedModel, the `.keras` file and
`keras-imbalance predict` agree on the same raw pixels. The request helpers build and parse the REST
(`/v1/models/<name>:predict`) and gRPC (`PredictionService/Predict`) messages;
`predict_rest_locally` and `predict_grpc_locally` answer them from an exported
folder exactly as the server would decode them, so a client can be checked
without the server binary (which these machines cannot install).

Security: a SavedModel is a TensorFlow graph: loading one from an untrusted
source runs whatever ops it holds. Treat it like code. `.keras` files load
with `safe_mode=True` (no arbitrary Python lambdas).
"""

import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from keras_imbalance.models.pixel_range import PixelRangeInput
from keras_imbalance.models.pixel_range import check_pixel_range
from keras_imbalance.models.pixel_range import pixel_range_of
from keras_imbalance.models.pixel_range import scale_pixels

SERVING_SIGNATURE = "serving_default"
GENERATE_SIGNATURE = "generate"


def _classifier_of(model):
    """The images -> scores network a model serves: a method model's classifier, behind its feature extractor
    when it classifies features (feature-space GAMO: M(F(x)), Sec. 3.3); a plain model itself."""
    classifier = getattr(model, "classifier", None)
    if classifier is None:
        return model
    extractor = getattr(model, "feature_extractor", None)
    if extractor is None:
        return classifier
    images = keras.Input(tuple(extractor.input_shape[1:]))
    return keras.Model(images, classifier(extractor(images)), name=f"{model.name}_on_images")


def _image_shape(model, input_shape):
    if input_shape is not None:
        return tuple(input_shape)
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = None
    if shape is None or isinstance(shape, list):
        # A translation model takes the images its A -> B generator takes.
        generator_ab = getattr(model, "generator_ab", None)
        if generator_ab is not None:
            return tuple(generator_ab.input_shape[1:])
        raise ValueError("Cannot infer the image shape of this model; pass input_shape=(H, W, C)")
    return tuple(shape[1:])


def generated_classes(model):
    """The class ids a model's `generate` signature accepts: its `minority_classes`, else every class."""
    classes = getattr(model, "minority_classes", None)
    if classes is None:
        classes = range(int(_classifier_of(model).output_shape[-1]))
    classes = sorted(int(c) for c in classes)
    if not classes:
        raise ValueError("the model's generator makes no class (is it adapted?)")
    return classes


def check_request_images(images, dtype="uint8"):
    """Validate a batch of images for a request and return it as `dtype`.

    `"uint8"` (the default signature of a uint8 export) takes integers in
    0..255 (uint8, or any integer dtype, as JSON decodes them) and refuses
    floating arrays, whatever they hold: a float image is either
    preprocessed (fractions; sending it as pixels would give wrong classes)
    or 0..255 floats that the caller should cast to uint8 knowingly, as the
    model server refuses a JSON float for a uint8 input. Values outside
    0..255, which a cast would silently wrap, are refused. `"float32"` (a
    float32 export, the translation signatures) takes finite numbers.
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"images must be a batch (B, ...), got shape {images.shape}")
    if images.dtype.kind not in "iuf":
        raise ValueError(f"images must be numbers, got dtype {images.dtype}")
    if dtype == "float32":
        if not np.all(np.isfinite(images)):
            raise ValueError("images contain NaN or inf")
        return images.astype(np.float32)
    if dtype != "uint8":
        raise ValueError(f"dtype must be 'uint8' or 'float32', got {dtype!r}")
    if images.dtype.kind == "f":
        kind = "NaN or inf" if not np.all(np.isfinite(images)) else (
            "fractional values (such as preprocessed floats)" if not np.all(images == np.round(images)) else
            "whole-number floats")
        raise ValueError(
            f"images are {images.dtype} holding {kind}; the signature takes raw uint8 pixels 0..255 and scales "
            "them itself: send uint8 (cast 0..255 floats with .astype('uint8') knowingly), or export with "
            "input_dtype='float32' to send preprocessed floats"
        )
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"pixel values must be in 0..255, got {images.min()}..{images.max()}")
    return images.astype(np.uint8)


def _request_dtype(dtype, signature_name):
    if dtype is not None:
        return dtype
    return "float32" if signature_name in ("translate_ab", "translate_ba") else "uint8"


def export_for_serving(
    model,
    export_dir,
    version=1,
    input_dtype="uint8",
    value_range=None,
    input_shape=None,
    outputs="logits",
    overwrite=False,
):
    """Write `export_dir/<version>/` for TensorFlow Serving.

    Signatures:

    - `serving_default`: input `images`, (B, H, W, C) of `input_dtype`;
      outputs `probabilities` float32 (B, C) and `class_id` int64 (B,). With
      `input_dtype="uint8"` raw pixels 0..255 are scaled inside the graph to
      the model's `pixel_range` (the range it was trained in, saved with it:
      (0, 1) for this package's loaders, (-1, 1) for GAMO's paper scaling),
      as `model(uint8_images)` scales them; with `"float32"` the images are
      passed as they are (already preprocessed as in training).
    - `generate` (models with a `generator` player called as
      `generator([z, class_ids])` and a `latent_dim`, e.g. GAMO and
      PolarityGAN): inputs `class_ids` int32 (B,) and `seed` int32 scalar
      (z ~ N(0, I) drawn statelessly from it); output `samples`. For
      GAMO2Pix (`decode_samples`), `samples` are images: GAMO's feature
      samples decoded by each class's VAE (z and the VAE noise both drawn
      from `seed`); a GAMO2Pix, which has no classifier, serves it as its
      `serving_default` too.
    - A feature-space GAMO serves its classifier on images, M(F(x)), not
      on features.
    - `translate_ab` / `translate_ba` (models with those methods, e.g.
      CycleGAN): input `images` float32; output `translated`. A model with
      translations and no `classifier` (a bare CycleGAN) serves
      `translate_ab` as its `serving_default`.

    Every output is float32, also for a model trained under mixed precision.

    Args:
        model: a Keras classifier, or a method model (its `classifier` is exported).
        export_dir: the model's base path (TF Serving's `base_path`).
        version: positive int, the version folder.
        input_dtype: `"uint8"` or `"float32"`.
        value_range: None (default): the model's `pixel_range`. Only for a
            plain model, which carries none (its `.keras` file then disagrees
            with the export: prefer `models.with_pixel_range`), a (low, high)
            to scale uint8 pixels to; for a model that carries a range, a
            different one is refused.
        input_shape: (H, W, C) when the model does not know it.
        outputs: what the classifier returns, `"logits"` (package default) or
            `"probabilities"`.
        overwrite: replace an existing version folder; otherwise an existing
            one is an error (nothing already saved is lost).

    Returns:
        The path of the version folder.
    """
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    if input_dtype not in ("uint8", "float32"):
        raise ValueError(f"input_dtype must be 'uint8' or 'float32', got {input_dtype!r}")
    if outputs not in ("logits", "probabilities"):
        raise ValueError(f"outputs must be 'logits' or 'probabilities', got {outputs!r}")
    pixel_range = pixel_range_of(model)
    if value_range is not None:
        value_range = check_pixel_range(value_range, "value_range")
        if isinstance(model, PixelRangeInput) and value_range != pixel_range:
            raise ValueError(
                f"value_range {value_range} differs from the pixel_range {pixel_range} the model carries; set "
                "model.pixel_range (and save the model again) so the .keras file and the export agree")
        pixel_range = value_range
    version_dir = os.path.join(os.fspath(export_dir), str(int(version)))
    if os.path.exists(version_dir):
        if not overwrite:
            raise FileExistsError(f"{version_dir} already exists; pass overwrite=True or a new version")

    if not model.built:
        raise ValueError("the model is not built: call it on a batch (or fit it) before exporting")
    classifier = _classifier_of(model)
    image_sampler = callable(getattr(model, "decode_samples", None))
    no_classifier = getattr(model, "classifier", None) is None
    shape = None if (image_sampler and no_classifier) else _image_shape(classifier, input_shape)  # a sampler takes no images
    archive = keras.export.ExportArchive()
    # Not `archive.track(model)`: add_endpoint tracks the variables each endpoint uses, and tracking the model too
    # stored every variable twice (as the Keras variable and as its tf.Variable): twice the SavedModel's size.

    def classify(images):
        x = scale_pixels(images, pixel_range)  # uint8 -> pixel_range; float32 as it is
        scores = tf.cast(classifier(x, training=False), tf.float32)
        probabilities = tf.nn.softmax(scores, axis=-1) if outputs == "logits" else scores
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    translators = [d for d in ("translate_ab", "translate_ba") if callable(getattr(model, d, None))]
    # A pure translation model (CycleGAN) or image sampler (GAMO2Pix) has no classifier: its default
    # signature is the A -> B translation or the sampler rather than a softmax over pixels.
    translation_only = no_classifier and bool(translators)
    if not (translation_only or (no_classifier and image_sampler)):
        archive.add_endpoint(
            name=SERVING_SIGNATURE,
            fn=classify,
            input_signature=[tf.TensorSpec((None, *shape), tf.dtypes.as_dtype(input_dtype), name="images")],
        )
    generator, latent_dim = getattr(model, "generator", None), getattr(model, "latent_dim", None)
    if image_sampler and generator is not None:
        _add_generate(archive, model, sampler=True, names=[GENERATE_SIGNATURE] + ([SERVING_SIGNATURE] if no_classifier else []))
    elif generator is not None and latent_dim:
        _add_generate(archive, model, sampler=False, names=[GENERATE_SIGNATURE])

    def _translation(fn):
        # A closure, not a lambda with a default argument: tf.function would
        # take the default (a bound method) for an input it cannot encode.
        def translate(images):
            return {"translated": tf.cast(fn(images), tf.float32)}  # float32 under mixed precision too

        return translate

    for direction in translators:
        names = [direction] + ([SERVING_SIGNATURE] if translation_only and direction == "translate_ab" else [])
        for name in names:
            archive.add_endpoint(
                name=name,
                fn=_translation(getattr(model, direction)),
                input_signature=[tf.TensorSpec((None, *shape), tf.float32, name="images")],
            )
    # Write next to the target, then move into place, so a failed export
    # never leaves a half-written version that the server would try to load.
    staging = version_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    archive.write_out(staging, verbose=False)
    if os.path.exists(version_dir):
        shutil.rmtree(version_dir)
    os.replace(staging, version_dir)
    return version_dir


def _add_generate(archive, model, sampler, names):
    """The `generate` endpoint(s): (class_ids int32 (B,), seed int32) -> {"samples": float32}.

    `sampler=False`: `generator([z, class_ids])` with z ~ N(0, I) of size
    `model.latent_dim` (GAMO, PolarityGAN). `sampler=True`:
    `model.decode_samples(z, class_ids, eps)` with z of size
    `model.generator_latent_dim` and eps of size `model.latent_dim`
    (GAMO2Pix's images). Stateless draws: the seed arrives as a tensor, and
    the same seed must give the same samples on every call. A class without
    a generator unit (the majority) or out of range is refused, as
    `model.sample` refuses it, instead of coming back as an all-zero sample.
    """
    generated = generated_classes(model)
    allowed = tf.constant(np.isin(np.arange(max(generated) + 1), generated))
    refusal = f"class_ids must be classes the generator makes, {generated}"
    z_dim = int(model.generator_latent_dim if sampler else model.latent_dim)

    def make_generate():  # one function per endpoint name
        def generate(class_ids, seed):
            inside = (class_ids >= 0) & (class_ids < tf.size(allowed, out_type=class_ids.dtype))
            known = tf.gather(allowed, tf.clip_by_value(class_ids, 0, tf.size(allowed, out_type=class_ids.dtype) - 1))
            check = tf.debugging.assert_equal(tf.reduce_all(inside & known), True, message=refusal)
            with tf.control_dependencies([check]):
                batch = tf.shape(class_ids)[0]
                z = tf.random.stateless_normal((batch, z_dim), seed=tf.stack([seed, 0]))
            if sampler:
                eps = tf.random.stateless_normal((batch, int(model.latent_dim)), seed=tf.stack([seed, 1]))
                return {"samples": tf.cast(model.decode_samples(z, class_ids, eps), tf.float32)}
            return {"samples": tf.cast(model.generator([z, class_ids], training=False), tf.float32)}

        return generate

    for name in names:
        archive.add_endpoint(
            name=name,
            fn=make_generate(),
            input_signature=[tf.TensorSpec((None,), tf.int32, name="class_ids"), tf.TensorSpec((), tf.int32, name="seed")],
        )


def write_models_config(models, path):
    """Write TF Serving's `--model_config_file` for several models.

    Args:
        models: dict name -> base path (the folder holding version folders).
        path: where to write the text-format `ModelServerConfig`.

    Returns:
        The text written.
    """
    if not models:
        raise ValueError("models is empty: give at least one name -> base path")
    lines = ["model_config_list {"]
    for name, base_path in models.items():
        if not name or any(ch in name for ch in ' "/\n'):
            raise ValueError(f"model name {name!r} must be non-empty without spaces, quotes or slashes")
        lines += [
            "  config {",
            f'    name: "{name}"',
            f'    base_path: "{os.path.abspath(os.fspath(base_path))}"',
            '    model_platform: "tensorflow"',
            "  }",
        ]
    lines.append("}")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def rest_predict_body(images, format="instances", signature_name=SERVING_SIGNATURE, input_name="images", dtype=None):
    """The JSON body of a REST `:predict` request.

    `format="instances"` is the row format (`{"instances": [{"images": ...}]}`),
    `"inputs"` the columnar one (`{"inputs": {"images": [...]}}`). `dtype` is
    the signature's input type (`check_request_images`); None means uint8 for
    `serving_default` and float32 for the translation signatures.
    """
    images = check_request_images(images, _request_dtype(dtype, signature_name))
    values = images.tolist()
    if format == "instances":
        body = {"instances": [{input_name: v} for v in values]}
    elif format == "inputs":
        body = {"inputs": {input_name: values}}
    else:
        raise ValueError(f"format must be 'instances' or 'inputs', got {format!r}")
    body["signature_name"] = signature_name
    return body


def parse_rest_response(response):
    """Arrays from a REST `:predict` response (row or columnar), keyed by output name."""
    if isinstance(response, (str, bytes)):
        response = json.loads(response)
    if "error" in response:
        raise RuntimeError(f"the model server answered with an error: {response['error']}")
    if "predictions" in response:
        rows = response["predictions"]
        if rows and isinstance(rows[0], dict):
            return {k: np.asarray([row[k] for row in rows]) for k in rows[0]}
        return {"outputs": np.asarray(rows)}
    if "outputs" in response:
        outputs = response["outputs"]
        if isinstance(outputs, dict):
            return {k: np.asarray(v) for k, v in outputs.items()}
        return {"outputs": np.asarray(outputs)}
    raise ValueError(f"not a predict response: keys {sorted(response)}")


def _signature(export_path, signature_name):
    loaded = tf.saved_model.load(os.fspath(export_path))
    if signature_name not in loaded.signatures:
        raise ValueError(f"{export_path} has no signature {signature_name!r}; it has {sorted(loaded.signatures)}")
    return loaded, loaded.signatures[signature_name]


def _call_signature(signature, named_inputs):
    specs = signature.structured_input_signature[1]
    unknown = set(named_inputs) - set(specs)
    if unknown:
        raise ValueError(f"unknown input(s) {sorted(unknown)}; the signature takes {sorted(specs)}")
    missing = set(specs) - set(named_inputs)
    if missing:
        raise ValueError(f"missing input(s) {sorted(missing)}; the signature takes {sorted(specs)}")
    tensors = {name: _checked_input(name, value, specs[name]) for name, value in named_inputs.items()}
    return {k: v.numpy() for k, v in signature(**tensors).items()}


def _checked_input(name, value, spec):
    """`value` as a tensor for input `name` of `spec`, refusing what the model server refuses instead of casting it.

    Images (uint8 / float32 inputs) go through `check_request_images`;
    integer inputs (the `generate` signature's `class_ids`, `seed`) must be
    integers within the dtype's range; the shape must match the spec's
    (the image size and channels a signature was exported with).
    """
    dtype = spec.dtype
    if dtype in (tf.uint8, tf.float32):
        value = check_request_images(value, dtype.name)
    else:
        value = np.asarray(value)
        if dtype.is_integer:
            if value.dtype.kind not in "iu":
                raise ValueError(f"input {name!r} must hold integers ({dtype.name}), got {value.dtype}")
            if value.size and (value.min() < dtype.min or value.max() > dtype.max):
                raise ValueError(f"input {name!r} must be within the {dtype.name} range, got {value.min()}..{value.max()}")
    if not spec.shape.is_compatible_with(value.shape):
        raise ValueError(f"input {name!r} has shape {value.shape}; the signature takes {tuple(spec.shape.as_list())} "
                         "(None: any size)")
    return tf.constant(value, dtype=dtype)


def predict_rest_locally(export_path, body):
    """Answer a REST `:predict` body from an exported version folder as the server does.

    Decodes `instances` (rows) or `inputs` (columns), calls the signature
    named in the body, and encodes the response in the matching format.
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    _, signature = _signature(export_path, body.get("signature_name", SERVING_SIGNATURE))
    if "instances" in body:
        rows = body["instances"]
        if not rows:
            raise ValueError("instances is empty")
        named = {k: [row[k] for row in rows] for k in rows[0]} if isinstance(rows[0], dict) else {
            next(iter(signature.structured_input_signature[1])): rows}
        outputs = _call_signature(signature, named)
        n = len(rows)
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(n)]}
    if "inputs" in body:
        inputs = body["inputs"]
        named = inputs if isinstance(inputs, dict) else {next(iter(signature.structured_input_signature[1])): inputs}
        return {"outputs": {k: v.tolist() for k, v in _call_signature(signature, named).items()}}
    raise ValueError("a predict body needs 'instances' or 'inputs'")


def grpc_predict_request(model_name, images, signature_name=SERVING_SIGNATURE, input_name="images", version=None,
                         dtype=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the classifier.

    `dtype` as in `rest_predict_body`. Needs the optional extra
    `pip install keras-imbalance[serving]`.
    """
    images = check_request_images(images, _request_dtype(dtype, signature_name))
    predict_pb2 = _serving_api()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(images))
    return request


def parse_grpc_response(response):
    """Arrays from a `PredictResponse`, keyed by output name."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_grpc_locally(export_path, request):
    """Answer a `PredictRequest` from an exported version folder, as the server does."""
    predict_pb2 = _serving_api()
    _, signature = _signature(export_path, request.model_spec.signature_name or SERVING_SIGNATURE)
    outputs = _call_signature(signature, {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


def _serving_api():
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError:
        raise ImportError(
            "gRPC requests need tensorflow-serving-api: pip install 'keras-imbalance[serving]'"
        ) from None
    return predict_pb2
