"""`keras.metrics.Metric` classes of decoder quality: FID and KID (the other measures live in `keras_avae.evaluation`)."""

from keras_avae.metrics.fid import (
    FID,
    ImageFeatures,
    frechet_distance,
    inception_preprocess,
)
from keras_avae.metrics.kid import KID, kernel_inception_distance, polynomial_mmd2
from keras_avae.validation import SmallSampleWarning

__all__ = [
    "FID",
    "KID",
    "ImageFeatures",
    "SmallSampleWarning",
    "frechet_distance",
    "inception_preprocess",
    "kernel_inception_distance",
    "polynomial_mmd2",
]
