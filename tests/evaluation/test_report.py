"""Tests for keras_avae/evaluation/report.py: the tables and JSON of robustness results."""

import json

import pytest

from keras_avae.evaluation import checks, report
from keras_avae.evaluation.robustness import RobustnessResults

RESULTS = {"digit": {0.0: 0.973, 0.1: 0.881, 0.2: 0.548}, "color": {0.0: 1.0, 0.1: 0.998, 0.2: 0.877}}


def test_markdown_table_in_the_layout_of_table_1():
    assert report.to_markdown(RESULTS, model_name="AVAE") == (
        "| Model | digit ε=0 | digit ε=0.1 | digit ε=0.2 | color ε=0 | color ε=0.1 | color ε=0.2 |\n"
        "|:--|--:|--:|--:|--:|--:|--:|\n"
        "| AVAE | 97.3 | 88.1 | 54.8 | 100.0 | 99.8 | 87.7 |\n"
    )
    vae = {"digit": {0.0: 0.938, 0.1: 0.058}, "color": {0.0: 1.0, 0.1: 0.199}}
    table = report.to_markdown({"VAE": vae, "AVAE": RESULTS})
    assert table.splitlines()[2] == "| VAE | 93.8 | 5.8 | - | 100.0 | 19.9 | - |"
    assert table.splitlines()[3].startswith("| AVAE | 97.3 | 88.1 | 54.8 |")


def test_flagged_results_get_a_checks_column_and_their_problems():
    failed = checks.black_box(30, 40, 100, 0.1, "digit")
    results = RobustnessResults(RESULTS, checks=[checks.monotone({0.0: 1.0}, "digit"), failed])
    assert results.flagged and results.problems == [f"digit: {failed.detail}"]
    text = report.to_markdown(results, model_name="AVAE")
    assert text.splitlines()[0].endswith("| Checks |")
    assert text.splitlines()[2].endswith("| flagged: black_box |")
    assert "Failed checks:" in text and "likely gradient masking" in text
    clean = RobustnessResults(RESULTS, checks=[checks.monotone({0.0: 1.0}, "digit")])
    assert report.to_markdown(clean, model_name="AVAE").splitlines()[2].endswith("| ok |")


def test_extra_columns_and_the_task_layout():
    rows = [{"label": "VAE", "accuracy": {"digit": {"0": 0.9}}, "time": 1.0, "mse": None}]
    columns = [report.Column("Time", lambda r: r["time"], ".1f", "×"), report.Column("MSE", lambda r: r["mse"])]
    assert report.accuracy_table(rows, columns).splitlines()[2] == "| VAE | 90.0 | ×1.0 | - |"
    table = report.task_table(rows, ["digit"], [0.0], [columns[0]])
    assert table.splitlines() == ["| Task | VAE ε=0 |", "|:--|--:|", "| digit | 90.0 |", "| Time | ×1.0 |"]


def test_json_round_trip_with_records_and_merge():
    records = {"digit": {0.0: [None, {"attack": "clean"}], 0.1: [{"attack": "pgd", "epsilon": 0.1}, {"attack": "clean"}]}}
    results = RobustnessResults(
        {"digit": {0.0: 0.5, 0.1: 0.0}}, records=records, checks=[checks.in_ball([], "digit")],
        broken_by={"digit": {0.1: {"pgd": 1, "clean": 1}}},
    )
    text = report.to_json(results, model_name="AVAE", config={"attack_steps": 4})
    document = json.loads(text)
    assert document["accuracy"] == {"digit": {"0": 0.5, "0.1": 0.0}}
    assert document["records"]["digit"]["0.1"][0] == {"attack": "pgd", "epsilon": 0.1}
    assert document["flagged"] is False and document["config"] == {"attack_steps": 4}
    assert report.results_from_json(text) == {"digit": {0.0: 0.5, 0.1: 0.0}}
    other = json.loads(text)
    other["records"]["digit"]["0"] = [{"attack": "square"}, {"attack": "clean"}]
    accuracy, merged = report.merge_records([text, other])
    assert accuracy == {"digit": {"0": 0.0, "0.1": 0.0}}  # the worst case of both runs
    assert merged["digit"]["0"][0] == {"attack": "square"}
    with pytest.raises(ValueError, match="needs documents written by `to_json` from RobustnessResults"):
        report.merge_records([{"accuracy": {}}])
    other["records"]["digit"]["0"] = [None]
    with pytest.raises(ValueError, match="differ in length"):
        report.merge_records([text, other])


def test_bad_results_are_refused():
    with pytest.raises(ValueError, match=r"`results` must be a non-empty dict"):
        report.to_markdown({})
    with pytest.raises(ValueError, match=r"`results` must be a dict task -> \{epsilon: accuracy\}"):
        report.to_markdown({"digit": {0.1: "high"}})
    with pytest.raises(ValueError, match="`model_name` names a single model's results"):
        report.to_markdown({"VAE": RESULTS}, model_name="x")


def test_what_the_later_attacks_took_beyond_pgd():
    document = {
        "records": {"digit": {"0.1": [None, {"attack": "pgd"}, {"attack": "square"}, {"attack": "apgd_ce"}]}},
        "broken_by": {"digit": {"0.1": {"pgd": 1, "square": 1, "apgd_ce": 1}}},
    }
    assert report.beyond_pgd(document, "digit", "0.1") == 50.0
    assert report.beyond_pgd(document, "digit", "0.2") is None
    assert report.beyond_pgd(None, "digit", "0.1") is None
