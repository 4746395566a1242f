"""AVAE-SS (eq. 34, Algorithm 4): data-free post-training of a copied encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_avae


def _trained_vae(networks, images, **kwargs):
    vae = keras_avae.VAE(*networks, seed=0, **kwargs)
    vae.compile(optimizer="adam")
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
    terms = {k: v.numpy() for k, v in ss._terms(tf.zeros((16,) + images.shape[1:])).items()}
    assert terms["loss"].shape == (16,)
    np.testing.assert_allclose(terms["loss"], terms["kl"] - terms["coupling"] - terms["aux_entropy"], rtol=1e-5)


def test_fit_refuses_data_and_needs_steps(make_networks, images):
    ss = keras_avae.AVAESelfSupervised.from_pretrained(_trained_vae(make_networks(), images))
    ss.compile(optimizer="adam")
    with pytest.raises(ValueError, match="trains on samples from its own decoder"):
        ss.fit(images, epochs=1)
    with pytest.raises(ValueError, match="`steps_per_epoch` must be a positive integer. Received: steps_per_epoch=None"):
        ss.fit(epochs=1)


def test_from_pretrained_refuses_other_inputs(make_networks):
    with pytest.raises(ValueError, match="takes a keras_avae model"):
        keras_avae.AVAESelfSupervised.from_pretrained(make_networks()[0])
    with pytest.raises(ValueError, match="needs a built model"):
        keras_avae.AVAESelfSupervised.from_pretrained(keras_avae.VAE(*make_networks()))
    with pytest.raises(ValueError, match=r"`rho` must be a number in \(-1, 1\)"):
        keras_avae.AVAESelfSupervised(*make_networks(), rho=1.0)
