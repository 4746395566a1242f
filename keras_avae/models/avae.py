"""The Autoencoding VAE of eq. (13) and Algorithm 1, with the choices the paper leaves open."""

import keras
from keras import ops

from keras_avae import objectives
from keras_avae.models.vae import EXTRA_PASS_STATISTICS, VAE
from keras_avae.validation import check_choice, check_rho

COUPLINGS = ("factorised", "joint")
"""How the coupling log p_rho(z'|z) is estimated: `"factorised"`, its expectation under
independent q(z|x) and q(z'|x~) (eq. 13, Algorithm 1, the released code), or `"joint"`, at
the z that generated x~ (the derivation of eq. 10 in appendix C.1, and eq. 33), see
`objectives.coupling_log_prob_given_z`."""

DELUSIONS = ("mean", "sample")
"""How the delusion x~ is decoded from z: the decoder `"mean"` g(z) (Algorithm 1 line 7, the
released code) or a `"sample"` x~ ~ p_theta(x~|z), the factor of Q_AVAE in eq. (10)."""

DEFAULT_DELUSION = "sample"
"""The default delusion of AVAE, SE-AVAE and AVAE-SS; the README's ablation study is the
evidence for it (the paper's Algorithm 1 is `delusion="mean"`)."""


@keras.saving.register_keras_serializable(package="keras_avae")
class AVAE(VAE):
    """Autoencoding VAE: a VAE whose encoder must also encode its own samples, eq. (13).

    Each step (Algorithm 1) encodes x, draws z ~ q(z|x), decodes the delusion
    x~ from that same z (no gradient flows through it), encodes it again, and
    maximises

        elbo(x) + <log p_rho(z'|z)>_{q(z|x) q(z'|x~)} + H[q(z'|x~)]

    with p_rho(z'|z) = N(rho z, (1 - rho^2) I). No gradient reaches the decoder
    through the delusion; the decoder learns from the ELBO alone.

    The paper leaves open choices that change what the encoder learns; each
    is an argument:

    - `delusion`: Algorithm 1 decodes x~ as the decoder mean g(z); eq. (10)'s
      approximating distribution Q_AVAE(X, Z, X~, Z') = pi(X) q(Z|X)
      p_theta(X~|Z) q(Z'|X~) has a *sample* of p_theta(x~|z) (the two agree
      only in Proposition 3.1's limit v -> 0). The default is `"sample"`:
      in the ablation study (README, "The paper's open choices") it is the
      one choice that makes the AVAE robust, with no attack in training;
      `delusion="mean"` is Algorithm 1 as printed.
    - `coupling`: eq. (13) takes the coupling's expectation under independent
      q(z|x) q(z'|x~) (`"factorised"`, the default, as the released code);
      `"joint"` evaluates it at the z that generated x~, as the derivation
      of eq. (10) does.
    - `extra_pass_statistics`: the delusion's encoder pass in training
      `"update"`s BatchNorm's moving statistics (a plain Keras call, the
      default) or `"keep"`s them, so the inference-time statistics are the
      data's alone.
    - `posterior_sampling` (from `VAE`): sigma or, as the released code,
      sigma^2 scales the posterior noise.

    Besides the VAE's terms, `fit` reports `coupling` (the expected
    log p_rho(z'|z)) and `aux_entropy` (H[q(z'|x~)]); `loss` is the negative
    of the whole bound.

    Args:
        encoder: Keras layer or model, x -> (batch, 2 * latent_dim) or a pair.
        decoder: Keras layer or model, z -> mean of x.
        rho: coupling strength in (-1, 1). The default is the paper's 0.975:
            trained on all of ColorMNIST for 10 conv epochs, the AVAE was more
            robust with it than with 0.9 or 0.95, which had looked better after
            3 epochs on 10,000 images (the best rho grows with the training;
            docs/results.md, "Defaults at the medium budget").
        coupling: `"factorised"` (eq. 13) or `"joint"` (at the generating z).
        delusion: `"sample"` (x~ ~ p_theta(x~|z), eq. 10) or `"mean"` (g(z),
            Algorithm 1).
        extra_pass_statistics: `"update"` or `"keep"` the encoder's BatchNorm
            moving statistics on the delusion's pass.
        **kwargs: `VAE` arguments (`obs_var`, `likelihood`, `data_range`,
            `seed`, `posterior_sampling`, `name`).

    Example:
        model = keras_avae.AVAE(encoder, decoder, rho=0.975)
        model.compile(optimizer="adam")
        model.fit(x_train, epochs=10, batch_size=64)
    """

    OPEN_CHOICES = {
        **VAE.OPEN_CHOICES,
        "coupling": COUPLINGS,
        "delusion": DELUSIONS,
        "extra_pass_statistics": EXTRA_PASS_STATISTICS,
    }

    OBJECTIVE = "the bound of eq. (13)"

    def __init__(
        self,
        encoder,
        decoder,
        rho=0.975,
        coupling="factorised",
        delusion=DEFAULT_DELUSION,
        extra_pass_statistics="update",
        **kwargs,
    ):
        super().__init__(encoder, decoder, **kwargs)
        self.rho = check_rho(rho)
        self.coupling = check_choice(coupling, COUPLINGS, "coupling")
        self.delusion = check_choice(delusion, DELUSIONS, "delusion")
        self.extra_pass_statistics = check_choice(
            extra_pass_statistics, EXTRA_PASS_STATISTICS, "extra_pass_statistics"
        )

    @property
    def term_names(self):
        return super().term_names + ("coupling", "aux_entropy")

    def _extra_terms(self, x, z_mean, z_log_var, z, x_mean, training):
        # The delusion is decoded from the same z as the reconstruction (Algorithm 1, line 7).
        return self._delusion_terms(z_mean, z_log_var, z, self.sample_delusion(x_mean), training)

    def sample_delusion(self, x_mean):
        """The delusion x~ decoded from z, given the decoder mean g(z), without gradient.

        With `delusion="sample"` a draw of p_theta(x~|z) (`sample_observation`, the
        factor of Q_AVAE in eq. 10); with `delusion="mean"` g(z) itself (Algorithm 1
        line 7). No gradient flows through x~ back to the decoder. (The method is not
        called `delusion`: that name is the option's.)

        Args:
            x_mean: the decoder mean g(z), shaped like x.

        Returns:
            x~, shaped like `x_mean`.

        Example:
            x_tilde = avae.sample_delusion(avae.generate(z))
        """
        if self.delusion == "sample":
            x_mean = self.sample_observation(x_mean)
        return ops.stop_gradient(x_mean)

    def _delusion_terms(self, z_mean, z_log_var, z, delusion, training):
        """The coupling and entropy terms of eq. (13) for the delusion x~ decoded from z."""
        aux_mean, aux_log_var = self.posterior_parameters(
            delusion, training, update_statistics=self.extra_pass_statistics == "update"
        )
        if self.coupling == "joint":
            coupling = objectives.coupling_log_prob_given_z(z, aux_mean, aux_log_var, self.rho)
        else:
            coupling = objectives.expected_coupling_log_prob(z_mean, z_log_var, aux_mean, aux_log_var, self.rho)
        return {"coupling": coupling, "aux_entropy": objectives.gaussian_entropy(aux_log_var)}

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "coupling": self.coupling,
            "delusion": self.delusion,
            "extra_pass_statistics": self.extra_pass_statistics,
        }
