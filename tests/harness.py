"""The shared model test case every model in the package passes.

Modelled on the idea of keras-hub's test case (`run_backbone_test`,
`run_serialization_test`, `run_model_saving_test`), written for this package:

- `run_model_case(cls, init_kwargs, data, ...)` is the entry point for a
  model: the model is *built from its class and constructor arguments*, so
  the case can check what a closure cannot, that `get_config` covers every
  argument given and that the configuration round trips. It runs
  `run_serialization_test`, then the fit / save / export checks of
  `run_model_test` on the same build.
- `run_serialization_test(cls, init_kwargs)`: the constructor arguments
  appear in `get_config` (plain values equal, Keras objects of the same
  class); `cls.from_config(get_config())` has the same configuration and the
  same plain attributes; `keras.saving.serialize_keras_object` -> JSON ->
  `deserialize_keras_object` gives the same class and configuration.
- `run_model_test(model_fn, x, y, ...)`: one `fit` step on a tiny batch
  (every logged value finite), `.keras` save and reload with identical
  predictions and configuration, SavedModel export reloaded through
  `tf.saved_model.load` with the same outputs. It still takes a closure, for
  the few callers that build a model some other way (a baseline recipe, a
  layer test).

Players: `init_kwargs` may hold Keras layers and models (a classifier, a
discriminator, a list of translators, a whole `CycleGAN`). Every build gets
fresh copies of them (`fresh_players`): each player is rebuilt from its own
config and given the given player's weights. We copy through the config
rather than ask the caller for factories because (1) `init_kwargs` then stays
plain data, as in keras-hub, and can be compared with `get_config` key by key
(a factory would have to be called to learn what it builds); (2) every build
starts from the very weights the caller passed (a player the test set up by
hand keeps its weights), and no two builds share variables, so fitting one
build, or `M2m` freezing its translator, cannot leak into another; (3) the
copy itself proves that each player round trips through its config, which a
`.keras` file of the model needs anyway. A caller that keeps a player object
sees it untouched by the case.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

_PLAIN = (bool, int, float, str, type(None), np.integer, np.floating, np.bool_)


# Players ------------------------------------------------------------------------------


def clone_player(player):
    """A new copy of a Keras layer or model: rebuilt from its config, with the same weights."""
    clone = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(player), default=_json_default))
    )
    weights = player.get_weights()
    assert len(clone.weights) == len(weights), (
        f"{player.name!r} does not round trip through its config: "
        f"{len(weights)} weights, {len(clone.weights)} after from_config"
    )
    clone.set_weights(weights)
    return clone


def fresh_players(value):
    """`value` with every Keras layer / model inside it (lists, tuples, dicts too) replaced by a clone."""
    if isinstance(value, keras.layers.Layer):
        return clone_player(value)
    if isinstance(value, (list, tuple)):
        return type(value)(fresh_players(v) for v in value)
    if isinstance(value, dict):
        return {k: fresh_players(v) for k, v in value.items()}
    return value


def build_model(cls, init_kwargs, prepare=None):
    """`cls(**init_kwargs)` on fresh players, then `prepare(model)` (e.g. `adapt`) if given."""
    model = cls(**fresh_players(init_kwargs))
    if prepare is not None:
        prepared = prepare(model)
        model = model if prepared is None else prepared
    return model


# Serialization ------------------------------------------------------------------------


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def normalized(value):
    """`value` as it comes back from JSON (tuples become lists, numpy scalars Python numbers)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_json_default))


def _is_plain(value):
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _contains_keras_object(value):
    if isinstance(value, (list, tuple)):
        return any(_contains_keras_object(v) for v in value)
    return isinstance(value, keras.layers.Layer)


def _plain_attributes(model):
    return {k: normalized(v) for k, v in vars(model).items() if not k.startswith("_") and _is_plain(v)}


def assert_same_config(config, other, what):
    a, b = normalized(config), normalized(other)
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))
        raise AssertionError(f"{what}: the configurations differ at {diff}")


def check_config_covers_init_kwargs(config, init_kwargs):
    """Every constructor argument given is in the config: plain values equal, Keras objects of the same class."""
    for key, value in init_kwargs.items():
        assert key in config, f"get_config forgets the argument {key!r} (config keys: {sorted(config)})"
        if _contains_keras_object(value):
            given = value if isinstance(value, (list, tuple)) else [value]
            stored = config[key] if isinstance(config[key], list) else [config[key]]
            assert len(given) == len(stored), f"{key!r}: {len(given)} objects given, {len(stored)} in the config"
            for obj, entry in zip(given, stored):
                assert isinstance(entry, dict) and entry.get("class_name") == type(obj).__name__, (
                    f"{key!r}: a {type(obj).__name__} was given, the config holds {entry!r:.200}"
                )
        elif _is_plain(value):
            assert normalized(config[key]) == normalized(value), (
                f"get_config changes the argument {key!r}: given {value!r}, config has {config[key]!r}"
            )


def run_serialization_test(cls, init_kwargs, prepare=None, instance=None):
    """Config and `serialize_keras_object` round trips of `cls(**init_kwargs)`; cheap (no weights, no fit).

    Args:
        cls: the model class (registered with `register_keras_serializable`), or
            a backbone factory function (then the config is the graph's, and
            only the round trips are checked, not that it covers init_kwargs).
        init_kwargs: its constructor arguments; players are copied (`fresh_players`).
        prepare: optional callable(model) run after construction (e.g. `adapt`),
            whose effect the config must carry (GAMO's generator).
        instance: an already built `cls(**init_kwargs)` to check instead of a new build.

    Returns:
        The instance checked.
    """
    instance = instance if instance is not None else build_model(cls, init_kwargs, prepare)
    factory = not isinstance(cls, type)
    if factory:  # a backbone factory (`applications.ResNet20`): its arguments live in the graph, not the config
        cls = type(instance)
    assert type(instance) is cls, (type(instance), cls)
    config = instance.get_config()
    if not factory:
        check_config_covers_init_kwargs(config, init_kwargs)

    # get_config -> JSON (as in a .keras file) -> from_config -> the same config and the
    # same plain attributes (a factory's functional model takes this path just below).
    revived = instance if factory else cls.from_config(normalized(config))
    assert type(revived) is cls, (type(revived), cls)
    assert_same_config(config, revived.get_config(), f"{cls.__name__}.from_config(get_config())")
    original_attrs, revived_attrs = _plain_attributes(instance), _plain_attributes(revived)
    changed = sorted(k for k in original_attrs if revived_attrs.get(k, "<missing>") != original_attrs[k])
    assert not changed, {k: (original_attrs[k], revived_attrs.get(k, "<missing>")) for k in changed}

    # keras.saving.serialize_keras_object -> JSON -> deserialize_keras_object.
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(instance), default=_json_default))
    assert serialized["class_name"] == cls.__name__, serialized["class_name"]
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls, (type(revived), cls)
    assert_same_config(config, revived.get_config(), "deserialize_keras_object(serialize_keras_object(model))")
    return instance


# Fit, save, export --------------------------------------------------------------------


def run_model_case(
    cls,
    init_kwargs,
    data,
    *,
    tmp_path,
    prepare=None,
    fit_data=None,
    compile_kwargs=None,
    batch_size=None,
    atol=1e-6,
    expected_output_shape=None,
    extra_checks=None,
    run_serialization=True,
):
    """The whole test case of a model class: serialization, one `fit` step, `.keras` and SavedModel.

    Args:
        cls: the model class; its `call(x)` is the classifier (or the network).
            A backbone factory function (`applications.ResNet20`) is accepted:
            its functional model's config round trips are checked, the
            factory's arguments are not looked for in it.
        init_kwargs: dict of constructor arguments. Keras layers / models in it
            (players) are copied for the build: see the module docstring.
        data: `(x, y)` tiny numpy batch; `fit` runs one step on it and `x` is
            predicted with. `y` may be None when `fit_data` is given.
        tmp_path: a pytest tmp_path (or str).
        prepare: optional callable(model) -> model or None, run after
            construction and before the checks (GAMO / PolarityGAN: `adapt`).
        fit_data, compile_kwargs, batch_size, atol, expected_output_shape,
        extra_checks: as for `run_model_test`.
        run_serialization: False skips `run_serialization_test` (for a model
            that is checked elsewhere).

    Returns:
        The model reloaded from its `.keras` file.
    """
    x, y = data
    model = build_model(cls, init_kwargs, prepare)
    if run_serialization:
        run_serialization_test(cls, init_kwargs, instance=model)
    return run_model_test(
        lambda: model,
        x,
        y,
        fit_data=fit_data,
        compile_kwargs=compile_kwargs,
        tmp_path=tmp_path,
        batch_size=batch_size,
        atol=atol,
        expected_output_shape=expected_output_shape,
        extra_checks=extra_checks,
    )


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

    # .keras round trip: identical predictions and configuration, including after the first fit.
    keras_path = os.path.join(tmp_path, "model.keras")
    model.save(keras_path)
    reloaded = keras.saving.load_model(keras_path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), predictions, atol=atol, rtol=0)
    assert type(reloaded) is type(model), (type(reloaded), type(model))
    assert_same_config(model.get_config(), reloaded.get_config(), "the .keras round trip")
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
