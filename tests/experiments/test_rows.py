"""Tests for keras_avae/experiments/rows.py (tables of runs), run.py (one run) and summaries.py (their markdown)."""

import json

import numpy as np
import pytest

from keras_avae import files
from keras_avae.evaluation import report
from keras_avae.experiments import color_mnist, run, summaries
from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments.scale import TRAIN_SCALES
from keras_avae.experiments.settings import RunConfig


def test_results_table_adds_time_mse_and_fid_columns():
    rows = [
        {"label": "VAE", "accuracy": {"digit": {"0": 0.9, "0.1": 0.05}}, "time_factor": 1.0,
         "test_reconstruction_mse": 1369.24, "test_reconstruction_nll": 1380.04, "fid": 12.444},
        {"label": "AVAE", "accuracy": {"digit": {"0": 0.97, "0.1": 0.881}}, "time_factor": None,
         "test_reconstruction_mse": 1371.9, "fid": None},
    ]
    assert summaries.results_table(rows).splitlines() == [
        "| Model | digit ε=0 | digit ε=0.1 | Time | MSE (0..255 px) | MSE (NLL) | FID |",
        "|:--|--:|--:|--:|--:|--:|--:|",
        "| VAE | 90.0 | 5.0 | ×1.0 | 1369.2 | 1380.0 | 12.44 |",
        "| AVAE | 97.0 | 88.1 | - | 1371.9 | - | - |",
    ]
    # With sensitivity, a last column: the first task's shift ratio at the smallest radius.
    rows[0]["sensitivity"] = {
        "0.2": {"shift_ratio": {"digit": 2.0}}, "0.1": {"shift_ratio": {"digit": 1.104, "color": 0.5}}
    }
    lines = summaries.results_table(rows).splitlines()
    assert lines[0].endswith("| FID | shift ratio ε=0.1 (digit) |")
    assert lines[2].endswith("| 12.44 | 1.10 |") and lines[3].endswith("| - | - |")


def test_time_factor_and_accuracy_round_trip():
    assert run.time_factor({"seconds_per_step": 0.3}, {"seconds_per_step": 0.2}) == pytest.approx(1.5)
    assert run.time_factor({"seconds_per_step": 0.3}, None) is None
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


@pytest.mark.large
def test_run_rows_times_against_the_vae_and_resumes(tmp_path, monkeypatch):
    base = RunConfig(
        arch="mlp", scale="tiny", fid=False, figures=False, verbose=0, epsilons=(0.0, 0.1), jit_compile=False
    ).filled(
        TRAIN_SCALES["tiny"], "mlp"
    )
    rows = [{"label": "VAE", "model": "vae"}, {"label": "AVAE-SS", "model": "avae_ss", "pretrained": "VAE"}]
    models, results = rows_lib.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path)
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

    monkeypatch.setattr(run, "run_one", fail)
    _, resumed = rows_lib.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path, resume=True)
    assert resumed["AVAE-SS"]["accuracy"] == results["AVAE-SS"]["accuracy"]
    with pytest.raises(AssertionError, match="ran again"):  # other settings: the rows run again
        rows_lib.run_rows(rows, base.replace(rho=0.9), _tiny_data(), color_mnist.networks, tmp_path, resume=True)
    # Other evaluation settings only: the finished models are evaluated again, not trained.
    base_pgd = base.replace(attacks="pgd")
    again = rows_lib.run_rows(rows, base_pgd, _tiny_data(), color_mnist.networks, tmp_path, resume=True)[1]
    assert again["VAE"]["config"]["attacks"] == "pgd"
    assert again["VAE"]["train_seconds"] == results["VAE"]["train_seconds"]  # not trained again
    assert again["VAE"]["previous_accuracy"] == results["VAE"]["accuracy"]
    assert {check["name"] for check in again["VAE"]["robustness"]["checks"]} >= {"monotone", "in_ball"}
    stored = json.loads((tmp_path / "VAE" / "metrics.json").read_text())
    assert stored["config"]["attacks"] == "pgd" and "records" in stored["robustness"]


@pytest.mark.large
def test_an_interrupted_row_continues_from_the_backup_of_its_last_epoch(tmp_path, monkeypatch):
    base = RunConfig(
        arch="mlp", scale="tiny", fid=False, figures=False, verbose=0, robustness=False, jit_compile=False
    ).filled(TRAIN_SCALES["tiny"], "mlp")
    rows = [{"label": "VAE", "model": "vae"}]
    folder, save_model = tmp_path / "VAE", files.save_model

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill after the last epoch's backup, while the model is saved

    monkeypatch.setattr(files, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        rows_lib.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path)
    monkeypatch.setattr(files, "save_model", save_model)
    backup = folder / run.BACKUP_FOLDER
    assert backup.is_dir() and not (folder / "metrics.json").exists()
    with pytest.raises(FileExistsError, match=r"interrupted runs of VAE \(backup/\); pass --resume"):
        rows_lib.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path)
    with pytest.raises(ValueError, match=r"Changed: rho 0.975 -> 0.9\."):
        rows_lib.run_rows(rows, base.replace(rho=0.9), _tiny_data(), color_mnist.networks, tmp_path, resume=True)
    assert backup.is_dir()

    _, resumed = rows_lib.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path, resume=True)
    # Every epoch was in the backup: nothing is trained again (no terms), and the timings are those the
    # interrupted process recorded, so the row keeps its steps and its Time column.
    assert resumed["VAE"]["train_terms"] == {}
    assert resumed["VAE"]["train_steps"] == 2 and resumed["VAE"]["seconds_per_step"] > 0
    assert resumed["VAE"]["time_factor"] == 1.0
    assert (folder / "model.keras").is_file() and not backup.exists()
    _, again = rows_lib.run_rows(rows, base, _tiny_data(), color_mnist.networks, tmp_path, overwrite=True)
    assert again["VAE"]["train_steps"] == 2  # from the start: 32 images, batch 16
