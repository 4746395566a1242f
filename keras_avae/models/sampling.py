"""The models' noise: draws of q(z|x) and p(x|z) from the model's seed generator, different on each replica."""

import tensorflow as tf
from keras import ops

POSTERIOR_SAMPLING = ("std", "variance")
"""How z is drawn from q(z|x) = N(mu, diag(sigma^2)): z = mu + eps * sigma (`"std"`,
Algorithm 1 lines 5-6 and the bound's KL) or z = mu + eps * sigma^2 (`"variance"`, the
authors' released code, deepmind-research avae/encoders.py `sample`)."""

RANDOM_ALGORITHM = "philox"
"""The counter-based generator of the model's stateless noise. Named rather than "auto_select"
(Keras' `keras.random.normal`): the two draw the same numbers, with and without XLA, but under
XLA on a CPU "auto_select" compiles to a much slower draw for image-sized noise such as the
sampled delusion's, its key derivation (`StatelessRandomGetKeyCounter`) fused into the
per-element loop (benchmarks/profile_step.py --noise; see the speed page). "threefry" is no
faster under XLA and has no kernel without it."""


class Sampling:
    """Draws of the posterior and the observation model; a mixin of `keras.Model`.

    Each draw takes the next seed of the model's `keras.random.SeedGenerator`, so a
    model with a `seed` draws the same noise on every run, and a saved model resumes
    the stream (`Saving`). The model class sets `seed_generator`, `posterior_sampling`,
    `likelihood` and `obs_var`.
    """

    def _replica_seed(self):
        """The next seed of the model's seed generator, different on each replica."""
        seed = self.seed_generator.next()
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            seed = seed + ops.cast(replica.replica_id_in_sync_group, seed.dtype)
        return seed

    def _normal_noise(self, shape):
        """N(0, I) noise from the model's seed generator, different on each replica."""
        return tf.random.stateless_normal(shape, seed=self._replica_seed(), alg=RANDOM_ALGORITHM)

    def sample_posterior(self, z_mean, z_log_var):
        """A draw z ~ q(z|x) by reparametrisation, Algorithm 1 lines 5-6.

        z = mu + eps * sigma with eps ~ N(0, I), or z = mu + eps * sigma^2 with
        `posterior_sampling="variance"` (`POSTERIOR_SAMPLING`). Gradients flow to
        both parameters; each call takes the next seed of the model's seed generator.

        Args:
            z_mean: `(batch, latent_dim)` posterior mean mu.
            z_log_var: `(batch, latent_dim)` posterior log-variance log sigma^2.

        Returns:
            `(batch, latent_dim)` z.

        Example:
            z = vae.sample_posterior(*vae.posterior_parameters(x))
        """
        log_scale = 0.5 * z_log_var if self.posterior_sampling == "std" else z_log_var
        return z_mean + ops.exp(log_scale) * self._normal_noise(ops.shape(z_mean))

    def sample_observation(self, x_mean):
        """A draw x ~ p(x|z) of the observation model of eq. (1), given its mean g(z).

        Gaussian likelihood: g(z) + sqrt(obs_var) * eps with eps ~ N(0, I). Bernoulli:
        1 where a uniform draw falls below the probability g(z), else 0. Each call
        takes the next seed of the model's seed generator.

        Args:
            x_mean: the decoder mean g(z), shaped like x.

        Returns:
            A draw shaped like `x_mean`, of its dtype.

        Example:
            x = vae.sample_observation(vae.generate(z))
        """
        if self.likelihood == "gaussian":
            noise = ops.cast(self._normal_noise(ops.shape(x_mean)), x_mean.dtype)
            return x_mean + ops.cast(self.obs_var**0.5, x_mean.dtype) * noise
        uniform = tf.random.stateless_uniform(ops.shape(x_mean), seed=self._replica_seed(), alg=RANDOM_ALGORITHM)
        return ops.cast(ops.cast(uniform, x_mean.dtype) < x_mean, x_mean.dtype)
