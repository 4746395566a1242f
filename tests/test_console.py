"""Tests for keras_avae/console.py: TensorFlow's C++ log off, warnings one line each, and a
`keras-avae train` whose stderr holds none of TensorFlow's start-up lines."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from keras_avae import console

REPO = Path(__file__).resolve().parents[1]

NATIVE_LOG_MARKERS = ("cuInit", "oneDNN", "TF_ENABLE_ONEDNN_OPTS", "computation placer", "absl::InitializeLog")
NATIVE_LOG_PREFIXES = ("E0000", "W0000", "I0000")
NUM_TRAIN, NUM_TEST = 80, 40
TRAIN_TIMEOUT_S = 300


def test_format_warning_is_one_line_with_its_category():
    text = console.format_warning("a set of 3 images\n  is small", UserWarning, "/x/y.py", 12, "source line")
    assert text == "keras-avae: warning: a set of 3 images is small (UserWarning)\n"


def test_quiet_sets_the_level_and_the_warning_format_then_restores_them(monkeypatch):
    monkeypatch.delenv(console.TF_LOG_LEVEL_VARIABLE, raising=False)
    before_format = warnings.formatwarning
    before_level = logging.getLogger("tensorflow").level
    with console.quiet() as level_set_here:
        assert level_set_here
        assert os.environ[console.TF_LOG_LEVEL_VARIABLE] == console.QUIET_TF_LOG_LEVEL
        assert warnings.formatwarning is console.format_warning
        assert all(logging.getLogger(name).level == logging.ERROR for name in console.PYTHON_LOGGERS)
    assert console.TF_LOG_LEVEL_VARIABLE not in os.environ
    assert warnings.formatwarning is before_format
    assert logging.getLogger("tensorflow").level == before_level


def test_quiet_keeps_the_users_level(monkeypatch):
    monkeypatch.setenv(console.TF_LOG_LEVEL_VARIABLE, "0")
    with console.quiet() as level_set_here:
        assert not level_set_here
        assert os.environ[console.TF_LOG_LEVEL_VARIABLE] == "0"
    assert os.environ[console.TF_LOG_LEVEL_VARIABLE] == "0"


def test_debug_changes_nothing(monkeypatch):
    monkeypatch.delenv(console.TF_LOG_LEVEL_VARIABLE, raising=False)
    before_format = warnings.formatwarning
    with console.quiet(active=False) as level_set_here:
        assert not level_set_here
        assert console.TF_LOG_LEVEL_VARIABLE not in os.environ
        assert warnings.formatwarning is before_format


def test_native_log_filtered_drops_tensorflows_lines_only(capfd, monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # else the block holds nothing back
    with console.native_log_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1796427131.092390    4679 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1796427136.507973    4679 cuda_platform.cc:52] failed call to cuInit\n")
        os.write(2, b"a line of the program\n")
    assert capfd.readouterr().err == "a line of the program\n"


def test_native_log_filtered_passes_the_held_lines_on_when_the_block_raises(capfd, monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    with pytest.raises(ImportError, match="no such module"):
        with console.native_log_filtered():
            os.write(2, b"what went wrong first\n")
            raise ImportError("no such module")
    assert capfd.readouterr().err == "what went wrong first\n"


def test_train_prints_no_tensorflow_log_lines(tmp_path, write_fake_mnist):
    mnist = write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)
    env = {key: value for key, value in os.environ.items() if key != console.TF_LOG_LEVEL_VARIABLE}
    env["PYTHONPATH"] = str(REPO)
    argv = [
        sys.executable, "-m", "keras_avae.cli", "train", "--model", "vae", "--scale", "tiny", "--data", str(mnist),
        "--out", str(tmp_path / "run"), "--no-fid", "--no-robustness", "--no-figures", "--verbose", "0",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=TRAIN_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    for line in result.stderr.splitlines():
        assert not line.startswith(NATIVE_LOG_PREFIXES), line
        assert not any(marker in line for marker in NATIVE_LOG_MARKERS), line
        assert line.startswith("keras-avae: "), line
    assert (tmp_path / "run" / "model.keras").is_file()
