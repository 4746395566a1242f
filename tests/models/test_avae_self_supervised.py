"""AVAE-SS (eq. 34, Algorithm 4): data-free post-training of a copied encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_avae


def _trained_vae(networks, images, **kwargs):
    vae = keras_avae.VAE(*networks, seed=0, **kwargs)
    vae.compile(optimizer="adam", jit_compile=False)  # only the source model: an XLA compile costs more than its fit
    vae.fit(images, epochs=1, batch_size=8, verbose=0)
    return vae


def _weights(network):
    return [w.copy() for w in network.get_weights()]


def _assert_same(before, network):
    after = network.get_weights()
    assert len(before) == len(after)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


def test_post_training_needs_no_data_and_freezes_the_decoder(make_networks, images):
    vae = _trained_vae(make_networks(), images)
    source_encoder, source_decoder = _weights(vae.encoder), _weights(vae.decoder)
    ss = keras_avae.AVAESelfSupervised.from_pretrained(vae, rho=0.9)
    ss.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = ss.fit(epochs=2, steps_per_epoch=5, batch_size=16, verbose=0).history
    assert set(history) == {"loss", "kl", "coupling", "aux_entropy"}
    assert all(np.isfinite(v).all() for v in history.values())
    _assert_same(source_decoder, ss.decoder)
    _assert_same(source_encoder, vae.encoder)
    _assert_same(source_decoder, vae.decoder)
    moved = [np.abs(a - b).max() for a, b in zip(source_encoder, ss.encoder.get_weights())]
    assert max(moved) > 0
    assert ss.rho == 0.9 and ss.obs_var == vae.obs_var
    assert ss.encoder is not vae.encoder and ss.decoder is not vae.decoder


def test_batchnorm_statistics_of_the_frozen_decoder_stay_put():
    encoder, decoder = keras_avae.architectures.conv(latent_dim=4)
    vae = keras_avae.VAE(encoder, decoder, seed=0)
    vae(np.zeros((1, 28, 28, 3), np.float32))
    ss = keras_avae.AVAESelfSupervised.from_pretrained(vae)
    before = _weights(ss.decoder)
    ss.compile(optimizer="adam")
    ss.fit(epochs=1, steps_per_epoch=2, batch_size=4, verbose=0)
    _assert_same(before, ss.decoder)
    assert not ss.decoder.trainable_variables


def test_loss_is_the_negative_of_eq_34(make_networks, images):
    ss = keras_avae.AVAESelfSupervised.from_pretrained(_trained_vae(make_networks(), images))
    terms = {k: v.numpy() for k, v in ss.terms(tf.zeros((16,) + images.shape[1:])).items()}
    assert terms["loss"].shape == (16,)
    np.testing.assert_allclose(terms["loss"], terms["kl"] - terms["coupling"] - terms["aux_entropy"], rtol=1e-5)


def test_fit_refuses_data_and_needs_steps(make_networks, images):
    ss = keras_avae.AVAESelfSupervised.from_pretrained(_trained_vae(make_networks(), images))
    ss.compile(optimizer="adam")
    with pytest.raises(ValueError, match="trains on samples from its own decoder"):
        ss.fit(images, epochs=1)
    with pytest.raises(ValueError, match="`steps_per_epoch` must be an integer >= 1. Received: steps_per_epoch=None"):
        ss.fit(epochs=1)


def test_from_pretrained_refuses_other_inputs(make_networks):
    with pytest.raises(ValueError, match="takes a keras_avae model"):
        keras_avae.AVAESelfSupervised.from_pretrained(make_networks()[0])
    with pytest.raises(ValueError, match="needs a built model"):
        keras_avae.AVAESelfSupervised.from_pretrained(keras_avae.VAE(*make_networks()))
    with pytest.raises(ValueError, match=r"`rho` must be a number in \(-1, 1\)"):
        keras_avae.AVAESelfSupervised(*make_networks(), rho=1.0)


# ------------------------------------------------------------------ eq. (34)'s optimum
#
# Linear, exactly invertible pair: g(z) = W z with orthonormal W (4 x 2), and an
# encoder with mean c W'x and constant variance s, so f^mu(g(u)) = c u. With
# x = g(z'') (+ sqrt(v) noise for sampled delusions, v = 0 for means), z'' ~ N(0, I),
# m = c W'x (variance c^2 (1 + v)), z = m + sqrt(s) eps, m' = c W'x~, eq. (34) has,
# per latent dimension, the expectation
#     -0.5 (s + c^2 (1 + v) - 1 - log s) - 0.5 log(2 pi (1 - rho^2))
#     - Q / (2 (1 - rho^2)) + 0.5 log(2 pi e s)
# where Q is <(m' - rho m)^2> + s + rho^2 s for the factorised coupling (eq. 13, as
# Algorithm 4 estimates it): (c - rho)^2 c^2 (1 + v) + c^2 s + c^2 v + s + rho^2 s,
# and <(m' - rho z)^2> + s at the generating z (coupling="joint"):
# (c - rho)^2 (c^2 (1 + v) + s) + c^2 v + s.
# Factorised, every term that involves c is <= 0 and vanishes at c = 0: nothing in
# eq. (34) pays the encoder for carrying information about x (the data term that does
# so in eq. 13 is absent), so its optimum is a constant encoder. At the generating z,
# (c - rho)^2 s rewards c near rho: the optimum is informative.

SS_OBSERVED, SS_LATENT, SS_RHO = 4, 2, 0.975
SS_OBS_VAR = 0.5


def _linear_ss(c, s, **kwargs):
    w, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(SS_OBSERVED, SS_LATENT)))
    encoder = keras.Sequential([keras.Input((SS_OBSERVED,)), keras.layers.Dense(2 * SS_LATENT)])
    kernel = np.concatenate([c * w, np.zeros((SS_OBSERVED, SS_LATENT))], axis=1)
    encoder.layers[0].set_weights([kernel, np.full(2 * SS_LATENT, [0.0] * SS_LATENT + [np.log(s)] * SS_LATENT)])
    decoder = keras.Sequential([keras.Input((SS_LATENT,)), keras.layers.Dense(SS_OBSERVED, use_bias=False)])
    decoder.layers[0].set_weights([w.T])
    kwargs.setdefault("delusion", "mean")
    ss = keras_avae.AVAESelfSupervised(
        encoder, decoder, rho=SS_RHO, obs_var=SS_OBS_VAR, data_range=None, seed=0, **kwargs
    )
    ss(np.zeros((1, SS_OBSERVED), np.float32))
    return ss


def _ss_loss_samples(ss, n):
    """Minus eq. (34), one Monte-Carlo sample per generated example."""
    return ss.terms(tf.zeros((n, SS_OBSERVED)))["loss"].numpy().astype(np.float64)


def _expected_bound(c, s, rho=SS_RHO, coupling="factorised", v=0.0):
    if coupling == "factorised":
        quadratic = (c - rho) ** 2 * c**2 * (1 + v) + c**2 * s + c**2 * v + s + rho**2 * s
    else:
        quadratic = (c - rho) ** 2 * (c**2 * (1 + v) + s) + c**2 * v + s
    per_dim = (
        -0.5 * (s + c**2 * (1 + v) - 1 - np.log(s))
        - 0.5 * np.log(2 * np.pi * (1 - rho**2))
        - quadratic / (2 * (1 - rho**2))
        + 0.5 * np.log(2 * np.pi * np.e * s)
    )
    return SS_LATENT * per_dim


@pytest.mark.parametrize("coupling", ["factorised", "joint"])
@pytest.mark.parametrize("delusion, v", [("mean", 0.0), ("sample", SS_OBS_VAR)])
@pytest.mark.parametrize("c", [0.0, 0.5, SS_RHO, 1.0])
def test_eq_34_estimate_matches_its_closed_form_on_a_linear_pair(c, coupling, delusion, v):
    s = 0.05
    bound = -_ss_loss_samples(_linear_ss(c, s, coupling=coupling, delusion=delusion), n=20000)
    standard_error = bound.std() / np.sqrt(len(bound))
    expected = _expected_bound(c, s, coupling=coupling, v=v)
    assert abs(bound.mean() - expected) < 5 * standard_error + 1e-4


def test_eq_34_is_maximised_by_a_constant_encoder():
    s = 0.05
    bounds = [
        -_ss_loss_samples(_linear_ss(c, s, coupling="factorised"), n=20000).mean() for c in (0.0, 0.25, 0.5, SS_RHO)
    ]
    # Strictly worse as the encoder carries more of x, even the self-consistent c = rho.
    assert all(a > b for a, b in zip(bounds, bounds[1:]))
    # At its best variance, the constant encoder beats every informative one of the grid.
    best_s = np.exp(np.linspace(-6, 0, 601))
    assert _expected_bound(0.0, best_s).max() > max(_expected_bound(c, best_s).max() for c in (0.25, 0.5, SS_RHO, 1.0))


def test_the_joint_coupling_has_an_informative_optimum():
    """At the generating z the best linear encoder is c ~ 0.92, s ~ 0.094, scoring -1.311 per
    dimension against the best constant encoder's -1.504 (mean delusions, rho = 0.975)."""
    c_grid = np.linspace(0.0, 1.2, 1201)[:, None]
    s_grid = np.exp(np.linspace(-6, 0, 1201))[None, :]
    bound = _expected_bound(c_grid, s_grid, coupling="joint") / SS_LATENT
    best_c, best_s = np.unravel_index(bound.argmax(), bound.shape)
    assert abs(c_grid[best_c, 0] - 0.924) < 0.002 and abs(s_grid[0, best_s] - 0.0939) < 0.001
    np.testing.assert_allclose(bound.max(), -1.3111, atol=1e-3)
    np.testing.assert_allclose(bound[0].max(), -1.5042, atol=1e-3)
    # The Monte-Carlo estimate of the model's own loss agrees: informative beats constant.
    informative = -_ss_loss_samples(_linear_ss(0.924, 0.0939, coupling="joint"), n=20000).mean()
    constant = -_ss_loss_samples(_linear_ss(0.0, 0.0494, coupling="joint"), n=20000).mean()
    assert informative > constant + 0.3
