"""The shared model harness every model in the package passes.

`run_model_test` builds a model, runs one `fit` step on a tiny batch, saves
and reloads it as `.keras` (predictions must be identical), and exports it as
a SavedModel that must reload and give the same outputs. Modelled on
keras-hub's `run_backbone_test` / `run_model_saving_test`.
"""

import os

import keras
import numpy as np
import tensorflow as tf


def run_model_test(
    model_fn,
    x,
    y=None,
    fit_data=None,
    compile_kwargs=None,
    tmp_path=None,
    batch_size=None,
    atol=1e-6,
    expected_output_shape=None,
    extra_checks=None,
):
    """Build, fit one step, `.keras` round trip, SavedModel export + reload.

    Args:
        model_fn: () -> keras.Model (uncompiled); its `call(x)` is the classifier.
        x, y: a tiny batch (numpy); `fit` runs on it for one step.
        fit_data: optional object passed to `fit` instead of `(x, y)` (a dataset).
        compile_kwargs: dict for `model.compile`, or None to skip compile
            (the model compiles itself or takes defaults).
        tmp_path: a pytest tmp_path.
        extra_checks: optional callable(original, reloaded) for model-specific
            state that must survive saving (generators, banks, optimizers).

    Returns:
        The reloaded model.
    """
    assert tmp_path is not None
    model = model_fn()
    if compile_kwargs is not None:
        model.compile(**compile_kwargs)
    batch_size = batch_size or len(x)
    if fit_data is not None:
        history = model.fit(fit_data, epochs=1, steps_per_epoch=1, verbose=0)
    else:
        history = model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=1, verbose=0)
    for name, values in history.history.items():
        assert np.all(np.isfinite(values)), f"{name} is not finite after one step: {values}"

    predictions = np.asarray(model.predict(x, verbose=0))
    if expected_output_shape is not None:
        assert predictions.shape == tuple(expected_output_shape), predictions.shape
    assert np.all(np.isfinite(predictions))

    # .keras round trip: identical predictions, including after the first fit.
    keras_path = os.path.join(tmp_path, "model.keras")
    model.save(keras_path)
    reloaded = keras.saving.load_model(keras_path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), predictions, atol=atol, rtol=0)
    assert type(reloaded) is type(model), (type(reloaded), type(model))
    if extra_checks is not None:
        extra_checks(model, reloaded)

    # SavedModel export (what TF Serving loads) and reload through tf.saved_model.
    export_dir = os.path.join(tmp_path, "export")
    model.export(export_dir, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(export_dir)
    served_out = served.serve(tf.constant(x, dtype=tf.float32))
    np.testing.assert_allclose(np.asarray(served_out), predictions, atol=1e-5, rtol=1e-5)
    assert "serving_default" in served.signatures
    return reloaded
