"""Tests for keras_avae/experiments/fid_scorer.py."""

import keras
import numpy as np
import pytest

from keras_avae.experiments import FIDScorer
from keras_avae.metrics import FID


class _FixedDecoder:
    """A stand-in model whose decoder ignores z and returns the given images in order."""

    latent_dim = 3

    def __init__(self, images):
        self.images = images
        self.calls = 0

    def generate(self, z):
        start = self.calls
        self.calls += len(z)
        return self.images[start : start + len(z)]


def _extractor(shape=(4, 4, 1), width=5):
    inputs = keras.Input(shape)
    features = keras.layers.Dense(width, kernel_initializer="glorot_uniform")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, features, name="toy_features")


def test_same_number_as_the_fid_metric():
    rng = np.random.default_rng(0)
    real = rng.random((40, 4, 4, 1), dtype=np.float32)
    generated = rng.random((40, 4, 4, 1), dtype=np.float32) ** 2
    extractor = _extractor()
    scorer = FIDScorer(real, feature_extractor=extractor, description="toy")
    metric = FID(feature_extractor=extractor)
    metric.update_state(real, generated)
    assert scorer(_FixedDecoder(generated)) == pytest.approx(metric.result(), rel=1e-6, abs=1e-6)
    assert scorer.get_config()["extractor"] == "toy"
    assert scorer.get_config()["extractor_name"] == "toy_features (Functional)"


def test_real_images_against_themselves_give_zero():
    real = np.random.default_rng(1).random((30, 4, 4, 1), dtype=np.float32)
    assert FIDScorer(real, feature_extractor=_extractor())(_FixedDecoder(real)) == pytest.approx(0.0, abs=1e-6)


def test_the_latents_are_seeded_and_shared():
    real = np.random.default_rng(2).random((10, 4, 4, 1), dtype=np.float32)
    scorer = FIDScorer(real, feature_extractor=_extractor(), samples=6, seed=3)

    class Recorder:
        latent_dim = 2

        def __init__(self):
            self.latents = []

        def generate(self, z):
            self.latents.append(np.array(z))
            return real[: len(z)]

    first, second = Recorder(), Recorder()
    scorer(first), scorer(second)
    np.testing.assert_array_equal(first.latents[0], second.latents[0])
    assert first.latents[0].shape == (6, 2)
    with pytest.raises(ValueError, match="at least 2 samples"):
        FIDScorer(real, feature_extractor=_extractor(), samples=1)
