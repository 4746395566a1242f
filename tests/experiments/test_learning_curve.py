"""`keras-avae reproduce learning-curve`: checkpoints, points, resume, trend, paper marks."""

import json
import shutil

import keras
import numpy as np
import pytest

from keras_avae import cli, constants, files
from keras_avae.experiments import learning_curve, run, table1
from keras_avae.experiments.settings import LearningCurveSettings

TINY = {
    "model": "avae", "arch": "mlp", "scale": "tiny", "epochs": 3, "checkpoint_epochs": (1, 2),
    "attacks": "pgd", "checks": False, "verbose": 0, "jit_compile": False,
}


def test_curve_epochs_keep_those_below_the_budget_and_the_last():
    settings = LearningCurveSettings(epochs=30, checkpoint_epochs=(50, 5, 10, 5))
    assert settings.checkpoint_epochs == (5, 10, 50)
    assert settings.curve_epochs() == (5, 10, 30)


@pytest.mark.parametrize("value", ["0,5", "a", "", (), (1.5,)])
def test_checkpoint_epochs_are_refused_unless_integers_at_least_one(value):
    with pytest.raises(ValueError, match="`checkpoint_epochs` must be integers >= 1"):
        LearningCurveSettings(checkpoint_epochs=value)


def test_avae_ss_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="AVAE-SS post-trains a trained model"):
        LearningCurveSettings(model="avae_ss")


def test_curve_evaluator_settings_swap_in_the_lighter_attack():
    settings = LearningCurveSettings(attack_steps=40, restarts=10, curve_attack_steps=7, curve_restarts=2)
    light = settings.curve_evaluator_settings()
    assert (light["attack_steps"], light["restarts"], light["attacks"]) == (7, 2, "pgd")
    full = settings.evaluator_settings()
    assert (full["attack_steps"], full["restarts"], full["attacks"]) == (40, 10, "standard")


def test_the_command_line_reaches_the_settings():
    args = cli.build_parser().parse_args(
        ["reproduce", "learning-curve", "--model", "vae", "--arch", "conv", "--checkpoint-epochs", "20,5",
         "--curve-restarts", "3", "--scale", "medium"]
    )
    settings = LearningCurveSettings.from_dict(cli.settings(args))
    assert settings.checkpoint_epochs == (5, 20)
    assert settings.curve_restarts == 3 and settings.scale == "medium" and settings.model == "vae"


def _point(steps, digit):
    return {"steps": steps, "accuracy": {"digit": {"0": 0.9, "0.1": digit}}}


def test_trend_reads_the_last_two_points_against_the_tolerance():
    tolerance = learning_curve.TREND_TOLERANCE / 100
    assert learning_curve.trend([_point(1, 0.30), _point(2, 0.30 + 2 * tolerance)])["digit"]["0.1"]["verdict"] == "rising"
    assert learning_curve.trend([_point(1, 0.30), _point(2, 0.30 - 2 * tolerance)])["digit"]["0.1"]["verdict"] == "falling"
    flat = learning_curve.trend([_point(1, 0.30), _point(2, 0.30 + tolerance / 2)])["digit"]["0.1"]
    assert flat["verdict"] == "saturated" and flat["change"] == pytest.approx(100 * tolerance / 2)
    assert "0" not in learning_curve.trend([_point(1, 0.3), _point(2, 0.3)])["digit"]  # clean accuracy is no trend
    assert learning_curve.trend([_point(1, 0.3)]) == {}


def test_labels_and_the_paper_row_follow_table_1():
    assert learning_curve.label_of(LearningCurveSettings(model="se", se_epsilon=0.1)) == "SE_0.1"
    assert learning_curve.label_of(LearningCurveSettings(model="seavae", se_epsilon=0.2)) == "SE_0.2-AVAE"
    assert learning_curve.label_of(LearningCurveSettings(model="avae")) == "AVAE"
    labels = {row["label"] for row in table1.PAPER}
    assert {"AVAE", "VAE", "SE_0.1", "SE_0.2-AVAE"} <= labels
    assert learning_curve.PAPER_STEPS == 100 * 938


@pytest.fixture(scope="module")
def tiny_curve(tmp_path_factory):
    out = tmp_path_factory.mktemp("curve") / "run"
    document = learning_curve.reproduce({**TINY, "out": str(out)})
    return out, document


def test_a_tiny_curve_writes_a_checkpoint_and_a_point_per_epoch(tiny_curve):
    out, document = tiny_curve
    assert [point["epoch"] for point in document["points"]] == [1, 2, 3]
    assert [point["steps"] for point in document["points"]] == [4, 8, 12]  # 64 images, batch 16
    for epoch in (1, 2, 3):
        assert learning_curve.checkpoint_path(out, epoch).is_file()
    assert document["points"][0]["attack"]["attack_steps"] == constants.LEARNING_CURVE_ATTACK_STEPS
    final = document["final"]
    assert final["epoch"] == 3 and final["attack"]["attack_steps"] == 1  # the tiny scale's full evaluation
    assert set(final["accuracy"]) == {"digit", "color"} and "0.1" in final["shift_ratio"]
    assert not (out / run.BACKUP_FOLDER).exists()
    assert set(json.loads((out / learning_curve.STEP_TIMES).read_text())) == {"0", "1", "2"}
    written = json.loads((out / "learning_curve.json").read_text())
    assert written["points"] == json.loads(json.dumps(document["points"]))
    assert (out / "figures" / "learning_curve_digit.png").is_file()
    assert "| 3 | 12 | pgd 1x1 |" in (out / "learning_curve.md").read_text()
    assert document["train_seconds"] > 0
    assert document["train_seconds"] == pytest.approx(sum(learning_curve.epoch_seconds(out).values()))


def test_read_curve_reads_a_finished_curve_and_one_still_running(tiny_curve, tmp_path):
    out, document = tiny_curve
    written = json.loads((out / "learning_curve.json").read_text())
    assert learning_curve.read_curve(out) == written
    running = tmp_path / "running"  # the same folder before learning_curve.json: config.json and points/
    shutil.copytree(out / learning_curve.POINTS, running / learning_curve.POINTS)
    shutil.copy(out / "config.json", running / "config.json")
    read = learning_curve.read_curve(running)
    assert (read["label"], read["arch"], read["paper"]) == ("AVAE", "mlp", None)  # Table 1's rows are conv
    assert (read["points"], read["final"]) == (written["points"], written["final"])
    assert learning_curve.paper_row("conv", "AVAE")["accuracy"]["digit"]["0.1"] == pytest.approx(0.881)


def test_a_finished_curve_is_refused_without_resume_and_with_changed_settings(tiny_curve):
    out, _ = tiny_curve
    with pytest.raises(FileExistsError, match="pass --resume to continue it or --overwrite"):
        learning_curve.reproduce({**TINY, "out": str(out)})
    with pytest.raises(ValueError, match=r"Changed: rho 0.975 -> 0.5\."):
        learning_curve.reproduce({**TINY, "out": str(out), "resume": True, "rho": 0.5})


def test_resume_evaluates_what_is_missing_and_trains_nothing_done(tiny_curve):
    out, document = tiny_curve
    checkpoint = learning_curve.checkpoint_path(out, 3)
    stamp = checkpoint.stat().st_mtime_ns
    learning_curve.point_path(out, learning_curve.point_name(2)).unlink()  # as if killed while evaluating it
    kept = learning_curve.point_path(out, learning_curve.point_name(1)).read_text()
    resumed = learning_curve.reproduce({**TINY, "out": str(out), "resume": True, "verbose": 1})
    assert checkpoint.stat().st_mtime_ns == stamp  # not trained again
    assert learning_curve.point_path(out, learning_curve.point_name(1)).read_text() == kept
    again, before = (
        {key: value for key, value in point.items() if key != "evaluation_seconds"}
        for point in (resumed["points"][1], json.loads(json.dumps(document["points"][1])))
    )
    assert again == before  # the same checkpoint and seeds, the same point


@pytest.mark.large
def test_an_interrupted_training_resumes_from_its_backup(tmp_path, monkeypatch):
    out = tmp_path / "run"

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 2:
                raise KeyboardInterrupt

    train_model = learning_curve.run.train_model
    monkeypatch.setattr(
        learning_curve.run, "train_model",
        lambda *args, callbacks=(), **kwargs: train_model(*args, callbacks=[*callbacks, Interrupt()], **kwargs),
    )
    settings = {**TINY, "out": str(out), "figures": False}
    with pytest.raises(KeyboardInterrupt):
        learning_curve.reproduce(settings)
    assert learning_curve.checkpoint_path(out, 2).is_file() and (out / run.BACKUP_FOLDER).is_dir()
    assert not learning_curve.checkpoint_path(out, 3).exists()
    monkeypatch.setattr(learning_curve.run, "train_model", train_model)
    document = learning_curve.reproduce({**settings, "resume": True})
    assert [point["epoch"] for point in document["points"]] == [1, 2, 3] and document["final"]["epoch"] == 3
    assert set(json.loads((out / learning_curve.STEP_TIMES).read_text())) == {"0", "1", "2"}


@pytest.mark.large
def test_evaluating_alongside_leaves_the_trained_model_as_without_it(tmp_path):
    settings = {**TINY, "figures": False}
    learning_curve.reproduce({**settings, "checkpoint_epochs": (1, 2), "out": str(tmp_path / "alongside")})
    learning_curve.reproduce({**settings, "checkpoint_epochs": (50,), "out": str(tmp_path / "alone")})
    alongside, alone = (
        files.load_model(learning_curve.checkpoint_path(tmp_path / name, 3)).get_weights() for name in ("alongside", "alone")
    )
    for evaluated, plain in zip(alongside, alone, strict=True):
        np.testing.assert_array_equal(evaluated, plain)


def test_the_markdown_puts_the_papers_row_under_both_mse_readings():
    point = {
        "epoch": 1, "steps": 938, "attack": {"attacks": "pgd", "attack_steps": 20, "restarts": 1},
        "num_attacked": 10, "accuracy": {"digit": {"0": 0.9, "0.1": 0.5}}, "test_reconstruction_mse": 500.0,
        "test_reconstruction_nll": 1365.0, "shift_ratio": {"0.1": {"digit": 0.3}}, "problems": [],
    }
    paper = next(row for row in table1.PAPER if row["label"] == "AVAE")
    text = learning_curve.markdown({
        "label": "AVAE", "arch": "conv", "steps_per_epoch": 938, "points": [point], "final": None, "paper": paper,
        "paper_steps": learning_curve.PAPER_STEPS, "trend": {}, "train_seconds": 60.0,
    })
    assert "| 1 | 938 | pgd 20x1 | 90.0 | 50.0 | 500.0 | 1365.0 | 0.30 |" in text
    assert "| paper | ~93800 | Table 1 | 97.3 | 88.1 | 1371.9 | 1371.9 | - |" in text


def test_epoch_seconds_reads_the_record_over_an_earlier_versions_file(tmp_path):
    """A curve begun by an earlier version (seconds keyed by epochs done) and resumed by this one."""
    (tmp_path / learning_curve.LEGACY_TRAIN_SECONDS).write_text(json.dumps({"1": 10.0, "2": 20.0}))
    assert learning_curve.epoch_seconds(tmp_path) == {0: 10.0, 1: 20.0}
    record = {"1": {"seconds": 21.0, "steps": 4, "durations": [5.0]}, "2": {"seconds": 30.0, "steps": 4, "durations": [7.0]}}
    (tmp_path / learning_curve.STEP_TIMES).write_text(json.dumps(record))  # epoch 2 trained again, then epoch 3
    assert learning_curve.epoch_seconds(tmp_path) == {0: 10.0, 1: 21.0, 2: 30.0}
