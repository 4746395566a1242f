"""Tests for keras_avae/experiments/progress.py."""

import io

from keras_avae.experiments import Progress
from keras_avae.experiments.progress import format_seconds


def test_format_seconds():
    assert format_seconds(12.4) == "12s"
    assert format_seconds(187) == "3m07s"
    assert format_seconds(3720) == "1h02m"


def test_bar_counts_stages_and_gives_an_eta():
    stream = io.StringIO()
    progress = Progress(4, stream=stream)
    progress.start("mlp: VAE")
    assert "[------------------------]  0/4 mlp: VAE (elapsed 0s)" in stream.getvalue()
    progress.done()
    progress.start("mlp: AVAE")
    assert "[######------------------]  1/4 mlp: AVAE" in stream.getvalue() and "ETA" in stream.getvalue()
    progress.done(), progress.done(), progress.done()
    progress.close()
    assert "[########################]  4/4 done in" in stream.getvalue()


def test_verbose_0_prints_nothing():
    stream = io.StringIO()
    progress = Progress(2, verbose=0, stream=stream)
    progress.start("x")
    progress.close()
    assert stream.getvalue() == ""
