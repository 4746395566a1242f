"""Tests for keras_avae/experiments/registry.py: the models by name, with the paper's hyper-parameters."""

import pytest
from conftest import tiny_networks

import keras_avae
from keras_avae.experiments import registry

IMAGE_SHAPE = (6, 6, 1)


@pytest.mark.parametrize(
    "name, model_class, expected",
    [
        ("vae", keras_avae.VAE, {"obs_var": 0.3}),
        ("avae", keras_avae.AVAE, {"rho": 0.9, "obs_var": 0.3}),
        ("se", keras_avae.SmoothEncoder, {"rho": 0.8, "epsilon": 0.2, "train_attack_steps": 3}),
        ("seavae", keras_avae.SEAVAE, {"rho": 0.9, "rho_se": 0.8, "epsilon": 0.2, "train_attack_steps": 3}),
    ],
)
def test_build_model_by_name(name, model_class, expected):
    model = registry.build_model(
        name, *tiny_networks(image_shape=IMAGE_SHAPE), IMAGE_SHAPE,
        rho=0.9, rho_se=0.8, se_epsilon=0.2, train_attack_steps=3, obs_var=0.3, seed=1,
    )
    assert type(model) is model_class and model.built
    for key, value in expected.items():
        assert getattr(model, key) == value


def test_paper_hyper_parameters_by_default():
    se = registry.build_model("se", *tiny_networks())
    seavae = registry.build_model("seavae", *tiny_networks())
    avae = registry.build_model("avae", *tiny_networks())
    assert (se.rho, se.epsilon) == (0.95, 0.1)
    assert (seavae.rho, seavae.rho_se, avae.rho) == (0.975, 0.95, 0.975)


def test_avae_ss_post_trains_a_copy_of_a_trained_model():
    vae = registry.build_model("vae", *tiny_networks(image_shape=IMAGE_SHAPE), IMAGE_SHAPE)
    ss = registry.build_model("avae_ss", pretrained=vae, rho=0.9)
    assert type(ss) is keras_avae.AVAESelfSupervised and ss.rho == 0.9
    assert not ss.decoder.trainable and ss.encoder is not vae.encoder
    with pytest.raises(ValueError, match="`avae_ss` post-trains a trained model"):
        registry.build_model("avae_ss")
    with pytest.raises(ValueError, match="`pretrained` is only for `avae_ss`"):
        registry.build_model("vae", *tiny_networks(), pretrained=vae)
    with pytest.raises(ValueError, match="`model` must be one of"):
        registry.build_model("gan", *tiny_networks())


def test_model_from_config_builds_the_networks_in_the_runs_dtype_policy():
    from keras_avae.experiments import color_mnist
    from keras_avae.experiments.settings import RunConfig
    from keras_avae.models import networks

    config = RunConfig(model="avae", arch="conv", latent_dim=4, dtype_policy="mixed_bfloat16")
    model = registry.model_from_config(config, color_mnist.networks, (4, 4, 3))
    assert networks.dtype_policy(model.encoder) == networks.dtype_policy(model.decoder) == "mixed_bfloat16"
    ss_config = config.replace(model="avae_ss")
    assert networks.dtype_policy(registry.model_from_config(ss_config, None, (4, 4, 3), model).encoder) == "mixed_bfloat16"
    with pytest.raises(ValueError, match=r"The pretrained model's conv_encoder computes in the dtype policy "
                       r"'mixed_bfloat16'; AVAE-SS keeps its networks' policy\. Pass dtype_policy='mixed_bfloat16' "
                       r"\(--dtype-policy mixed_bfloat16\)\. Received: dtype_policy='float32'"):
        registry.model_from_config(ss_config.replace(dtype_policy="float32"), None, (4, 4, 3), model)
