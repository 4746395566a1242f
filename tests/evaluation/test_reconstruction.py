"""Tests for keras_avae/metrics/reconstruction.py: test MSE of g(f^mu(x)) on four scales."""

import importlib
import re

import keras
import numpy as np
import pytest

from keras_avae import VAE
from keras_avae.evaluation.reconstruction import (
    PAPER_OBS_VAR,
    gaussian_nll_constant,
    reconstruction_mse,
    squared_errors,
)
from keras_avae.objectives import reconstruction

# The module itself (the package's `reconstruction` name is the objective function).
reconstruction_module = importlib.import_module("keras_avae.evaluation.reconstruction")

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
    with pytest.raises(ValueError, match=r"`scale` must be one of \('paper', 'pixel', 'sum', 'nll'\). Received: scale='mean'"):
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


class _IdentityModel:
    """A stub keras_avae model whose reconstruction g(f^mu(x)) is x itself."""

    built = True
    data_range = (0.0, 1.0)
    likelihood = "gaussian"

    def __init__(self, example_shape, obs_var=PAPER_OBS_VAR):
        self.example_shape = example_shape
        self.obs_var = obs_var

    def encode_mean(self, x):
        return x

    def generate(self, z):
        return z


def _gaussian_nll(x, x_mean, obs_var):
    """-log N(x; x_mean, v I) per image, summed pixel by pixel in NumPy, then averaged."""
    x = x.astype(np.float64).reshape(len(x), -1)
    x_mean = x_mean.astype(np.float64).reshape(len(x), -1)
    per_pixel = 0.5 * np.log(2.0 * np.pi * obs_var) + (x - x_mean) ** 2 / (2.0 * obs_var)
    return per_pixel.sum(axis=1).mean()


def test_nll_scale_matches_a_numpy_rederivation(make_networks, images):
    model = VAE(*make_networks(image_shape=IMAGE_SHAPE), obs_var=0.3, seed=0)
    model(images[:1])
    x_mean = keras.ops.convert_to_numpy(model.generate(model.encode_mean(images)))
    expected = _gaussian_nll(images, x_mean, 0.3)
    assert reconstruction_mse(model, images, scale="nll") == pytest.approx(expected, rel=1e-6)
    assert reconstruction_mse(model, images, scale="nll", batch_size=5) == pytest.approx(expected, rel=1e-6)
    # The training objective's own likelihood at z = f^mu(x) gives the same number.
    log_lik = reconstruction(images, keras.ops.convert_to_tensor(x_mean), obs_var=0.3)
    assert reconstruction_mse(model, images, scale="nll") == pytest.approx(-np.mean(log_lik), rel=1e-5)


def test_nll_scale_is_the_sum_scale_plus_the_constant_in_closed_form(make_networks, images):
    model = _constant_decoder_vae(make_networks)  # obs_var = 0.5, the VAE default
    sse = ((images.astype(np.float64) - CONSTANT) ** 2).reshape(len(images), -1).sum(1).mean()
    pixels = np.prod(IMAGE_SHAPE)
    expected = pixels / 2 * np.log(2 * np.pi * 0.5) + sse / (2 * 0.5)
    assert reconstruction_mse(model, images, scale="nll") == pytest.approx(expected, rel=1e-6)
    sum_scale = reconstruction_mse(model, images, scale="sum")
    nll = reconstruction_mse(model, images, scale="nll")
    assert nll == pytest.approx(gaussian_nll_constant(IMAGE_SHAPE) + sum_scale, rel=1e-6)


@pytest.mark.parametrize("example_shape, constant", [((28, 28, 3), 1346.2), ((64, 64, 3), 7033.2)])
def test_nll_of_perfect_reconstructions_is_the_papers_floor(example_shape, constant):
    # ColorMNIST (Table 1, 1369.2 to 1379.3) and CelebA (Table 2, 7203.9 to 7347.3)
    # sit just above these constants, D/2 log(2 pi 0.5).
    x = np.random.default_rng(0).random((3,) + example_shape, dtype=np.float32)
    model = _IdentityModel(example_shape)
    assert reconstruction_mse(model, x, scale="nll") == pytest.approx(constant, abs=0.1)
    assert gaussian_nll_constant(example_shape) == pytest.approx(constant, abs=0.1)
    assert gaussian_nll_constant(example_shape, PAPER_OBS_VAR) == pytest.approx(constant, abs=0.1)
    assert reconstruction_mse(model, x, scale="sum") == 0.0


def test_obs_var_overrides_the_models(make_networks, images):
    model = _constant_decoder_vae(make_networks)
    x_mean = np.full_like(images, CONSTANT)
    for obs_var in (0.05, 2.0, np.float32(0.25)):
        expected = _gaussian_nll(images, x_mean, float(obs_var))
        assert reconstruction_mse(model, images, scale="nll", obs_var=obs_var) == pytest.approx(expected, rel=1e-6)
    assert model.obs_var == 0.5
    # The override changes nothing on the other scales.
    assert reconstruction_mse(model, images, obs_var=2.0) == reconstruction_mse(model, images)
    # v = 1 / (2 pi) zeroes the constant: the nll is the SSE times 1 / (2 v) = pi.
    assert reconstruction_mse(model, images, scale="nll", obs_var=1 / (2 * np.pi)) == pytest.approx(
        np.pi * reconstruction_mse(model, images, scale="sum"), rel=1e-6
    )


@pytest.mark.parametrize("obs_var", [0.0, -0.5, float("nan"), float("inf"), "0.5", True])
def test_bad_obs_var_raises(make_networks, images, obs_var):
    model = _constant_decoder_vae(make_networks)
    message = re.escape(f"`obs_var` must be a finite number > 0. Received: obs_var={obs_var!r}")
    with pytest.raises(ValueError, match=message):
        reconstruction_mse(model, images, scale="nll", obs_var=obs_var)
    with pytest.raises(ValueError, match=message):
        gaussian_nll_constant(IMAGE_SHAPE, obs_var)


def test_nll_scale_needs_a_gaussian_variance(make_networks, images):
    bernoulli = VAE(*make_networks(image_shape=IMAGE_SHAPE), likelihood="bernoulli", seed=0)
    bernoulli(images[:1])
    with pytest.raises(ValueError, match="scale='nll' is the Gaussian .* likelihood is 'bernoulli': pass `obs_var`"):
        reconstruction_mse(bernoulli, images, scale="nll")
    assert reconstruction_mse(bernoulli, images, scale="nll", obs_var=0.5) > gaussian_nll_constant(IMAGE_SHAPE)
    stub = _IdentityModel(IMAGE_SHAPE, obs_var=None)
    message = "scale='nll' needs the observation variance v: _IdentityModel has no `obs_var`"
    with pytest.raises(ValueError, match=message):
        reconstruction_mse(stub, images, scale="nll")


def test_several_scales_come_from_one_pass_and_equal_each_scale_alone(make_networks, images, monkeypatch):
    model = VAE(*make_networks(), seed=0)
    model(images[:1])
    scales = reconstruction_module.SCALES
    alone = {scale: reconstruction_module.reconstruction_mse(model, images, scale=scale) for scale in scales}
    passes = []
    original = reconstruction_module.squared_errors
    monkeypatch.setattr(reconstruction_module, "squared_errors", lambda *args: passes.append(1) or original(*args))
    together = reconstruction_module.reconstruction_errors(model, images, reconstruction_module.SCALES)
    assert len(passes) == 1
    assert set(together) == set(reconstruction_module.SCALES)
    for scale, value in alone.items():
        np.testing.assert_allclose(together[scale], value, rtol=1e-12)
    with pytest.raises(ValueError, match=r"`scales` must name scales from"):
        reconstruction_module.reconstruction_errors(model, images, ("paper", "mean"))
