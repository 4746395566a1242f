"""The distributions of the AVAE model (paper eqs. 1, 4 and 13), as `tfp.distributions` on tensors.

Every distribution over a latent vector or an image treats the last axis (latents) or
all non-batch axes (images) as one event, so `log_prob` and `entropy` return one
value per example.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

LIKELIHOODS = ("gaussian", "bernoulli")

# Bernoulli means are kept this far from 0 and 1 so that log-probabilities stay finite
# when a sigmoid decoder saturates.
BERNOULLI_MEAN_EPSILON = 1e-6


def diagonal_gaussian(z_mean, z_log_var):
    """The encoder's posterior q(z|x) = N(z; f^mu(x), diag(f^Sigma(x))).

    Args:
        z_mean: `(batch, latent_dim)` posterior mean f^mu(x).
        z_log_var: `(batch, latent_dim)` posterior log-variance, log f^Sigma(x).

    Returns:
        A distribution with batch shape `(batch,)` and event shape `(latent_dim,)`.
    """
    return tfd.Independent(
        tfd.Normal(loc=z_mean, scale=tf.exp(0.5 * z_log_var)), reinterpreted_batch_ndims=1
    )


def standard_normal(latent_dim, dtype=tf.float32):
    """The prior p(z) = N(0, I) of eq. (1), over vectors of size `latent_dim`."""
    zeros = tf.zeros([latent_dim], dtype=dtype)
    return tfd.Independent(tfd.Normal(loc=zeros, scale=tf.ones_like(zeros)), 1)


def coupling(z, rho):
    """The coupling p_rho(z'|z) = N(z'; rho z, (1 - rho^2) I) of eq. (4).

    Args:
        z: `(batch, latent_dim)` latent vectors.
        rho: coupling strength in (-1, 1).

    Returns:
        A distribution over z' with batch shape `(batch,)`.
    """
    scale = tf.sqrt(tf.cast(1.0 - rho**2, z.dtype)) * tf.ones_like(z)
    return tfd.Independent(tfd.Normal(loc=rho * z, scale=scale), reinterpreted_batch_ndims=1)


def observation(x_mean, likelihood="gaussian", obs_var=1.0):
    """The decoder's observation model p(x|z) with mean g(z), eq. (1).

    Args:
        x_mean: `(batch, ...)` decoder output g(z).
        likelihood: `"gaussian"`, N(x; g(z), obs_var I), or `"bernoulli"` with
            success probabilities g(z) (clipped `BERNOULLI_MEAN_EPSILON` away from 0 and 1).
        obs_var: the observation variance v of the Gaussian model.

    Returns:
        A distribution with batch shape `(batch,)` and the image as its event.
    """
    event_ndims = len(x_mean.shape) - 1
    if likelihood == "gaussian":
        scale = tf.sqrt(tf.cast(obs_var, x_mean.dtype)) * tf.ones_like(x_mean)
        base = tfd.Normal(loc=x_mean, scale=scale)
    elif likelihood == "bernoulli":
        probs = tf.clip_by_value(x_mean, BERNOULLI_MEAN_EPSILON, 1.0 - BERNOULLI_MEAN_EPSILON)
        base = tfd.Bernoulli(probs=probs, dtype=x_mean.dtype)
    else:
        raise ValueError(f"`likelihood` must be one of {LIKELIHOODS}. Received: likelihood={likelihood!r}")
    return tfd.Independent(base, reinterpreted_batch_ndims=event_ndims)
