"""Tests for examples/celeba.py (`keras-avae reproduce celeba`) where CelebA is absent."""


import pytest
from conftest import load_example

from keras_avae import cli
from keras_avae.datasets.celeba import CELEBA_DIR_ENV_VAR
from keras_avae.experiments import celeba
from keras_avae.experiments.settings import CelebASettings

example = load_example("celeba.py", "celeba_example")


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch):
    monkeypatch.delenv(CELEBA_DIR_ENV_VAR, raising=False)


@pytest.mark.parametrize("make_dir", [False, True], ids=["no folder", "empty folder"])
def test_missing_celeba_fails_with_the_loaders_message(tmp_path, make_dir):
    data_dir = tmp_path / "tensorflow_datasets"
    if make_dir:
        data_dir.mkdir()
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="No prepared CelebA") as error_info:
        example.main(["--data-dir", str(data_dir), "--out", str(out), "--verbose", "0"])
    message = str(error_info.value)
    assert "tfds build celeb_a" in message and CELEBA_DIR_ENV_VAR in message
    assert not out.exists()  # nothing was trained


def test_the_console_script_prints_the_message_and_exits_1(tmp_path, capsys):
    status = cli.main(["reproduce", "celeba", "--data-dir", str(tmp_path / "absent"), "--verbose", "0"])
    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("keras-avae: error: No prepared CelebA")


def test_tables_follow_the_paper():
    assert celeba.ROW_LABELS == ("VAE", "AVAE", "SE^5", "SE^20", "SE^5-AVAE", "AVAE-SS")
    assert len(celeba.PAPER[0]["accuracy"]) == 17
    table = celeba.task_table(list(celeba.PAPER[1:3]), ["Bald", "Smiling"], celeba.EPSILONS)
    lines = table.splitlines()
    assert lines[0] == "| Task | AVAE ε=0 | AVAE ε=0.1 | SE^5 ε=0 | SE^5 ε=0.1 |"
    assert lines[2] == "| Bald | 97.8 | 83.9 | 97.9 | 71.0 |"
    assert lines[3] == "| Smiling | 78.5 | 3.0 | 86.9 | 3.1 |"
    assert lines[4] == "| Time | ×2.2 |  | ×3.1 |  |"


def test_rows_cap_the_training_steps_when_asked():
    config = CelebASettings()
    steps = {row["label"]: row.get("train_attack_steps") for row in celeba.rows_for(config)}
    assert (steps["SE^5"], steps["SE^20"], steps["SE^5-AVAE"]) == (5, 20, 5)
    capped_rows = celeba.rows_for(config.replace(train_attack_steps=1))
    capped = {row["label"]: row.get("train_attack_steps") for row in capped_rows}
    assert (capped["SE^5"], capped["SE^20"]) == (1, 1)
    assert [row["label"] for row in celeba.rows_for(config.replace(rows=["AVAE-SS"]))] == ["VAE", "AVAE-SS"]
