"""Evaluation metrics: decoder quality (FID, KID, reconstruction MSE), self-consistency, representation sensitivity."""

from keras_avae.metrics.fid import (
    FID,
    ImageFeatures,
    frechet_distance,
    inception_preprocess,
)
from keras_avae.metrics.kid import KID, kernel_inception_distance, polynomial_mmd2
from keras_avae.metrics.reconstruction import reconstruction_errors, reconstruction_mse
from keras_avae.metrics.self_consistency import self_consistency
from keras_avae.metrics.sensitivity import representation_sensitivity

__all__ = [
    "FID",
    "KID",
    "ImageFeatures",
    "frechet_distance",
    "inception_preprocess",
    "kernel_inception_distance",
    "polynomial_mmd2",
    "reconstruction_errors",
    "reconstruction_mse",
    "representation_sensitivity",
    "self_consistency",
]
