"""keras_avae: Keras 3 models that learn self-consistent, robust representations.

After "The Autoencoding Variational Autoencoder" (Cemgil et al., NeurIPS 2020).
"""

from keras_avae import (
    architectures,
    attacks,
    callbacks,
    datasets,
    distributions,
    evaluation,
    files,
    metrics,
    objectives,
)
from keras_avae.callbacks import RobustnessEvaluator
from keras_avae.models import AVAE, SEAVAE, VAE, AVAESelfSupervised, SmoothEncoder

__version__ = "0.1.0"

__all__ = [
    "RobustnessEvaluator",
    "VAE",
    "AVAE",
    "AVAESelfSupervised",
    "SmoothEncoder",
    "SEAVAE",
    "architectures",
    "attacks",
    "callbacks",
    "datasets",
    "distributions",
    "evaluation",
    "files",
    "metrics",
    "objectives",
]
