"""SmoothEncoder (Algorithm 2, eq. 32 with the psi of appendix C.3.1)."""

import json
import zipfile

import keras
import numpy as np
import pytest

import keras_avae
from keras_avae import objectives

SE_TERMS = {"loss", "elbo", "reconstruction", "kl", "coupling", "aux_entropy"}


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_reports_the_smooth_encoder_terms(make_networks, images, jit_compile):
    model = keras_avae.SmoothEncoder(*make_networks(), epsilon=0.1, train_attack_steps=2, seed=0)
    model.compile(optimizer="adam", jit_compile=jit_compile)
    history = model.fit(images, epochs=1, batch_size=8, verbose=0).history
    assert set(history) == SE_TERMS
    assert all(np.isfinite(v).all() for v in history.values())


def test_loss_is_the_negative_tight_bound(make_networks, images):
    model = keras_avae.SmoothEncoder(*make_networks(), rho=0.9, epsilon=0.0, seed=0)
    model(images[:1])
    terms = {k: v.numpy() for k, v in model.terms(images).items()}
    np.testing.assert_allclose(terms["loss"], -(terms["elbo"] + terms["coupling"] + terms["aux_entropy"]), rtol=1e-5)
    # With epsilon = 0 the adversarial copy is x itself: the terms follow from q(z|x) alone.
    z_mean, z_log_var = model.posterior_parameters(images)
    psi = objectives.coupled_covariance(z_log_var, z_log_var, 0.9)
    np.testing.assert_allclose(
        terms["coupling"], objectives.expected_coupling_log_prob(z_mean, z_log_var, z_mean, z_log_var, 0.9, psi), rtol=1e-5
    )
    np.testing.assert_allclose(terms["aux_entropy"], objectives.coupled_aux_entropy(z_log_var, z_log_var, psi), rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilon": -0.1}, r"`epsilon` must be a finite number >= 0. Received: epsilon=-0.1"),
        ({"epsilon": float("nan")}, r"`epsilon` must be a finite number >= 0"),
        ({"epsilon": float("inf")}, r"`epsilon` must be a finite number >= 0"),
        ({"train_attack_steps": 0}, r"`train_attack_steps` must be an integer >= 1. Received: train_attack_steps=0"),
        ({"train_attack_steps": 2.5}, r"`train_attack_steps` must be an integer >= 1"),
        ({"train_attack_steps": True}, r"`train_attack_steps` must be an integer >= 1"),
        ({"rho": 1.0}, r"`rho` must be a number in \(-1, 1\)"),
    ],
)
def test_bad_arguments_are_refused(make_networks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_avae.SmoothEncoder(*make_networks(), **kwargs)


def test_from_pretrained_continues_from_a_trained_vae(make_networks, images):
    vae = keras_avae.VAE(*make_networks(), obs_var=0.2, seed=0)
    vae.compile(optimizer="adam", jit_compile=False)  # only the source model: an XLA compile costs more than its fit
    vae.fit(images, epochs=1, batch_size=8, verbose=0)
    source = [w.copy() for w in vae.get_weights()]
    smooth = keras_avae.SmoothEncoder.from_pretrained(vae, epsilon=0.05, train_attack_steps=1)
    assert smooth.obs_var == 0.2 and smooth.epsilon == 0.05
    np.testing.assert_array_equal(smooth.encode_mean(images), vae.encode_mean(images))
    smooth.compile(optimizer="adam")
    smooth.fit(images, epochs=1, batch_size=8, verbose=0)
    for old, new in zip(source, vae.get_weights()):
        np.testing.assert_array_equal(old, new)


# ------------------------------------------- `attack_steps`, the deprecated name

ADVERSARIAL_CLASSES = pytest.mark.parametrize("cls", [keras_avae.SmoothEncoder, keras_avae.SEAVAE], ids=["se", "seavae"])


@ADVERSARIAL_CLASSES
def test_attack_steps_is_a_deprecated_name_of_train_attack_steps(cls, make_networks):
    with pytest.warns(DeprecationWarning, match="`attack_steps` of `.*` is deprecated: it is now `train_attack_steps`"):
        model = cls(*make_networks(), attack_steps=3)
    assert model.train_attack_steps == 3
    config = model.get_config()
    assert config["train_attack_steps"] == 3 and "attack_steps" not in config
    with pytest.warns(DeprecationWarning, match="in a saved config"):
        old = cls.from_config({**{k: v for k, v in config.items() if k != "train_attack_steps"}, "attack_steps": 4})
    assert old.train_attack_steps == 4
    with pytest.raises(ValueError, match=r"Pass `train_attack_steps` only.*train_attack_steps=2, attack_steps=3"):
        cls(*make_networks(), train_attack_steps=2, attack_steps=3)


@ADVERSARIAL_CLASSES
def test_a_keras_file_saved_with_attack_steps_still_loads(cls, make_networks, images, tmp_path):
    model = cls(*make_networks(), train_attack_steps=2, seed=0)
    model(images[:1])
    path = tmp_path / "model.keras"
    model.save(path)
    # The file as the library wrote it before the rename: `attack_steps` in config.json.
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members["config.json"])
    document["config"]["attack_steps"] = document["config"].pop("train_attack_steps")
    members["config.json"] = json.dumps(document).encode()
    old_path = tmp_path / "old.keras"
    with zipfile.ZipFile(old_path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)

    with pytest.warns(DeprecationWarning, match="in a saved config"):
        loaded = keras.models.load_model(old_path)
    assert type(loaded) is cls and loaded.train_attack_steps == 2
    np.testing.assert_array_equal(loaded.encode_mean(images), model.encode_mean(images))
    # Saved again, the file has the new name.
    loaded.save(path)
    with zipfile.ZipFile(path) as archive:
        resaved = json.loads(archive.read("config.json"))["config"]
    assert resaved["train_attack_steps"] == 2 and "attack_steps" not in resaved
