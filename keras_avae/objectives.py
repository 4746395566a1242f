"""The terms of the VAE and AVAE bounds as pure functions: tensors in, `(batch,)` tensors out.

Equation numbers refer to Cemgil et al., "The Autoencoding Variational Autoencoder"
(NeurIPS 2020). Every value is per example and keeps all constants of its closed
form, so bounds compare across models; only the models take the batch mean.
The models combine the terms as

    VAE, eq. (2):                 elbo = reconstruction - kl
    AVAE, eq. (13):               elbo + coupling + aux_entropy
    AVAE self-supervised, (34):   -kl + coupling + aux_entropy

since <log p(z)>_q + H[q(z|x)] = -KL(q(z|x) || p(z)).
"""

import tensorflow as tf

from keras_avae import distributions


def reconstruction(x, x_mean, likelihood="gaussian", obs_var=1.0):
    """Monte-Carlo estimate of <log p(x|z)>_{q(z|x)} from one sample z, eqs. (2) and (13).

    Args:
        x: `(batch, ...)` observations.
        x_mean: `(batch, ...)` decoder mean g(z) at a reparametrised sample z ~ q(z|x).
        likelihood: `"gaussian"` or `"bernoulli"`, see `distributions.observation`.
        obs_var: observation variance v of the Gaussian likelihood.

    Returns:
        `(batch,)` log p(x|z), e.g. for the Gaussian
        `-D/2 log(2 pi v) - ||x - g(z)||^2 / (2 v)` with D pixels.

    Example:
        log_lik = reconstruction(x, decoder(z), obs_var=0.5)
    """
    x = tf.cast(x, x_mean.dtype)
    return distributions.observation(x_mean, likelihood, obs_var).log_prob(x)


def kl_to_standard_normal(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)), Kingma & Welling (2014), App. B.

    Equals `0.5 * sum(exp(z_log_var) + z_mean**2 - 1 - z_log_var)`; it is the
    negative of <log p(z)>_q + H[q] in eq. (2).

    Args:
        z_mean: `(batch, latent_dim)` posterior mean.
        z_log_var: `(batch, latent_dim)` posterior log-variance.

    Returns:
        `(batch,)` KL per example.

    Example:
        kl = kl_to_standard_normal(z_mean, z_log_var)
    """
    posterior = distributions.diagonal_gaussian(z_mean, z_log_var)
    prior = distributions.standard_normal(z_mean.shape[-1], z_mean.dtype)
    return posterior.kl_divergence(prior)


def gaussian_entropy(z_log_var):
    """Entropy H[q(z'|x~)] of a diagonal Gaussian, the last term of eq. (13).

    Equals `0.5 * sum(log(2 pi e) + z_log_var)`.

    Args:
        z_log_var: `(batch, latent_dim)` log-variance.

    Returns:
        `(batch,)` entropy per example.
    """
    return distributions.diagonal_gaussian(tf.zeros_like(z_log_var), z_log_var).entropy()


def expected_coupling_log_prob(z_mean, z_log_var, aux_mean, aux_log_var, rho):
    """<log p_rho(z'|z)>_{q(z|x) q(z'|x~)} in closed form, the coupling term of eq. (13).

    With p_rho(z'|z) = N(rho z, (1 - rho^2) I), z ~ N(m, s) and z' ~ N(m', s')
    independent (diagonal variances s, s'):

        -d/2 log(2 pi (1 - rho^2))
        - sum((m' - rho m)^2 + s' + rho^2 s) / (2 (1 - rho^2))

    computed as log p_rho(m'|m) minus the variance part of the quadratic term.

    Args:
        z_mean: `(batch, latent_dim)` mean of q(z|x).
        z_log_var: `(batch, latent_dim)` log-variance of q(z|x).
        aux_mean: `(batch, latent_dim)` mean of q(z'|x~), the encoding of the delusion.
        aux_log_var: `(batch, latent_dim)` log-variance of q(z'|x~).
        rho: coupling strength in (-1, 1).

    Returns:
        `(batch,)` expected log-density per example.
    """
    at_means = distributions.coupling(z_mean, rho).log_prob(aux_mean)
    spread = tf.reduce_sum(tf.exp(aux_log_var) + rho**2 * tf.exp(z_log_var), axis=-1)
    return at_means - spread / (2.0 * (1.0 - rho**2))
