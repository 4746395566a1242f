"""Keras callbacks: robustness and self-consistency of the representation during training."""

from keras_avae.callbacks.robustness import (
    RobustnessEvaluator,
    RobustnessSanityWarning,
    SanityCheckError,
    attack,
    log_key,
    results_from_json,
    to_json,
    to_markdown,
)
from keras_avae.callbacks.self_consistency import SelfConsistencyCallback

__all__ = [
    "RobustnessEvaluator",
    "RobustnessSanityWarning",
    "SanityCheckError",
    "SelfConsistencyCallback",
    "attack",
    "log_key",
    "results_from_json",
    "to_json",
    "to_markdown",
]
