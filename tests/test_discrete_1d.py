"""Tests for examples/discrete_1d.py, the 1-D discrete VAE / AVAE of Section 3.1 and Appendix D."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import load_example
from matplotlib.image import imread

example = load_example("discrete_1d.py", "discrete_1d")


def _random_tables(n_x, n_z, seed, obs_spread=0.3):
    """Random (log q(Z|X), log p(X|Z)) from random f^mu, f^Sigma and g."""
    rng = np.random.default_rng(seed)
    log_q = example.log_encoder(
        rng.uniform(0, 2 * np.pi, n_x), rng.normal(0.0, 1.0, n_x), example.grid(n_z)
    )
    log_p = example.log_decoder(rng.uniform(0, 2 * np.pi, n_z), example.grid(n_x), obs_spread)
    return log_q, log_p


def _random_data(n_x, seed):
    """A random pi_hat with some empty grid points."""
    rng = np.random.default_rng(seed)
    data = rng.random(n_x) * (rng.random(n_x) < 0.6)
    data[0] = 1.0
    return data / data.sum()


def _xlogx_ratio(a, b):
    """sum a log(a / b) over a > 0, in NumPy."""
    mask = a > 0
    return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))


def test_grid_is_c_to_n_c():
    np.testing.assert_allclose(example.grid(8), 2 * np.pi / 8 * np.arange(1, 9))


@pytest.mark.parametrize("spread", [2.0, 0.3, 0.05, 1e-3])
def test_von_mises_tables_normalise(spread):
    points = example.grid(64)
    means = np.random.default_rng(0).uniform(0, 2 * np.pi, 10)
    table = np.exp(example.log_von_mises_table(points, means, spread).numpy())
    assert table.shape == (10, 64)
    assert np.all(np.isfinite(table))
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-12)
    if spread >= 0.05:  # exp(cos / v) is representable: compare with the formula of Appendix D
        energy = np.exp(np.cos(points[None, :] - means[:, None]) / spread)
        np.testing.assert_allclose(table, energy / energy.sum(axis=1, keepdims=True), rtol=1e-10)


def test_coupling_is_symmetric_and_peaked_on_the_diagonal():
    coupling = np.exp(example.log_coupling(example.grid(64)).numpy())
    np.testing.assert_allclose(coupling, coupling.T, atol=1e-15)
    np.testing.assert_allclose(coupling.sum(axis=1), 1.0, rtol=1e-12)
    # nu_rho = 1e-3: one step of 2 pi / 64 costs (1 - cos(2 pi / 64)) / 1e-3 = 4.8 nats.
    step = (1 - np.cos(2 * np.pi / 64)) / example.NU_RHO
    np.testing.assert_allclose(np.log(coupling[5, 6] / coupling[5, 5]), -step, rtol=1e-9)
    assert np.all(np.diag(coupling) > 0.98)


def test_data_distribution_is_an_empirical_histogram_with_gaps():
    data = example.data_distribution(100)
    np.testing.assert_allclose(data.sum(), 1.0)
    counts = data * example.DATA_SAMPLES
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert np.sum(data == 0) > 30
    np.testing.assert_array_equal(data, example.data_distribution(100))


def test_vae_objective_is_negative_kl():
    """Eq. (3) against a NumPy -KL(pi_hat q || p p) over the (X, Z) grid."""
    n_x, n_z = 12, 9
    log_q, log_p = _random_tables(n_x, n_z, seed=1)
    data = _random_data(n_x, seed=2)
    q_joint = data[:, None] * np.exp(log_q.numpy())
    p_joint = np.exp(log_p.numpy()).T / n_z
    expected = -_xlogx_ratio(q_joint, p_joint)
    value = float(example.vae_objective(tf.constant(data), log_q, log_p))
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert value < 0


def test_vae_objective_is_zero_for_the_exact_posterior_on_the_model_marginal():
    """KL = 0 when pi = p(X) and q(Z|X) = p(X|Z) p(Z) / p(X), the consistency condition (8)."""
    _, log_p = _random_tables(10, 7, seed=3)
    decoder = np.exp(log_p.numpy())
    marginal = example.model_marginal(decoder)
    posterior = decoder.T / 7 / marginal[:, None]
    value = example.vae_objective(tf.constant(marginal), tf.constant(np.log(posterior)), log_p)
    np.testing.assert_allclose(float(value), 0.0, atol=1e-12)


@pytest.mark.parametrize("delusion_weights", example.DELUSION_WEIGHTS)
def test_avae_objective_is_negative_kl_up_to_the_decoder_entropy(delusion_weights):
    """Eq. (10) + <H[p(X~|Z)]> = -KL(Q_AVAE || P_rho) of Appendix C.1, summed over (X, Z, X~, Z')."""
    n_x, n_z = 7, 6
    log_q, log_p = _random_tables(n_x, n_z, seed=4)
    data = _random_data(n_x, seed=5)
    z_points = example.grid(n_z)
    log_coupling = example.log_coupling(z_points, nu_rho=0.5)  # a broad coupling keeps every term visible
    q, p, coupling = np.exp(log_q.numpy()), np.exp(log_p.numpy()), np.exp(log_coupling.numpy())
    # Axes: x, z, x~, z'. Q_AVAE = pi(x) q(z|x) p(x~|z) q(z'|x~); P_rho = p(x|z) p(z) p_rho(z'|z) u(x~).
    q_avae = data[:, None, None, None] * q[:, :, None, None] * p[None, :, :, None] * q[None, None, :, :]
    p_rho = p.T[:, :, None, None] / n_z * coupling[None, :, None, :] * np.ones((1, 1, n_x, 1))
    expected = -_xlogx_ratio(q_avae, p_rho)

    terms = example.avae_objective(tf.constant(data), log_q, log_p, log_coupling, delusion_weights)
    value = float(terms["objective"] + example.decoder_entropy(tf.constant(data), log_q, log_p))
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    np.testing.assert_allclose(
        float(terms["negative_kl"]), float(example.vae_objective(tf.constant(data), log_q, log_p)), rtol=1e-12
    )


def _delusion_gradients(delusion_weights):
    """Gradients of the coupling plus the delusion entropy with respect to g, f^mu and f^Sigma."""
    n_x, n_z = 10, 8
    rng = np.random.default_rng(6)
    g = tf.Variable(rng.uniform(0, 2 * np.pi, n_z))
    f_mu = tf.Variable(rng.uniform(0, 2 * np.pi, n_x))
    f_sigma = tf.Variable(rng.normal(0.0, 1.0, n_x))
    data = tf.constant(_random_data(n_x, seed=7))
    z_points = example.grid(n_z)
    with tf.GradientTape() as tape:
        log_q = example.log_encoder(f_mu, f_sigma, z_points)
        log_p = example.log_decoder(g, example.grid(n_x), 0.3)
        terms = example.delusion_terms(data, log_q, log_p, example.log_coupling(z_points), delusion_weights)
        total = terms["coupling"] + terms["delusion_entropy"]
    return float(total), tape.gradient(total, [g, f_mu, f_sigma])


def test_delusion_terms_hold_the_decoder_fixed():
    """p_theta is a constant factor of Q_AVAE (Section 3): the delusion terms give g no gradient."""
    values = {}
    for delusion_weights in example.DELUSION_WEIGHTS:
        values[delusion_weights], (grad_g, grad_mu, grad_sigma) = _delusion_gradients(delusion_weights)
        assert grad_g is None or np.all(grad_g.numpy() == 0.0)
        assert np.any(np.abs(grad_mu.numpy()) > 0) and np.any(np.abs(grad_sigma.numpy()) > 0)
    # The choice changes the gradient, not the value.
    np.testing.assert_allclose(values["fixed"], values["trained"], rtol=1e-12)
    fixed_mu = _delusion_gradients("fixed")[1][1].numpy()
    trained_mu = _delusion_gradients("trained")[1][1].numpy()
    assert not np.allclose(fixed_mu, trained_mu)


def test_delusion_terms_reject_an_unknown_weighting():
    log_q, log_p = _random_tables(8, 8, seed=0)
    with pytest.raises(ValueError, match="`delusion_weights` must be one of"):
        example.delusion_terms(tf.constant(_random_data(8, 0)), log_q, log_p, log_p, "frozen")


def test_joints_are_symmetric_for_a_consistent_pair():
    """With q(Z|X) the exact posterior (eq. 8), Q(X'|X) p(X) and Q(Z|Z') p(Z') are symmetric (Sec. 3.1)."""
    _, log_p = _random_tables(11, 9, seed=8)
    decoder = np.exp(log_p.numpy())
    encoder = decoder.T / 9 / example.model_marginal(decoder)[:, None]
    for joint in (example.observation_joint(encoder, decoder), example.latent_joint(encoder, decoder)):
        np.testing.assert_allclose(joint.sum(), 1.0, rtol=1e-12)
        assert example.asymmetry(joint) < 1e-12
    # A random encoder is not consistent.
    log_q, _ = _random_tables(11, 9, seed=9)
    assert example.asymmetry(example.latent_joint(np.exp(log_q.numpy()), decoder)) > 0.1


def test_asymmetry_and_circular_diagonal_mass():
    n = 10
    identity = np.eye(n) / n
    assert example.asymmetry(identity) == 0.0
    assert example.diagonal_mass(identity, 0) == pytest.approx(1.0)
    shift = np.roll(np.eye(n), 1, axis=1) / n  # (i, i + 1 mod n): one step on the circle, wrap included
    assert example.asymmetry(shift) == pytest.approx(np.sqrt(2))
    assert example.diagonal_mass(shift, 0) == 0.0
    assert example.diagonal_mass(shift, 1) == pytest.approx(1.0)
    far = np.roll(np.eye(n), 3, axis=1) / n
    assert example.diagonal_mass(far, 2) == 0.0
    assert example.diagonal_mass(far, 3) == pytest.approx(1.0)


def test_main_writes_figures_and_metrics(tmp_path):
    out = tmp_path / "run"
    metrics = example.main(["--out", str(out), "--steps", "5", "--nx", "16", "--nz", "12", "--seed", "1"])
    with open(out / "metrics.json") as file:
        assert json.load(file) == json.loads(json.dumps(metrics))
    assert metrics["config"]["nu_rho"] == example.NU_RHO
    for name in example.MODELS:
        for key in ("objective", "negative_kl", "latent_asymmetry", "latent_diagonal_mass_1",
                    "latent_diagonal_mass_2", "observation_asymmetry"):
            assert math.isfinite(metrics[name][key])
        assert 0.0 <= metrics[name]["latent_diagonal_mass_1"] <= metrics[name]["latent_diagonal_mass_2"] <= 1.0
        for figure in ("figure3", "figure8"):
            image = imread(out / f"{figure}_{name}.png")
            assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
            assert image[..., :3].std() > 0.05  # not blank
    assert set(metrics["avae"]) >= {"coupling", "delusion_entropy"}


@pytest.mark.parametrize("flag, value", [("--nx", "4"), ("--steps", "0"), ("--obs-spread", "-1"),
                                         ("--delusion-weights", "frozen")])
def test_main_rejects_bad_flags(tmp_path, flag, value):
    with pytest.raises(SystemExit):
        example.main(["--out", str(tmp_path), flag, value])


@pytest.mark.large
def test_avae_latent_joint_is_more_diagonal_than_the_vae_one(tmp_path):
    """Section 3.1: AVAE's Q(Z|Z') p(Z') is concentrated on the diagonal, the VAE's is not.

    The gap opens early: at 1500 of the default 4000 steps (N_x = 100, N_z = 64, v = 1e-3,
    nu_rho = 1e-3, seed 0) the mass within one / two grid steps was VAE 0.609 / 0.791,
    AVAE 0.734 / 0.899: gaps of 0.124 / 0.108, 2.5 and 3.6 times the margins asserted here.
    """
    metrics = example.main(["--out", str(tmp_path), "--steps", "1500"])
    vae, avae = metrics["vae"], metrics["avae"]
    assert avae["latent_diagonal_mass_1"] > vae["latent_diagonal_mass_1"] + 0.05
    assert avae["latent_diagonal_mass_2"] > vae["latent_diagonal_mass_2"] + 0.03
    # The VAE fits the data better: eq. (3) is its whole objective.
    assert vae["negative_kl"] > avae["negative_kl"]
