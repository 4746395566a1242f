"""keras_avae.registration: Keras loads this library's models by name before any class is touched."""

import inspect
import sys

import keras
from conftest import tiny_networks

import keras_avae
from keras_avae import registration


def test_every_registered_class_has_a_stand_in_entry():
    """The table names every class the package registers, each in the module that defines it."""
    import keras_avae.metrics
    import keras_avae.models  # noqa: F401

    objects = keras.saving.get_custom_objects()
    ours = {name.split(">", 1)[1] for name in objects if name.startswith(registration.PACKAGE + ">")}
    assert ours == set(registration.REGISTERED)
    for name, module in registration.REGISTERED.items():
        cls = objects[f"{registration.PACKAGE}>{name}"]
        assert inspect.isclass(cls), name  # the class itself replaced its stand-in
        assert cls is getattr(sys.modules[module], name)


def test_stand_in_builds_the_class_from_its_config():
    stand_in = registration.StandIn("AVAE", "keras_avae.models")
    assert stand_in.resolve() is keras_avae.AVAE
    config = keras_avae.AVAE(*tiny_networks(), rho=0.5).get_config()
    model = stand_in.from_config(config)
    assert isinstance(model, keras_avae.AVAE) and model.rho == 0.5
    assert isinstance(stand_in(*tiny_networks()), keras_avae.AVAE)


def test_register_keeps_a_class_already_registered():
    """`register` runs when Keras is imported; it never replaces a class by a stand-in."""
    registration.register(keras)
    assert keras.saving.get_custom_objects()["keras_avae>AVAE"] is keras_avae.AVAE
