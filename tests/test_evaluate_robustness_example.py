"""Tests for examples/evaluate_robustness.py (`keras-avae evaluate`), on tiny fake MNIST and a small saved VAE."""

import json

import keras
import pytest
from conftest import load_example

import keras_avae
from keras_avae import cli
from keras_avae.evaluation import report
from keras_avae.datasets.color_mnist import MNIST_PATH_ENV_VAR
from keras_avae.experiments import color_mnist as experiment
from keras_avae.experiments.settings import EvaluateSettings

NUM_TRAIN, NUM_TEST = 80, 40
TINY = ["--train-size", "64", "--test-size", "32", "--attack-steps", "2", "--restarts", "1", "--square-queries", "10", "--check-size", "8"]


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


@pytest.mark.large
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
    assert "| Model | digit ε=0 | digit ε=0.1 | color ε=0 | color ε=0.1 | Checks |" in printed
    document = json.loads(out.read_text())
    assert document["model"] == "VAE"
    assert report.results_from_json(out.read_text()) == results
    assert {check["name"] for check in document["checks"]} >= {"monotone", "black_box", "huge_epsilon", "in_ball"}
    assert len(document["records"]["digit"]["0.1"]) == 32
    assert document["config"]["attacks"] == ["pgd", "apgd_ce", "apgd_dlr_targeted", "square"]
    assert document["config"]["attack_steps"] == 2 and document["config"]["restarts"] == 1
    assert document["config"]["num_train"] == 64 and document["config"]["num_test"] == 32
    assert document["config"]["data_path"] == str(fake_mnist)


def test_a_bare_encoder_is_evaluated_for_robustness(fake_mnist, tmp_path, capsys):
    encoder = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    encoder.export(tmp_path / "saved")
    encoder.save(tmp_path / "encoder.keras")
    results = {}
    for source in ("saved", "encoder.keras"):
        metrics = cli.run(
            ["evaluate", "--encoder", str(tmp_path / source), "--data", str(fake_mnist), "--epsilons", "0,0.1",
             "--attacks", "pgd", "--no-checks", "--out", str(tmp_path / f"out_{source}")] + TINY
        )
        assert (tmp_path / f"out_{source}" / "metrics.json").exists()
        results[source] = metrics["accuracy"]
    assert results["saved"] == results["encoder.keras"]
    assert "| Model | digit ε=0 | digit ε=0.1 |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Give exactly one of `model_path`"):
        cli.run(["evaluate", "--data", str(fake_mnist)])
    with pytest.raises(ValueError, match="is not a keras_avae model; evaluate a bare encoder with `--encoder`"):
        cli.run(["evaluate", str(tmp_path / "encoder.keras"), "--data", str(fake_mnist)] + TINY)


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
    assert (args.attack_steps, args.restarts) == (None, None)  # left to the settings' defaults
    config = EvaluateSettings.from_dict(cli.settings(args)).resolved()
    assert (config.attack_steps, config.restarts) == (40, 10)
    assert config.epsilons == (0.0, 0.1, 0.2)
    assert config.losses == ("cross_entropy", "margin")
    assert config.model_path == "model.keras" and config.out == "evaluation"  # next to the model
