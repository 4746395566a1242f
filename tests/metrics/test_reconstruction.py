"""Tests for keras_avae/metrics/reconstruction.py: test MSE of g(f^mu(x)) on three scales."""

import keras
import numpy as np
import pytest

from keras_avae import VAE
from keras_avae.metrics.reconstruction import reconstruction_mse, squared_errors

IMAGE_SHAPE = (6, 6, 1)
CONSTANT = 0.25


def _constant_decoder_vae(make_networks, data_range=(0.0, 1.0), constant=CONSTANT):
    """A VAE whose decoder outputs `constant` everywhere: g(f^mu(x)) = constant."""
    encoder, _ = make_networks(image_shape=IMAGE_SHAPE)
    pixels = int(np.prod(IMAGE_SHAPE))
    decoder = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(pixels, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(constant)),
            keras.layers.Reshape(IMAGE_SHAPE),
        ]
    )
    model = VAE(encoder, decoder, data_range=data_range, seed=0)
    model(np.zeros((1,) + IMAGE_SHAPE, np.float32))
    return model


def test_constant_decoder_matches_the_closed_form_on_every_scale(make_networks, images):
    model = _constant_decoder_vae(make_networks)
    squared = (images.astype(np.float64) - CONSTANT) ** 2
    pixels = np.prod(IMAGE_SHAPE)
    assert reconstruction_mse(model, images, scale="sum") == pytest.approx(squared.sum() / len(images), rel=1e-6)
    assert reconstruction_mse(model, images, scale="pixel") == pytest.approx(squared.mean(), rel=1e-6)
    assert reconstruction_mse(model, images) == pytest.approx(255.0**2 * squared.mean(), rel=1e-6)
    np.testing.assert_allclose(squared_errors(model, images), squared.reshape(len(images), pixels).sum(1), rtol=1e-6)


def test_paper_scale_maps_the_data_range_to_0_255(make_networks, images):
    # Pixels in [0, 2]: an error of 1 data unit is 127.5 paper units.
    model = _constant_decoder_vae(make_networks, data_range=(0.0, 2.0), constant=0.0)
    x = np.ones((4,) + IMAGE_SHAPE, np.float32)
    assert reconstruction_mse(model, x, scale="pixel") == pytest.approx(1.0)
    assert reconstruction_mse(model, x) == pytest.approx(127.5**2)
    # An explicit range overrides the model's.
    assert reconstruction_mse(model, x, data_range=(0.0, 1.0)) == pytest.approx(255.0**2)


def test_the_batch_size_does_not_change_the_result(make_networks, images):
    model = VAE(*make_networks(image_shape=IMAGE_SHAPE), seed=0)
    model(images[:1])
    whole = reconstruction_mse(model, images, batch_size=len(images))
    assert reconstruction_mse(model, images, batch_size=5) == pytest.approx(whole, rel=1e-6)
    reconstruction = model.reconstruct(images).numpy()
    assert whole == pytest.approx(255.0**2 * np.mean((images - reconstruction) ** 2), rel=1e-5)


def test_paper_scale_needs_a_range(make_networks, images):
    model = _constant_decoder_vae(make_networks, data_range=None)
    with pytest.raises(ValueError, match="scale='paper' .* needs their range: the model has data_range=None"):
        reconstruction_mse(model, images)
    assert reconstruction_mse(model, images, scale="sum") > 0


def test_bad_arguments_raise(make_networks, images):
    model = _constant_decoder_vae(make_networks)
    with pytest.raises(ValueError, match=r"`scale` must be one of \('paper', 'pixel', 'sum'\). Received: scale='mean'"):
        reconstruction_mse(model, images, scale="mean")
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1. Received: batch_size=0"):
        reconstruction_mse(model, images, batch_size=0)
    with pytest.raises(ValueError, match="`model` must be a keras_avae model with `encode_mean` and `generate`"):
        reconstruction_mse(keras.Sequential([keras.Input((2,))]), images)
    with pytest.raises(ValueError, match="`model` must be built"):
        reconstruction_mse(VAE(*make_networks(image_shape=IMAGE_SHAPE)), images)
    with pytest.raises(ValueError, match=r"`x` has examples of shape \(5, 5, 1\); the model takes \(6, 6, 1\)"):
        reconstruction_mse(model, np.zeros((2, 5, 5, 1), np.float32))
    with pytest.raises(ValueError, match="Bad `x`: inputs span"):
        reconstruction_mse(model, images * 255.0)
    with pytest.raises(ValueError, match="`x` must be a non-empty batch of images"):
        reconstruction_mse(model, images[:0])
    with pytest.raises(ValueError, match="`data_range` must satisfy low < high"):
        reconstruction_mse(model, images, data_range=(1.0, 1.0))
