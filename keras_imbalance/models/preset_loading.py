"""`Model.from_preset(name)`: load a pretrained balancer of a given class."""


class PresetLoadingMixin:
    """Adds `from_preset` to a model class (keras-hub style).

    `GAMO.from_preset("gamo-digits-lt50")` verifies the preset's checksums,
    loads its `.keras` file in safe mode, and checks that the model is an
    instance of the class it was asked through.
    """

    @classmethod
    def from_preset(cls, name, root=None, compile=True):
        from keras_imbalance import presets

        model = presets.load(name, root=root, compile=compile)
        if not isinstance(model, cls):
            raise presets.PresetError(f"preset {name!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
