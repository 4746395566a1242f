"""Every model: config round trip, `.keras` save and load, and training that resumes exactly."""

import zipfile

import keras
import numpy as np
import pytest

import keras_avae

# Each model with non-default arguments, so the round trips can tell them apart.
MODELS = {
    "vae": lambda networks: keras_avae.VAE(*networks, obs_var=0.25, seed=3, posterior_sampling="variance"),
    "avae": lambda networks: keras_avae.AVAE(
        *networks, rho=0.9, seed=3, coupling="joint", delusion="mean", extra_pass_statistics="keep"
    ),
    "smooth_encoder": lambda networks: keras_avae.SmoothEncoder(
        *networks, rho=0.9, epsilon=0.05, train_attack_steps=2, seed=3, attack_mode="training",
        extra_pass_statistics="keep",
    ),
    "seavae": lambda networks: keras_avae.SEAVAE(
        *networks, rho=0.9, rho_se=0.8, epsilon=0.05, train_attack_steps=2, seed=3, attack_mode="training",
        coupling="joint", delusion="mean",
    ),
    "self_supervised": lambda networks: keras_avae.AVAESelfSupervised(
        *networks, rho=0.8, seed=3, coupling="joint", posterior_sampling="variance"
    ),
}
KINDS = list(MODELS)


def _model(kind, make_networks, images):
    model = MODELS[kind](make_networks())
    model(images[:1])
    return model


def _train(model, images, epochs=1):
    if isinstance(model, keras_avae.AVAESelfSupervised):
        return model.fit(epochs=epochs, steps_per_epoch=4, batch_size=8, verbose=0)
    return model.fit(images, epochs=epochs, batch_size=8, shuffle=False, verbose=0)


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind, make_networks, images):
    model = _model(kind, make_networks, images)
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    for key in ("obs_var", "likelihood", "data_range", "seed", "posterior_sampling"):
        assert config[key] == getattr(model, key)
    for key in ("coupling", "delusion", "extra_pass_statistics", "attack_mode"):
        if hasattr(model, key):
            assert config[key] == getattr(model, key) == getattr(clone, key)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_the_same_model_and_resumes_training(kind, make_networks, images, tmp_path):
    model = _model(kind, make_networks, images)
    # Graph mode: the XLA compiles of `model` and `loaded` would cost most of the test. Each kind's
    # fit under XLA is tested in its own file, and that jit_compile survives saving in test_vae.py.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    _train(model, images)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True, the default

    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.encode_mean(images), model.encode_mean(images))
    np.testing.assert_array_equal(loaded.reconstruct(images), model.reconstruct(images))
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(saved, restored)

    _train(model, images)
    _train(loaded, images)
    for continued, resumed in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(continued, resumed, rtol=1e-5, atol=1e-6)


def test_rho_survives_saving(make_networks, images, tmp_path):
    model = _model("avae", make_networks, images)
    model.save(tmp_path / "avae.keras")
    assert keras.models.load_model(tmp_path / "avae.keras").rho == 0.9


def test_corrupt_checkpoint_fails_clearly_and_leaves_the_original(make_networks, images, tmp_path):
    model = _model("vae", make_networks, images)
    path = tmp_path / "model.keras"
    model.save(path)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises((ValueError, zipfile.BadZipFile), match=r"(?i)zip|file"):
        keras.models.load_model(corrupt)
    np.testing.assert_array_equal(
        keras.models.load_model(path).encode_mean(images), model.encode_mean(images)
    )
