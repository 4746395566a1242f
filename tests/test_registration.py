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


# ------------------------------------------------------------------ layers


def _keras_avae_imports(path):
    """The keras_avae modules a source file imports (`from keras_avae import x` counts as keras_avae.x)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("keras_avae")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_avae"):
            found |= {f"{node.module}.{alias.name}" if node.module == "keras_avae" else node.module for alias in node.names}
    return found


def test_files_and_models_import_nothing_above_them():
    """Data flows datasets -> models -> evaluation -> experiments -> cli; files.py is below models, and
    distribute.py (which worker writes, the Keras 3 multi-worker fix) below files.py: a leaf."""
    from pathlib import Path

    package = Path(keras_avae.__file__).parent
    assert _keras_avae_imports(package / "distribute.py") == set()
    assert _keras_avae_imports(package / "files.py") <= {"keras_avae.distribute"}
    above = ("keras_avae.evaluation", "keras_avae.experiments", "keras_avae.cli", "keras_avae.callbacks",
             "keras_avae.figures", "keras_avae.registration")
    for path in sorted((package / "models").glob("*.py")):
        imported = _keras_avae_imports(path)
        assert not [name for name in imported if name.startswith(above)], (path.name, imported)
