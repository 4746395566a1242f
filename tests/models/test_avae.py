"""AVAE (eq. 13, Algorithm 1): its terms, its gradient flow and its arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_avae


def _built(make_networks, images, **kwargs):
    model = keras_avae.AVAE(*make_networks(), seed=0, **kwargs)
    model(images[:1])
    return model


def test_fit_reports_the_avae_terms(make_networks, images):
    model = keras_avae.AVAE(*make_networks(), rho=0.9, seed=0)
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(images, epochs=2, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "elbo", "reconstruction", "kl", "coupling", "aux_entropy"}
    assert all(np.isfinite(v).all() for v in history.values())


def test_loss_is_the_negative_avae_bound(make_networks, images):
    model = _built(make_networks, images, rho=0.8)
    terms = {k: v.numpy() for k, v in model.terms(images).items()}
    np.testing.assert_allclose(
        terms["loss"], -(terms["elbo"] + terms["coupling"] + terms["aux_entropy"]), rtol=1e-5
    )
    np.testing.assert_allclose(terms["elbo"], terms["reconstruction"] - terms["kl"], rtol=1e-5)


def test_no_gradient_reaches_the_decoder_through_the_delusion(make_networks, images):
    model = _built(make_networks, images)
    with tf.GradientTape(persistent=True) as tape:
        terms = model.terms(images, training=True)
        delusion_part = tf.reduce_mean(terms["coupling"] + terms["aux_entropy"])
        whole = tf.reduce_mean(terms["loss"])
        elbo_only = -tf.reduce_mean(terms["elbo"])
    decoder_grads = tape.gradient(delusion_part, model.decoder.trainable_variables)
    assert all(g is None for g in decoder_grads)
    encoder_grads = tape.gradient(delusion_part, model.encoder.trainable_variables)
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in encoder_grads)
    # The decoder's gradient from the whole bound is its ELBO gradient alone.
    elbo_grads = tape.gradient(elbo_only, model.decoder.trainable_variables)
    for from_whole, from_elbo in zip(tape.gradient(whole, model.decoder.trainable_variables), elbo_grads):
        np.testing.assert_allclose(from_whole, from_elbo, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("delusion", ["mean", "sample"])
def test_sample_delusion_passes_no_gradient(make_networks, images, delusion):
    model = _built(make_networks, images, delusion=delusion)
    x_mean = tf.fill((4,) + images.shape[1:], 0.4)
    with tf.GradientTape() as tape:
        tape.watch(x_mean)
        x_tilde = model.sample_delusion(x_mean)
    assert x_tilde.shape == x_mean.shape
    assert tape.gradient(x_tilde, x_mean) is None


def test_avae_pulls_encodings_of_samples_towards_their_codes(make_networks, images):
    """Training raises the coupling term: delusions get encoded near the z they came from."""
    model = keras_avae.AVAE(*make_networks(), rho=0.95, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    coupling = model.fit(images, epochs=20, batch_size=8, verbose=0).history["coupling"]
    assert coupling[-1] > coupling[0]


@pytest.mark.parametrize("rho", [1.0, -1.0, 1.5, float("nan"), "0.9", None])
def test_rho_outside_the_open_interval_is_refused(make_networks, rho):
    with pytest.raises(ValueError, match=r"`rho` must be a number in \(-1, 1\).*Received: rho="):
        keras_avae.AVAE(*make_networks(), rho=rho)
