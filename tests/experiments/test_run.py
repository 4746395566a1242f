"""Tests for keras_avae/experiments/run.py: one run's settings record and resume checks, training with a
backup, the evaluator it makes, and the sizes and time factor it records (run_one end to end: test_cli_errors,
test_rows)."""

import json

import keras
import numpy as np
import pytest
from conftest import tiny_networks

from keras_avae import VAE, files
from keras_avae.callbacks import RobustnessEvaluator
from keras_avae.evaluation import AdversarialEvaluator, robustness
from keras_avae.experiments import run
from keras_avae.experiments.settings import RunConfig, TrainSettings

BASE = RunConfig(model="avae", arch="mlp", rho=0.975, epochs=4, out="runs/a")


# ------------------------------------------------------------ settings of a run


def test_changed_settings_names_old_and_new_values():
    stored = json.loads(json.dumps(BASE.record()))
    assert run.changed_settings(stored, BASE) == {}
    changed = run.changed_settings(stored, BASE.replace(rho=0.5, epochs=6, epsilons=(0.0, 0.3)))
    assert changed == {"rho": (0.975, 0.5), "epochs": (4, 6), "epsilons": ([0.0, 0.1, 0.2], [0.0, 0.3])}


def test_how_much_a_run_prints_where_its_folder_is_and_how_it_is_distributed_do_not_count():
    stored = json.loads(json.dumps(BASE.record()))
    assert run.changed_settings(stored, BASE.replace(verbose=0, out="elsewhere", distribute="mirrored")) == {}
    assert set(run.IGNORED_ON_RESUME) == {"verbose", "out", "distribute", "cluster"}


def test_a_setting_an_older_record_lacks_counts_as_its_default():
    stored = json.loads(json.dumps(BASE.record()))
    del stored["coupling"], stored["rho"]
    assert run.changed_settings(stored, BASE) == {}  # rho's default is 0.975, coupling's None
    assert run.changed_settings(stored, BASE.replace(rho=0.9)) == {"rho": (0.975, 0.9)}


def test_a_resume_refuses_another_dtype_policy(tmp_path):
    stored = json.loads(json.dumps(BASE.record()))
    del stored["dtype_policy"]  # a run recorded before the setting existed computed in float32
    assert run.changed_settings(stored, BASE) == {}
    run.record_settings(tmp_path, BASE)
    with pytest.raises(ValueError, match=r"Changed: dtype_policy \"float32\" -> \"mixed_bfloat16\"\."):
        run.check_resumable(tmp_path, BASE.replace(dtype_policy="mixed_bfloat16"))


def test_record_settings_writes_once_and_then_checks(tmp_path):
    backup = tmp_path / "run" / "backup"
    run.record_settings(backup, BASE)
    recorded = (backup / run.SETTINGS_RECORD).read_bytes()
    assert json.loads(recorded)["rho"] == 0.975
    run.record_settings(backup, BASE.replace(verbose=0))  # a resume with the same settings
    assert (backup / run.SETTINGS_RECORD).read_bytes() == recorded
    with pytest.raises(ValueError, match=r"The interrupted run in .*run began with other settings; resuming would "
                       r"mix them\. Changed: epochs 4 -> 5, rho 0\.975 -> 0\.5\. Resume with the settings it began "
                       r"with, or pass --overwrite to start again\.") as raised:
        run.record_settings(backup, BASE.replace(rho=0.5, epochs=5))
    assert "verbose" not in str(raised.value)
    assert (backup / run.SETTINGS_RECORD).read_bytes() == recorded  # the refusal changed nothing


def test_check_resumable_without_a_record_passes(tmp_path):
    run.check_resumable(tmp_path / "absent", BASE)
    (tmp_path / "old").mkdir()  # a backup of an older version: no record to compare
    run.check_resumable(tmp_path / "old", BASE.replace(rho=0.1))


def test_check_resumable_compares_train_settings_with_their_own_defaults(tmp_path):
    config = TrainSettings(model="avae", rho=0.9, data="mnist.npz").resolved()
    run.record_settings(tmp_path, config)
    with pytest.raises(ValueError, match=r"Changed: data \"mnist\.npz\" -> \"other\.npz\""):
        run.check_resumable(tmp_path, config.replace(data="other.npz"))


def _write_finished(out, config):
    out.mkdir(parents=True)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    files.save_model(model, out / "model.keras")
    (out / "metrics.json").write_text(json.dumps({"config": json.loads(json.dumps(config.record())), "fid": 1.0}))


def test_load_finished_reuses_a_run_of_the_same_settings(tmp_path):
    config = BASE.replace(out=str(tmp_path / "run"))
    assert run.load_finished(config) is None  # nothing there
    _write_finished(tmp_path / "run", config)
    model, metrics, stale = run.load_finished(config.replace(verbose=0))
    assert isinstance(model, keras.Model) and metrics["fid"] == 1.0 and stale is False
    assert run.load_finished(config.replace(attack_steps=3))[2] is True  # evaluation-only change: re-evaluate
    assert run.load_finished(config.replace(rho=0.5)) is None  # a change of training: not this run


# ------------------------------------------------------------ sizes, time factor, evaluator


def _data(count=12, shape=(4, 4, 1)):
    rng = np.random.default_rng(0)
    x = rng.random((count,) + shape, dtype=np.float32)
    labels = {"parity": np.arange(count) % 2}
    return {"train_inputs": x, "probe_data": (x, labels), "test_data": (x[:8], {"parity": labels["parity"][:8]}),
            "num_train": count}


def test_actual_sizes_records_what_ran():
    data = _data()
    config = run.actual_sizes(BASE.replace(train_size=1000, test_size=500, attack_size=100), data)
    assert (config.train_size, config.test_size, config.attack_size) == (12, 8, 8)
    assert run.actual_sizes(BASE, data) == BASE  # unset sizes stay unset ("all")


def test_time_factor():
    assert run.time_factor({"seconds_per_step": 0.3}, {"seconds_per_step": 0.2}) == pytest.approx(1.5)
    assert run.time_factor({"seconds_per_step": 0.3}, {"seconds_per_step": None}) is None
    assert run.time_factor({"seconds_per_step": None}, {"seconds_per_step": 0.2}) is None


def test_make_evaluator_attacks_the_first_images_and_drops_unset_settings():
    data = _data()
    evaluator = run.make_evaluator(data["probe_data"], data["test_data"], attack_size=5, seed=3,
                                   attack_steps=2, epsilons=[0.0, 0.1], restarts=None)
    assert type(evaluator) is AdversarialEvaluator
    assert len(evaluator.test_data[0]) == 5 and evaluator.seed == 3 and evaluator.attack_steps == 2
    assert evaluator.epsilons == (0.0, 0.1) and evaluator.restarts == robustness.DEFAULT_RESTARTS  # None: default
    callback = run.make_evaluator(data["probe_data"], data["test_data"], epochs_between=2)
    assert isinstance(callback, RobustnessEvaluator) and callback.every_n_epochs == 2 and callback.verbose == 0


# ------------------------------------------------------------ training


def _model():
    keras.utils.set_random_seed(0)
    model = VAE(*tiny_networks(latent_dim=2, image_shape=(4, 4, 1), hidden=8), seed=0)
    model.compile(optimizer="adam", jit_compile=False)
    model.build((None, 4, 4, 1))
    return model


def test_train_model_times_its_steps_and_keeps_the_backup(tmp_path):
    x = _data()["train_inputs"]
    backup = tmp_path / "backup"
    training = run.train_model(_model(), x, epochs=2, batch_size=4, backup_dir=backup, verbose=0)
    assert training["train_steps"] == 6 and training["train_seconds"] > 0 and training["seconds_per_step"] > 0
    assert set(training["train_terms"]) >= {"loss", "kl"}
    # Kept for the caller to delete once the model is saved: a kill during the save loses nothing.
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2
    again = run.train_model(_model(), x, epochs=2, batch_size=4, backup_dir=backup, verbose=0)
    assert again["train_terms"] == {}  # restored after the last epoch: nothing trained by this call
    # ... but the timings are the whole training's, read back from the backup's record.
    timings = ("train_steps", "train_seconds", "seconds_per_step")
    assert [again[name] for name in timings] == [training[name] for name in timings]
    assert set(json.loads((backup / run.STEP_TIMES).read_text())) == {"0", "1"}


def test_train_model_of_the_self_supervised_model_needs_num_train():
    from keras_avae import AVAESelfSupervised

    model = AVAESelfSupervised.from_pretrained(_model())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"`num_train` sets AVAESelfSupervised's steps per epoch; it is required"):
        run.train_model(model, epochs=1, batch_size=4)
