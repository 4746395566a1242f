"""FID of many models' samples against one set of real images, the FID column of Tables 1 and 2."""

import keras
import numpy as np

from keras_avae.metrics import fid as fid_lib

GENERATE_BATCH_SIZE = 256
"""Latent codes per decoder call."""


class FIDScorer:
    """Scores models by the FID of their samples g(z), z ~ N(0, I), against fixed real images.

    Uses the feature extraction, Gaussian statistics and Frechet distance of
    `keras_avae.metrics.fid` (`ImageFeatures`, `gaussian_statistics`,
    `frechet_distance`); the real images' statistics are computed once and
    shared by every model scored, which matters for InceptionV3.

    Every model is sampled at the same latent codes (NumPy, seeded): models
    with the same decoder, such as a VAE and its AVAE-SS, get the same FID, and
    the models' own seed generators are not touched.

    Args:
        real_images: `(N, ...)` real images in `data_range` (N >= 2).
        feature_extractor: a Keras model images -> `(batch, d)`, or None for
            InceptionV3 pool3.
        weights: InceptionV3 weights (a local file, or None / "imagenet") when
            `feature_extractor` is None.
        description: how to name the extractor in reports; default its
            `ImageFeatures` name.
        samples: number of generated images per model; default `len(real_images)`.
        seed: seed of the latent codes.
        data_range: pixel range of the images.

    Example:
        scorer = FIDScorer(x_test[:1000], feature_extractor=classifier_features)
        scorer(vae), scorer(avae)
        print(scorer.description)
    """

    def __init__(
        self,
        real_images,
        feature_extractor=None,
        weights=None,
        description=None,
        samples=None,
        seed=0,
        data_range=(0.0, 1.0),
    ):
        self.features = fid_lib.ImageFeatures(feature_extractor, weights, data_range)
        self.extractor_name = self.features.name
        self.description = description or self.extractor_name
        self.samples = len(real_images) if samples is None else int(samples)
        if self.samples < 2:
            raise ValueError(f"FID needs at least 2 samples. Received: samples={samples!r}")
        self.seed = int(seed)
        self.num_real = len(real_images)
        self.real_statistics = fid_lib.gaussian_statistics(self.features(real_images, "real_images"))

    def generated_features(self, model):
        """Features of `samples` decoder means g(z) of `model`, z seeded."""
        latents = np.random.default_rng(self.seed).normal(size=(self.samples, int(model.latent_dim)))
        latents = latents.astype(np.float32)
        features = []
        for start in range(0, self.samples, GENERATE_BATCH_SIZE):
            images = keras.ops.convert_to_numpy(model.generate(latents[start : start + GENERATE_BATCH_SIZE]))
            features.append(self.features(images, "generated_images"))
        return np.concatenate(features)

    def __call__(self, model):
        """The FID of `model`'s samples, a Python float."""
        mean, covariance = fid_lib.gaussian_statistics(self.generated_features(model))
        return fid_lib.frechet_distance(*self.real_statistics, mean, covariance)

    def get_config(self):
        """What the FID was computed with, for reports."""
        return {
            "extractor": self.description,
            "extractor_name": self.extractor_name,
            "num_features": self.features.num_features,
            "real_images": self.num_real,
            "generated_images": self.samples,
            "seed": self.seed,
        }
