"""
Title: Serving a balanced classifier with TensorFlow Serving
Author: keras-imbalance developers
Date created: 2026/11/24
Description: Export a trained model, check its signature, and send it REST and gRPC requests.
"""

"""
## Introduction

Every keras-imbalance model is a Keras classifier at heart, so the way to
production is the usual one: a SavedModel that TensorFlow Serving loads.
`ki.serving.export_for_serving` writes it with a `serving_default` signature
that takes **raw uint8 images** and scales them inside the graph exactly as in
training, and returns `probabilities` and `class_id`. Models that generate
also get a `generate` signature. See `docs/serving.md` for the server
commands.
"""

"""
## Setup: a quickly trained classifier
"""

import json
import os

import numpy as np
import tensorflow as tf

import keras_imbalance as ki

FAST = bool(os.environ.get("KERAS_IMBALANCE_TUTORIAL_FAST"))
out = os.environ.get("KERAS_IMBALANCE_TUTORIAL_RUNS", "runs/serving_tutorial")

(x_pool, y_pool), (x_test, y_test) = ki.datasets.load_digits()
counts = ki.datasets.long_tailed_counts(120, 10, imbalance_ratio=50)
x_train, y_train = ki.datasets.make_imbalanced(x_pool, y_pool, counts, seed=0)
model = ki.baselines.get("cb-rw").fit(
    lambda shape, c: ki.applications.SmallCNN(shape, c), x_train, y_train, epochs=1 if FAST else 30, seed=0
)

"""
## Export

The version folder is what the model server watches; exporting the same
version twice is refused unless you ask to overwrite.
"""

version_dir = ki.serving.export_for_serving(model, os.path.join(out, "digits"), version=1, overwrite=True)
signature = tf.saved_model.load(version_dir).signatures["serving_default"]
print("inputs:", signature.structured_input_signature[1])
print("outputs:", signature.structured_outputs)

"""
## A REST request

`rest_predict_body` builds the JSON you POST to
`http://HOST:8501/v1/models/digits:predict`. Without a server at hand,
`predict_rest_locally` answers it from the exported folder the way the
server decodes it, which is handy for testing a client.
"""

images = np.round(x_test[:4] * 255).astype(np.uint8)  # what a client has: raw pixels
body = ki.serving.rest_predict_body(images)
reply = ki.serving.predict_rest_locally(version_dir, json.dumps(body))
parsed = ki.serving.parse_rest_response(reply)
print("predicted:", parsed["class_id"].tolist(), "true:", y_test[:4].tolist())

"""
## A gRPC request

With `pip install 'keras-imbalance[serving]'`, `grpc_predict_request` builds
a `PredictRequest` for port 8500.
"""

try:
    request = ki.serving.grpc_predict_request("digits", images)
    response = ki.serving.predict_grpc_locally(version_dir, request)
    print("gRPC class ids:", ki.serving.parse_grpc_response(response)["class_id"].tolist())
except ImportError as error:
    print(error)
