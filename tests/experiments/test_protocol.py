"""Tests for keras_avae/experiments/protocol.py."""

import json

import numpy as np
import pytest
from conftest import tiny_networks

import keras_avae
from keras_avae.evaluation import report
from keras_avae.experiments import color_mnist, protocol
from keras_avae.experiments.scale import TRAIN_SCALES

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
    model = protocol.build_model(
        name, *tiny_networks(image_shape=IMAGE_SHAPE), IMAGE_SHAPE,
        rho=0.9, rho_se=0.8, se_epsilon=0.2, train_attack_steps=3, obs_var=0.3, seed=1,
    )
    assert type(model) is model_class and model.built
    for key, value in expected.items():
        assert getattr(model, key) == value


def test_paper_hyper_parameters_by_default():
    se = protocol.build_model("se", *tiny_networks())
    seavae = protocol.build_model("seavae", *tiny_networks())
    avae = protocol.build_model("avae", *tiny_networks())
    assert (se.rho, se.epsilon) == (0.95, 0.1)
    assert (seavae.rho, seavae.rho_se, avae.rho) == (0.975, 0.95, 0.975)


def test_avae_ss_post_trains_a_copy_of_a_trained_model():
    vae = protocol.build_model("vae", *tiny_networks(image_shape=IMAGE_SHAPE), IMAGE_SHAPE)
    ss = protocol.build_model("avae_ss", pretrained=vae, rho=0.9)
    assert type(ss) is keras_avae.AVAESelfSupervised and ss.rho == 0.9
    assert not ss.decoder.trainable and ss.encoder is not vae.encoder
    with pytest.raises(ValueError, match="`avae_ss` post-trains a trained model"):
        protocol.build_model("avae_ss")
    with pytest.raises(ValueError, match="`pretrained` is only for `avae_ss`"):
        protocol.build_model("vae", *tiny_networks(), pretrained=vae)
    with pytest.raises(ValueError, match="`model` must be one of"):
        protocol.build_model("gan", *tiny_networks())


def test_resolve_config_fills_the_scale_and_refuses_unknown_settings():
    defaults = {**protocol.RUN_DEFAULTS, "scale": "small"}
    config, scale = protocol.resolve_config(defaults, {"epochs": 3, "rho": None}, TRAIN_SCALES)
    assert scale is TRAIN_SCALES["small"] and config["rho"] == protocol.RHO
    filled = protocol.fill_from_scale(config, scale, "mlp")
    assert (filled["epochs"], filled["train_size"], filled["attack_steps"]) == (3, 10000, 20)
    with pytest.raises(ValueError, match=r"Unknown settings \['epoch'\]"):
        protocol.resolve_config(defaults, {"epoch": 3}, TRAIN_SCALES)
    with pytest.raises(ValueError, match="`scale` must be one of"):
        protocol.resolve_config(defaults, {"scale": "huge"}, TRAIN_SCALES)


def test_results_table_adds_time_mse_and_fid_columns():
    rows = [
        {"label": "VAE", "accuracy": {"digit": {"0": 0.9, "0.1": 0.05}}, "time_factor": 1.0,
         "test_reconstruction_mse": 1369.24, "test_reconstruction_nll": 1380.04, "fid": 12.444},
        {"label": "AVAE", "accuracy": {"digit": {"0": 0.97, "0.1": 0.881}}, "time_factor": None,
         "test_reconstruction_mse": 1371.9, "fid": None},
    ]
    assert protocol.results_table(rows).splitlines() == [
        "| Model | digit ε=0 | digit ε=0.1 | Time | MSE (0..255 px) | MSE (NLL) | FID |",
        "|:--|--:|--:|--:|--:|--:|--:|",
        "| VAE | 90.0 | 5.0 | ×1.0 | 1369.2 | 1380.0 | 12.44 |",
        "| AVAE | 97.0 | 88.1 | - | 1371.9 | - | - |",
    ]
    # With sensitivity, a last column: the first task's shift ratio at the smallest radius.
    rows[0]["sensitivity"] = {
        "0.2": {"shift_ratio": {"digit": 2.0}}, "0.1": {"shift_ratio": {"digit": 1.104, "color": 0.5}}
    }
    lines = protocol.results_table(rows).splitlines()
    assert lines[0].endswith("| FID | shift ratio ε=0.1 (digit) |")
    assert lines[2].endswith("| 12.44 | 1.10 |") and lines[3].endswith("| - | - |")


def test_time_factor_and_accuracy_round_trip():
    assert protocol.time_factor({"seconds_per_step": 0.3}, {"seconds_per_step": 0.2}) == pytest.approx(1.5)
    assert protocol.time_factor({"seconds_per_step": 0.3}, None) is None
    results = {"digit": {0.0: 0.9, 0.1: 0.5}}
    assert report.accuracy_to_json(results) == {"digit": {"0": 0.9, "0.1": 0.5}}
    assert report.accuracy_from_json(report.accuracy_to_json(results)) == results


def _tiny_data(count=32):
    rng = np.random.default_rng(0)
    x = rng.random((count, 28, 28, 3), dtype=np.float32)
    labels = {"digit": rng.integers(0, 3, count), "color": rng.integers(0, 2, count)}
    return {
        "train_inputs": x, "probe_data": (x, labels), "test_data": (x, labels), "num_train": count, "source": "random"
    }


def test_run_rows_times_against_the_vae_and_resumes(tmp_path, monkeypatch):
    base = protocol.fill_from_scale(
        {**protocol.RUN_DEFAULTS, "arch": "mlp", "scale": "tiny", "fid": False, "figures": False, "verbose": 0,
         "epsilons": [0.0, 0.1]},
        TRAIN_SCALES["tiny"], "mlp",
    )
    rows = [{"label": "VAE", "model": "vae"}, {"label": "AVAE-SS", "model": "avae_ss", "pretrained": "VAE"}]
    models, results = protocol.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path)
    assert results["VAE"]["time_factor"] == 1.0
    assert results["AVAE-SS"]["time_factor"] > 0
    assert results["AVAE-SS"]["train_steps"] == results["VAE"]["train_steps"] == 2  # 32 images, batch 16
    assert json.loads((tmp_path / "VAE" / "metrics.json").read_text())["time_factor"] == 1.0
    summary = (tmp_path / "AVAE-SS" / "summary.md").read_text()
    assert summary.startswith("# AVAE-SS (mlp)")
    # How far the radius-0.1 attack moves f^mu, per task, next to the accuracies (none at radius 0).
    sensitivity = results["VAE"]["sensitivity"]
    assert list(sensitivity) == ["0.1"]
    assert sensitivity["0.1"]["shift"] >= sensitivity["0.1"]["random_shift"] > 0
    assert set(sensitivity["0.1"]["shift_ratio"]) == {"digit", "color"}
    assert "Representation sensitivity" in summary and "at ε=0.1" in summary

    def fail(*args, **kwargs):
        raise AssertionError("a finished row ran again")

    monkeypatch.setattr(protocol, "run_one", fail)
    _, resumed = protocol.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path, resume=True)
    assert resumed["AVAE-SS"]["accuracy"] == results["AVAE-SS"]["accuracy"]
    with pytest.raises(AssertionError, match="ran again"):  # other settings: the rows run again
        protocol.run_rows(rows, {**base, "rho": 0.9}, _tiny_data(), color_mnist.networks, tmp_path, resume=True)
    # Other evaluation settings only: the finished models are evaluated again, not trained.
    base_pgd = {**base, "attacks": "pgd"}
    again = protocol.run_rows(rows, base_pgd, _tiny_data(), color_mnist.networks, tmp_path, resume=True)[1]
    assert again["VAE"]["config"]["attacks"] == "pgd"
    assert again["VAE"]["train_seconds"] == results["VAE"]["train_seconds"]  # not trained again
    assert again["VAE"]["previous_accuracy"] == results["VAE"]["accuracy"]
    assert {check["name"] for check in again["VAE"]["robustness"]["checks"]} >= {"monotone", "in_ball"}
    stored = json.loads((tmp_path / "VAE" / "metrics.json").read_text())
    assert stored["config"]["attacks"] == "pgd" and "records" in stored["robustness"]
