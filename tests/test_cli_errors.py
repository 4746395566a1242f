"""Tests for keras_avae/cli.py's handling of bad input and of run directories (issue "no silent bad
input, no lost file"): one-line errors and --debug, locks, --overwrite, `train --resume` after a kill,
and `--help` without TensorFlow."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import _write_fake_mnist

from keras_avae import cli, files

REPO = Path(__file__).resolve().parents[1]
TRAIN_ONLY = ["--no-fid", "--no-figures", "--no-robustness", "--verbose", "0"]
# XLA is incidental in these tests and its compile costs more than their fits; the kill-and-resume
# test keeps the default (XLA on an MLP), so exact resume is tested under XLA.
FAST = [*TRAIN_ONLY, "--no-jit-compile"]


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", 80, 40)


def _tiny_train(data, out, *extra):
    return ["train", "--model", "vae", "--scale", "tiny", "--data", str(data), "--out", str(out), *FAST, *extra]


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------ one-line errors


def test_corrupt_data_file_is_one_line_and_status_1(tmp_path, capsys):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"not a zip archive at all")
    assert cli.main(_tiny_train(bad, tmp_path / "run")) == 1
    line = _error_line(capsys)
    assert line.startswith("keras-avae: error: ") and "mnist.npz" in line


def test_corrupt_model_file_is_one_line_and_status_1(tmp_path, fake_mnist, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04 truncated")
    assert cli.main(["evaluate", str(model), "--data", str(fake_mnist), "--out", str(tmp_path / "e")]) == 1
    line = _error_line(capsys)
    assert line.startswith("keras-avae: error: ") and "not a valid .keras archive" in line


def _model_archive(path, weights_bytes=None, class_name=None):
    """A small saved `.keras`; with its weights member cut to `weights_bytes`, or its class renamed."""
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    files.save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if weights_bytes is not None:
        members["model.weights.h5"] = members["model.weights.h5"][:weights_bytes]
    if class_name is not None:
        config = json.loads(members["config.json"])
        config.update(class_name=class_name, module="nowhere", registered_name=None)
        members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"class_name": "NoSuchModel"}, "config.json names an unknown class 'NoSuchModel'"),
        ({"weights_bytes": 1000}, "corrupt weights member model.weights.h5"),
    ],
    ids=["unknown-class", "truncated-weights-member"],
)
def test_a_broken_model_archive_is_one_line_naming_file_and_problem(tmp_path, capsys, broken, message):
    """Red team (issue 23, item 5): an unknown class printed a traceback (TypeError), a cut weights member a
    bare h5py OSError."""
    model = _model_archive(tmp_path / "model.keras", **broken)
    before = model.read_bytes()
    assert cli.main(["evaluate", str(model), "--out", str(tmp_path / "e")]) == 1
    line = _error_line(capsys)
    assert line.startswith("keras-avae: error: ") and message in line and str(model) in line
    assert model.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["model.keras"]


def _saved_module(path, outputs, side=28):
    """A standard TF SavedModel (a `tf.Module`, not Keras) mapping `side` x `side` colour images (ColorMNIST's:
    28) to 4 features."""
    import tensorflow as tf

    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(np.random.default_rng(0).normal(size=(side * side * 3, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((None, side, side, 3), tf.float32, name="images")])
        def __call__(self, images):
            features = tf.reshape(images, [-1, side * side * 3]) @ self.kernel
            return {name: features for name in outputs}

    module = Linear()
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def test_evaluate_encoder_takes_a_standard_saved_model(tmp_path, fake_mnist, capsys):
    """Red team (issue 23, item 4): its keyword signature was called positionally; four tracebacks."""
    encoder = _saved_module(tmp_path / "module", ["features"])
    out = tmp_path / "e"
    argv = ["evaluate", "--encoder", str(encoder), "--data", str(fake_mnist), "--out", str(out), "--attacks", "pgd",
            "--epsilons", "0,0.1", "--attack-steps", "2", "--restarts", "1", "--losses", "margin", "--no-checks",
            "--verbose", "0"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    accuracy = json.loads((out / "metrics.json").read_text())["accuracy"]
    assert set(accuracy) == {"digit", "color"} and all(set(by_radius) == {"0", "0.1"} for by_radius in accuracy.values())


@pytest.mark.parametrize(
    "outputs, side, message",
    [
        (["mean", "log_var"], 28, "returns 2 outputs (log_var, mean); the evaluation needs one"),
        (["features"], 32, "takes inputs of shape (None, 32, 32, 3); received (2, 28, 28, 3)"),
    ],
    ids=["several-outputs", "other-image-size"],
)
def test_evaluate_encoder_that_cannot_be_used_is_one_line(tmp_path, fake_mnist, capsys, outputs, side, message):
    encoder = _saved_module(tmp_path / "module", outputs, side)
    listing = sorted(os.listdir(tmp_path))
    argv = ["evaluate", "--encoder", str(encoder), "--data", str(fake_mnist), "--out", str(tmp_path / "e")]
    assert cli.main(argv) == 1
    line = _error_line(capsys)
    assert line.startswith("keras-avae: error: ") and message in line
    assert sorted(os.listdir(tmp_path)) == listing  # no run directory left behind


def test_a_missing_model_file_is_one_line(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "absent.keras"), "--out", str(tmp_path / "e")]) == 1
    assert _error_line(capsys).startswith("keras-avae: error: ")


def test_a_bad_setting_from_the_library_is_one_line(capsys):
    assert cli.main(["evaluate"]) == 1  # neither MODEL nor --encoder: the library's ValueError
    assert _error_line(capsys).startswith("keras-avae: error: Give exactly one of `model_path`")


@pytest.mark.parametrize("position", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, position):
    argv = ["train", "--scale", "tiny", "--data", str(tmp_path / "absent.npz"), "--out", str(tmp_path / "run")]
    argv = ["--debug", *argv] if position == "before" else [*argv, "--debug"]
    with pytest.raises(FileNotFoundError, match="MNIST file not found"):
        cli.main(argv)


def test_every_subcommand_accepts_debug():
    for argv in (["evaluate", "m.keras"], ["reproduce", "table1"], ["reproduce", "ablation"],
                 ["reproduce", "rho-sweep"], ["reproduce", "celeba"]):
        assert cli.build_parser().parse_args([*argv, "--debug"]).debug is True
        assert cli.build_parser().parse_args(argv).debug is False


def test_negative_seed_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["train", "--seed", "-5"])
    assert exit_info.value.code == 2
    assert "argument --seed: `seed` must be an integer >= 0. Received: seed=-5" in capsys.readouterr().err


def test_config_records_the_images_used_not_the_request(tmp_path, fake_mnist):
    out = tmp_path / "run"
    assert cli.main(_tiny_train(fake_mnist, out, "--train-size", "99999999", "--test-size", "99999")) == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert (config["train_size"], config["test_size"]) == (80, 40)
    assert (metrics["config"]["train_size"], metrics["num_train"]) == (80, 80)


# ------------------------------------------------------------ run directories


def test_a_run_directory_in_use_is_refused(tmp_path, fake_mnist, capsys):
    out = tmp_path / "run"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / files.LOCK_NAME).write_text(f"{other.pid}\n")
        assert cli.main(_tiny_train(fake_mnist, out)) == 1
        line = _error_line(capsys)
        assert f"is in use by process {other.pid}" in line
        assert not (out / "metrics.json").exists()
    finally:
        other.kill()
        other.wait()


def test_an_out_that_names_a_file_is_one_line_and_the_file_stays(tmp_path, fake_mnist, capsys):
    """Red team (issue 23, item 6): `--out` naming a file said only "[Errno 17] File exists"."""
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert cli.main(_tiny_train(fake_mnist, out)) == 1
    assert _error_line(capsys) == f"keras-avae: error: The output folder {out} is a file, not a folder; choose another --out (or `out`)."
    assert out.read_text() == "mine" and not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_a_stale_lock_is_taken_over_and_removed_at_the_end(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / files.LOCK_NAME).write_text(f"{dead.pid}\n")
    with files.locked(folder) as path:
        assert Path(path).read_text().strip() == str(os.getpid())
        with pytest.raises(FileExistsError, match="in use by process"):
            with files.locked(folder):
                pass
    assert not (folder / files.LOCK_NAME).exists()


def test_the_lock_is_removed_on_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        with files.locked(tmp_path / "run"):
            raise RuntimeError("boom")
    assert not (tmp_path / "run" / files.LOCK_NAME).exists()


def test_a_finished_run_is_not_overwritten_without_overwrite(tmp_path, fake_mnist, capsys):
    out = tmp_path / "run"
    assert cli.main(_tiny_train(fake_mnist, out)) == 0
    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert cli.main(_tiny_train(fake_mnist, out, "--seed", "1")) == 1
    assert "already holds a finished run (metrics.json); pass --overwrite" in _error_line(capsys)
    assert (out / "metrics.json").read_bytes() == before
    assert not (out / files.LOCK_NAME).exists()
    assert cli.main(_tiny_train(fake_mnist, out, "--seed", "1", "--overwrite")) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1


def test_reproduce_refuses_finished_rows_without_resume_or_overwrite(tmp_path, fake_mnist, capsys):
    out = tmp_path / "table"
    (out / "mlp" / "VAE").mkdir(parents=True)
    (out / "mlp" / "VAE" / "metrics.json").write_text("{}")
    (out / "mlp" / "AVAE" / "backup").mkdir(parents=True)  # a row killed while it trained
    argv = ["reproduce", "table1", "--scale", "tiny", "--arch", "mlp", "--rows", "VAE,AVAE", "--data", str(fake_mnist),
            "--out", str(out), "--no-fid", "--no-figures", "--verbose", "0"]
    assert cli.main(argv) == 1
    assert (
        "already holds finished runs of VAE and interrupted runs of AVAE (backup/); pass --resume to reuse and "
        "continue them or --overwrite"
    ) in _error_line(capsys)
    assert (out / "mlp" / "VAE" / "metrics.json").read_text() == "{}" and (out / "mlp" / "AVAE" / "backup").is_dir()


def test_evaluate_refuses_an_earlier_evaluation_without_overwrite(tmp_path, capsys):
    out = tmp_path / "evaluation"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    assert cli.main(["evaluate", str(tmp_path / "model.keras"), "--out", str(out)]) == 1
    assert "pass --overwrite" in _error_line(capsys)


# ------------------------------------------------------------ train --resume

_STALL_AFTER_FIRST_EPOCH = """
import sys, time
import keras
from keras_avae.experiments import run

class Stall(keras.callbacks.Callback):  # runs after the backup callback: epoch 1 is backed up
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(600)

train_model = run.train_model
run.train_model = lambda *args, callbacks=(), **kwargs: train_model(*args, callbacks=[*callbacks, Stall()], **kwargs)
from keras_avae.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _weights(path):
    return [np.asarray(w) for w in files.load_model(path).weights]


@pytest.mark.large
def test_train_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, fake_mnist, capsys):
    argv = ["train", "--model", "avae", "--scale", "tiny", "--epochs", "4", "--data", str(fake_mnist), *TRAIN_ONLY]
    killed = tmp_path / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", _STALL_AFTER_FIRST_EPOCH, *argv, "--out", str(killed)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    metadata = killed / "backup" / "training_metadata.json"
    try:
        deadline = time.monotonic() + 240
        while not metadata.is_file():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no backup after 240 s"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert json.loads(metadata.read_text())["epoch"] == 1
    assert (killed / files.LOCK_NAME).exists() and not (killed / "model.keras").exists()

    assert cli.main([*argv, "--out", str(killed)]) == 1  # without --resume: refused, backup kept
    assert "interrupted run (backup/); pass --resume" in capsys.readouterr().err
    assert cli.main([*argv, "--out", str(killed), "--resume"]) == 0  # takes over the dead process's lock
    assert not (killed / "backup").exists() and not (killed / files.LOCK_NAME).exists()

    whole = tmp_path / "whole"
    assert cli.main([*argv, "--out", str(whole)]) == 0
    resumed, uninterrupted = _weights(killed / "model.keras"), _weights(whole / "model.keras")
    assert len(resumed) == len(uninterrupted)
    for a, b in zip(resumed, uninterrupted):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (killed, whole)]
    # The resumed run's timings cover epoch 1 too, from the killed process's record in backup/.
    assert (metrics[0]["train_steps"], metrics[1]["train_steps"]) == (16, 16)
    terms = [document["train_terms"] for document in metrics]
    assert terms[0].keys() == terms[1].keys()
    for name in terms[1]:
        assert terms[0][name] == pytest.approx(terms[1][name], rel=1e-5, abs=1e-6), name


_KILLED_IN_THE_FINAL_SAVE = """
import os, signal, sys
from pathlib import Path
from keras_avae import files

save_model = files.save_model

def killed_mid_write(model, path, *args, **kwargs):  # kill -9 while model.keras is being written
    if Path(path).name == "model.keras":
        with files._replacing(path, suffix=".keras"):  # the hidden temporary file, still empty
            os.kill(os.getpid(), signal.SIGKILL)
    return save_model(model, path, *args, **kwargs)

files.save_model = killed_mid_write
from keras_avae.cli import main
sys.exit(main(sys.argv[1:]))
"""

_RESUMABLE = ["train", "--model", "avae", "--scale", "tiny", "--epochs", "2", *FAST]


@pytest.fixture(scope="module")
def killed_in_the_final_save(tmp_path_factory):
    """A run directory of `_RESUMABLE` as a `kill -9` during the final write of model.keras leaves it."""
    root = tmp_path_factory.mktemp("killed")
    data = _write_fake_mnist(root / "mnist.npz", 80, 40)
    out = root / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_THE_FINAL_SAVE, *_RESUMABLE, "--data", str(data), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    return data, out


def _tree(folder):
    """Every file under `folder`: relative path -> bytes."""
    return {
        os.path.relpath(os.path.join(root, name), folder): Path(root, name).read_bytes()
        for root, _, names in os.walk(folder) for name in names
    }


def _copy_of(run, tmp_path):
    import shutil

    return Path(shutil.copytree(run, tmp_path / "run"))


def test_a_kill_during_the_final_save_keeps_the_backup_and_resume_finishes(killed_in_the_final_save, tmp_path, capsys):
    """Red team (issue 23, item 1): the backup was deleted before model.keras was written, so a kill then lost
    every epoch, and the empty temporary file stayed for good."""
    data, killed = killed_in_the_final_save
    out = _copy_of(killed, tmp_path)
    temporaries = [name for name in os.listdir(out) if name.startswith(".model.keras.") and name.endswith(".keras")]
    assert len(temporaries) == 1 and (out / temporaries[0]).stat().st_size == 0
    assert (out / files.LOCK_NAME).exists() and not (out / "model.keras").exists()
    assert json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"] == 2  # every epoch kept
    assert json.loads((out / "backup" / "config.json").read_text())["rho"] == 0.975  # the settings it began with

    assert cli.main([*_RESUMABLE, "--data", str(data), "--out", str(out), "--resume"]) == 0
    capsys.readouterr()
    assert sorted(os.listdir(out)) == ["config.json", "logs", "metrics.json", "model.keras", "summary.md"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_terms"] == {}  # finished from the backup of the last epoch: nothing trained again
    assert metrics["train_steps"] == 8 and metrics["seconds_per_step"] > 0  # the killed process's timings
    assert metrics["config"]["epochs"] == 2 and np.isfinite(metrics["test_reconstruction_mse"])
    assert len(files.load_model(out / "model.keras").weights) > 0


@pytest.mark.parametrize(
    "changes, named",
    [
        (["--rho", "0.5"], "Changed: rho 0.975 -> 0.5."),
        (["--rho", "0.5", "--epochs", "3"], "Changed: epochs 2 -> 3, rho 0.975 -> 0.5."),
    ],
    ids=["rho", "rho-and-epochs"],
)
def test_resume_with_changed_settings_is_refused_naming_them(killed_in_the_final_save, tmp_path, capsys, changes, named):
    """Red team (issue 23, item 2): `--resume --rho 0.5` on a run begun with 0.975 trained the rest with 0.5."""
    data, killed = killed_in_the_final_save
    out = _copy_of(killed, tmp_path)
    (out / files.LOCK_NAME).unlink()  # a lock of a dead process is taken over anyway; keep the tree comparable
    before = _tree(out)
    argv = [*_RESUMABLE, "--data", str(data), "--out", str(out), "--resume"]
    # `--epochs` comes after the preset's; argparse keeps the last.
    assert cli.main([*argv, *changes]) == 1
    line = _error_line(capsys)
    assert line.startswith(f"keras-avae: error: The interrupted run in {out} began with other settings")
    assert named in line and "pass --overwrite to start again" in line
    assert _tree(out) == {name: data for name, data in before.items() if not name.startswith(".model.keras.")}
    assert cli.main([*argv, "--verbose", "1"]) == 0  # `verbose` does not change the result: allowed
    assert (out / "model.keras").is_file() and not (out / "backup").exists()


# ------------------------------------------------------------ lazy imports


def _modules_after(code):
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_help_of_every_command_imports_no_tensorflow():
    code = """
import contextlib, io
from keras_avae import cli
for argv in ([], ["train"], ["evaluate"], ["reproduce"], ["reproduce", "table1"], ["reproduce", "ablation"],
             ["reproduce", "rho-sweep"], ["reproduce", "celeba"]):
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            cli.main([*argv, "--help"])
        except SystemExit as exit:
            assert exit.code == 0, argv
    assert text.getvalue().startswith("usage: keras-avae"), argv
"""
    modules = _modules_after(code)
    assert "keras_avae.cli" in modules
    assert not {"tensorflow", "keras", "tensorflow_datasets", "matplotlib"} & modules


def test_import_keras_avae_loads_no_datasets_library_or_matplotlib():
    modules = _modules_after("import keras_avae")
    assert not {"tensorflow", "tensorflow_datasets", "matplotlib"} & modules
    # Keras itself imports matplotlib (keras.src.visualization); tensorflow_datasets waits for CelebA.
    modules = _modules_after("import keras_avae\nkeras_avae.VAE\nimport keras_avae.datasets, keras_avae.figures")
    assert "keras_avae.datasets.celeba" in modules and "keras_avae.figures" in modules
    assert "tensorflow_datasets" not in modules
