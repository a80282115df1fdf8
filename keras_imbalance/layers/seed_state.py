"""Saving a layer's or model's `keras.random.SeedGenerator` state with its variables."""

SEED_STATE_KEY = "seed_generator_state"


class SeedStateSaving:
    """Mixin for a `keras.layers.Layer` or `keras.Model` with a `self.seed_generator`.

    A seed generator's state is not one of the layer's own variables, so
    Keras would not save it: a model reloaded from a `.keras` file (or a run
    resumed by `BackupAndRestore`) would redo the draws made before the save.
    Stored under `seed_generator_state` beside the numbered own variables, so
    it resumes drawing the numbers the original would have drawn (exact
    resume). Files without the entry load as before. Put it before the Keras
    base class in the bases.
    """

    def save_own_variables(self, store):
        for i, v in enumerate(self._trainable_variables + self._non_trainable_variables):
            store[f"{i}"] = v
        store[SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        for i, v in enumerate(self._trainable_variables + self._non_trainable_variables):
            v.assign(store[f"{i}"])
        if SEED_STATE_KEY in list(store.keys()):
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
