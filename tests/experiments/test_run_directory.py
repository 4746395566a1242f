"""Tests for keras_avae/experiments/run_directory.py: the files of a run directory."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_avae
from keras_avae.experiments import run_directory


@pytest.mark.parametrize(
    "text, expected",
    [("AVAE (Alg. 1)", "AVAE_Alg._1"), ("SE_0.1-AVAE", "SE_0.1-AVAE"), ("ε=0.1 / digit", "0.1_digit"), ("???", "run"),
     ("Black Hair", "Black_Hair")],
)
def test_slug_is_a_file_name(text, expected):
    assert run_directory.slug(text) == expected


def test_write_json_makes_folders_and_writes_standard_json(tmp_path):
    path = run_directory.write_json(tmp_path / "a" / "b.json",
                                    {"x": math.nan, "y": [1.0, math.inf], "p": Path("runs/a"), "t": (1, 2)})
    assert path == tmp_path / "a" / "b.json"
    assert json.loads(path.read_text()) == {"x": None, "y": [1.0, None], "p": "runs/a", "t": [1, 2]}
    assert "NaN" not in path.read_text() and os.listdir(tmp_path / "a") == ["b.json"]  # no temporary left


def test_write_run_writes_config_metrics_and_summary(tmp_path):
    metrics = {"label": "VAE", "arch": "mlp", "probe_accuracy": {"digit": 0.5}, "num_train": 10, "num_test": 5,
               "num_attacked": 5, "config": {"attack_steps": 1, "restarts": 1, "losses": ["margin"]}}
    run_directory.write_run(tmp_path, {"seed": 3}, metrics, source="mnist.npz")
    assert sorted(os.listdir(tmp_path)) == ["config.json", "metrics.json", "summary.md"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seed"] == 3 and config["data_path"] == "mnist.npz"
    assert config["environment"]["keras_avae"] == keras_avae.__version__
    assert config["environment"]["tensorflow"] == tf.__version__
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "summary.md").read_text().startswith("# VAE (mlp)\n")


def test_write_document_writes_markdown_and_json_and_prints(tmp_path, capsys):
    document = run_directory.write_document(tmp_path, "table", {"rows": [1]}, lambda doc: f"| {len(doc['rows'])} |")
    assert document["markdown"] == "| 1 |"
    assert (tmp_path / "table.md").read_text() == "| 1 |"
    assert json.loads((tmp_path / "table.json").read_text()) == {"rows": [1], "markdown": "| 1 |"}
    assert "| 1 |" in capsys.readouterr().out


def test_log_evaluation_writes_each_finite_number_as_a_scalar(tmp_path):
    metrics = {"test_reconstruction_mse": 12.5, "fid": None, "seconds_per_step": math.nan, "time_factor": 2.0,
               "probe_accuracy": {"Black Hair": 0.75}, "accuracy": {"digit": {"0": 0.9, "0.1": 0.25}}}
    run_directory.log_evaluation(tmp_path, metrics, step=3)
    scalars = {}
    for event_file in (tmp_path / "evaluation").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                scalars[value.tag] = (event.step, float(tf.make_ndarray(value.tensor)))
    assert scalars == {
        "reconstruction_mse": (3, 12.5), "time_factor": (3, 2.0), "probe_accuracy_Black_Hair": (3, 0.75),
        "robust_digit_eps0": (3, pytest.approx(0.9)), "robust_digit_eps0_1": (3, 0.25),
    }


def test_run_figures_draws_the_run(tmp_path):
    from conftest import tiny_networks

    model = keras_avae.VAE(*tiny_networks(latent_dim=2, image_shape=(4, 4, 1), hidden=4), seed=0)
    x = np.random.default_rng(0).random((6, 4, 4, 1), dtype=np.float32)
    model(x)
    paths = run_directory.run_figures(tmp_path / "figures", model, "VAE", x, {"digit": {"0": 0.9, "0.1": 0.3}})
    assert set(paths) == {"reconstructions", "samples", "encode_decode_chains", "accuracy_vs_epsilon_digit"}
    assert all(Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in paths.values())
    assert sorted(os.listdir(tmp_path / "figures")) == [
        "accuracy_vs_epsilon_digit.png", "encode_decode_chains.png", "reconstructions.png", "samples.png"]
