"""Tests for examples/reproduce_table1.py (`keras-avae reproduce table1`) at the tiny scale, on fake MNIST."""

import json
from pathlib import Path

import pytest
from conftest import load_example

from keras_avae.experiments import table1
from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments.settings import Table1Settings

NUM_TRAIN, NUM_TEST = 48, 24


example = load_example("reproduce_table1.py", "reproduce_table1")


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)


@pytest.mark.large
def test_tiny_table_has_the_seven_rows(fake_mnist, tmp_path, capsys):
    out = tmp_path / "table1"
    document = example.main(
        ["--scale", "tiny", "--arch", "mlp", "--data", str(fake_mnist), "--out", str(out), "--verbose", "0",
         "--epochs", "1", "--attack-steps", "1", "--restarts", "1", "--no-jit-compile", "--attacks", "pgd,square",
         "--no-checks"]  # the table is under test here; the ensemble and its checks in tests/evaluation
    )
    rows = document["architectures"]["mlp"]
    assert [row["label"] for row in rows] == list(table1.ROW_LABELS)
    assert document["config"]["train_attack_steps"] is None  # left to the scale: 1 at tiny
    for row in rows:
        assert list(row["accuracy"]) == ["digit", "color"]
        for accuracies in row["accuracy"].values():
            assert list(accuracies) == ["0", "0.1", "0.2"]
            assert 0 <= accuracies["0.2"] <= accuracies["0.1"] <= accuracies["0"] <= 1
        assert row["time_factor"] > 0 and row["test_reconstruction_mse"] > 0 and row["fid"] is not None
        assert (Path(row["out"]) / "model.keras").is_file() and (Path(row["out"]) / "metrics.json").is_file()
    by_label = {row["label"]: row for row in rows}
    assert by_label["VAE"]["time_factor"] == 1.0
    assert (by_label["SE_0.2"]["se_epsilon"], by_label["SE_0.2"]["train_attack_steps"]) == (0.2, 1)
    # AVAE-SS keeps the VAE's decoder, and FID samples every model at the same latents.
    assert by_label["AVAE-SS"]["fid"] == pytest.approx(by_label["VAE"]["fid"], rel=1e-4, abs=1e-4)

    markdown = (out / "table1.md").read_text()
    assert markdown == document["markdown"]
    table, choices = markdown.split("## MLP")[1].split("##")[0].split("Choices of each row:")
    assert sum(line.startswith("| ") and not line.startswith("| Model") for line in table.splitlines()) == 7
    assert sum(line.startswith("| ") and not line.startswith("| Model") for line in choices.splitlines()) == 7
    header = (
        "| Model | digit ε=0 | digit ε=0.1 | digit ε=0.2 | color ε=0 | color ε=0.1 | color ε=0.2 | Time "
        "| MSE (0..255 px) | MSE (NLL) | FID |"
    )
    assert header + " shift ratio ε=0.1 (digit) |" in table  # our rows: with representation sensitivity
    assert header + "\n" in markdown  # the paper's rows: without
    assert all(set(row["sensitivity"]) == {"0.1", "0.2"} for row in rows)
    assert "FID extractor: a ColorMNIST digit x colour classifier trained here" in markdown
    # The paper's row, its one MSE column under both readings.
    assert "| AVAE | 97.3 | 88.1 | 54.8 | 100.0 | 99.8 | 87.7 | ×1.5 | 1371.9 | 1371.9 | 15.46 |" in markdown
    # Our rows: the NLL reading sits above its floor D/2 log(2 pi v) = 1346.2 (28 x 28 x 3, v = 0.5).
    assert all(row["test_reconstruction_nll"] > 1346.2 for row in rows)
    assert by_label["AVAE"]["choices"] == {
        "posterior_sampling": "std", "coupling": "factorised", "delusion": "sample", "extra_pass_statistics": "update"
    }
    assert "| AVAE | std | factorised | sample | update | - |" in choices
    saved = json.loads((out / "table1.json").read_text())
    assert [row["label"] for row in saved["architectures"]["mlp"]] == list(table1.ROW_LABELS)
    assert (out / "fid_extractor.keras").is_file()
    figures = {path.name for path in (out / "figures").iterdir()}
    assert figures == {
        "mlp_accuracy_vs_epsilon_digit.png", "mlp_accuracy_vs_epsilon_color.png", "mlp_encode_decode_chains.png",
    }
    assert "| SE_0.1-AVAE |" in capsys.readouterr().out


def test_rows_selection_brings_in_the_vae():
    def selected(labels):
        return [row["label"] for row in rows_lib.select_rows(table1.ROWS, Table1Settings(rows=labels).rows)]

    assert selected("AVAE-SS") == ["VAE", "AVAE-SS"]
    assert selected(["AVAE", "SE_0.1"]) == ["SE_0.1", "AVAE"]
    with pytest.raises(ValueError, match="`rows` must list rows from"):
        selected("VAE,GAN")
