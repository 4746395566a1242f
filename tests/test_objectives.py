"""Each objective term against a NumPy closed form, then a seeded Monte-Carlo estimate."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_avae import objectives

LOG_2PI = np.log(2 * np.pi)
MC_SAMPLES = 400_000


def _gaussians(seed, batch=5, dim=4):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(batch, dim)).astype(np.float32)
    log_var = rng.uniform(-2.0, 1.0, size=(batch, dim)).astype(np.float32)
    return mean, log_var


def _samples(mean, log_var, seed):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((MC_SAMPLES,) + mean.shape)
    return mean + np.exp(0.5 * log_var) * noise


def test_kl_matches_closed_form():
    mean, log_var = _gaussians(0)
    expected = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)
    np.testing.assert_allclose(objectives.kl_to_standard_normal(mean, log_var), expected, rtol=1e-5)


def test_kl_matches_monte_carlo():
    mean, log_var = _gaussians(1, batch=2)
    z = _samples(mean, log_var, seed=2)
    log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(-1)
    log_p = stats.norm.logpdf(z).sum(-1)
    estimate = (log_q - log_p).mean(0)
    np.testing.assert_allclose(objectives.kl_to_standard_normal(mean, log_var), estimate, atol=0.02)


def test_kl_is_zero_at_the_prior():
    zeros = np.zeros((3, 4), np.float32)
    np.testing.assert_allclose(objectives.kl_to_standard_normal(zeros, zeros), 0.0, atol=1e-6)


def test_entropy_matches_closed_form_and_monte_carlo():
    mean, log_var = _gaussians(3, batch=2)
    expected = 0.5 * np.sum(LOG_2PI + 1.0 + log_var, axis=-1)
    result = objectives.gaussian_entropy(log_var)
    np.testing.assert_allclose(result, expected, rtol=1e-5)
    z = _samples(mean, log_var, seed=4)
    estimate = -stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(-1).mean(0)
    np.testing.assert_allclose(result, estimate, atol=0.02)


def _coupling_closed_form(m, log_s, m_aux, log_s_aux, rho):
    """STYLE.md: -d/2 log(2 pi (1 - rho^2)) minus the quadratic term over 2 (1 - rho^2)."""
    d = m.shape[-1]
    quadratic = np.sum((m_aux - rho * m) ** 2 + np.exp(log_s_aux) + rho**2 * np.exp(log_s), -1)
    return -d / 2 * np.log(2 * np.pi * (1 - rho**2)) - quadratic / (2 * (1 - rho**2))


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.975, -0.8])
def test_coupling_matches_closed_form(rho):
    m, log_s = _gaussians(5)
    m_aux, log_s_aux = _gaussians(6)
    result = objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s_aux, rho)
    expected = _coupling_closed_form(m, log_s, m_aux, log_s_aux, rho)
    np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_coupling_matches_monte_carlo_over_both_posteriors():
    rho = 0.9
    m, log_s = _gaussians(7, batch=2)
    m_aux, log_s_aux = _gaussians(8, batch=2)
    z = _samples(m, log_s, seed=9)
    z_aux = _samples(m_aux, log_s_aux, seed=10)
    log_p = stats.norm.logpdf(z_aux, rho * z, np.sqrt(1 - rho**2)).sum(-1)
    estimate = log_p.mean(0)
    standard_error = log_p.std(0) / np.sqrt(MC_SAMPLES)
    result = objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s_aux, rho).numpy()
    assert np.all(np.abs(result - estimate) < 5 * standard_error), (result, estimate, standard_error)


def test_coupling_and_entropy_give_the_mutual_information_of_the_coupled_prior():
    """With q(z) a point mass and q(z') = p_rho(z'|z): H[N(0, I)] + <log p_rho(z'|z)> = MI.

    The mutual information of a rho-coupled pair of standard Gaussians is -d/2 log(1 - rho^2).
    """
    rho, d = 0.975, 4
    z = np.random.default_rng(11).normal(size=(3, d)).astype(np.float32)
    point_mass = np.full_like(z, -60.0)
    conditional_log_var = np.full_like(z, np.log(1 - rho**2))
    conditional_entropy = -objectives.expected_coupling_log_prob(
        z, point_mass, rho * z, conditional_log_var, rho
    )
    marginal_entropy = objectives.gaussian_entropy(np.zeros_like(z))
    np.testing.assert_allclose(
        marginal_entropy - conditional_entropy, -d / 2 * np.log(1 - rho**2), rtol=1e-4
    )


def test_coupling_gradient_pulls_the_delusion_code_towards_rho_z():
    rho = 0.5
    m, log_s = _gaussians(12)
    m_aux = tf.Variable(_gaussians(13)[0])
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s, rho))
    expected = -(m_aux.numpy() - rho * m) / (1 - rho**2)
    np.testing.assert_allclose(tape.gradient(value, m_aux), expected, rtol=1e-5)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.975, -0.8])
def test_joint_coupling_is_the_factorised_one_with_a_point_mass_at_z(rho):
    z, _ = _gaussians(14)
    m_aux, log_s_aux = _gaussians(15)
    point_mass = np.full_like(z, -np.inf)
    expected = _coupling_closed_form(z, point_mass, m_aux, log_s_aux, rho)
    result = objectives.coupling_log_prob_given_z(z, m_aux, log_s_aux, rho)
    np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_joint_coupling_matches_monte_carlo_over_the_delusion_posterior():
    rho = 0.9
    z, _ = _gaussians(16, batch=2)
    m_aux, log_s_aux = _gaussians(17, batch=2)
    z_aux = _samples(m_aux, log_s_aux, seed=18)
    log_p = stats.norm.logpdf(z_aux, rho * z, np.sqrt(1 - rho**2)).sum(-1)
    standard_error = log_p.std(0) / np.sqrt(MC_SAMPLES)
    result = objectives.coupling_log_prob_given_z(z, m_aux, log_s_aux, rho).numpy()
    assert np.all(np.abs(result - log_p.mean(0)) < 5 * standard_error), (result, log_p.mean(0))


def test_joint_coupling_gradient_pulls_rho_z_towards_the_delusion_code():
    rho = 0.5
    z = tf.Variable(_gaussians(19)[0])
    m_aux, log_s_aux = _gaussians(20)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(objectives.coupling_log_prob_given_z(z, m_aux, log_s_aux, rho))
    expected = rho * (m_aux - rho * z.numpy()) / (1 - rho**2)
    np.testing.assert_allclose(tape.gradient(value, z), expected, rtol=1e-5)


def test_gaussian_reconstruction_keeps_every_constant():
    rng = np.random.default_rng(14)
    x = rng.random((3, 4, 4, 2)).astype(np.float32)
    x_mean = rng.random((3, 4, 4, 2)).astype(np.float32)
    obs_var = 0.5
    expected = stats.norm.logpdf(x, x_mean, np.sqrt(obs_var)).reshape(3, -1).sum(-1)
    result = objectives.reconstruction(x, x_mean, "gaussian", obs_var)
    np.testing.assert_allclose(result, expected, rtol=1e-5)
    d = x[0].size
    by_hand = -d / 2 * np.log(2 * np.pi * obs_var) - ((x - x_mean) ** 2).reshape(3, -1).sum(-1) / (2 * obs_var)
    np.testing.assert_allclose(result, by_hand, rtol=1e-5)


def test_bernoulli_reconstruction_accepts_grey_levels():
    rng = np.random.default_rng(15)
    x = rng.random((3, 5)).astype(np.float32)
    probs = rng.uniform(0.05, 0.95, size=(3, 5)).astype(np.float32)
    expected = np.sum(x * np.log(probs) + (1 - x) * np.log1p(-probs), -1)
    result = objectives.reconstruction(x, probs, "bernoulli")
    np.testing.assert_allclose(result, expected, rtol=1e-4)


def test_bernoulli_reconstruction_stays_finite_when_the_decoder_saturates():
    x = np.array([[0.0, 1.0, 0.5]], np.float32)
    probs = np.array([[1.0, 0.0, 1.0]], np.float32)
    assert np.all(np.isfinite(objectives.reconstruction(x, probs, "bernoulli")))


def test_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match="`likelihood` must be one of"):
        objectives.reconstruction(np.zeros((1, 2)), np.zeros((1, 2), np.float32), "poisson")


# ---------------------------------------------------------------- appendix C.3.1


def _psi_closed_form(log_s, log_s_aux, rho):
    gamma = rho / (1 - rho**2)
    return (np.sqrt(1 + 4 * gamma**2 * np.exp(log_s) * np.exp(log_s_aux)) - 1) / (2 * gamma)


def test_coupled_covariance_matches_appendix_c31():
    rho = 0.95
    _, log_s = _gaussians(20)
    _, log_s_aux = _gaussians(21)
    psi = objectives.coupled_covariance(log_s, log_s_aux, rho).numpy()
    np.testing.assert_allclose(psi, _psi_closed_form(log_s, log_s_aux, rho), rtol=1e-5)
    # A valid joint: |psi| < sqrt(s s').
    assert np.all(psi**2 < np.exp(log_s + log_s_aux))
    np.testing.assert_array_equal(objectives.coupled_covariance(log_s, log_s_aux, 0.0), 0.0)


def test_tight_joint_prior_term_matches_eq_31():
    """<log p(z)>_q + <log p_rho(z'|z)>_q~ is eq. (31) with its constant C."""
    rho, d = 0.95, 4
    m, log_s = _gaussians(22)
    m_aux, log_s_aux = _gaussians(23)
    psi = _psi_closed_form(log_s, log_s_aux, rho).astype(np.float32)
    s, s_aux = np.exp(log_s), np.exp(log_s_aux)
    trace = np.sum(s_aux + s + m_aux**2 + m**2 - 2 * rho * (psi + m_aux * m), -1)
    constant = -d * np.log(2 * np.pi) - d / 2 * np.log(1 - rho**2)
    eq_31 = -trace / (2 * (1 - rho**2)) + constant
    log_prior = -d / 2 * np.log(2 * np.pi) - 0.5 * np.sum(m**2 + s, -1)
    coupling = objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s_aux, rho, psi).numpy()
    np.testing.assert_allclose(log_prior + coupling, eq_31, rtol=1e-5)


def test_tight_coupling_matches_monte_carlo_under_the_joint():
    rho = 0.9
    m, log_s = _gaussians(24, batch=1, dim=2)
    m_aux, log_s_aux = _gaussians(25, batch=1, dim=2)
    psi = _psi_closed_form(log_s, log_s_aux, rho)
    rng = np.random.default_rng(26)
    z, z_aux = [], []
    for i in range(2):
        cov = [[np.exp(log_s[0, i]), psi[0, i]], [psi[0, i], np.exp(log_s_aux[0, i])]]
        pair = rng.multivariate_normal([m[0, i], m_aux[0, i]], cov, size=MC_SAMPLES)
        z.append(pair[:, 0])
        z_aux.append(pair[:, 1])
    z, z_aux = np.stack(z, -1), np.stack(z_aux, -1)
    log_p = stats.norm.logpdf(z_aux, rho * z, np.sqrt(1 - rho**2)).sum(-1)
    result = objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s_aux, rho, psi.astype(np.float32))
    assert abs(result.numpy()[0] - log_p.mean()) < 5 * log_p.std() / np.sqrt(MC_SAMPLES)


def test_coupled_entropy_is_the_joint_entropy_minus_the_marginal():
    m, log_s = _gaussians(27)
    _, log_s_aux = _gaussians(28)
    psi = _psi_closed_form(log_s, log_s_aux, 0.9).astype(np.float32)
    joint = np.sum(np.log(2 * np.pi * np.e) + 0.5 * np.log(np.exp(log_s + log_s_aux) - psi**2), -1)
    result = objectives.gaussian_entropy(log_s) + objectives.coupled_aux_entropy(log_s, log_s_aux, psi)
    np.testing.assert_allclose(result, joint, rtol=1e-4)


def test_psi_maximises_the_bound_and_psi_zero_gives_the_factorised_eq_28():
    rho = 0.95
    m, log_s = _gaussians(29)
    m_aux, log_s_aux = _gaussians(30)

    def bound(psi):
        return (
            objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s_aux, rho, psi)
            + objectives.coupled_aux_entropy(log_s, log_s_aux, psi)
        ).numpy()

    m, log_s, m_aux, log_s_aux = (a.astype(np.float64) for a in (m, log_s, m_aux, log_s_aux))
    psi = objectives.coupled_covariance(log_s, log_s_aux, rho).numpy()
    best = bound(psi)
    largest_valid = np.sqrt(np.exp(log_s + log_s_aux))  # the joint covariance stays positive definite
    for other in (0.9 * psi, psi + 0.5 * (largest_valid - psi)):
        assert np.all(bound(other) < best)
    factorised = objectives.expected_coupling_log_prob(m, log_s, m_aux, log_s_aux, rho) + objectives.gaussian_entropy(log_s_aux)
    np.testing.assert_allclose(bound(np.zeros_like(psi)), factorised, rtol=1e-6)
    assert np.all(best > factorised.numpy())


def test_representation_divergence_is_eqs_25_26():
    rho = 0.95
    m, log_s = _gaussians(31)
    m_aux, log_s_aux = _gaussians(32)
    expected = -_coupling_closed_form(m, log_s, m_aux, log_s_aux, rho) - 0.5 * np.sum(LOG_2PI + 1 + log_s_aux, -1)
    np.testing.assert_allclose(
        objectives.representation_divergence(m, log_s, m_aux, log_s_aux, rho), expected, rtol=1e-5
    )
