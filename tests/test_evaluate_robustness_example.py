"""Tests for examples/evaluate_robustness.py (`keras-avae evaluate`), on tiny fake MNIST and a small saved VAE."""

import json

import pytest
from conftest import load_example

import keras_avae
from keras_avae import cli
from keras_avae.callbacks import robustness
from keras_avae.datasets.color_mnist import MNIST_PATH_ENV_VAR
from keras_avae.experiments import color_mnist as experiment

NUM_TRAIN, NUM_TEST = 80, 40
TINY = ["--train-size", "64", "--test-size", "32", "--attack-steps", "2", "--restarts", "1"]


example = load_example("evaluate_robustness.py", "evaluate_robustness")


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)


@pytest.fixture
def saved_vae(tmp_path):
    """A small untrained VAE (MLP networks of one 16-unit layer) saved as .keras."""
    encoder, decoder = keras_avae.architectures.mlp(latent_dim=4, hidden_units=16, hidden_layers=1)
    model = keras_avae.VAE(encoder, decoder, seed=0)
    model.build((None, 28, 28, 3))
    path = tmp_path / "model.keras"
    model.save(path)
    return path


def test_main_prints_the_table_and_writes_json(fake_mnist, saved_vae, tmp_path, capsys):
    out = tmp_path / "out" / "robustness.json"
    results = example.main(
        [str(saved_vae), "--data", str(fake_mnist), "--epsilons", "0,0.1", "--json", str(out)] + TINY
    )
    assert set(results) == {"digit", "color"}
    for accuracies in results.values():
        assert list(accuracies) == [0.0, 0.1]
        assert 0.0 <= accuracies[0.1] <= accuracies[0.0] <= 1.0
    printed = capsys.readouterr().out
    assert robustness.to_markdown(results, model_name="VAE") in printed
    assert "| Model | digit ε=0 | digit ε=0.1 | color ε=0 | color ε=0.1 |" in printed
    document = json.loads(out.read_text())
    assert document["model"] == "VAE"
    assert robustness.results_from_json(out.read_text()) == results
    assert document["config"]["attack_steps"] == 2 and document["config"]["restarts"] == 1
    assert document["config"]["num_train"] == 64 and document["config"]["num_test"] == 32
    assert document["config"]["data_path"] == str(fake_mnist)


def test_data_path_comes_from_the_training_example(fake_mnist, monkeypatch):
    monkeypatch.setenv(MNIST_PATH_ENV_VAR, str(fake_mnist))
    assert experiment.resolve_data_path() == str(fake_mnist)
    assert experiment.resolve_data_path("/explicit.npz") == "/explicit.npz"


@pytest.mark.parametrize(
    "flag, value",
    [("--epsilons", "0,-0.1"), ("--epsilons", "a"), ("--attack-steps", "0"), ("--restarts", "0"), ("--losses", "hinge")],
)
def test_bad_flags_exit(flag, value):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["evaluate", "model.keras", flag, value])


def test_defaults_follow_appendix_f():
    args = cli.build_parser().parse_args(["evaluate", "model.keras"])
    assert (args.attack_steps, args.restarts) == (40, 10)
    config = experiment.resolve_evaluate_config(cli.settings(args))
    assert config["epsilons"] == [0.0, 0.1, 0.2]
    assert config["losses"] == ["cross_entropy", "margin"]
