"""Evaluation of a representation: linear probes, the attack engine, robust accuracy and its
checks, sensitivity, self-consistency, reconstruction error, and the report tables.

The protocol of Section 4 (Cemgil et al., 2020): train an encoder-decoder pair
without labels, freeze the encoder, train one linear probe per task on its
mean f^mu (`probes`), then attack `probe(f^mu(x))` (`robustness`, with the
ensemble of `engine` and the checks of `checks`), for any encoder
(`encoders`). `report` writes the tables and JSON.

`AdversarialEvaluator` is the evaluation itself; `keras_avae.RobustnessEvaluator` is the Keras
callback that runs it during `fit`. `keras_avae.evaluation.RobustnessEvaluator`, the evaluation's
old name here, still works with a `DeprecationWarning`.
"""

import warnings

from keras_avae.evaluation import checks, encoders, engine, probes, report
from keras_avae.evaluation.encoders import Encoder, as_encoder
from keras_avae.evaluation.reconstruction import reconstruction_errors, reconstruction_mse
from keras_avae.evaluation.report import merge_records, results_from_json, to_json, to_markdown
from keras_avae.evaluation.robustness import (
    AdversarialEvaluator,
    RobustnessResults,
    RobustnessSanityWarning,
    log_key,
)
from keras_avae.evaluation.self_consistency import self_consistency
from keras_avae.evaluation.sensitivity import representation_sensitivity

__all__ = [
    "AdversarialEvaluator",
    "Encoder",
    "RobustnessResults",
    "RobustnessSanityWarning",
    "as_encoder",
    "checks",
    "encoders",
    "engine",
    "log_key",
    "merge_records",
    "probes",
    "reconstruction_errors",
    "reconstruction_mse",
    "report",
    "representation_sensitivity",
    "results_from_json",
    "self_consistency",
    "to_json",
    "to_markdown",
]


def __getattr__(name):
    if name == "RobustnessEvaluator":  # this class's name here before; the callback keeps it
        warnings.warn(
            "`keras_avae.evaluation.RobustnessEvaluator` is now `keras_avae.evaluation.AdversarialEvaluator`; "
            "`keras_avae.RobustnessEvaluator` is the Keras callback that runs it during `fit`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return AdversarialEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
