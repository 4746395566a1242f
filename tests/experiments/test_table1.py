"""Tests for keras_avae/experiments/table1.py: Table 1's rows, the paper's numbers and table1.md
(the end-to-end run: tests/test_reproduce_table1_example.py)."""

import math

import pytest

from keras_avae.experiments import registry, table1
from keras_avae.experiments import rows as rows_lib


def test_the_rows_are_table_1s_in_its_order():
    assert table1.ROW_LABELS == ("VAE", "SE_0.1", "SE_0.2", "AVAE", "SE_0.1-AVAE", "SE_0.2-AVAE", "AVAE-SS")
    for index, row in enumerate(table1.ROWS):
        assert row["model"] in registry.MODEL_NAMES
        if row["model"] in ("se", "seavae"):
            assert f"_{row['se_epsilon']:g}" in row["label"]  # SE_0.1 trains against radius 0.1
        if row.get("pretrained"):
            assert row["pretrained"] in table1.ROW_LABELS[:index]  # trained before the row that post-trains it


def test_the_papers_numbers_are_table_1_as_printed():
    paper = {row["label"]: row for row in table1.PAPER}
    assert tuple(paper) == table1.ROW_LABELS
    assert paper["VAE"]["time_factor"] == 1.0  # times are relative to the VAE's
    assert paper["AVAE"]["accuracy"]["digit"] == pytest.approx({"0": 0.973, "0.1": 0.881, "0.2": 0.548})
    assert paper["SE_0.2"]["accuracy"]["color"]["0.2"] == pytest.approx(0.999)
    for row in table1.PAPER:
        for by_radius in row["accuracy"].values():
            values = [by_radius[e] for e in ("0", "0.1", "0.2")]
            assert all(0.0 <= value <= 1.0 for value in values)
            assert values == sorted(values, reverse=True), row["label"]  # accuracy falls as the radius grows
        assert row["test_reconstruction_mse"] == row["test_reconstruction_nll"]  # one column, two readings


def test_the_nll_floor_stated_in_table1_md_is_right():
    """D/2 log(2 pi v) at v = 0.5 for 28x28x3 images, the number table1.md states."""
    floor = 28 * 28 * 3 / 2 * math.log(2 * math.pi * 0.5)
    assert f"{floor:.1f}" == "1346.2"
    assert "D/2 log(2 pi v) is 1346.2 for 28x28x3" in table1.markdown(_document())


def _document(fid_extractor=None):
    row = {"label": "VAE", "accuracy": {"digit": {"0": 0.5, "0.1": 0.25}}, "time_factor": 1.0,
           "test_reconstruction_mse": 1400.0, "fid": 10.0}
    return {"scale": {"name": "tiny", "description": "tests only."}, "fid_extractor": fid_extractor,
            "architectures": {"mlp": [row]}, "settings": {"mlp": "Settings of mlp."}, "paper": list(table1.PAPER)}


def test_table1_md():
    text = table1.markdown(_document({"extractor": "a classifier", "generated_images": 4, "real_images": 4}))
    lines = text.splitlines()
    assert lines[0] == "# Table 1 (Cemgil et al., 2020) on ColorMNIST, scale `tiny`"
    assert "## MLP" in lines and "| VAE | 50.0 | 25.0 | ×1.0 | 1400.0 | - | 10.00 |" in lines
    assert "FID extractor: a classifier; 4 samples vs 4 test images." in text
    assert "## The paper's Table 1 (ConvNet), for reference" in lines
    assert "| AVAE | 97.3 | 88.1 | 54.8 | 100.0 | 99.8 | 87.7 | ×1.5 | 1371.9 | 1371.9 | 15.46 |" in lines
    assert "Scale `tiny`: tests only." in lines and "FID extractor" not in table1.markdown(_document())


def test_reproduce_runs_the_selected_rows_and_what_they_post_train(monkeypatch):
    calls = []
    monkeypatch.setattr(rows_lib, "reproduce_rows", lambda settings, rows, *args, **kwargs: calls.append((settings, rows)))
    table1.reproduce({"rows": ["AVAE-SS", "AVAE"], "scale": "tiny"})
    settings, rows = calls[0]
    assert [row["label"] for row in rows] == ["VAE", "AVAE", "AVAE-SS"]  # table order; the VAE AVAE-SS starts from
    assert settings.rows == ("VAE", "AVAE", "AVAE-SS") and settings.scale == "tiny"
    with pytest.raises(ValueError, match=r"`rows`"):
        table1.reproduce({"rows": ["GAN"]})
