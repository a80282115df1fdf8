"""`Model.from_preset(name)`: load a pretrained balancer of a given class."""

from keras_imbalance.preset_store import PresetError, load_verified


class PresetLoadingMixin:
    """Adds `from_preset` to a model class (keras-hub style).

    `GAMO.from_preset("gamo-digits-lt50")` verifies the preset's checksums,
    loads its `.keras` file in safe mode, and checks that the model is an
    instance of the class it was asked through. The files are read through
    `preset_store` (the floor under `models` and `presets`), so no module of
    `models` imports `presets`.
    """

    @classmethod
    def from_preset(cls, name, root=None, compile=True):
        model = load_verified(name, root=root, compile=compile)
        if not isinstance(model, cls):
            raise PresetError(f"preset {name!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
