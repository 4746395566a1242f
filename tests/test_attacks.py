"""The smooth encoder's representation attack (eqs. 25-27) through CleverHans PGD."""

import numpy as np
import pytest
import tensorflow as tf

import keras_avae
from keras_avae import attacks, objectives

RHO = 0.95


def _divergence(model, x, x_tilde):
    z_mean, z_log_var = model.posterior_parameters(x)
    aux_mean, aux_log_var = model.posterior_parameters(x_tilde)
    return objectives.representation_divergence(z_mean, z_log_var, aux_mean, aux_log_var, RHO).numpy()


def _attack(model, x, epsilon, steps=5):
    return attacks.representation_attack(
        lambda inputs: model.posterior_parameters(inputs, training=False), x, epsilon, steps, RHO, model.data_range
    )


@pytest.mark.parametrize("epsilon", [0.05, 0.2])
def test_attack_raises_the_divergence_inside_the_ball_and_range(make_networks, images, epsilon):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:1])
    adversarial = _attack(model, images, epsilon).numpy()
    assert np.abs(adversarial - images).max() <= epsilon + 1e-6
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    assert np.abs(adversarial - images).max() > epsilon / 2
    clean = _divergence(model, images, images)
    attacked = _divergence(model, images, adversarial)
    assert np.all(attacked >= clean - 1e-4)
    assert attacked.mean() > clean.mean() + 1e-3


def test_zero_radius_returns_the_input(make_networks, images):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:1])
    np.testing.assert_array_equal(_attack(model, images, 0.0), images)


def test_attack_leaves_no_gradient_and_no_batchnorm_statistics():
    encoder, decoder = keras_avae.architectures.conv(latent_dim=4)
    model = keras_avae.VAE(encoder, decoder, seed=0)
    x = np.random.default_rng(0).random((4, 28, 28, 3), dtype=np.float32)
    model(x[:1])
    before = [w.copy() for w in model.get_weights()]
    with tf.GradientTape() as tape:
        adversarial = _attack(model, x, 0.1, steps=2)
        total = tf.reduce_sum(adversarial)
    assert all(g is None for g in tape.gradient(total, model.trainable_variables))
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_every_op_of_the_attack_is_named_under_its_scope(make_networks, images):
    """The profile of a training step (benchmarks/profile_step.py) finds the attack's ops by these names."""
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:1])
    graph = tf.function(lambda x: _attack(model, x, 0.1, steps=2)).get_concrete_function(
        tf.TensorSpec(images.shape, tf.float32)
    ).graph
    scope = attacks.ATTACK_NAME_SCOPE + "/"
    outside = [op.name for op in graph.get_operations()
               if op.type not in ("Placeholder", "Identity", "NoOp") and not op.name.startswith(scope)]
    assert outside == []
    target = scope + attacks.ATTACK_TARGET_NAME_SCOPE + "/"
    names = [op.name for op in graph.get_operations()]
    assert any(name.startswith(target) for name in names)
    # The PGD steps, outside the target's scope.
    assert any(name.startswith(scope) and not name.startswith(target) for name in names)


def test_step_size_suits_the_radius():
    assert attacks.step_size(0.1, 5) == pytest.approx(0.05)
    assert attacks.step_size(0.1, 1) == pytest.approx(0.1)
    assert attacks.step_size(0.0, 5) == 0.0
