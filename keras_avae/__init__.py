"""keras_avae: Keras 3 models that learn self-consistent, robust representations.

After "The Autoencoding Variational Autoencoder" (Cemgil et al., NeurIPS 2020).
"""

import importlib

from keras_avae import registration

_SUBMODULES = (
    "architectures",
    "attacks",
    "callbacks",
    "datasets",
    "distributions",
    "evaluation",
    "files",
    "metrics",
    "objectives",
)
_ATTRIBUTES = {
    "RobustnessEvaluator": "keras_avae.callbacks",
    "VAE": "keras_avae.models",
    "AVAE": "keras_avae.models",
    "AVAESelfSupervised": "keras_avae.models",
    "SmoothEncoder": "keras_avae.models",
    "SEAVAE": "keras_avae.models",
}


def __getattr__(name):
    """Imports a submodule or a class on first use, so `import keras_avae` (and `keras-avae --help`)
    loads no TensorFlow; `registration` lets Keras load saved models before any class is touched."""
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_avae.{name}")
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_avae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_ATTRIBUTES))


registration.install()

__version__ = "0.1.0"

__all__ = [*_ATTRIBUTES, *_SUBMODULES]
