"""The Autoencoding VAE of eq. (13) and Algorithm 1."""

import keras
from keras import ops

from keras_avae import objectives
from keras_avae.models.vae import VAE
from keras_avae.validation import check_rho


@keras.saving.register_keras_serializable(package="keras_avae")
class AVAE(VAE):
    """Autoencoding VAE: a VAE whose encoder must also encode its own samples, eq. (13).

    Each step (Algorithm 1) encodes x, draws z ~ q(z|x), decodes the delusion
    x~ = stop_gradient(g(z)) from that same z, encodes it again, and maximises

        elbo(x) + <log p_rho(z'|z)>_{q(z|x) q(z'|x~)} + H[q(z'|x~)]

    with p_rho(z'|z) = N(rho z, (1 - rho^2) I). No gradient reaches the decoder
    through the delusion; the decoder learns from the ELBO alone.

    Besides the VAE's terms, `fit` reports `coupling` (the expected
    log p_rho(z'|z)) and `aux_entropy` (H[q(z'|x~)]); `loss` is the negative
    of the whole bound.

    Args:
        encoder: Keras layer or model, x -> (batch, 2 * latent_dim) or a pair.
        decoder: Keras layer or model, z -> mean of x.
        rho: coupling strength in (-1, 1); the paper uses 0.975.
        **kwargs: `VAE` arguments (`obs_var`, `likelihood`, `data_range`,
            `seed`, `name`).

    Example:
        model = keras_avae.AVAE(encoder, decoder, rho=0.975)
        model.compile(optimizer="adam")
        model.fit(x_train, epochs=10, batch_size=64)
    """

    def __init__(self, encoder, decoder, rho=0.975, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.rho = check_rho(rho)

    @property
    def term_names(self):
        return super().term_names + ("coupling", "aux_entropy")

    def _terms(self, x, training=False):
        z_mean, z_log_var = self._encode(x, training)
        z = self._reparametrise(z_mean, z_log_var)
        x_mean = self.decoder(z, training=training)
        terms = self._elbo_terms(x, x_mean, z_mean, z_log_var)
        # The delusion is decoded from the same z as the reconstruction (Algorithm 1, line 7).
        delusion = ops.stop_gradient(x_mean)
        terms.update(self._delusion_terms(z_mean, z_log_var, delusion, training))
        terms["loss"] = -(terms["elbo"] + terms["coupling"] + terms["aux_entropy"])
        return terms

    def _delusion_terms(self, z_mean, z_log_var, delusion, training):
        """The coupling and entropy terms of eq. (13) for the delusion x~."""
        aux_mean, aux_log_var = self._encode(delusion, training)
        return {
            "coupling": objectives.expected_coupling_log_prob(
                z_mean, z_log_var, aux_mean, aux_log_var, self.rho
            ),
            "aux_entropy": objectives.gaussian_entropy(aux_log_var),
        }

    def get_config(self):
        return {**super().get_config(), "rho": self.rho}
