"""The pPCA case of appendix B: a linear decoder with its exact posterior as the encoder.

With g(z) = W z and N(x; W z, v I), the exact posterior is
N(z; (W'W + vI)^-1 W'x, v (W'W + vI)^-1). W has orthogonal columns so that this
posterior is diagonal and a `VAE` encoder can represent it exactly.
"""

import keras
import numpy as np
import pytest
from scipy import stats

import keras_avae
from keras_avae import distributions

OBSERVED_DIM, LATENT_DIM, OBS_VAR = 4, 2, 0.3
SAMPLES = 200_000


def _loading_matrix():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(OBSERVED_DIM, LATENT_DIM)))
    return q * np.array([2.0, 0.7])


def _ppca_vae(w, obs_var, encoder_perturbation=None):
    """A VAE whose linear encoder is the exact pPCA posterior (plus an optional perturbation)."""
    precision = w.T @ w + obs_var * np.eye(LATENT_DIM)
    mean_map = np.linalg.solve(precision, w.T)
    if encoder_perturbation is not None:
        mean_map = mean_map + encoder_perturbation
    log_var = np.log(np.diag(obs_var * np.linalg.inv(precision)))
    encoder = keras.Sequential([keras.Input((OBSERVED_DIM,)), keras.layers.Dense(2 * LATENT_DIM)])
    encoder.layers[0].set_weights(
        [np.concatenate([mean_map.T, np.zeros((OBSERVED_DIM, LATENT_DIM))], axis=1), np.concatenate([np.zeros(LATENT_DIM), log_var])]
    )
    decoder = keras.Sequential([keras.Input((LATENT_DIM,)), keras.layers.Dense(OBSERVED_DIM, use_bias=False)])
    decoder.layers[0].set_weights([w.T])
    model = keras_avae.VAE(encoder, decoder, obs_var=obs_var, data_range=None, seed=0)
    model(np.zeros((1, OBSERVED_DIM), np.float32))
    return model, precision


def _moments(samples):
    return samples.mean(0), np.cov(samples, rowvar=False)


def test_the_exact_posterior_closes_the_elbo_gap():
    """ELBO = log p(x) when q is the exact posterior, p(x) = N(0, W W' + v I)."""
    w = _loading_matrix()
    model, _ = _ppca_vae(w, OBS_VAR)
    x = np.array([[0.5, -1.0, 0.3, 0.8]], np.float32)
    elbo = model.terms(np.repeat(x, SAMPLES, axis=0))["elbo"].numpy()
    log_marginal = stats.multivariate_normal(np.zeros(OBSERVED_DIM), w @ w.T + OBS_VAR * np.eye(OBSERVED_DIM)).logpdf(x[0])
    standard_error = elbo.std() / np.sqrt(SAMPLES)
    assert abs(elbo.mean() - log_marginal) < 5 * standard_error + 1e-4


def test_observation_transition_kernel():
    """Q(X'|X=x) = N(P x, v (P + I)) with P = W (W'W + vI)^-1 W'."""
    w = _loading_matrix()
    model, precision = _ppca_vae(w, OBS_VAR)
    x = np.array([0.5, -1.0, 0.3, 0.8], np.float32)
    z = model.encode(np.repeat(x[None], SAMPLES, axis=0)).sample(seed=1)
    x_next = distributions.observation(model.generate(z), "gaussian", OBS_VAR).sample(seed=2).numpy()
    projection = w @ np.linalg.solve(precision, w.T)
    mean, cov = _moments(x_next)
    np.testing.assert_allclose(mean, projection @ x, atol=0.01)
    np.testing.assert_allclose(cov, OBS_VAR * (projection + np.eye(OBSERVED_DIM)), atol=0.01)


def test_latent_transition_kernel():
    """Q(Z'|Z=z) = N(J z, S), J = (W'W + vI)^-1 W'W, S = v (J + I)(W'W + vI)^-1."""
    w = _loading_matrix()
    model, precision = _ppca_vae(w, OBS_VAR)
    z = np.array([0.7, -1.2], np.float32)
    generated = distributions.observation(model.generate(np.repeat(z[None], SAMPLES, axis=0)), "gaussian", OBS_VAR)
    z_next = model.encode(generated.sample(seed=3)).sample(seed=4).numpy()
    jacobian = np.linalg.solve(precision, w.T @ w)
    covariance = OBS_VAR * (jacobian + np.eye(LATENT_DIM)) @ np.linalg.inv(precision)
    mean, cov = _moments(z_next)
    np.testing.assert_allclose(mean, jacobian @ z, atol=0.01)
    np.testing.assert_allclose(cov, covariance, atol=0.01)


@pytest.mark.parametrize("obs_var", [1e-4, 1e-6])
def test_exact_encoder_autoencodes_its_samples_as_noise_vanishes(obs_var):
    """J -> I as v -> 0: f^mu(g(z)) = z for the exact posterior, not for a perturbed one."""
    w = _loading_matrix()
    z = np.random.default_rng(5).normal(size=(100, LATENT_DIM)).astype(np.float32)
    exact, _ = _ppca_vae(w, obs_var)
    error = np.abs(exact.encode_mean(exact.generate(z)) - z).max()
    assert error < 1e-3
    perturbed, _ = _ppca_vae(w, obs_var, encoder_perturbation=0.3 * np.ones((LATENT_DIM, OBSERVED_DIM)))
    assert np.abs(perturbed.encode_mean(perturbed.generate(z)) - z).max() > 100 * error
