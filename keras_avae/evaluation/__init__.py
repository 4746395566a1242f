"""Evaluation of a representation: linear probes, attacks, robust accuracy, sensitivity,
self-consistency, reconstruction error, and the report tables.

The protocol of Section 4 (Cemgil et al., 2020): train an encoder-decoder pair
without labels, freeze the encoder, train one linear probe per task on its
mean f^mu (`probes`), then attack `probe(f^mu(x))` (`robustness`).
"""

from keras_avae.evaluation import probes
from keras_avae.evaluation.reconstruction import reconstruction_errors, reconstruction_mse
from keras_avae.evaluation.self_consistency import self_consistency
from keras_avae.evaluation.sensitivity import representation_sensitivity

__all__ = [
    "probes",
    "reconstruction_errors",
    "reconstruction_mse",
    "representation_sensitivity",
    "self_consistency",
]
