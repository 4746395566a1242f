"""How the models save: atomically, and with the state of their seed generator."""

from keras_avae import files

SEED_STATE_KEY = "seed_generator_state"
"""Key of the seed generator's state in a saved model, so resumed training draws the same noise as
uninterrupted training."""


class Saving:
    """Atomic `save` and the seed generator's state in the saved variables; a mixin of `keras.Model`.

    The model class sets `seed_generator`.
    """

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """`keras.Model.save`, atomically (`keras_avae.files.save_model`): a `.keras` path only.

        The archive is written to a hidden file next to `filepath` and renamed over it, so
        a save that fails leaves the previous file intact. A path not ending in `.keras`
        (a legacy `.h5` one included) raises a `ValueError` before anything is written.
        """
        files.save_model(self, filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if key != SEED_STATE_KEY}
        super().load_own_variables(own)
        if SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
