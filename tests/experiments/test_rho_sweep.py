"""Tests for keras_avae/experiments/rho_sweep.py: one AVAE row per rho, its summary, figures and markdown
(the end-to-end run: tests/test_rho_sweep_example.py)."""

import os

import pytest

from keras_avae.experiments import rho_sweep
from keras_avae.experiments import rows as rows_lib


def test_reproduce_makes_one_avae_row_per_rho_sorted(monkeypatch):
    calls = []
    monkeypatch.setattr(rows_lib, "reproduce_rows", lambda settings, rows, *args, **kwargs: calls.append((settings, rows, kwargs)))
    rho_sweep.reproduce({"rhos": "0.9,0.5,0.9", "scale": "tiny"})
    settings, rows, kwargs = calls[0]
    assert rows == [{"label": "AVAE rho=0.5", "model": "avae", "rho": 0.5}, {"label": "AVAE rho=0.9", "model": "avae", "rho": 0.9}]
    assert kwargs["summarize"] is rho_sweep.row_summary and kwargs["figure"] == "Figure 5, left (Cemgil et al., 2020)"
    with pytest.raises(ValueError, match=r"`rhos` must be numbers in \(-1, 1\)"):
        rho_sweep.reproduce({"rhos": "0.5,1.0"})


def test_row_label_and_summary():
    assert rho_sweep.row_label(0.975) == "AVAE rho=0.975" and rho_sweep.row_label(0.5) == "AVAE rho=0.5"
    metrics = {"config": {"rho": 0.9}, "label": "AVAE rho=0.9", "accuracy": {"digit": {"0": 1.0}}, "fid": 2.0,
               "train_steps": 5}
    summary = rho_sweep.row_summary(metrics)
    assert summary["rho"] == 0.9 and summary["label"] == "AVAE rho=0.9" and summary["fid"] == 2.0
    assert set(summary) == {"rho", "label", *rho_sweep.SWEEP_KEYS}
    assert summary["test_reconstruction_mse"] is None and "train_steps" not in summary


def _rows():
    return [
        {"rho": 0.5, "label": "AVAE rho=0.5", "accuracy": {"digit": {"0": 0.9, "0.1": 0.2}, "color": {"0": 1.0, "0.1": 0.5}}},
        {"rho": 0.9, "label": "AVAE rho=0.9", "accuracy": {"digit": {"0": 0.95, "0.1": 0.6}, "color": {"0": 1.0, "0.1": 0.9}}},
    ]


def test_sweep_figures_one_per_task(tmp_path):
    paths = rho_sweep.sweep_figures(tmp_path, "mlp", _rows(), (0.0, 0.1))
    assert set(paths) == {"accuracy_vs_rho_digit", "accuracy_vs_rho_color"}
    assert sorted(os.listdir(tmp_path)) == ["mlp_accuracy_vs_rho_color.png", "mlp_accuracy_vs_rho_digit.png"]


def test_rho_sweep_md():
    document = {"scale": {"name": "tiny", "description": "tests only."}, "fid_extractor": {"extractor": "a classifier"},
                "architectures": {"mlp": _rows()}, "settings": {"mlp": "Settings."}}
    lines = rho_sweep.markdown(document).splitlines()
    assert lines[0] == "# Adversarial accuracy of the AVAE against rho (Figure 5, left), ColorMNIST, scale `tiny`"
    assert lines[2].endswith("FID of decoder samples against test images (extractor: a classifier).")
    assert "| AVAE rho=0.9 | 95.0 | 60.0 | 100.0 | 90.0 | - | - | - | - |" in lines
    assert "Scale `tiny`: tests only." in lines
