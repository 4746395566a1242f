"""The variational autoencoder of eq. (2): the ELBO model every other model extends."""

import keras
from keras import ops

from keras_avae import distributions, objectives
from keras_avae.models import networks
from keras_avae.models.compilation import Compilation
from keras_avae.models.inputs import CheckedInputs
from keras_avae.models.sampling import POSTERIOR_SAMPLING, Sampling
from keras_avae.models.saving import Saving
from keras_avae.models.steps import Steps
from keras_avae.validation import check_choice, check_data_range, check_integer, check_positive, check_seed

EXTRA_PASS_STATISTICS = ("update", "keep")
"""What an extra encoder pass in training (the delusion's, the adversarial input's) does to
the encoder's BatchNorm moving statistics: `"update"` them, as every training-mode Keras call
does, or `"keep"` them, using the batch's statistics without moving the running ones."""


@keras.saving.register_keras_serializable(package="keras_avae")
class VAE(CheckedInputs, Compilation, Saving, Sampling, Steps, keras.Model):
    """Variational autoencoder trained by maximising the ELBO of eq. (2).

    The encoder parametrises the diagonal Gaussian posterior
    q(z|x) = N(f^mu(x), diag(exp(f^logvar(x)))), the decoder the mean g(z) of
    p(x|z); the prior is N(0, I) and the latent dimension is read off the
    encoder. `fit` reports, averaged over the epoch, `loss` (the negative of
    the objective), `elbo` (eq. 2, the same bound for every model),
    `reconstruction` (log p(x|z) at one z) and `kl` (KL(q(z|x) || p(z))), plus
    each subclass's terms; `terms(x)` returns them per example. `compile`
    takes an optimizer only (`Compilation`); every input is checked
    (`CheckedInputs`): images `(batch, *example_shape)`, finite, in `data_range`.
    The other mixins hold the steps of `fit` (`Steps`), the noise (`Sampling`),
    and the config, `save` and `from_pretrained` (`Saving`). The networks may
    compute under a mixed dtype policy (e.g. `"mixed_bfloat16"`): their outputs
    are cast to float32, so every term, sample and returned tensor is float32.

    Args:
        encoder: Keras layer or model, x -> `(batch, 2 * latent_dim)` (the mean,
            then the unconstrained log-variance) or a pair `(z_mean, z_log_var)`.
        decoder: Keras layer or model, z -> mean of x, shaped like x.
        obs_var: variance v of the Gaussian likelihood N(x; g(z), v I). The
            default 0.5 is the authors' ColorMNIST setting; at the medium budget
            an AVAE with v = 0.1 reconstructed better but was less robust
            (docs/results.md, "Defaults at the medium budget").
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
        self.likelihood = check_choice(likelihood, distributions.LIKELIHOODS, "likelihood")
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
        z = self.sample_posterior(z_mean, z_log_var)
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

    def build(self, input_shape):
        """Builds both networks and checks that their shapes fit together (`networks.latent_dim`)."""
        self.latent_dim = networks.latent_dim(self.encoder, self.decoder, input_shape)
        self.example_shape = tuple(input_shape[1:])
        self.input_spec = keras.InputSpec(shape=(None,) + self.example_shape)
        super().build(input_shape)

    def call(self, x, training=False):
        """Reconstructs x through the posterior mean: g(f^mu(x)), as float32."""
        return networks.decoder_mean(self.decoder(self.posterior_parameters(x, training)[0], training=training))

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
