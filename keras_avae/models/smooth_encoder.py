"""The smooth encoder of Cemgil et al. (2020) [5], appendix C.2-C.3.1 and Algorithm 2."""

import warnings

import keras

from keras_avae import attacks, objectives
from keras_avae.models.vae import EXTRA_PASS_STATISTICS, VAE
from keras_avae.validation import check_choice, check_non_negative, check_positive_int, check_rho

ATTACK_ARGUMENTS = ("rho", "epsilon", "train_attack_steps", "attack_mode", "extra_pass_statistics")

DEFAULT_TRAIN_ATTACK_STEPS = 5
"""PGD steps per training step of `SmoothEncoder` and `SEAVAE` unless given."""

ATTACK_MODES = ("inference", "training")
"""The mode the training attack runs the encoder in: `"inference"` (BatchNorm's moving
statistics) or `"training"`, the mode of the bound it feeds (the batch's statistics, moving
statistics left unchanged), so that it attacks the function the bound then scores."""


def check_attack_arguments(epsilon, train_attack_steps, attack_mode):
    """Checks a training attack's radius (>= 0), steps (>= 1) and mode; returns them as float, int, str."""
    return (
        check_non_negative(epsilon, "epsilon"),
        check_positive_int(train_attack_steps, "train_attack_steps"),
        check_choice(attack_mode, ATTACK_MODES, "attack_mode"),
    )


def resolve_train_attack_steps(train_attack_steps, kwargs, where):
    """`train_attack_steps`, or the value of the deprecated `attack_steps` popped from `kwargs`.

    `attack_steps` was the training attack's name before it was told apart from the
    evaluation attack's (`RobustnessEvaluator(attack_steps=...)`). It is still read, with a
    `DeprecationWarning`; given with a `train_attack_steps` of another value, it is refused.
    """
    if "attack_steps" not in kwargs:
        return train_attack_steps
    attack_steps = kwargs.pop("attack_steps")
    if train_attack_steps not in (DEFAULT_TRAIN_ATTACK_STEPS, attack_steps):
        raise ValueError(
            "Pass `train_attack_steps` only: `attack_steps` is its deprecated name. Received: "
            f"train_attack_steps={train_attack_steps!r}, attack_steps={attack_steps!r}"
        )
    warnings.warn(
        f"`attack_steps` {where} is deprecated: it is now `train_attack_steps` (the PGD steps of the "
        "training attack; `attack_steps` is the evaluation attack's, `RobustnessEvaluator`).",
        DeprecationWarning,
        stacklevel=3,
    )
    return attack_steps


def config_with_train_attack_steps(config):
    """A config saved before the rename, with `attack_steps` read as `train_attack_steps`."""
    if "attack_steps" not in config:
        return config
    config = dict(config)
    kwargs = {"attack_steps": config.pop("attack_steps")}
    config["train_attack_steps"] = resolve_train_attack_steps(
        config.get("train_attack_steps", DEFAULT_TRAIN_ATTACK_STEPS),
        kwargs,
        "in a saved config (a model saved before the rename; save it again to update it)",
    )
    return config


def adversarial_terms(model, x, z_mean, z_log_var, rho, *, tight, training):
    """The coupling and entropy terms for an adversarial x~ found around x.

    Args:
        model: the model whose encoder is attacked (has `epsilon`,
            `train_attack_steps`, `attack_mode`, `extra_pass_statistics`,
            `data_range` and `posterior_parameters`).
        x: clean inputs.
        z_mean, z_log_var: q(z|x).
        rho: coupling strength of the attack and of the bound.
        tight: use the joint posterior of appendix C.3.1 (psi) instead of the
            factorised one of eq. (28).
        training: passed to the encoder for the bound, and to the attack's
            encoder when `model.attack_mode == "training"` (which then keeps
            the moving statistics); the attack otherwise runs it in inference mode.

    Returns:
        `{"coupling": ..., "aux_entropy": ...}`, `(batch,)` each.
    """
    attack_training = training and model.attack_mode == "training"
    adversarial = attacks.representation_attack(
        lambda inputs: model.posterior_parameters(inputs, training=attack_training, update_statistics=False),
        x,
        model.epsilon,
        model.train_attack_steps,
        rho,
        model.data_range,
    )
    aux_mean, aux_log_var = model.posterior_parameters(
        adversarial, training, update_statistics=model.extra_pass_statistics == "update"
    )
    psi = objectives.coupled_covariance(z_log_var, aux_log_var, rho) if tight else 0.0
    return {
        "coupling": objectives.expected_coupling_log_prob(z_mean, z_log_var, aux_mean, aux_log_var, rho, psi),
        "aux_entropy": objectives.coupled_aux_entropy(z_log_var, aux_log_var, psi),
    }


@keras.saving.register_keras_serializable(package="keras_avae")
class SmoothEncoder(VAE):
    """Smooth encoder: a VAE trained on adversarially perturbed copies of its data (Algorithm 2).

    Each step first finds, by L-inf PGD (CleverHans) inside the ball of radius
    `epsilon` clipped to `data_range`, the x~ that maximises the divergence of
    eqs. (25)-(26) between q(z|x) and q(z'|x~); then maximises eq. (32) with
    the tighter coupled posterior of appendix C.3.1:

        elbo(x) + <log p_rho(z'|z)>_q~ + H[q~(z'|z)]

    where q~(z, z') has cross-covariance psi (`objectives.coupled_covariance`).
    The attack leaves no gradient and changes no BatchNorm statistic. Two
    choices the paper leaves open are arguments: `attack_mode`, whether the
    attack sees the encoder in inference mode (the default) or in the
    training mode its bound uses; and `extra_pass_statistics`, whether the
    adversarial input's encoder pass `"update"`s BatchNorm's moving
    statistics (a plain Keras call, the default) or `"keep"`s them.

    `fit` reports the VAE's terms plus `coupling` and `aux_entropy` (both
    under q~); `loss` is the negative of eq. (32).

    Args:
        encoder, decoder: as for `VAE`.
        rho: coupling strength in (-1, 1) (the paper's rho_SE = 0.95).
        epsilon: L-inf attack radius during training, >= 0.
        train_attack_steps: PGD steps per training step, >= 1. Its former name
            `attack_steps` is still accepted (here and in saved configs) with a
            `DeprecationWarning`.
        attack_mode: `"inference"` or `"training"`, see `ATTACK_MODES`.
        extra_pass_statistics: `"update"` or `"keep"` BatchNorm's moving
            statistics on the adversarial input's pass.
        **kwargs: `VAE` arguments.
    """

    OPEN_CHOICES = {**VAE.OPEN_CHOICES, "attack_mode": ATTACK_MODES, "extra_pass_statistics": EXTRA_PASS_STATISTICS}

    OBJECTIVE = "the bound of eq. (32)"

    def __init__(
        self,
        encoder,
        decoder,
        rho=0.95,
        epsilon=0.1,
        train_attack_steps=DEFAULT_TRAIN_ATTACK_STEPS,
        attack_mode="inference",
        extra_pass_statistics="update",
        **kwargs,
    ):
        train_attack_steps = resolve_train_attack_steps(train_attack_steps, kwargs, "of `SmoothEncoder`")
        super().__init__(encoder, decoder, **kwargs)
        self.rho = check_rho(rho)
        self.epsilon, self.train_attack_steps, self.attack_mode = check_attack_arguments(
            epsilon, train_attack_steps, attack_mode
        )
        self.extra_pass_statistics = check_choice(
            extra_pass_statistics, EXTRA_PASS_STATISTICS, "extra_pass_statistics"
        )

    @property
    def term_names(self):
        return super().term_names + ("coupling", "aux_entropy")

    def _extra_terms(self, x, z_mean, z_log_var, z, x_mean, training):
        return adversarial_terms(self, x, z_mean, z_log_var, self.rho, tight=True, training=training)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in ATTACK_ARGUMENTS})
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(config_with_train_attack_steps(config))
