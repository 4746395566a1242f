"""The models of the experiments by name, built with the paper's hyper-parameters.

Hyper-parameters from the paper: rho = 0.975 and rho_SE = 0.95 (Table 1
caption), latent dimension 64 (Section 4), the SE training radii 0.1 and 0.2
(Table 1's rows).

Example:
    encoder, decoder = keras_avae.architectures.mlp()
    se = build_model("se", encoder, decoder, (28, 28, 3), se_epsilon=0.2)
"""

import keras

from keras_avae.models import AVAE, SEAVAE, VAE, AVAESelfSupervised, SmoothEncoder
from keras_avae.models import networks as networks_lib

MODEL_CLASSES = {
    "vae": VAE,
    "avae": AVAE,
    "se": SmoothEncoder,
    "seavae": SEAVAE,
    "avae_ss": AVAESelfSupervised,
}
"""Model names of the commands and the classes they build."""

MODEL_NAMES = tuple(MODEL_CLASSES)

DISPLAY_NAMES = {"vae": "VAE", "avae": "AVAE", "se": "SE", "seavae": "SE-AVAE", "avae_ss": "AVAE-SS"}
"""How the paper's tables name the models."""

RHO = 0.975
"""Table 1 caption: "the coupling strengths are rho = 0.975" (AVAE, SE-AVAE, AVAE-SS)."""

RHO_SE = 0.95
"""Table 1 caption: rho_SE = 0.95, the smooth encoder's coupling."""

SE_EPSILON = 0.1
"""Default L-inf radius of SE's training attack (Table 1 has 0.1 and 0.2)."""

CHOICE_VALUES = {
    name: values for cls in MODEL_CLASSES.values() for name, values in cls.OPEN_CHOICES.items()
}
"""The paper's open choices (model arguments, each class's `OPEN_CHOICES`) and their values."""

CHOICES = {
    name: tuple(model for model, cls in MODEL_CLASSES.items() if name in cls.OPEN_CHOICES) for name in CHOICE_VALUES
}
"""The models that take each open choice; a run's setting of one applies to those models and
is ignored by the others."""


def check_model_name(name):
    if name not in MODEL_CLASSES:
        raise ValueError(f"`model` must be one of {MODEL_NAMES}. Received: model={name!r}")
    return name


def build_model(
    name,
    encoder=None,
    decoder=None,
    input_shape=None,
    pretrained=None,
    *,
    rho=RHO,
    rho_se=RHO_SE,
    se_epsilon=SE_EPSILON,
    train_attack_steps=20,
    obs_var=None,
    seed=None,
    **choices,
):
    """A keras_avae model by name, with the paper's hyper-parameters.

    - `"vae"`: `VAE` (eq. 2).
    - `"avae"`: `AVAE(rho=rho)` (eq. 13).
    - `"se"`: `SmoothEncoder(rho=rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)`
      (Algorithm 2; Table 1's SE_eps').
    - `"seavae"`: `SEAVAE(rho, rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)` (eq. 35).
    - `"avae_ss"`: `AVAESelfSupervised.from_pretrained(pretrained, rho=rho)` (eq. 34):
      a copy of a trained model whose decoder is frozen; takes no networks.

    Args:
        name: one of `MODEL_NAMES`.
        encoder, decoder: the networks (all but `"avae_ss"`).
        input_shape: shape of one example; when given, the model is built.
        pretrained: the trained model `"avae_ss"` starts from.
        rho, rho_se, se_epsilon, train_attack_steps: as above.
        obs_var: the likelihood's variance v; None keeps the model's default.
        seed: seed of the model's noise.
        **choices: the open choices of `CHOICES` (e.g. `delusion="mean"`);
            each is passed to the models that take it, None keeps the default.

    Returns:
        The model, not compiled.

    Example:
        encoder, decoder = keras_avae.architectures.mlp()
        se = build_model("se", encoder, decoder, (28, 28, 3), se_epsilon=0.2)
    """
    check_model_name(name)
    unknown = sorted(set(choices) - set(CHOICES))
    if unknown:
        raise ValueError(f"Unknown model choices {unknown}; the known ones are {sorted(CHOICES)}.")
    options = {
        choice: value for choice, value in choices.items() if value is not None and name in CHOICES[choice]
    }
    if name == "avae_ss":
        if pretrained is None:
            raise ValueError("`avae_ss` post-trains a trained model: pass `pretrained` (e.g. a trained VAE).")
        if encoder is not None or decoder is not None:
            raise ValueError("`avae_ss` copies the networks of `pretrained`; pass no `encoder` or `decoder`.")
        return AVAESelfSupervised.from_pretrained(pretrained, rho=rho, **options)
    if pretrained is not None:
        raise ValueError(f"`pretrained` is only for `avae_ss`. Received it with model={name!r}")
    if encoder is None or decoder is None:
        raise ValueError(f"model={name!r} needs an `encoder` and a `decoder`.")
    kwargs = {"seed": seed, **options}
    if obs_var is not None:
        kwargs["obs_var"] = obs_var
    if name == "avae":
        kwargs["rho"] = rho
    elif name == "se":
        kwargs.update(rho=rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)
    elif name == "seavae":
        kwargs.update(rho=rho, rho_se=rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)
    model = MODEL_CLASSES[name](encoder, decoder, **kwargs)
    if input_shape is not None:
        model.build((None,) + tuple(input_shape))
    return model


def model_from_config(config, networks, input_shape, pretrained=None):
    """`build_model` with a run's settings: `config.model`, its networks and hyper-parameters.

    Args:
        config: a run's settings (`settings.RunConfig`).
        networks: `networks(config, input_shape) -> (encoder, decoder)`; not
            called for `avae_ss`.
        input_shape: shape of one example.
        pretrained: the trained model `avae_ss` starts from.

    Returns:
        The built model, not compiled.
    """
    name = check_model_name(config.model)
    choices = config.choices()
    if name == "avae_ss":
        check_dtype_policy(pretrained, config.dtype_policy)
        return build_model(name, pretrained=pretrained, rho=config.rho, **choices)
    encoder, decoder = networks(config, input_shape)
    return build_model(
        name,
        encoder,
        decoder,
        input_shape,
        rho=config.rho,
        rho_se=config.rho_se,
        se_epsilon=config.se_epsilon,
        train_attack_steps=config.train_attack_steps,
        obs_var=config.obs_var,
        seed=config.seed,
        **choices,
    )


def check_dtype_policy(model, policy):
    """Refuses a trained `model` whose networks compute in another dtype policy than `policy`.

    AVAE-SS copies the networks of the model it post-trains, with their policy; a run's
    `dtype_policy` must say what they compute in, as config.json records it.
    """
    if model is None:
        return
    for network in (model.encoder, model.decoder):
        found = networks_lib.dtype_policy(network)
        if found != policy:
            raise ValueError(
                f"The pretrained model's {network.name} computes in the dtype policy {found!r}; AVAE-SS keeps "
                f"its networks' policy. Pass dtype_policy={found!r} (--dtype-policy {found}). "
                f"Received: dtype_policy={policy!r}"
            )


def model_choices(model):
    """The open choices (`CHOICES`) that `model` was built with, choice -> value."""
    return {choice: getattr(model, choice) for choice in CHOICES if choice in type(model).OPEN_CHOICES}


def compile_model(model, learning_rate, jit_compile=None):
    """Compiles `model` with Adam(`learning_rate`) (Appendix F); `jit_compile` None is Keras' "auto"."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        jit_compile="auto" if jit_compile is None else jit_compile,
    )
    return model
