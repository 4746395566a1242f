"""Tests for keras_avae/callbacks/robustness.py: the evaluator on the schedule of `PeriodicEvaluation`."""

import csv
import json
import math

import keras
import numpy as np
import pytest

from keras_avae import VAE
from keras_avae.callbacks import RobustnessEvaluator
from keras_avae.evaluation import log_key

SEED = 0
# One PGD loss and two steps: the callback's schedule and logs are under test here, not the attack.
FAST = {
    "attack_steps": 2, "restarts": 1, "losses": ("margin",), "verbose": 0, "probe_kwargs": {"epochs": 1},
    "attacks": "pgd", "checks": False,
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(SEED)
    x = rng.random((96, 6, 6, 1), dtype=np.float32)
    brightness = x.reshape(len(x), -1).mean(axis=1)
    labels = {"bright": (brightness > np.median(brightness)).astype(np.int64), "parity": np.arange(len(x)) % 3}
    return (x[:64], {t: y[:64] for t, y in labels.items()}), (x[64:], {t: y[64:] for t, y in labels.items()})


def _model():
    from conftest import tiny_networks

    keras.utils.set_random_seed(SEED)
    model = VAE(*tiny_networks(latent_dim=4, image_shape=(6, 6, 1)), seed=SEED)
    model.compile(optimizer="adam", jit_compile=False)  # an XLA compile costs more than these fits
    return model


def test_callback_writes_logs_history_csv_and_the_verbose_line(data, tmp_path, capsys):
    train, test = data
    evaluator = RobustnessEvaluator(train, test, epsilons=(0.0, 0.1), **{**FAST, "verbose": 1})
    csv_path = tmp_path / "log.csv"
    history = _model().fit(
        train[0], epochs=2, batch_size=32, verbose=0, callbacks=[evaluator, keras.callbacks.CSVLogger(str(csv_path))]
    ).history
    keys = [log_key(task, e) for task in ("bright", "parity") for e in (0.0, 0.1)]
    assert keys == evaluator.log_keys == [
        "robust_bright_eps0", "robust_bright_eps0_1", "robust_parity_eps0", "robust_parity_eps0_1",
    ]
    assert [entry["epoch"] for entry in evaluator.history] == [0, 1]
    for task in ("bright", "parity"):
        for epsilon in (0.0, 0.1):
            expected = [entry["results"][task][epsilon] for entry in evaluator.history]
            assert history[log_key(task, epsilon)] == expected
    with open(csv_path) as file:
        rows = list(csv.DictReader(file))
    for key in keys:
        assert [float(row[key]) for row in rows] == pytest.approx(history[key])
    printed = capsys.readouterr().out
    assert "Robust accuracy after epoch 1: bright eps=0:" in printed
    assert "Robust accuracy after epoch 2: bright eps=0:" in printed


def test_every_n_epochs_logs_nan_in_between_so_csv_logger_has_the_columns(data, tmp_path):
    # CSVLogger fixes its columns at the first epoch: before the NaN fill, a
    # callback first evaluating at epoch 2 had no column at all.
    train, test = data
    evaluator = RobustnessEvaluator(train, test, epsilons=(0.0,), every_n_epochs=2, **FAST)
    csv_path = tmp_path / "log.csv"
    _model().fit(
        train[0], epochs=4, batch_size=32, verbose=0, callbacks=[evaluator, keras.callbacks.CSVLogger(str(csv_path))]
    )
    assert [entry["epoch"] for entry in evaluator.history] == [1, 3]
    with open(csv_path) as file:
        rows = list(csv.DictReader(file))
    column = [float(row["robust_bright_eps0"]) for row in rows]
    assert math.isnan(column[0]) and math.isnan(column[2])
    assert column[1] == evaluator.history[0]["results"]["bright"][0.0]


def test_evaluates_at_train_end_after_an_early_stop(data):
    train, test = data

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    evaluator = RobustnessEvaluator(train, test, epsilons=(0.0,), every_n_epochs=3, fill_missing_epochs=False, **FAST)
    history = _model().fit(train[0], epochs=5, batch_size=32, verbose=0, callbacks=[evaluator, StopAfterFirstEpoch()]).history
    assert "robust_bright_eps0" not in history  # too late for the logs
    assert [entry["epoch"] for entry in evaluator.history] == [0]
    assert evaluator.to_markdown().startswith("| Model | bright ε=0 | parity ε=0 |")
    document = json.loads(evaluator.to_json(model_name="VAE"))
    assert document["config"]["every_n_epochs"] == 3 and document["config"]["attacks"] == ["pgd"]


def test_bad_schedule(data):
    # (The verbose line is checked in test_callback_writes_logs_history_csv_and_the_verbose_line.)
    train, test = data
    for kwargs, message in (
        ({"every_n_epochs": 0}, r"`every_n_epochs` must be an integer >= 1"),
        ({"fill_missing_epochs": "yes"}, r"`fill_missing_epochs` must be True or False"),
        ({"verbose": 2}, r"`verbose` must be 0 or 1. Received: verbose=2"),
    ):
        with pytest.raises(ValueError, match=message):
            RobustnessEvaluator(train, test, **{**FAST, **kwargs})


# ------------------------------------------------------------ names and signature (issue 23)


def test_the_signature_lists_every_argument_of_the_evaluation():
    """`help()`, IDEs and `inspect.signature` show `attacks`, `epsilons`, ...: no `**kwargs` hides them."""
    import inspect

    from keras_avae.evaluation import AdversarialEvaluator

    callback = inspect.signature(RobustnessEvaluator).parameters
    evaluation = inspect.signature(AdversarialEvaluator).parameters
    assert not [p for p in callback.values() if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    for name, parameter in evaluation.items():
        assert name in callback, name
        assert callback[name].default == parameter.default, name
    assert [name for name in callback if name not in evaluation] == ["every_n_epochs", "fill_missing_epochs", "verbose"]
    assert RobustnessEvaluator.__doc__.count("attack_steps") >= 1 and "every_n_epochs:" in RobustnessEvaluator.__doc__


def test_every_argument_reaches_the_evaluation(data):
    train, test = data
    values = dict(epsilons=(0.0, 0.05), attack_steps=3, restarts=2, batch_size=7, losses=("cross_entropy",),
                  seed=4, attacks=("pgd", "square"), apgd_restarts=2, square_queries=11, checks=False,
                  check_size=9, tolerance=0.25)
    config = RobustnessEvaluator(train, test, every_n_epochs=2, verbose=0, **values).get_config()
    expected = {**values, "epsilons": [0.0, 0.05], "losses": ["cross_entropy"], "attacks": ["pgd", "square"]}
    assert {name: config[name] for name in expected} == expected and config["every_n_epochs"] == 2
    with pytest.raises(TypeError, match="attack_step"):
        RobustnessEvaluator(train, test, attack_step=3)  # a misspelt argument is not swallowed


def test_two_classes_two_names():
    import warnings

    import keras_avae
    from keras_avae import evaluation
    from keras_avae.evaluation import robustness

    assert keras_avae.RobustnessEvaluator is RobustnessEvaluator
    assert evaluation.AdversarialEvaluator is robustness.AdversarialEvaluator
    assert not issubclass(evaluation.AdversarialEvaluator, keras.callbacks.Callback)
    assert issubclass(RobustnessEvaluator, evaluation.AdversarialEvaluator)
    for module, old in ((evaluation, "keras_avae.evaluation"), (robustness, "keras_avae.evaluation.robustness")):
        with pytest.warns(DeprecationWarning, match=rf"`{old}\.RobustnessEvaluator` is now"):
            alias = module.RobustnessEvaluator
        assert alias is evaluation.AdversarialEvaluator
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from keras_avae.evaluation import AdversarialEvaluator  # noqa: F401  (the new name: no warning)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        evaluation.NoSuchThing  # noqa: B018
