"""SE-AVAE: the AVAE with the smooth encoder's adversarial augmentation, eq. (35), Algorithm 3."""

import keras

from keras_avae.models.avae import AVAE
from keras_avae.models.smooth_encoder import (
    ATTACK_ARGUMENTS,
    ATTACK_MODES,
    DEFAULT_TRAIN_ATTACK_STEPS,
    adversarial_terms,
    check_attack_arguments,
    config_with_train_attack_steps,
    resolve_train_attack_steps,
)
from keras_avae.validation import check_rho


@keras.saving.register_keras_serializable(package="keras_avae")
class SEAVAE(AVAE):
    """AVAE plus smooth-encoder augmentation: both the delusion x~ and an adversarial x~~.

    Each step (Algorithm 3) finds x~~ by L-inf PGD around x (as `SmoothEncoder`,
    with `rho_se`), encodes x, draws z, decodes the delusion x~ from z (the
    decoder mean or a sample, `AVAE`'s `delusion`), and maximises eq. (35):

        elbo(x) + <log p_rho(z'|z)> + H[q(z'|x~)]
                + <log p_rho_se(z''|z)> + H[q(z''|x~~)]

    with factorised posteriors for the adversarial term, as eq. (35) is
    written (the AVAE term follows `coupling`). (Eq. 35 as printed omits
    the data term log p(x|z); its target distribution has p(X|Z), so it is kept.)

    `fit` reports the AVAE's terms plus `adversarial_coupling` and
    `adversarial_entropy`.

    Args:
        encoder, decoder: as for `VAE`.
        rho: AVAE coupling strength in (-1, 1) (paper: 0.975).
        rho_se: coupling strength for the adversarial copy (paper: 0.95).
        epsilon: L-inf attack radius during training, >= 0.
        train_attack_steps: PGD steps per training step, >= 1. Its former name
            `attack_steps` is still accepted (here and in saved configs) with a
            `DeprecationWarning`.
        attack_mode: the mode the attack runs the encoder in, as `SmoothEncoder`'s.
        **kwargs: `AVAE` arguments (`coupling`, `delusion`,
            `extra_pass_statistics`, which applies to both extra passes) and
            `VAE` arguments.
    """

    OPEN_CHOICES = {**AVAE.OPEN_CHOICES, "attack_mode": ATTACK_MODES}

    OBJECTIVE = "the bound of eq. (35)"

    def __init__(
        self,
        encoder,
        decoder,
        rho=0.975,
        rho_se=0.95,
        epsilon=0.1,
        train_attack_steps=DEFAULT_TRAIN_ATTACK_STEPS,
        attack_mode="inference",
        **kwargs,
    ):
        train_attack_steps = resolve_train_attack_steps(train_attack_steps, kwargs, "of `SEAVAE`")
        super().__init__(encoder, decoder, rho=rho, **kwargs)
        self.rho_se = check_rho(rho_se, "rho_se")
        self.epsilon, self.train_attack_steps, self.attack_mode = check_attack_arguments(
            epsilon, train_attack_steps, attack_mode
        )

    @property
    def term_names(self):
        return super().term_names + ("adversarial_coupling", "adversarial_entropy")

    def _extra_terms(self, x, z_mean, z_log_var, z, x_mean, training):
        terms = super()._extra_terms(x, z_mean, z_log_var, z, x_mean, training)
        # Factorised posteriors for the adversarial term, as eq. (35) is written.
        adversarial = adversarial_terms(self, x, z_mean, z_log_var, self.rho_se, tight=False, training=training)
        terms["adversarial_coupling"] = adversarial["coupling"]
        terms["adversarial_entropy"] = adversarial["aux_entropy"]
        return terms

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in ATTACK_ARGUMENTS})
        config["rho_se"] = self.rho_se
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(config_with_train_attack_steps(config))
