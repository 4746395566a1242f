"""The variational autoencoder of eq. (2), and the Keras machinery the other models share."""

import contextlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_avae import distributions, objectives
from keras_avae.validation import check_choice, check_data_range, check_positive, input_problem

# Tag carried by input-check errors raised inside a tf.data pipeline, so that `fit`
# can turn them back into a `ValueError`.
_INPUT_ERROR_TAG = "keras_avae input check: "

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
which under XLA on a CPU picks ThreeFry, many times slower for image-sized noise such as the
sampled delusion's (README, Speed). Without XLA "auto_select" is Philox already."""

# Key of the seed generator's state in a saved model, so resumed training draws the
# same noise as uninterrupted training.
_SEED_STATE_KEY = "seed_generator_state"


def _raise_if_bad(x, data_range):
    problem = input_problem(x, data_range)
    if problem:
        raise ValueError(_INPUT_ERROR_TAG + problem)
    return np.bool_(True)


def _copy_network(network):
    """A new network with the same architecture and weights as `network`."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


@contextlib.contextmanager
def _input_errors_as_value_errors():
    """Re-raises an input check that failed inside a tf.data pipeline as a `ValueError`."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        message = error.message
        if _INPUT_ERROR_TAG not in message:
            raise
        problem = message.split(_INPUT_ERROR_TAG, 1)[1].splitlines()[0]
        raise ValueError(f"Bad training data: {problem}.") from None


@keras.saving.register_keras_serializable(package="keras_avae")
class VAE(keras.Model):
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
    `kl` (KL(q(z|x) || p(z))), plus each subclass's extra terms.

    Args:
        encoder: Keras layer or model, x -> (batch, 2 * latent_dim) or a pair.
        decoder: Keras layer or model, z -> mean of x, shaped like x.
        obs_var: variance v of the Gaussian likelihood N(x; g(z), v I). The
            default 0.5 is the authors' ColorMNIST setting.
        likelihood: `"gaussian"` or `"bernoulli"` (decoder outputs probabilities).
        data_range: `(low, high)` the pixels of x must lie in; `fit` and
            `evaluate` refuse data outside it (or NaN, or infinite). None skips
            the range check.
        seed: seed of the model's `keras.random.SeedGenerator`.
        posterior_sampling: `"std"` (default): z = mu + eps * sigma, Algorithm
            1 lines 5-6, the distribution the bound's KL describes; or
            `"variance"`: z = mu + eps * sigma^2, as the authors' released code
            samples (deepmind-research avae/encoders.py `sample`). With
            `"variance"` the KL term and H[q] still describe N(mu, sigma^2),
            not the distribution z is drawn from, so the objective is no longer
            a bound on log p(x).
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
        if likelihood not in distributions.LIKELIHOODS:
            raise ValueError(
                f"`likelihood` must be one of {distributions.LIKELIHOODS}. "
                f"Received: likelihood={likelihood!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.obs_var = check_positive(obs_var, "obs_var")
        self.likelihood = likelihood
        self.data_range = check_data_range(data_range)
        self.seed = seed
        self.posterior_sampling = check_choice(posterior_sampling, POSTERIOR_SAMPLING, "posterior_sampling")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.latent_dim = None
        self.example_shape = None
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self.term_names}

    # ------------------------------------------------------------------ terms

    @property
    def term_names(self):
        """Names of the reported terms, in the order the progress bar shows them."""
        return ("loss", "elbo", "reconstruction", "kl")

    def _terms(self, x, training=False):
        """All terms of eq. (2) for a batch: a dict of `(batch,)` tensors."""
        z_mean, z_log_var = self._encode(x, training)
        z = self._reparametrise(z_mean, z_log_var)
        x_mean = self.decoder(z, training=training)
        terms = self._elbo_terms(x, x_mean, z_mean, z_log_var)
        terms["loss"] = -terms["elbo"]
        return terms

    def _elbo_terms(self, x, x_mean, z_mean, z_log_var):
        """reconstruction, kl and elbo = reconstruction - kl, eq. (2)."""
        reconstruction = objectives.reconstruction(
            x, ops.cast(x_mean, "float32"), self.likelihood, self.obs_var
        )
        kl = objectives.kl_to_standard_normal(z_mean, z_log_var)
        return {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}

    # -------------------------------------------------------------- networks

    def _encode(self, x, training=False, update_statistics=True):
        """Runs the encoder; returns float32 `(z_mean, z_log_var)`.

        With `training` and not `update_statistics`, the encoder runs in training
        mode (BatchNorm normalises by the batch's statistics) through
        `stateless_call`, whose new moving statistics are dropped: gradients
        flow as in a plain call, and no non-trainable variable changes.
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
        if isinstance(outputs, (list, tuple)):
            z_mean, z_log_var = outputs
        else:
            z_mean, z_log_var = ops.split(outputs, 2, axis=-1)
        return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")

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
            return x_mean + ops.cast(self.obs_var**0.5, x_mean.dtype) * ops.cast(
                self._normal_noise(ops.shape(x_mean)), x_mean.dtype
            )
        uniform = tf.random.stateless_uniform(ops.shape(x_mean), seed=self._replica_seed(), alg=RANDOM_ALGORITHM)
        return ops.cast(ops.cast(uniform, x_mean.dtype) < x_mean, x_mean.dtype)

    def _reparametrise(self, z_mean, z_log_var):
        """z = mu + sigma * eps with eps ~ N(0, I), Algorithm 1 lines 5-6 (sigma^2 * eps
        with `posterior_sampling="variance"`)."""
        log_scale = 0.5 * z_log_var if self.posterior_sampling == "std" else z_log_var
        return z_mean + ops.exp(log_scale) * self._normal_noise(ops.shape(z_mean))

    def build(self, input_shape):
        """Builds both networks and checks that their shapes fit together."""
        x_shape = tuple(input_shape)
        encoded = self.encoder(keras.KerasTensor(x_shape))
        if isinstance(encoded, (list, tuple)):
            if len(encoded) != 2 or tuple(encoded[0].shape) != tuple(encoded[1].shape):
                raise ValueError(
                    "The encoder must return one tensor of width 2 * latent_dim or a pair "
                    "(z_mean, z_log_var) of equal shapes. Received outputs of shapes "
                    f"{[tuple(e.shape) for e in encoded]}"
                )
            latent_dim = encoded[0].shape[-1]
        else:
            width = encoded.shape[-1]
            if len(encoded.shape) != 2 or width is None or width % 2:
                raise ValueError(
                    "The encoder output must have shape (batch, 2 * latent_dim), split into "
                    f"mean and log-variance halves. Received shape {tuple(encoded.shape)}"
                )
            latent_dim = width // 2
        decoded = self.decoder(keras.KerasTensor((x_shape[0], latent_dim)))
        if tuple(decoded.shape[1:]) != x_shape[1:]:
            raise ValueError(
                f"The decoder output shape {tuple(decoded.shape[1:])} differs from the input "
                f"shape {x_shape[1:]}: the decoder must map z to the mean of x."
            )
        self.latent_dim = int(latent_dim)
        self.example_shape = tuple(x_shape[1:])
        self.input_spec = keras.InputSpec(shape=(None,) + x_shape[1:])
        super().build(input_shape)

    # --------------------------------------------------------------- Keras API

    def call(self, x, training=False):
        """Reconstructs x through the posterior mean: g(f^mu(x))."""
        z_mean, _ = self._encode(x, training)
        return self.decoder(z_mean, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
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
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_trackers(self._terms(x, training=False))

    def _checked(self, x):
        """Checks arrays now, and datasets batch by batch as they are read."""
        if isinstance(x, tf.data.Dataset):

            def check(*element):
                batch = element if len(element) > 1 else element[0]
                inputs, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
                ok = tf.numpy_function(
                    lambda a: _raise_if_bad(a, self.data_range), [inputs], tf.bool
                )
                with tf.control_dependencies([ok]):
                    return tf.nest.map_structure(tf.identity, batch)

            # Checked ahead of the training step, off its critical path.
            return x.map(check).prefetch(tf.data.AUTOTUNE)
        if isinstance(x, (np.ndarray, tf.Tensor)):
            problem = input_problem(x, self.data_range)
            if problem:
                raise ValueError(f"Bad training data: {problem}.")
        return x

    def _build_for(self, x):
        """Builds the model from the shape of an array or dataset, before Keras traces a step."""
        if self.built:
            return
        if isinstance(x, tf.data.Dataset):
            spec, _, _ = keras.utils.unpack_x_y_sample_weight(x.element_spec)
            shape = spec.shape
        elif hasattr(x, "shape"):
            shape = (None,) + tuple(x.shape[1:])
        else:
            return
        with self.distribute_strategy.scope():
            self.build(tuple(shape))

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        self._build_for(x)
        x = self._checked(x)
        if isinstance(validation_data, tuple):
            validation_data = (self._checked(validation_data[0]),) + validation_data[1:]
        elif validation_data is not None:
            validation_data = self._checked(validation_data)
        with _input_errors_as_value_errors():
            return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._build_for(x)
        x = self._checked(x)
        with _input_errors_as_value_errors():
            return super().evaluate(x, y, *args, **kwargs)

    # -------------------------------------------------------------- inference

    def encode(self, x):
        """The posterior q(z|x), a `tfp.distributions` diagonal Gaussian."""
        return distributions.diagonal_gaussian(*self._encode(x))

    def encode_mean(self, x):
        """The representation f^mu(x), the posterior mean."""
        return self._encode(x)[0]

    def reconstruct(self, x):
        """g(f^mu(x)): the decoder mean at the posterior mean."""
        return self(x, training=False)

    def generate(self, z):
        """The decoder mean g(z)."""
        return self.decoder(z, training=False)

    def sample(self, n):
        """`n` images g(z) with z ~ p(z) = N(0, I), the decoder means."""
        if not self.built:
            raise ValueError("`sample` needs a built model: fit it or call it on data first.")
        return self.generate(self._normal_noise((int(n), self.latent_dim)))

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
        copy = cls(_copy_network(model.encoder), _copy_network(model.decoder), **kwargs)
        copy.build((None,) + model.example_shape)
        return copy

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if key != _SEED_STATE_KEY}
        super().load_own_variables(own)
        if _SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[_SEED_STATE_KEY])

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
