"""Tests for keras_avae/distributions.py: each distribution against its closed form (paper eqs. 1, 4, 13)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_avae import distributions

RNG = np.random.default_rng(0)


def _gaussian_log_density(x, mean, variance):
    """Sum over the event of log N(x; mean, variance), in NumPy."""
    return np.sum(-0.5 * np.log(2 * np.pi * variance) - (x - mean) ** 2 / (2 * variance), axis=tuple(range(1, x.ndim)))


def test_diagonal_gaussian_log_prob_entropy_and_kl_match_the_closed_forms():
    z_mean = RNG.normal(size=(5, 3)).astype(np.float32)
    z_log_var = RNG.normal(scale=0.5, size=(5, 3)).astype(np.float32)
    z = RNG.normal(size=(5, 3)).astype(np.float32)
    q = distributions.diagonal_gaussian(z_mean, z_log_var)
    assert q.batch_shape == (5,) and q.event_shape == (3,)
    np.testing.assert_allclose(q.log_prob(z), _gaussian_log_density(z, z_mean, np.exp(z_log_var)), rtol=1e-5)
    entropy = 0.5 * np.sum(np.log(2 * np.pi * np.e) + z_log_var, axis=-1)
    np.testing.assert_allclose(q.entropy(), entropy, rtol=1e-5)
    # KL(q || N(0, I)) = 1/2 sum(exp(log_var) + mean^2 - 1 - log_var)  (Kingma & Welling, App. B)
    kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var, axis=-1)
    np.testing.assert_allclose(q.kl_divergence(distributions.standard_normal(3)), kl, rtol=1e-5, atol=1e-6)


def test_the_variance_is_exp_of_log_var_not_the_scale():
    q = distributions.diagonal_gaussian(np.zeros((1, 2), np.float32), np.log(np.full((1, 2), 4.0, np.float32)))
    samples = q.sample(20000, seed=1).numpy().reshape(-1, 2)
    np.testing.assert_allclose(samples.var(axis=0), [4.0, 4.0], rtol=0.05)  # a std of 4 would give 16


def test_standard_normal_is_the_prior_over_latent_vectors():
    prior = distributions.standard_normal(4)
    assert prior.event_shape == (4,) and prior.batch_shape == ()
    z = RNG.normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(prior.log_prob(z), -2 * math.log(2 * math.pi) - 0.5 * np.sum(z**2, axis=-1), rtol=1e-5)
    assert distributions.standard_normal(2, dtype=tf.float64).dtype == tf.float64


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.975, -0.3])
def test_coupling_is_the_rho_gaussian_of_eq_4(rho):
    z = RNG.normal(size=(4, 3)).astype(np.float32)
    z_aux = RNG.normal(size=(4, 3)).astype(np.float32)
    coupled = distributions.coupling(z, rho)
    d = 3
    # log p(z'|z) = -d/2 log(2 pi (1 - rho^2)) - |z' - rho z|^2 / (2 (1 - rho^2))
    expected = -d / 2 * np.log(2 * np.pi * (1 - rho**2)) - np.sum((z_aux - rho * z) ** 2, axis=-1) / (2 * (1 - rho**2))
    np.testing.assert_allclose(coupled.log_prob(z_aux), expected, rtol=1e-5, atol=1e-5)
    # Mutual information of the rho-coupled pair: -d/2 log(1 - rho^2) = h(z') - h(z'|z), h(z') of N(0, I).
    prior_entropy = d / 2 * np.log(2 * np.pi * np.e)
    np.testing.assert_allclose(prior_entropy - coupled.entropy().numpy(), -d / 2 * np.log(1 - rho**2), atol=1e-5)


def test_gaussian_observation_over_the_whole_image():
    x_mean = RNG.random((3, 2, 2, 1)).astype(np.float32)
    x = RNG.random((3, 2, 2, 1)).astype(np.float32)
    model = distributions.observation(x_mean, "gaussian", obs_var=0.5)
    assert model.batch_shape == (3,) and model.event_shape == (2, 2, 1)
    np.testing.assert_allclose(model.log_prob(x), _gaussian_log_density(x, x_mean, 0.5), rtol=1e-5)


def test_bernoulli_observation_stays_finite_when_the_decoder_saturates():
    x_mean = np.array([[0.0, 1.0, 0.25]], np.float32)
    x = np.array([[1.0, 0.0, 1.0]], np.float32)
    log_prob = distributions.observation(x_mean, "bernoulli").log_prob(x).numpy()
    eps = distributions.BERNOULLI_MEAN_EPSILON
    np.testing.assert_allclose(log_prob, [2 * np.log(eps) + np.log(0.25)], rtol=1e-3)
    assert np.isfinite(log_prob).all()


def test_an_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match=r"`likelihood` must be one of \('gaussian', 'bernoulli'\)\. Received: likelihood='poisson'"):
        distributions.observation(np.zeros((1, 2), np.float32), "poisson")
