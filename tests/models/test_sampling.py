"""Sampling (every model's noise): draws of q(z|x) and p(x|z) against their moments, gradients and seeds."""

import numpy as np
import pytest
import tensorflow as tf

import keras_avae


def test_reparametrised_samples_have_the_posterior_moments(make_networks):
    """Catches a variance used as a standard deviation."""
    model = keras_avae.VAE(*make_networks(), seed=0)
    n, dim = 200_000, 2
    z_mean = tf.fill((n, dim), 1.5)
    z_log_var = tf.fill((n, dim), float(np.log(4.0)))
    z = model.sample_posterior(z_mean, z_log_var).numpy()
    np.testing.assert_allclose(z.mean(0), 1.5, atol=0.02)
    np.testing.assert_allclose(z.std(0), 2.0, atol=0.02)


@pytest.mark.parametrize("sampling, power", [("std", 0.5), ("variance", 1.0)])
def test_posterior_samples_pass_the_reparametrisation_gradients(make_networks, sampling, power):
    """z = mu + exp(power * log_var) eps: dz/dmu = 1 and dz/dlog_var = power * (z - mu)."""
    model = keras_avae.VAE(*make_networks(), seed=0, posterior_sampling=sampling)
    z_mean = tf.constant([[0.3, -1.0], [2.0, 0.5]])
    z_log_var = tf.constant([[0.2, -0.4], [np.log(0.5), 1.0]], tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([z_mean, z_log_var])
        z = model.sample_posterior(z_mean, z_log_var)
    np.testing.assert_allclose(tape.gradient(z, z_mean), np.ones((2, 2)))
    np.testing.assert_allclose(tape.gradient(z, z_log_var), power * (z - z_mean), rtol=1e-6)


def test_gaussian_observation_samples_have_the_likelihood_moments(make_networks):
    """g(z) + sqrt(v) eps: mean g(z), variance v (v = 0.25, so a variance used as a std shows)."""
    model = keras_avae.VAE(*make_networks(), obs_var=0.25, seed=0)
    x_mean = tf.fill((2000, 6, 6, 1), 0.4)
    x = model.sample_observation(x_mean).numpy()
    assert x.shape == (2000, 6, 6, 1) and x.dtype == np.float32
    assert abs(x.mean() - 0.4) < 5 * np.sqrt(0.25 / x.size)
    np.testing.assert_allclose(x.var(), 0.25, rtol=0.02)


def test_bernoulli_observation_samples_are_binary_with_the_decoder_means(make_networks):
    model = keras_avae.VAE(*make_networks(), likelihood="bernoulli", seed=0)
    x = model.sample_observation(tf.fill((2000, 6, 6, 1), 0.3)).numpy()
    assert set(np.unique(x)) == {0.0, 1.0}
    assert abs(x.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / x.size)


def test_draws_follow_the_seed_and_each_takes_the_next_one(make_networks):
    z_mean, z_log_var = tf.zeros((4, 3)), tf.zeros((4, 3))
    first, second = (keras_avae.VAE(*make_networks(), seed=7) for _ in range(2))
    draws = [first.sample_posterior(z_mean, z_log_var), first.sample_observation(tf.zeros((4, 6, 6, 1)))]
    np.testing.assert_array_equal(draws[0], second.sample_posterior(z_mean, z_log_var))
    np.testing.assert_array_equal(draws[1], second.sample_observation(tf.zeros((4, 6, 6, 1))))
    assert not np.array_equal(first.sample_posterior(z_mean, z_log_var), draws[0])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_the_named_random_algorithm_draws_what_auto_select_draws(jit_compile):
    """`RANDOM_ALGORITHM` was named for speed under XLA only: it changes no number, with or without XLA."""
    from keras_avae.models.sampling import RANDOM_ALGORITHM

    seed = tf.constant([3, 7], tf.int64)

    def draw(alg):
        return tf.function(
            lambda: tf.random.stateless_normal((4, 5, 3), seed=seed, alg=alg), jit_compile=jit_compile
        )().numpy()

    np.testing.assert_array_equal(draw(RANDOM_ALGORITHM), draw("auto_select"))
