"""Tests for examples/train_color_mnist.py (`keras-avae train`), run on a tiny fake MNIST file."""

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import load_example

import keras_avae
from keras_avae import cli
from keras_avae.datasets.color_mnist import MNIST_PATH_ENV_VAR
from keras_avae.experiments import color_mnist as experiment
from keras_avae.experiments import registry, settings

NUM_TRAIN, NUM_TEST = 300, 150
TINY = ["--train-size", "256", "--test-size", "128", "--epochs", "1", "--latent-dim", "8"]
# The evaluation at its smallest: one PGD step from one start without the rest of the ensemble
# and its checks (the default ensemble through the CLI is under test in tests/test_cli.py), a
# one-epoch FID extractor. No XLA: its compile would cost more than these one-epoch fits (the
# default is tested in tests/models).
TINY_EVALUATION = [
    "--attack-steps", "1", "--restarts", "1", "--attacks", "pgd", "--no-checks", "--extractor-epochs", "1",
    "--verbose", "0", "--no-jit-compile",
]


example = load_example("train_color_mnist.py", "train_color_mnist")


def train_config(argv):
    """The resolved settings of `keras-avae train argv`."""
    return settings.TrainSettings.from_dict(cli.settings(cli.build_parser().parse_args(["train", *argv]))).resolved()


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)


@pytest.fixture
def built_models(monkeypatch):
    """Records the models `main` builds, to compare the trained one with the saved file."""
    built = []
    model_from_config = registry.model_from_config

    def recording_model_from_config(*args, **kwargs):
        built.append(model_from_config(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(registry, "model_from_config", recording_model_from_config)
    return built


@pytest.mark.parametrize("model_name, model_class", [("vae", keras_avae.VAE), ("avae", keras_avae.AVAE)])
def test_main_trains_saves_and_reports(fake_mnist, tmp_path, built_models, model_name, model_class):
    out = tmp_path / "run"
    argv = ["--model", model_name, "--arch", "mlp", "--data", str(fake_mnist), "--out", str(out)]
    metrics = example.main(argv + TINY + TINY_EVALUATION)

    assert (out / "model.keras").is_file()
    with open(out / "metrics.json") as file:
        assert json.load(file) == json.loads(json.dumps(metrics))
    assert metrics["num_train"] == 256 and metrics["num_test"] == 128
    assert metrics["config"]["learning_rate"] == 1e-3  # the small scale's
    assert set(metrics["test_terms"]) >= {"loss", "elbo", "reconstruction", "kl"}
    for value in metrics["test_terms"].values():
        assert math.isfinite(value)
    sse = metrics["test_reconstruction_sse"]
    assert 0.0 < sse <= 28 * 28 * 3  # each pixel's squared error is at most 1
    assert metrics["test_reconstruction_sse_255"] == pytest.approx(sse * 255**2)
    assert set(metrics["probe_accuracy"]) == {"digit", "color"}
    for accuracy in metrics["probe_accuracy"].values():
        assert 0.0 <= accuracy <= 1.0

    loaded = keras.models.load_model(out / "model.keras")
    assert type(loaded) is model_class
    (trained,) = built_models
    x, _ = keras_avae.datasets.color_mnist("test", path=fake_mnist, limit=16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.encode_mean(x)),
        keras.ops.convert_to_numpy(trained.encode_mean(x)),
        atol=1e-6,
    )


def test_scale_presets_and_overrides():
    small = train_config([])
    assert (small.model, small.arch, small.scale) == ("avae", "mlp", "small")
    assert (small.learning_rate, small.train_size, small.test_size) == (1e-3, 10000, 2000)
    assert small.out == str(Path("runs") / "avae_mlp")
    assert small.obs_var is None and small.jit_compile is None
    paper = train_config(["--scale", "paper", "--model", "vae", "--arch", "conv"])
    assert (paper.learning_rate, paper.train_size, paper.test_size) == (1e-4, 60000, 10000)
    assert paper.epochs > small.epochs
    assert paper.out == str(Path("runs") / "vae_conv")
    custom = train_config(["--scale", "paper", "--learning-rate", "3e-4", "--no-jit-compile"])
    assert custom.learning_rate == 3e-4 and custom.jit_compile is False


def test_obs_var_and_rho_reach_the_model():
    config = train_config(["--obs-var", "0.1", "--rho", "0.9", "--latent-dim", "4"])
    model = experiment.build_model(config, (28, 28, 3))
    assert (model.obs_var, model.rho, model.latent_dim) == (0.1, 0.9, 4)
    vae = experiment.build_model(train_config(["--model", "vae", "--latent-dim", "4"]), (28, 28, 3))
    assert vae.obs_var == keras_avae.VAE(*keras_avae.architectures.mlp(4)).obs_var


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--learning-rate", "-1"), ("--model", "gan")])
def test_bad_flags_exit(flag, value):
    with pytest.raises(SystemExit):
        train_config([flag, value])


def test_data_path_precedence(tmp_path, monkeypatch):
    shared = tmp_path / "shared.npz"
    monkeypatch.setattr(experiment, "SHARED_MNIST_PATH", shared)
    assert experiment.resolve_data_path() is None  # nothing set, nothing there: download
    shared.touch()
    assert experiment.resolve_data_path() == str(shared)
    monkeypatch.setenv(MNIST_PATH_ENV_VAR, "/from/env.npz")
    assert experiment.resolve_data_path() == "/from/env.npz"
    assert experiment.resolve_data_path("/explicit.npz") == "/explicit.npz"


def test_python_api_example_trains_evaluates_and_saves(tmp_path, write_fake_mnist, capsys):
    """examples/python_api.py, the library without the CLI, on a fake MNIST with tiny sizes."""
    python_api = load_example("python_api.py", "python_api")
    data = write_fake_mnist(tmp_path / "mnist.npz", 64, 32)
    out = tmp_path / "avae.keras"
    argv = ["--data", str(data), "--train-size", "64", "--test-size", "32", "--epochs", "1", "--out", str(out)]
    model, results = python_api.main(argv)

    assert isinstance(model, keras_avae.AVAE) and model.jit_compile is True  # an MLP on a CPU
    assert set(results) == {"digit", "color"} and set(results["digit"]) == {0.0, 0.1, 0.2}
    printed = capsys.readouterr().out
    assert "AVAE" in printed and "checks flagged:" in printed
    loaded = keras.models.load_model(out)
    x, _ = keras_avae.datasets.color_mnist("test", path=str(data), limit=4)
    np.testing.assert_array_equal(loaded.encode_mean(x), model.encode_mean(x))
