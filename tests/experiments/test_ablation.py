"""`keras-avae reproduce ablation` (keras_avae.experiments.ablation) at the tiny scale, on fake MNIST."""

import json
from pathlib import Path

import pytest

from keras_avae import cli
from keras_avae.experiments import ablation, registry
from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments.settings import AblationSettings

NUM_TRAIN, NUM_TEST = 48, 24
ROWS = ["AVAE delusion=sample", "AVAE-SS coupling=joint", "SE_0.1 attack=training"]  # one row per model class


def test_every_row_changes_one_choice_of_its_reference():
    references = {"avae": ablation.PAPER_AVAE, "avae_ss": ablation.PAPER_AVAE, "se": ablation.PAPER_SE}
    for row in ablation.ROWS:
        if row["model"] == "vae":
            continue
        reference = references[row["model"]]
        changed = {name for name in reference if row[name] != reference[name]}
        expected = 2 if row["label"].endswith("coupling=joint delusion=sample") else 1
        is_reference = row["label"] in ("AVAE (Alg. 1)", "AVAE-SS (Alg. 4)", "SE_0.1")
        assert len(changed) == (0 if is_reference else expected), row["label"]
        assert all(value in registry.CHOICE_VALUES[name] for name, value in row.items() if name in registry.CHOICES)


def test_rows_selection_brings_in_the_vae():
    selected = rows_lib.select_rows(ablation.ROWS, AblationSettings(rows="AVAE-SS coupling=joint").rows)
    assert [row["label"] for row in selected] == ["VAE", "AVAE-SS coupling=joint"]
    with pytest.raises(ValueError, match="`rows` must list rows from"):
        AblationSettings(rows="AVAE (Alg. 2)")


@pytest.mark.large
def test_tiny_study_writes_its_table_with_the_choices(tmp_path, write_fake_mnist, capsys):
    data = write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)
    out = tmp_path / "ablation"
    document = cli.run(
        ["reproduce", "ablation", "--scale", "tiny", "--arch", "mlp", "--data", str(data), "--out", str(out),
         "--rows", ",".join(ROWS), "--verbose", "0", "--no-jit-compile"]
    )
    rows = document["architectures"]["mlp"]
    assert [row["label"] for row in rows] == ["VAE", "AVAE delusion=sample", "AVAE-SS coupling=joint",
                                             "SE_0.1 attack=training"]
    by_label = {row["label"]: row for row in rows}
    assert by_label["AVAE delusion=sample"]["choices"] == {**ablation.PAPER_AVAE, "delusion": "sample"}
    assert by_label["AVAE-SS coupling=joint"]["choices"]["coupling"] == "joint"
    assert by_label["SE_0.1 attack=training"]["choices"]["attack_mode"] == "training"
    for row in rows:
        assert [list(accuracies) for accuracies in row["accuracy"].values()] == [["0", "0.05", "0.1", "0.2"]] * 2
        assert set(row["sensitivity"]) == {"0.05", "0.1", "0.2"}
        assert row["test_reconstruction_nll"] > 0 and (Path(row["out"]) / "model.keras").is_file()
    markdown = (out / "ablation.md").read_text()
    assert "| Model | digit ε=0 | digit ε=0.05 |" in markdown
    assert "shift ratio ε=0.05 (digit) | centroid distance (digit) | MSE (0..255 px) | MSE (NLL, v) | Time |" in markdown
    assert "| AVAE delusion=sample | std | factorised | sample | update | - |" in markdown
    assert json.loads((out / "ablation.json").read_text())["config"]["rows"] == [row["label"] for row in rows]
    assert document["config"]["fid"] is False
