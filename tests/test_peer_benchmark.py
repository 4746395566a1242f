"""Tests for benchmarks/peer.py, without JAX: the rotation of the cycles, the rows and the table."""

import pytest

from conftest import load_benchmark


peer = load_benchmark("peer")


class _Fixed:
    def __init__(self, rate, log, name):
        self.rate, self.log, self.name = rate, log, name

    def run(self, steps):
        self.log.append(self.name)
        return self.rate


def test_every_cycle_runs_every_runner_in_a_rotated_order():
    log = []
    names = ["authors_vae", "keras_vae", "authors_avae", "keras_avae_theirs", "keras_avae_default"]
    runners = {name: _Fixed(10.0 * (index + 1), log, name) for index, name in enumerate(names)}
    rates = peer.measure(runners, steps=5, cycles=3, report=lambda line: None)
    assert log[:5] == names and log[5:10] == names[1:] + names[:1] and log[10:] == names[2:] + names[:2]
    assert all(len(values) == 3 for values in rates.values())
    markdown = peer.table(rates)
    # keras_vae 20 / authors_vae 10; the two AVAE rows share the authors' AVAE (30).
    assert "| VAE | 10.0 | 20.0 | 2.00 | 2.00, 2.00, 2.00 |" in markdown
    assert "| AVAE (theirs) | 30.0 | 40.0 | 1.33 |" in markdown
    assert "| AVAE (default) | 30.0 | 50.0 | 1.67 |" in markdown


def test_rows_are_chosen_on_the_command_line():
    args = peer.parse_args(["--code-dir", "x", "--rows", "avae_default,vae"])
    assert args.keras_runners == ["keras_vae", "keras_avae_default"]
    with pytest.raises(SystemExit):
        peer.parse_args(["--code-dir", "x", "--rows", "seavae"])


def test_the_library_runs_at_its_defaults():
    """The like-for-like AVAE takes the authors' choices; the other rows the library's defaults."""
    import keras_avae
    from conftest import tiny_networks

    args = peer.parse_args(["--code-dir", "x"])
    theirs = peer.KERAS_MODELS["keras_avae_theirs"](tiny_networks(), args)
    default = peer.KERAS_MODELS["keras_avae_default"](tiny_networks(), args)
    assert (theirs.delusion, theirs.posterior_sampling) == ("mean", "variance")
    fresh = keras_avae.AVAE(*tiny_networks())
    assert (default.delusion, default.posterior_sampling) == (fresh.delusion, fresh.posterior_sampling)
