"""Keras finds this library's saved classes by name, without `import keras_avae` importing TensorFlow.

`keras.saving.load_model` looks each saved object up by its registered name ("keras_avae>AVAE") in
Keras' global registry, the live dict `keras.saving.get_custom_objects()`. A class enters it when its
module runs `@keras.saving.register_keras_serializable`, and `import keras_avae` defers those imports so
that it loads no TensorFlow. So each name first holds a `StandIn`: its `from_config` imports the class's
module (whose decorator then registers the class itself, replacing the stand-in) and builds the object.

Keras imported before keras_avae (the README's `import keras, keras_avae`): the stand-ins are
registered at `import keras_avae`. Keras imported later: right after its own import, by a one-shot
hook in `sys.meta_path` that removes itself when `keras` is imported.

Example:
    import keras, keras_avae
    model = keras.models.load_model("avae.keras")   # a fresh process: no class touched before
"""

import importlib
import importlib.util
import sys

PACKAGE = "keras_avae"
"""The package of every registered name, `@keras.saving.register_keras_serializable(package=PACKAGE)`."""

REGISTERED = {
    "VAE": "keras_avae.models",
    "AVAE": "keras_avae.models",
    "AVAESelfSupervised": "keras_avae.models",
    "SmoothEncoder": "keras_avae.models",
    "SEAVAE": "keras_avae.models",
    "FID": "keras_avae.metrics",
    "KID": "keras_avae.metrics",
}
"""Every class this library registers with Keras, name -> the module that defines (and registers) it."""


class StandIn:
    """Takes a class's place in Keras' registry until its module is imported.

    Keras builds a saved object with `cls.from_config(config)`; calling the stand-in builds one
    from constructor arguments. Both import the module, which registers the real class.
    """

    def __init__(self, name, module):
        self.name = name
        self.module = module

    def resolve(self):
        """The class itself (importing its module registers it with Keras in the stand-in's place)."""
        return getattr(importlib.import_module(self.module), self.name)

    def from_config(self, config):
        return self.resolve().from_config(config)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self):
        return f"<stand-in for {self.module}.{self.name}>"


def register(keras_module):
    """Puts a `StandIn` under each registered name not yet holding its class."""
    objects = keras_module.saving.get_custom_objects()
    for name, module in REGISTERED.items():
        objects.setdefault(f"{PACKAGE}>{name}", StandIn(name, module))


class _RegisteringLoader:
    """Keras' own loader, which registers the stand-ins once `keras` has run."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # Keras' own loader from here on
        self.loader.exec_module(module)
        register(module)


class _AfterKerasImport:
    """A `sys.meta_path` finder that wraps the loader of `keras`, once, and then leaves `sys.meta_path`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def install():
    """Registers the stand-ins now if Keras is imported, else right after Keras is (see the module docstring)."""
    if "keras" in sys.modules:
        register(sys.modules["keras"])
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
