"""Tests for keras_avae/experiments/verdicts.py: a row's verdict against the paper's and the claims."""

import copy

import pytest

from keras_avae.experiments import table1, verdicts
from keras_avae.experiments.verdicts import Claim, Comparison


def _row(label, digit, color=(1.0, 0.9, 0.5), time_factor=1.0):
    epsilons = ("0", "0.1", "0.2")
    return {"label": label, "time_factor": time_factor,
            "accuracy": {"digit": dict(zip(epsilons, digit)), "color": dict(zip(epsilons, color))}}


PAPER = [_row("A", (0.95, 0.10, 0.0)), _row("B", (0.95, 0.80, 0.40), time_factor=2.0), _row("C", (0.95, 0.78, 0.10))]


def _verdict(ours, label):
    return next(entry for entry in verdicts.compare(ours, PAPER)["rows"] if entry["label"] == label)


def test_within_five_points_everywhere_reproduces():
    ours = copy.deepcopy(PAPER)
    ours[1]["accuracy"]["digit"]["0.1"] = 0.80 - verdicts.TOLERANCE  # at the tolerance: still reproduces
    ours[1]["accuracy"]["color"]["0.2"] = 0.5 + 0.04
    assert _verdict(ours, "B") == {"label": "B", "verdict": verdicts.REPRODUCES, "failures": []}


def test_a_far_cell_in_the_papers_order_reproduces_the_ordering():
    ours = copy.deepcopy(PAPER)
    ours[1]["accuracy"]["digit"]["0.1"] = 0.50  # 30 points low, still above A (0.10)
    ours[1]["accuracy"]["digit"]["0.2"] = 0.05  # 35 points low: below C, but the paper has B 30 points above C
    entry = _verdict(ours, "B")
    assert entry["verdict"] == verdicts.DOES_NOT
    assert "digit ε=0.2 not above C (paper: 30.0 points above)" in entry["failures"]
    ours[1]["accuracy"]["digit"]["0.2"] = 0.15  # still above C and A: the order holds
    entry = _verdict(ours, "B")
    assert entry["verdict"] == verdicts.ORDERING
    assert entry["failures"] == ["digit ε=0.1 50.0 (paper 80.0)", "digit ε=0.2 15.0 (paper 40.0)"]


def test_rows_the_paper_puts_within_the_tolerance_may_come_in_either_order():
    ours = copy.deepcopy(PAPER)
    ours[1]["accuracy"]["digit"]["0.1"] = 0.60  # 20 points low and below C, which the paper has 2 points under B
    ours[2]["accuracy"]["digit"]["0.1"] = 0.70
    assert _verdict(ours, "B")["verdict"] == verdicts.ORDERING


def test_a_missing_cell_is_not_evaluated_and_missing_rows_constrain_nothing():
    ours = copy.deepcopy(PAPER[:2])
    del ours[1]["accuracy"]["digit"]["0.2"]
    entry = _verdict(ours, "B")
    assert entry == {"label": "B", "verdict": verdicts.NOT_EVALUATED, "failures": ["no digit ε=0.2"]}
    ours = [copy.deepcopy(PAPER[1])]
    ours[0]["accuracy"]["digit"]["0.2"] = 0.0  # would be below C, but C did not run
    assert _verdict(ours, "B")["verdict"] == verdicts.ORDERING
    assert [entry["label"] for entry in verdicts.compare(ours + [_row("D", (1, 1, 1))], PAPER)["rows"]] == ["B"]


def test_a_claim_holds_when_every_comparison_does():
    claim = Claim("B beats A and costs more", (Comparison("B", "A", ("digit", "0.1")), Comparison("B", "A", "time_factor")))
    ours = copy.deepcopy(PAPER)
    [result] = verdicts.compare(ours, PAPER, [claim])["claims"]
    assert result["holds"] is True and result["holds_in_paper"] is True
    assert result["values"][0]["ours"] == (0.80, 0.10)
    ours[0]["time_factor"] = 3.0
    assert verdicts.compare(ours, PAPER, [claim])["claims"][0]["holds"] is False
    assert verdicts.compare(ours[1:], PAPER, [claim])["claims"][0]["holds"] is None  # A did not run


def test_markdown_shows_ours_beside_the_papers_and_the_claims():
    ours = copy.deepcopy(PAPER)
    ours[1]["accuracy"]["digit"]["0.2"] = 0.05
    claim = Claim("B costs more than A", (Comparison("B", "A", "time_factor"),))
    text = verdicts.markdown(verdicts.compare(ours, PAPER, [claim]), ours, PAPER)
    assert "| B | 95.0 (95.0) | 80.0 (80.0) | 5.0 (40.0) | 100.0 (100.0) | 90.0 (90.0) | 50.0 (50.0) | does not reproduce: " in text
    assert "- B costs more than A: **holds** (B > A at time_factor: 2.00 vs 1.00 (paper 2.00 vs 1.00))." in text


def test_table_1_reproduces_itself_and_its_claims_hold_in_it():
    """The claims are read right off the printed table: each holds in the paper's own numbers."""
    comparison = verdicts.compare(list(table1.PAPER), list(table1.PAPER), table1.CLAIMS)
    assert {entry["verdict"] for entry in comparison["rows"]} == {verdicts.REPRODUCES}
    assert all(claim["holds_in_paper"] and claim["holds"] for claim in comparison["claims"])


def test_table1_md_compares_the_convnet_rows_only():
    ours = copy.deepcopy(list(table1.PAPER))
    ours[3]["accuracy"]["digit"]["0.1"] = 0.75  # the AVAE 13 points low, still above AVAE-SS (72.8), below SE-AVAE
    document = {"architectures": {"conv": ours}, "paper": list(table1.PAPER)}
    text = "\n".join(table1.against_the_paper(document))
    assert "## Against the paper (Convnet)" in text
    assert "| AVAE | 97.3 (97.3) | 75.0 (88.1) |" in text and "| reproduces the ordering |" in text
    ours[3]["accuracy"]["digit"]["0.1"] = 0.70  # below AVAE-SS, which the paper puts 15.3 points under it
    text = "\n".join(table1.against_the_paper(document))
    assert "digit ε=0.1 not above AVAE-SS (paper: 15.3 points above)" in text
    assert "SE-AVAE is above the AVAE at ε = 0.1 (digit): **holds**" in text
    assert table1.against_the_paper({"architectures": {"mlp": ours}, "paper": list(table1.PAPER)}) == []


@pytest.mark.parametrize("cell", [("digit", "0.5"), "fid_missing"])
def test_a_comparison_of_a_cell_a_row_lacks_is_undecided(cell):
    assert Comparison("B", "A", cell).holds({row["label"]: row for row in PAPER}) is None
