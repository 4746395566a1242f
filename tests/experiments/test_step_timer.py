"""Tests for keras_avae/experiments/step_timer.py."""

import json
import time

import keras
import numpy as np
import pytest

from keras_avae.experiments import StepTimer


def test_median_leaves_out_the_first_steps():
    timer = StepTimer(skip=1)
    assert timer.seconds_per_step is None and timer.steps == 0
    timer.durations = [10.0, 1.0, 3.0, 2.0]
    assert timer.seconds_per_step == 2.0
    timer.durations = [10.0]  # nothing after the skipped step: use what there is
    assert timer.seconds_per_step == 10.0
    assert StepTimer(skip=0).skip == 0


def test_times_each_step_of_fit():
    class SlowStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.02)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = StepTimer()
    x = np.zeros((8, 2), np.float32)
    # The sleep runs after the timer's on_train_batch_end, so it is not counted.
    model.fit(x, x[:, :1], batch_size=2, epochs=1, verbose=0, callbacks=[timer, SlowStep()])
    assert timer.steps == 4
    assert 0 < timer.seconds_per_step < 0.02


@pytest.mark.parametrize("skip", [-1, 1.5, True])
def test_bad_skip(skip):
    with pytest.raises(ValueError, match="`skip` must be an integer >= 0"):
        StepTimer(skip=skip)


def test_counts_the_steps_of_each_execution():
    """With several steps per execution the callbacks bracket a call: its steps are counted, the last one cut at the epoch's end."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=3)
    timer = StepTimer(skip=0)
    x = np.zeros((14, 2), np.float32)  # 7 batches: executions of 3, 3 and 1 steps
    model.fit(x, x[:, :1], batch_size=2, epochs=2, verbose=0, callbacks=[timer])
    assert timer.steps == 14 == int(model.optimizer.iterations)
    assert len(timer.durations) == 6 and timer.seconds_per_step > 0


def _fit(timer, epochs, initial_epoch=0):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 2), np.float32)
    model.fit(x, x[:, :1], batch_size=2, epochs=epochs, initial_epoch=initial_epoch, verbose=0, callbacks=[timer])


def test_a_record_carries_the_timings_across_a_resumed_fit(tmp_path):
    record = tmp_path / "times.json"
    first = StepTimer(skip=0, record=record)
    _fit(first, epochs=2)
    assert first.steps == 8 and sorted(first.epochs) == [0, 1] and first.seconds > 0
    resumed = StepTimer(skip=0, record=record)
    _fit(resumed, epochs=3, initial_epoch=2)  # the backup held two epochs: this fit trains the third
    assert resumed.steps == 12 and sorted(resumed.epochs) == [0, 1, 2]
    assert resumed.durations[:8] == first.durations  # the recorded epochs' step times, in order
    assert resumed.seconds == pytest.approx(first.seconds + resumed.epochs[2]["seconds"])
    assert sorted(json.loads(record.read_text())) == ["0", "1", "2"]


def test_an_epoch_recorded_but_not_backed_up_is_replaced(tmp_path):
    """A kill after the record but before the backup: the resumed fit trains that epoch again."""
    record = tmp_path / "times.json"
    _fit(StepTimer(record=record), epochs=2)
    stale = json.loads(record.read_text())
    stale["1"]["seconds"] = 1e6
    record.write_text(json.dumps(stale))
    resumed = StepTimer(record=record)
    _fit(resumed, epochs=2, initial_epoch=1)
    assert resumed.steps == 8 and resumed.epochs[1]["seconds"] < 1e6 and resumed.seconds < 1e6


def test_without_a_record_only_this_fit_counts(tmp_path):
    timer = StepTimer()
    _fit(timer, epochs=3, initial_epoch=2)
    assert timer.steps == 4 and list(timer.epochs) == [2] and timer.record is None


def test_a_record_of_something_else_is_refused(tmp_path):
    record = tmp_path / "times.json"
    record.write_text(json.dumps({"1": 12.5}))  # not an epoch's entry
    with pytest.raises(ValueError, match=r"Not a step-time record of this library: .*times\.json"):
        _fit(StepTimer(record=record), epochs=1)
