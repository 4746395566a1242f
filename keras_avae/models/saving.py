"""How the models persist: their config, atomic saving with the seed generator's state, and copies."""

import keras

from keras_avae import files
from keras_avae.models import networks

SEED_STATE_KEY = "seed_generator_state"
"""Key of the seed generator's state in a saved model, so resumed training draws the same noise as
uninterrupted training."""

NETWORKS = ("encoder", "decoder")
"""The sub-models every model is made of, serialised in its config."""

SETTINGS = ("obs_var", "likelihood", "data_range", "seed", "posterior_sampling")
"""The arguments every model takes besides the networks (`VAE`'s): saved by `get_config`, carried
over by `from_pretrained`."""


class Saving:
    """The config, atomic `save` with the seed generator's state, and `from_pretrained`; a mixin of `keras.Model`.

    The model class sets `encoder`, `decoder`, `seed_generator`, `example_shape` and the
    attributes named in `SETTINGS`; a subclass adds its own arguments to `get_config`.
    """

    @classmethod
    def from_pretrained(cls, model, **kwargs):
        """A new model of this class starting from a copy of a trained model's networks.

        The source model is not modified and shares no weights with the copy.

        Args:
            model: a built `VAE` (or any model of this library).
            **kwargs: constructor arguments of this class (e.g. `rho`); `obs_var`,
                `likelihood`, `data_range`, `seed` and `posterior_sampling`
                default to the source's.

        Returns:
            A built model of this class.

        Example:
            robust = keras_avae.AVAESelfSupervised.from_pretrained(vae, rho=0.975)
        """
        if not isinstance(model, Saving):
            raise ValueError(
                "`from_pretrained` takes a keras_avae model (VAE, AVAE, ...). "
                f"Received: {type(model).__name__}"
            )
        if not model.built:
            raise ValueError("`from_pretrained` needs a built model: fit it or call it on data first.")
        for key in SETTINGS:
            kwargs.setdefault(key, getattr(model, key))
        copy = cls(networks.copy_network(model.encoder), networks.copy_network(model.decoder), **kwargs)
        copy.build((None,) + model.example_shape)
        return copy

    def get_config(self):
        config = {name: keras.saving.serialize_keras_object(getattr(self, name)) for name in NETWORKS}
        return {**super().get_config(), **config, **{key: getattr(self, key) for key in SETTINGS}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in NETWORKS:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

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
