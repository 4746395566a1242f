"""Tests for keras_avae/cli.py: every subcommand's --help, flags that map onto the library's settings,
the console script, and a tiny `keras-avae train` run."""

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import keras_avae
from keras_avae import cli
from keras_avae.experiments import settings

SUBCOMMANDS = {
    ("train",): settings.TrainSettings,
    ("evaluate",): settings.EvaluateSettings,
    ("reproduce", "table1"): settings.Table1Settings,
    ("reproduce", "ablation"): settings.AblationSettings,
    ("reproduce", "rho-sweep"): settings.RhoSweepSettings,
    ("reproduce", "celeba"): settings.CelebASettings,
    ("reproduce", "learning-curve"): settings.LearningCurveSettings,
    ("reproduce", "compare-curves"): settings.CurveComparisonSettings,
}
NUM_TRAIN, NUM_TEST = 80, 40


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)


def _subparser(path):
    """The argparse parser of a subcommand path such as ("reproduce", "table1")."""
    return cli.build_parsers()[path]


def _flags(parser):
    """A parser's actions; argparse has no public list of them, so this reads `_actions`."""
    return parser._actions


@pytest.mark.parametrize("path", [(), ("reproduce",), *SUBCOMMANDS], ids=lambda p: " ".join(p) or "keras-avae")
def test_help_explains_every_flag(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run([*path, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: keras-avae")
    for action in _flags(_subparser(path)):
        assert action.help, f"{action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in text


@pytest.mark.parametrize("path", list(SUBCOMMANDS), ids=" ".join)
def test_every_flag_is_a_setting_of_the_library_function(path):
    """The CLI holds no settings of its own: each flag is a field of the command's settings class."""
    destinations = {a.dest for a in _flags(_subparser(path)) if a.dest != "help"}
    assert destinations - {"debug"} <= set(SUBCOMMANDS[path].field_names())


def test_scale_flags_document_each_preset(capsys):
    with pytest.raises(SystemExit):
        cli.run(["reproduce", "table1", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--scale {tiny,small,medium,paper}" in text
    assert "mlp 20, conv 3" in text  # the small scale's epochs per architecture
    assert "Appendix F" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model", "gan"],
        ["train", "--scale", "huge"],
        ["train", "--rho", "1"],
        ["reproduce", "table1", "--arch", "resnet"],
        ["reproduce", "table1", "--rows", "VAE,GAN"],
        ["reproduce", "rho-sweep", "--rhos", "0.5,1.5"],
        ["reproduce", "celeba", "--attributes", "Tail"],
    ],
)
def test_bad_flags_exit(argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(argv)
    assert exit_info.value.code == 2


def test_console_script_is_installed():
    (entry_point,) = [
        ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name == "keras-avae"
    ]
    assert entry_point.value == "keras_avae.cli:main"
    script = shutil.which("keras-avae") or str(Path(sys.executable).parent / "keras-avae")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"keras-avae {keras_avae.__version__}"


@pytest.mark.large
def test_train_writes_the_run_directory(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(
        ["train", "--model", "vae", "--scale", "tiny", "--data", str(fake_mnist), "--out", str(out), "--verbose", "0",
         "--no-jit-compile"]
    )
    assert status == 0
    for name in ("model.keras", "config.json", "metrics.json", "summary.md", "fid_extractor.keras"):
        assert (out / name).is_file(), name
    assert list((out / "logs" / "train").iterdir()), "no TensorBoard events"
    assert {path.name for path in (out / "figures").iterdir()} >= {
        "reconstructions.png", "samples.png", "encode_decode_chains.png", "accuracy_vs_epsilon_digit.png",
    }
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["scale"], config["train_size"], config["epochs"]) == ("vae", "tiny", 64, 1)
    assert config["data_path"] == str(fake_mnist)
    assert config["environment"]["keras_avae"] == keras_avae.__version__
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["accuracy"]) == {"digit", "color"}
    assert list(metrics["accuracy"]["digit"]) == ["0", "0.1", "0.2"]
    assert metrics["test_reconstruction_mse"] > 0 and metrics["fid"] >= -1e-6
    assert "ColorMNIST digit x colour classifier" in metrics["fid_extractor"]["extractor"]
    assert metrics["seconds_per_step"] > 0 and metrics["train_steps"] == 4  # 64 images, batch 16
    assert type(keras.models.load_model(out / "model.keras")) is keras_avae.VAE
    printed = capsys.readouterr().out
    assert "| VAE |" in printed and "FID" in printed


def test_missing_data_is_one_line_and_status_1(tmp_path, capsys):
    argv = ["train", "--scale", "tiny", "--data", str(tmp_path / "absent.npz"), "--out", str(tmp_path / "run")]
    status = cli.main(argv)
    assert status == 1
    assert "keras-avae: error: MNIST file not found" in capsys.readouterr().err
