"""Tests for keras_avae/metrics/self_consistency.py, on the pPCA case of appendix B.

With g(z) = W z and the exact posterior mean f^mu(x) = (W'W + vI)^-1 W'x, the
chain z_t = f^mu(g(z_{t-1})) is z_t = J^t z_0 with J = (W'W + vI)^-1 W'W -> I
as v -> 0: the exact pair autoencodes its samples, a perturbed encoder does not.
"""

import keras
import numpy as np
import pytest

import keras_avae
from keras_avae.evaluation.self_consistency import _observe, self_consistency

OBSERVED_DIM, LATENT_DIM = 4, 2
SEED = 3


def _loading_matrix(latent_dim=LATENT_DIM, scales=(2.0, 0.7, 1.3)):
    """W with orthogonal columns, so that the exact posterior is diagonal."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(OBSERVED_DIM, latent_dim)))
    return q * np.array(scales[:latent_dim])


def _linear_vae(w, mean_map, obs_var, mean_bias=None, likelihood="gaussian"):
    """A VAE with encoder mean `mean_map @ x + mean_bias` (log-variance 0) and decoder g(z) = W z."""
    latent_dim = w.shape[1]
    encoder = keras.Sequential([keras.Input((OBSERVED_DIM,)), keras.layers.Dense(2 * latent_dim)])
    bias = np.zeros(2 * latent_dim)
    if mean_bias is not None:
        bias[:latent_dim] = mean_bias
    encoder.layers[0].set_weights([np.concatenate([mean_map.T, np.zeros((OBSERVED_DIM, latent_dim))], axis=1), bias])
    decoder = keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(OBSERVED_DIM, use_bias=False)])
    decoder.layers[0].set_weights([w.T])
    model = keras_avae.VAE(encoder, decoder, obs_var=obs_var, likelihood=likelihood, data_range=None, seed=0)
    model(np.zeros((1, OBSERVED_DIM), np.float32))
    return model


def _exact_mean_map(w, obs_var):
    return np.linalg.solve(w.T @ w + obs_var * np.eye(w.shape[1]), w.T)


def _prior_samples(n, latent_dim=LATENT_DIM, seed=SEED):
    """The z_0 that `self_consistency(..., seed=seed)` draws first."""
    return np.random.default_rng(seed).normal(size=(n, latent_dim))


def test_the_exact_posterior_is_self_consistent_as_noise_vanishes():
    w = _loading_matrix()
    scores = self_consistency(_linear_vae(w, _exact_mean_map(w, 1e-6), 1e-6), n=200, steps=3, seed=SEED)
    assert scores["active_dims"] == LATENT_DIM
    for key, value in scores.items():
        if key not in ("active_dims", "z_error_noisy", "z_error_noisy_active"):
            assert value < 1e-6, key
    # With noise, v ||f^mu||_F^2 = 1e-6 (1/2^2 + 1/0.7^2) ~ 2.3e-6 remains.
    assert scores["z_error_noisy"] < 1e-5


def test_a_perturbed_encoder_is_not():
    w = _loading_matrix()
    perturbed = _exact_mean_map(w, 1e-6) + 0.3 * np.ones((LATENT_DIM, OBSERVED_DIM))
    scores = self_consistency(_linear_vae(w, perturbed, 1e-6), n=200, steps=3, seed=SEED)
    assert scores["z_error"] > 0.1
    assert scores["z_error_active"] == scores["z_error"]
    assert scores["x_error"] > 0.1
    assert scores["z_drift_3"] > 0.1


def test_the_chain_matches_its_closed_form():
    # z_t = (A W)^t z_0 for encoder mean map A; x_t - x_0 = W (z_t - z_0).
    w = _loading_matrix()
    mean_map = _exact_mean_map(w, 0.3) + 0.1 * np.random.default_rng(1).normal(size=(LATENT_DIM, OBSERVED_DIM))
    n, steps = 300, 4
    scores = self_consistency(_linear_vae(w, mean_map, 0.3), n=n, steps=steps, batch_size=64, seed=SEED)
    z0 = _prior_samples(n)
    for t in range(1, steps + 1):
        z_t = z0 @ np.linalg.matrix_power(mean_map @ w, t).T
        assert scores[f"z_drift_{t}"] == pytest.approx(np.mean(np.sum((z_t - z0) ** 2, 1)), rel=1e-4)
        assert scores[f"x_drift_{t}"] == pytest.approx(np.mean(np.sum(((z_t - z0) @ w.T) ** 2, 1)), rel=1e-4)
    assert scores["z_error"] == scores["z_drift_1"]
    assert scores["x_error"] == scores["x_drift_1"]


def test_decoder_noise_adds_its_closed_form():
    # f^mu(W z + e) - z = (J - I) z + A e, so E||.||^2 = ||J - I||_F^2 + v ||A||_F^2.
    obs_var = 0.3
    w = _loading_matrix()
    mean_map = _exact_mean_map(w, obs_var)
    scores = self_consistency(_linear_vae(w, mean_map, obs_var), n=20000, steps=1, batch_size=5000, seed=SEED)
    jacobian = mean_map @ w
    expected = np.sum((jacobian - np.eye(LATENT_DIM)) ** 2) + obs_var * np.sum(mean_map**2)
    # Monte Carlo over 20000 samples: a few percent.
    assert scores["z_error_noisy"] == pytest.approx(expected, rel=0.05)
    assert scores["z_error_noisy"] > 2 * scores["z_error"]


def test_collapsed_dimensions_are_left_out_of_the_active_errors():
    # Three latents, the third collapsed: its encoder mean is the constant 0.5.
    w = _loading_matrix(latent_dim=3)
    mean_map = _exact_mean_map(w, 1e-6)
    mean_map[2] = 0.0
    model = _linear_vae(w, mean_map, 1e-6, mean_bias=[0.0, 0.0, 0.5])
    n = 500
    scores = self_consistency(model, n=n, steps=2, seed=SEED)
    z0 = _prior_samples(n, latent_dim=3)
    assert scores["active_dims"] == 2
    assert scores["z_error"] == pytest.approx(np.mean((z0[:, 2] - 0.5) ** 2), rel=1e-4)
    assert scores["z_error_active"] < 1e-6
    assert scores["z_drift_active_2"] < 1e-6
    # Real data along the first column of W only: one dimension varies over it.
    x = np.outer(np.linspace(-1.0, 1.0, 50), w[:, 0]).astype(np.float32)
    assert self_consistency(model, n=n, steps=1, x=x, seed=SEED)["active_dims"] == 1
    # A threshold above every variance leaves no active dimension.
    none_active = self_consistency(model, n=n, steps=1, active_threshold=1e3, seed=SEED)
    assert none_active["active_dims"] == 0
    assert none_active["z_error_active"] == 0.0 and none_active["z_error_noisy_active"] == 0.0


def test_keys_and_determinism(make_networks, images):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:1])
    state = model.seed_generator.state.numpy().copy()
    weights = [v.numpy().copy() for v in model.weights]
    scores = self_consistency(model, n=16, steps=2, seed=1)
    assert list(scores) == [
        "z_error", "z_error_active", "z_error_noisy", "z_error_noisy_active", "x_error", "active_dims",
        "z_drift_1", "z_drift_active_1", "x_drift_1", "z_drift_2", "z_drift_active_2", "x_drift_2",
    ]  # fmt: skip
    assert all(isinstance(v, float) and np.isfinite(v) for v in scores.values())
    assert self_consistency(model, n=16, steps=2, seed=1) == scores
    assert self_consistency(model, n=16, steps=2, seed=2) != scores
    # The model is not modified.
    np.testing.assert_array_equal(model.seed_generator.state.numpy(), state)
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_noisy_samples_stay_in_the_data_range(make_networks, images):
    model = keras_avae.VAE(*make_networks(), obs_var=0.5, seed=0)
    model(images[:1])
    noisy = _observe(model, np.full((100, 6, 6, 1), 0.9), np.random.default_rng(0))
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0 and noisy.std() > 0.1


def test_bernoulli_likelihood_samples_binary_images(make_networks, images):
    model = keras_avae.VAE(*make_networks(), likelihood="bernoulli", seed=0)
    model(images[:1])
    noisy = _observe(model, np.full((100, 6, 6, 1), 0.3), np.random.default_rng(0))
    assert set(np.unique(noisy)) == {0.0, 1.0}
    assert abs(noisy.mean() - 0.3) < 0.02
    assert np.isfinite(self_consistency(model, n=8, steps=1)["z_error_noisy"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 1}, "`n` must be an integer >= 2. Received: n=1"),
        ({"steps": 0}, "`steps` must be an integer >= 1. Received: steps=0"),
        ({"active_threshold": -0.1}, "`active_threshold` must be a finite number >= 0"),
        ({"active_threshold": float("nan")}, "`active_threshold` must be a finite number >= 0"),
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
        ({"seed": None}, "`seed` must be an int. Received: seed=None"),
        ({"x": np.zeros((1, 6, 6, 1))}, "`x` must hold at least 2 examples"),
        ({"x": np.zeros((4, 5, 5, 1))}, r"`x` has examples of shape \(5, 5, 1\); the model takes \(6, 6, 1\)"),
        ({"x": np.full((4, 6, 6, 1), 2.0)}, "Bad `x`: inputs span"),
    ],
)
def test_bad_arguments_raise(make_networks, images, kwargs, match):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:1])
    with pytest.raises(ValueError, match=match):
        self_consistency(model, **kwargs)


def test_models_must_be_built_keras_avae_models(make_networks):
    with pytest.raises(ValueError, match="`model` must be a keras_avae model"):
        self_consistency(keras.Sequential([keras.Input((2,))]))
    with pytest.raises(ValueError, match="`model` must be built"):
        self_consistency(keras_avae.VAE(*make_networks()))
