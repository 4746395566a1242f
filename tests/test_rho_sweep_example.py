"""Tests for examples/rho_sweep.py (`keras-avae reproduce rho-sweep`) at the tiny scale, on fake MNIST."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from keras_avae.datasets.color_mnist import MNIST_PATH_ENV_VAR
from keras_avae.experiments import rho_sweep

EXAMPLE_PATH = Path(__file__).resolve().parents[1] / "examples" / "rho_sweep.py"
NUM_TRAIN, NUM_TEST = 48, 24


def _load_example():
    spec = importlib.util.spec_from_file_location("rho_sweep_example", EXAMPLE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()


@pytest.fixture(autouse=True)
def _no_env_path(monkeypatch):
    monkeypatch.delenv(MNIST_PATH_ENV_VAR, raising=False)


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, size=(NUM_TRAIN, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, size=NUM_TRAIN, dtype=np.uint8),
        x_test=rng.integers(0, 256, size=(NUM_TEST, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, size=NUM_TEST, dtype=np.uint8),
    )
    return path


def test_tiny_sweep_trains_one_avae_per_rho(fake_mnist, tmp_path):
    out = tmp_path / "sweep"
    document = example.main(
        ["--scale", "tiny", "--arch", "mlp", "--rhos", "0.975,0.5", "--data", str(fake_mnist),
         "--out", str(out), "--verbose", "0", "--no-fid"]
    )
    rows = document["architectures"]["mlp"]
    assert [row["rho"] for row in rows] == [0.5, 0.975]
    for row in rows:
        assert row["fid"] is None
        assert list(row["accuracy"]["digit"]) == ["0", "0.1", "0.2"]
        metrics_path = Path(row["out"]) / "metrics.json"
        assert metrics_path.is_file()
        assert f'"rho": {row["rho"]}' in (Path(row["out"]) / "config.json").read_text()
    assert {path.name for path in (out / "figures").iterdir()} == {
        "mlp_accuracy_vs_rho_digit.png", "mlp_accuracy_vs_rho_color.png",
    }
    markdown = (out / "rho_sweep.md").read_text()
    assert "| AVAE rho=0.5 |" in markdown and "| AVAE rho=0.975 |" in markdown
    assert (out / "rho_sweep.json").is_file()


@pytest.mark.parametrize("rhos", ["", "1", "0.5,abc", [-1.0]])
def test_bad_rhos(rhos):
    with pytest.raises(ValueError, match="`rhos` must be numbers in"):
        rho_sweep.parse_rhos(rhos)
