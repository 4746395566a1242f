"""Tests for keras_avae/callbacks/periodic.py: the schedule, the logs and the history of `PeriodicEvaluation`."""

import math

import keras
import numpy as np
import pytest

from keras_avae.callbacks import PeriodicEvaluation


class Counting(PeriodicEvaluation):
    """Evaluates to the number of evaluations so far; logs it as `count`."""

    name = "Counting"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def evaluate(self, model):
        self.seen.append(model)
        return len(self.seen)

    @property
    def log_keys(self):
        return ["count"]

    def log_values(self, results):
        return {"count": results}

    def summary(self, results):
        return f"count={results}"


def _run(callback, epochs, stop_after=None):
    """Drives `callback` through `epochs` epochs as `fit` does; returns each epoch's logs."""
    callback.set_model("model")  # any object: the schedule only passes it on
    callback.set_params({"epochs": epochs})
    callback.on_train_begin()
    all_logs = []
    for epoch in range(epochs if stop_after is None else stop_after):
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        all_logs.append(logs)
    callback.on_train_end()
    return all_logs


def test_every_n_epochs_and_the_last_with_nan_in_between():
    callback = Counting(every_n_epochs=2)
    logs = _run(callback, epochs=5)
    assert [record["epoch"] for record in callback.history] == [1, 3, 4]  # epochs 2, 4 and the last, 5
    counts = [entry["count"] for entry in logs]
    assert math.isnan(counts[0]) and math.isnan(counts[2])
    assert (counts[1], counts[3], counts[4]) == (1, 2, 3)
    assert all(entry["loss"] == 1.0 for entry in logs)
    assert all(record["seconds"] >= 0 and record["results"] == i + 1 for i, record in enumerate(callback.history))


def test_without_fill_the_epochs_between_have_no_key():
    logs = _run(Counting(every_n_epochs=3, fill_missing_epochs=False), epochs=4)
    assert ["count" in entry for entry in logs] == [False, False, True, True]


def test_an_early_stop_evaluates_the_last_model_into_the_history_only():
    callback = Counting(every_n_epochs=3)
    logs = _run(callback, epochs=10, stop_after=4)  # stopped after epoch 4; epoch 3 was evaluated
    assert [record["epoch"] for record in callback.history] == [2, 3]
    assert math.isnan(logs[3]["count"])  # the logs of epoch 4 were already written when it stopped
    assert callback.last_results() == 2


def test_the_verbose_line(capsys):
    _run(Counting(every_n_epochs=1, verbose=1), epochs=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("Counting after epoch 2: count=2 (") and lines[1].endswith(" s)")


def test_last_results_before_any_evaluation():
    callback = Counting()
    assert callback.last_results(7) == 7
    with pytest.raises(ValueError, match=r"No results yet: pass `results` or run `evaluate` through the callback first"):
        callback.last_results()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every_n_epochs": 0}, r"`every_n_epochs` must be an integer >= 1"),
        ({"fill_missing_epochs": 1}, r"`fill_missing_epochs` must be True or False\. Received: fill_missing_epochs=1"),
        ({"verbose": 2}, r"`verbose` must be 0 or 1\. Received: verbose=2"),
    ],
)
def test_bad_schedule_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Counting(**kwargs)


def test_the_values_reach_history_and_csv_in_a_real_fit(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 2), np.float32)
    callback = Counting(every_n_epochs=2)
    history = model.fit(x, x[:, :1], epochs=3, verbose=0,
                        callbacks=[callback, keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    assert np.isnan(history.history["count"][0]) and history.history["count"][1:] == [1, 2]
    rows = (tmp_path / "log.csv").read_text().splitlines()
    column = rows[0].split(",").index("count")  # a column from the first epoch, thanks to the NaN
    assert [row.split(",")[column] for row in rows[1:]] == ["nan", "1", "2"]
    assert callback.seen == [model, model]
