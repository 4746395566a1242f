"""The variational autoencoder of eq. (2): the ELBO model every other model extends."""

import keras
import tensorflow as tf
from keras import ops

from keras_avae import distribute, distributions, objectives
from keras_avae.models import networks
from keras_avae.models.compilation import Compilation
from keras_avae.models.inputs import BatchCheck, CheckedInputs
from keras_avae.models.saving import Saving
from keras_avae.validation import check_choice, check_data_range, check_integer, check_positive, check_seed

POSTERIOR_SAMPLING = ("std", "variance")
"""How z is drawn from q(z|x) = N(mu, diag(sigma^2)): z = mu + eps * sigma (`"std"`,
Algorithm 1 lines 5-6 and the bound's KL) or z = mu + eps * sigma^2 (`"variance"`, the
authors' released code, deepmind-research avae/encoders.py `sample`)."""

EXTRA_PASS_STATISTICS = ("update", "keep")
"""What an extra encoder pass in training (the delusion's, the adversarial input's) does to
the encoder's BatchNorm moving statistics: `"update"` them, as every training-mode Keras call
does, or `"keep"` them, using the batch's statistics without moving the running ones."""

RANDOM_ALGORITHM = "philox"
"""The counter-based generator of the model's stateless noise. Named rather than "auto_select",
which under XLA on a CPU picks ThreeFry, much slower for image-sized noise such as the sampled
delusion's (see the speed page). Without XLA "auto_select" is Philox already."""


@keras.saving.register_keras_serializable(package="keras_avae")
class VAE(CheckedInputs, Compilation, Saving, keras.Model):
    """Variational autoencoder trained by maximising the ELBO of eq. (2).

    The encoder's output parametrises the diagonal Gaussian posterior
    q(z|x) = N(f^mu(x), diag(exp(f^logvar(x)))): either one tensor of width
    `2 * latent_dim` whose first half is the mean and second half the
    log-variance, or a pair `(z_mean, z_log_var)`. The log-variance is
    unconstrained; the standard deviation is `exp(z_log_var / 2)`. The decoder
    maps z to the mean g(z) of the observation model p(x|z), with the shape of
    x. The prior is N(0, I) and the latent dimension is read off the encoder.

    `fit` reports, per example and averaged over the epoch: `loss` (the
    negative of the model's objective), `elbo` (eq. 2, the same bound for every
    model so they compare), `reconstruction` (<log p(x|z)>, one sample), and
    `kl` (KL(q(z|x) || p(z))), plus each subclass's extra terms (`terms(x)`
    returns them per example). `compile` takes an optimizer and refuses `loss`
    and `metrics`; its `jit_compile="auto"` turns XLA on, on a CPU-only
    machine, for networks without a convolution layer (`Compilation`). Every
    input is checked, whatever carries it (`CheckedInputs`): images
    `(batch, *example_shape)`, finite, inside `data_range`. The networks may
    compute under a mixed dtype policy (`keras_avae.architectures`' `dtype`,
    e.g. `"mixed_bfloat16"`): their outputs are cast to float32
    (`networks.posterior_parameters`, `networks.decoder_mean`), so every term,
    sample and returned tensor is float32.

    Args:
        encoder: Keras layer or model, x -> (batch, 2 * latent_dim) or a pair.
        decoder: Keras layer or model, z -> mean of x, shaped like x.
        obs_var: variance v of the Gaussian likelihood N(x; g(z), v I). The
            default 0.5 is the authors' ColorMNIST setting.
        likelihood: `"gaussian"` or `"bernoulli"` (decoder outputs probabilities).
        data_range: `(low, high)` the pixels of x must lie in, or None for no range.
        seed: seed of the model's `keras.random.SeedGenerator`, an int or None.
        posterior_sampling: `"std"` (default): z = mu + eps * sigma, Algorithm
            1 lines 5-6, the distribution the bound's KL describes; or
            `"variance"`: z = mu + eps * sigma^2, as the authors' released code
            samples. With `"variance"` the KL term and H[q] still describe
            N(mu, sigma^2), so the objective is no longer a bound on log p(x).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
        encoder, decoder = keras_avae.architectures.mlp(latent_dim=64)
        vae = keras_avae.VAE(encoder, decoder)
        vae.compile(optimizer="adam")
        vae.fit(x_train, epochs=10, batch_size=64)
        z = vae.encode_mean(x_test)
    """

    OPEN_CHOICES = {"posterior_sampling": POSTERIOR_SAMPLING}
    """The paper's open choices this class takes as arguments, name -> values."""

    OBJECTIVE = "the ELBO of eq. (2)"
    """What `fit` maximises, for messages."""

    def __init__(
        self,
        encoder,
        decoder,
        obs_var=0.5,
        likelihood="gaussian",
        data_range=(0.0, 1.0),
        seed=None,
        posterior_sampling="std",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = networks.check_network(encoder, "encoder")
        self.decoder = networks.check_network(decoder, "decoder")
        self.obs_var = check_positive(obs_var, "obs_var")
        if likelihood not in distributions.LIKELIHOODS:
            raise ValueError(
                f"`likelihood` must be one of {distributions.LIKELIHOODS}. Received: likelihood={likelihood!r}"
            )
        self.likelihood = likelihood
        self.data_range = check_data_range(data_range)
        self.seed = check_seed(seed, allow_none=True)
        self.posterior_sampling = check_choice(posterior_sampling, POSTERIOR_SAMPLING, "posterior_sampling")
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.latent_dim = None
        self.example_shape = None
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self.term_names}

    # ------------------------------------------------------------------ terms

    @property
    def term_names(self):
        """Names of the reported terms, in the order the progress bar shows them."""
        return ("loss", "elbo", "reconstruction", "kl")

    def terms(self, x, training=False):
        """Every term of the model's objective for a batch `x`: a dict of `(batch,)` tensors.

        The keys are `term_names` (each subclass's own terms included); `loss` is the
        negative of the objective `fit` minimises. Each call draws fresh noise from the
        model's seed generator. Eager inputs are checked as `encode_mean` checks them.

        Example:
            elbo = vae.terms(x_test)["elbo"]   # one ELBO per example
        """
        return self._terms(self._checked_inference_inputs(x), training=training)

    def _terms(self, x, training=False):
        """The skeleton every model shares: x -> (z_mean, z_log_var) -> z -> g(z), each computed once.

        The subclasses fill it in: `_observed` (the x the posterior is of), `_decode`,
        `_objective_terms` (the ELBO's, here) and `_extra_terms` (added to the objective).
        """
        x = self._observed(x)
        z_mean, z_log_var = self.posterior_parameters(x, training)
        z = self._reparametrise(z_mean, z_log_var)
        x_mean = self._decode(z, training)
        terms, objective = self._objective_terms(x, x_mean, z_mean, z_log_var)
        for name, term in self._extra_terms(x, z_mean, z_log_var, z, x_mean, training).items():
            terms[name] = term
            objective = objective + term
        terms["loss"] = -objective
        return terms

    def _observed(self, x):
        """The batch whose posterior the terms use: the data."""
        return x

    def _decode(self, z, training):
        """The decoder mean g(z), as float32 (`networks.decoder_mean`)."""
        return networks.decoder_mean(self.decoder(z, training=training))

    def _objective_terms(self, x, x_mean, z_mean, z_log_var):
        """reconstruction, kl and elbo = reconstruction - kl (eq. 2), and the objective's first term, the elbo."""
        reconstruction = objectives.reconstruction(x, x_mean, self.likelihood, self.obs_var)
        kl = objectives.kl_to_standard_normal(z_mean, z_log_var)
        elbo = reconstruction - kl
        return {"elbo": elbo, "reconstruction": reconstruction, "kl": kl}, elbo

    def _extra_terms(self, x, z_mean, z_log_var, z, x_mean, training):
        """A subclass's terms, each added to the objective in this order; the VAE has none."""
        return {}

    # -------------------------------------------------------------- networks

    def posterior_parameters(self, x, training=False, update_statistics=True):
        """The encoder's `(z_mean, z_log_var)` of q(z|x), as float32 tensors; `x` is not checked.

        With `training` and not `update_statistics`, the encoder runs in training mode
        (BatchNorm normalises by the batch's statistics) through `stateless_call`, whose
        new moving statistics are dropped: gradients flow as in a plain call, and no
        non-trainable variable changes. The attacks and the extra passes of the
        objectives call it inside a training step.
        """
        if training and not update_statistics:
            outputs, _ = self.encoder.stateless_call(
                [variable.value for variable in self.encoder.trainable_variables],
                [variable.value for variable in self.encoder.non_trainable_variables],
                x,
                training=True,
            )
        else:
            outputs = self.encoder(x, training=training)
        return networks.posterior_parameters(outputs)

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

    def _sample_observation(self, x_mean):
        """A draw of p(x|z) with mean `x_mean` (eq. 1): g(z) + sqrt(v) eps (Gaussian) or a Bernoulli draw."""
        if self.likelihood == "gaussian":
            noise = ops.cast(self._normal_noise(ops.shape(x_mean)), x_mean.dtype)
            return x_mean + ops.cast(self.obs_var**0.5, x_mean.dtype) * noise
        uniform = tf.random.stateless_uniform(ops.shape(x_mean), seed=self._replica_seed(), alg=RANDOM_ALGORITHM)
        return ops.cast(ops.cast(uniform, x_mean.dtype) < x_mean, x_mean.dtype)

    def _reparametrise(self, z_mean, z_log_var):
        """z = mu + sigma * eps with eps ~ N(0, I), Algorithm 1 lines 5-6 (sigma^2 * eps
        with `posterior_sampling="variance"`)."""
        log_scale = 0.5 * z_log_var if self.posterior_sampling == "std" else z_log_var
        return z_mean + ops.exp(log_scale) * self._normal_noise(ops.shape(z_mean))

    def build(self, input_shape):
        """Builds both networks and checks that their shapes fit together (`networks.latent_dim`)."""
        self.latent_dim = networks.latent_dim(self.encoder, self.decoder, input_shape)
        self.example_shape = tuple(input_shape[1:])
        self.input_spec = keras.InputSpec(shape=(None,) + self.example_shape)
        super().build(input_shape)

    # --------------------------------------------------------------- Keras API

    def call(self, x, training=False):
        """Reconstructs x through the posterior mean: g(f^mu(x)), as float32."""
        return networks.decoder_mean(self.decoder(self.posterior_parameters(x, training)[0], training=training))

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(terms[name])
        # Keras 3 cannot average scalar logs across workers (tensorflow#72388): `reducible_logs`.
        return distribute.reducible_logs({name: tracker.result() for name, tracker in self._trackers.items()})

    def _step_inputs(self, data, what="training data"):
        """The images of a step's batch, refusing other structures (at trace time).

        The batch was checked on its way in (`BatchCheck`). A step runs its ops as
        their inputs are ready, so without a dependency the seed generator and the
        optimizer's iteration count, which do not depend on the data, would advance
        even when reading the batch fails its check; the steps therefore run under
        `tf.control_dependencies([x])`, which orders every variable update after it.
        """
        return BatchCheck(what, self.data_range, self.example_shape).inputs(data)

    def train_step(self, data):
        x = self._step_inputs(data)
        if not self.optimizer.built:
            # `fit` builds it first; a step called in a loop of the user's own creates it
            # here, as `optimizer.apply` would, but outside the dependency on x, so that
            # the variables can be lifted out of the traced step.
            with tf.name_scope(self.optimizer.name):
                self.optimizer.build(self.trainable_variables)
        with tf.control_dependencies([x]):
            with tf.GradientTape() as tape:
                terms = self._terms(x, training=True)
                # Sum over the global batch / its size, so replicas' gradients add up
                # to the single-device gradient under tf.distribute.
                loss = tf.nn.compute_average_loss(terms["loss"])
                scaled_loss = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return self._update_trackers(terms)

    def test_step(self, data):
        x = self._step_inputs(data, "evaluation data")
        with tf.control_dependencies([x]):
            return self._update_trackers(self._terms(x, training=False))

    # -------------------------------------------------------------- inference

    def encode(self, x):
        """The posterior q(z|x), a `tfp.distributions` diagonal Gaussian; eager `x` is checked."""
        return distributions.diagonal_gaussian(*self.posterior_parameters(self._checked_inference_inputs(x)))

    def encode_mean(self, x):
        """The representation f^mu(x), the posterior mean; eager `x` is checked (finite, in `data_range`)."""
        return self.posterior_parameters(self._checked_inference_inputs(x))[0]

    def reconstruct(self, x):
        """g(f^mu(x)): the decoder mean at the posterior mean; eager `x` is checked."""
        return self(self._checked_inference_inputs(x), training=False)

    def generate(self, z):
        """The decoder mean g(z), as float32."""
        return networks.decoder_mean(self.decoder(z, training=False))

    def sample(self, n):
        """`n` images g(z) with z ~ p(z) = N(0, I), the decoder means; `n` is an integer >= 1."""
        n = check_integer(n, "n", minimum=1)
        if not self.built:
            raise ValueError("`sample` needs a built model: fit it or call it on data first.")
        return self.generate(self._normal_noise((n, self.latent_dim)))

    # ------------------------------------------------------------ persistence

    @classmethod
    def from_pretrained(cls, model, **kwargs):
        """A new model of this class starting from a copy of a trained model's networks.

        The source model is not modified and shares no weights with the copy.

        Args:
            model: a built `VAE` (or any model of this library).
            **kwargs: constructor arguments of this class (e.g. `rho`); `obs_var`,
                `likelihood`, `data_range`, `seed` and `posterior_sampling`
                default to the source's.

        Returns:
            A built model of this class.

        Example:
            robust = keras_avae.AVAESelfSupervised.from_pretrained(vae, rho=0.975)
        """
        if not isinstance(model, VAE):
            raise ValueError(
                "`from_pretrained` takes a keras_avae model (VAE, AVAE, ...). "
                f"Received: {type(model).__name__}"
            )
        if not model.built:
            raise ValueError("`from_pretrained` needs a built model: fit it or call it on data first.")
        for key in ("obs_var", "likelihood", "data_range", "seed", "posterior_sampling"):
            kwargs.setdefault(key, getattr(model, key))
        copy = cls(networks.copy_network(model.encoder), networks.copy_network(model.decoder), **kwargs)
        copy.build((None,) + model.example_shape)
        return copy

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "obs_var": self.obs_var,
                "likelihood": self.likelihood,
                "data_range": self.data_range,
                "seed": self.seed,
                "posterior_sampling": self.posterior_sampling,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
