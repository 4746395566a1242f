"""Tests for keras_avae/experiments/step_timer.py."""

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
