"""SmoothEncoder (Algorithm 2, eq. 32 with the psi of appendix C.3.1)."""

import numpy as np
import pytest

import keras_avae
from keras_avae import objectives

SE_TERMS = {"loss", "elbo", "reconstruction", "kl", "coupling", "aux_entropy"}


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_reports_the_smooth_encoder_terms(make_networks, images, jit_compile):
    model = keras_avae.SmoothEncoder(*make_networks(), epsilon=0.1, attack_steps=2, seed=0)
    model.compile(optimizer="adam", jit_compile=jit_compile)
    history = model.fit(images, epochs=1, batch_size=8, verbose=0).history
    assert set(history) == SE_TERMS
    assert all(np.isfinite(v).all() for v in history.values())


def test_loss_is_the_negative_tight_bound(make_networks, images):
    model = keras_avae.SmoothEncoder(*make_networks(), rho=0.9, epsilon=0.0, seed=0)
    model(images[:1])
    terms = {k: v.numpy() for k, v in model._terms(images).items()}
    np.testing.assert_allclose(terms["loss"], -(terms["elbo"] + terms["coupling"] + terms["aux_entropy"]), rtol=1e-5)
    # With epsilon = 0 the adversarial copy is x itself: the terms follow from q(z|x) alone.
    z_mean, z_log_var = model._encode(images)
    psi = objectives.coupled_covariance(z_log_var, z_log_var, 0.9)
    np.testing.assert_allclose(
        terms["coupling"], objectives.expected_coupling_log_prob(z_mean, z_log_var, z_mean, z_log_var, 0.9, psi), rtol=1e-5
    )
    np.testing.assert_allclose(terms["aux_entropy"], objectives.coupled_aux_entropy(z_log_var, z_log_var, psi), rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilon": -0.1}, r"`epsilon` must be a finite number >= 0. Received: epsilon=-0.1"),
        ({"epsilon": float("nan")}, r"`epsilon` must be a finite number >= 0"),
        ({"epsilon": float("inf")}, r"`epsilon` must be a finite number >= 0"),
        ({"attack_steps": 0}, r"`attack_steps` must be an integer >= 1. Received: attack_steps=0"),
        ({"attack_steps": 2.5}, r"`attack_steps` must be an integer >= 1"),
        ({"attack_steps": True}, r"`attack_steps` must be an integer >= 1"),
        ({"rho": 1.0}, r"`rho` must be a number in \(-1, 1\)"),
    ],
)
def test_bad_arguments_are_refused(make_networks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_avae.SmoothEncoder(*make_networks(), **kwargs)


def test_from_pretrained_continues_from_a_trained_vae(make_networks, images):
    vae = keras_avae.VAE(*make_networks(), obs_var=0.2, seed=0)
    vae.compile(optimizer="adam")
    vae.fit(images, epochs=1, batch_size=8, verbose=0)
    source = [w.copy() for w in vae.get_weights()]
    smooth = keras_avae.SmoothEncoder.from_pretrained(vae, epsilon=0.05, attack_steps=1)
    assert smooth.obs_var == 0.2 and smooth.epsilon == 0.05
    np.testing.assert_array_equal(smooth.encode_mean(images), vae.encode_mean(images))
    smooth.compile(optimizer="adam")
    smooth.fit(images, epochs=1, batch_size=8, verbose=0)
    for old, new in zip(source, vae.get_weights()):
        np.testing.assert_array_equal(old, new)
