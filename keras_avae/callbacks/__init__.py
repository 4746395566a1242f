"""Keras callbacks: thin adapters that run the evaluations of `keras_avae.evaluation` during `fit`."""

from keras_avae.callbacks.periodic import PeriodicEvaluation
from keras_avae.callbacks.robustness import RobustnessEvaluator
from keras_avae.callbacks.self_consistency import SelfConsistencyCallback

__all__ = ["PeriodicEvaluation", "RobustnessEvaluator", "SelfConsistencyCallback"]
