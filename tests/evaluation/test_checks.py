"""Tests for keras_avae/evaluation/checks.py: each check passes on sound numbers and fails on the pattern it is for."""

import pytest

from keras_avae.evaluation import checks


def test_monotone():
    assert checks.monotone({0.0: 0.9, 0.1: 0.5, 0.2: 0.1}, "digit").passed
    assert checks.monotone({0.0: 0.9, 0.1: 0.5, 0.2: 0.51}, "digit").passed  # within the tolerance
    failed = checks.monotone({0.0: 0.9, 0.1: 0.5, 0.2: 0.6}, "digit")
    assert not failed.passed and failed.task == "digit"
    assert "0.600 at epsilon=0.2 > 0.500 at 0.1" in failed.detail


def test_black_box():
    assert checks.black_box(1, 1, 100, 0.1, "t").passed  # one of one survivor is 1% of all
    assert checks.black_box(0, 0, 100, 0.1, "t").passed  # nothing left to break
    failed = checks.black_box(30, 40, 100, 0.1, "t")
    assert not failed.passed and "broke 30 of the 40 examples every white-box attack left robust (30.0% of 100)" in failed.detail
    assert "likely gradient masking" in failed.detail


def test_more_effort():
    assert checks.more_effort(0.50, 0.49, 100, 0.1, "t").passed
    failed = checks.more_effort(0.50, 0.40, 100, 0.1, "t")
    assert not failed.passed and "from 0.500 to 0.400: the attack has not converged" in failed.detail


def test_huge_epsilon():
    assert checks.huge_epsilon(0.10, 0.11, 1.0, "t").passed
    failed = checks.huge_epsilon(0.9, 0.11, 1.0, "t")
    assert not failed.passed and "accuracy is 0.900 > chance 0.110" in failed.detail


@pytest.mark.parametrize("violations, passed", [([], True), (["square returned inputs 0.2 outside"], False)])
def test_in_ball(violations, passed):
    assert checks.in_ball(violations, "t").passed is passed


def test_records_are_json_ready():
    record = checks.monotone({0.0: 1.0}, "t").record()
    assert record == {"name": "monotone", "passed": True, "detail": "accuracy never rises with epsilon", "task": "t"}
