"""SEAVAE (Algorithm 3, eq. 35): delusion and adversarial copy together."""

import numpy as np
import pytest

import keras_avae


def test_fit_reports_both_couplings(make_networks, images):
    model = keras_avae.SEAVAE(*make_networks(), epsilon=0.1, train_attack_steps=2, seed=0)
    model.compile(optimizer="adam")
    history = model.fit(images, epochs=1, batch_size=8, verbose=0).history
    assert set(history) == {
        "loss", "elbo", "reconstruction", "kl", "coupling", "aux_entropy", "adversarial_coupling", "adversarial_entropy"
    }
    assert all(np.isfinite(v).all() for v in history.values())


def test_loss_is_the_negative_of_eq_35(make_networks, images):
    model = keras_avae.SEAVAE(*make_networks(), rho=0.9, rho_se=0.8, epsilon=0.05, train_attack_steps=2, seed=0)
    model(images[:1])
    t = {k: v.numpy() for k, v in model.terms(images).items()}
    bound = t["elbo"] + t["coupling"] + t["aux_entropy"] + t["adversarial_coupling"] + t["adversarial_entropy"]
    np.testing.assert_allclose(t["loss"], -bound, rtol=1e-5)


@pytest.mark.parametrize("rho_se", [1.0, -2.0])
def test_bad_rho_se_is_refused(make_networks, rho_se):
    with pytest.raises(ValueError, match=r"`rho_se` must be a number in \(-1, 1\).*Received: rho_se="):
        keras_avae.SEAVAE(*make_networks(), rho_se=rho_se)
