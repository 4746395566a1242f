"""The terms of the VAE and AVAE bounds as pure functions: tensors in, `(batch,)` tensors out.

Equation numbers refer to Cemgil et al., "The Autoencoding Variational Autoencoder"
(NeurIPS 2020). Every value is per example and keeps all constants of its closed
form, so bounds compare across models; only the models take the batch mean.
The models combine the terms as

    VAE, eq. (2):                 elbo = reconstruction - kl
    AVAE, eq. (13):               elbo + coupling + aux_entropy
                                  (coupling="joint": coupling_log_prob_given_z)
    AVAE self-supervised, (34):   -kl + coupling + aux_entropy
    smooth encoder, (32):         elbo + coupling(psi) + coupled_aux_entropy(psi)

since <log p(z)>_q + H[q(z|x)] = -KL(q(z|x) || p(z)), and for the joint q~(z, z')
of appendix C.3.1, <log p(z, z')> - <log q~(z, z')> = <log p(z)> + H[q(z|x)]
+ <log p_rho(z'|z)> + H[q~(z'|z)].
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


def expected_coupling_log_prob(z_mean, z_log_var, aux_mean, aux_log_var, rho, psi=0.0):
    """<log p_rho(z'|z)> under q(z|x) and q(z'|x~), the coupling term of eqs. (13) and (28).

    With p_rho(z'|z) = N(rho z, (1 - rho^2) I), z ~ N(m, s) and z' ~ N(m', s')
    (diagonal variances s, s') with cross-covariance `psi` (0 when q factorises,
    appendix C.3.1 otherwise):

        -d/2 log(2 pi (1 - rho^2))
        - sum((m' - rho m)^2 + s' + rho^2 s - 2 rho psi) / (2 (1 - rho^2))

    computed as log p_rho(m'|m) minus the (co)variance part of the quadratic term.

    Args:
        z_mean: `(batch, latent_dim)` mean of q(z|x).
        z_log_var: `(batch, latent_dim)` log-variance of q(z|x).
        aux_mean: `(batch, latent_dim)` mean of q(z'|x~), the encoding of x~.
        aux_log_var: `(batch, latent_dim)` log-variance of q(z'|x~).
        rho: coupling strength in (-1, 1).
        psi: `(batch, latent_dim)` cross-covariance of z and z', or 0.

    Returns:
        `(batch,)` expected log-density per example.
    """
    at_means = distributions.coupling(z_mean, rho).log_prob(aux_mean)
    spread = tf.exp(aux_log_var) + rho**2 * tf.exp(z_log_var) - 2.0 * rho * psi
    return at_means - tf.reduce_sum(spread, axis=-1) / (2.0 * (1.0 - rho**2))


def coupling_log_prob_given_z(z, aux_mean, aux_log_var, rho):
    """<log p_rho(z'|z)>_{q(z'|x~)} at the z that generated x~: the joint coupling.

    The derivation of eq. (10) (appendix C.1) and eq. (33) for AVAE-SS evaluate
    the coupling at the z drawn from q(z|x) that x~ was decoded from, rather
    than under independent q(z|x) and q(z'|x~) as eq. (13) does. With
    z' ~ N(m', s') it is, in closed form over z',

        -d/2 log(2 pi (1 - rho^2)) - sum((m' - rho z)^2 + s') / (2 (1 - rho^2))

    which is `expected_coupling_log_prob` with q(z|x) shrunk to the point z.
    Were x~ independent of z, its average over z ~ N(m, s) would be the
    factorised term; but x~ is decoded from z, so here f^mu(x~) must track
    the sample z itself (eq. 13 asks only for rho f^mu(x)), and the gradient
    also flows through z into f^mu(x) and f^Sigma(x).

    Args:
        z: `(batch, latent_dim)` the sample that generated x~.
        aux_mean: `(batch, latent_dim)` mean of q(z'|x~).
        aux_log_var: `(batch, latent_dim)` log-variance of q(z'|x~).
        rho: coupling strength in (-1, 1).

    Returns:
        `(batch,)` log-density per example, in expectation over z'.
    """
    at_mean = distributions.coupling(z, rho).log_prob(aux_mean)
    return at_mean - tf.reduce_sum(tf.exp(aux_log_var), axis=-1) / (2.0 * (1.0 - rho**2))


def representation_divergence(z_mean, z_log_var, aux_mean, aux_log_var, rho):
    """What the smooth encoder's attack maximises over x~, eqs. (25)-(26).

        -<log p_rho(z'|z)>_{q(z|x) q(z'|x~)} - H[q(z'|x~)]

    (the constant -H[q(z|x)] of eq. 26 is left out). It grows as the encoding
    of x~ moves away from rho times the encoding of x.

    Returns:
        `(batch,)` divergence per example.
    """
    coupling = expected_coupling_log_prob(z_mean, z_log_var, aux_mean, aux_log_var, rho)
    return -coupling - gaussian_entropy(aux_log_var)


def coupled_covariance(z_log_var, aux_log_var, rho):
    """psi of appendix C.3.1: the cross-covariance of the tighter joint posterior q~(z, z').

        psi_i = (sqrt(1 + 4 gamma^2 s_i s'_i) - 1) / (2 gamma),  gamma = rho / (1 - rho^2)

    with s = f^Sigma(x), s' = f^Sigma(x~). It maximises eq. (32) over the
    cross-covariance; it is 0 at rho = 0.

    Returns:
        `(batch, latent_dim)` psi.
    """
    if rho == 0:
        return tf.zeros_like(z_log_var)
    gamma = rho / (1.0 - rho**2)
    product = tf.exp(z_log_var + aux_log_var)
    return (tf.sqrt(1.0 + 4.0 * gamma**2 * product) - 1.0) / (2.0 * gamma)


def coupled_aux_entropy(z_log_var, aux_log_var, psi):
    """H[q~(z'|z)] = H[q~(z, z')] - H[q(z|x)] for the joint of appendix C.3.1.

    Each coordinate of z' given z has variance s' - psi^2 / s, so this is
    `0.5 * sum(log(2 pi e (s' - psi^2 / s)))`; with psi = 0 it is H[q(z'|x~)].

    Returns:
        `(batch,)` conditional entropy per example.
    """
    conditional_var = tf.exp(aux_log_var) - psi**2 * tf.exp(-z_log_var)
    return gaussian_entropy(tf.math.log(conditional_var))
