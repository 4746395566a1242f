"""Tests for examples/rho_sweep.py (`keras-avae reproduce rho-sweep`) at the tiny scale, on fake MNIST."""

from pathlib import Path

import pytest
from conftest import load_example

from keras_avae.experiments import settings

NUM_TRAIN, NUM_TEST = 48, 24


example = load_example("rho_sweep.py", "rho_sweep_example")


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)


def test_tiny_sweep_trains_one_avae_per_rho(fake_mnist, tmp_path):
    out = tmp_path / "sweep"
    document = example.main(
        ["--scale", "tiny", "--arch", "mlp", "--rhos", "0.975,0.5", "--data", str(fake_mnist),
         "--out", str(out), "--verbose", "0", "--no-fid", "--no-jit-compile"]
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
    assert "| shift ratio ε=0.1 (digit) |" in markdown
    assert (out / "rho_sweep.json").is_file()


@pytest.mark.parametrize("rhos", ["", "1", "0.5,abc", [-1.0]])
def test_bad_rhos(rhos):
    with pytest.raises(ValueError, match="`rhos` must be numbers in"):
        settings.RhoSweepSettings(rhos=rhos)
