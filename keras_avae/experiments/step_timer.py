"""Wall-clock time of training steps, for the time factors of Tables 1-3."""

import json
import statistics
import time
from pathlib import Path

import keras

from keras_avae import files


class StepTimer(keras.callbacks.Callback):
    """Times the training steps of `fit`, from `on_train_batch_begin` to `on_train_batch_end`.

    Tables 1-3 of Cemgil et al. (2020) report each model's wall-clock time
    relative to the VAE's; `seconds_per_step` is the median step time, with the
    first `skip` steps (which trace and compile the step) left out, so the
    ratio of two timers compares the steps themselves, not start-up costs or
    the evaluation between epochs.

    Keras converts the step's logs to Python numbers before calling
    `on_train_batch_end`, which waits for the step to finish, so a step's time
    includes all of its computation. With `steps_per_execution` N (the models'
    default runs several steps per call, `compilation.DEFAULT_STEPS_PER_EXECUTION`),
    the callbacks bracket one call of N steps (fewer for the last call of an
    epoch): its time divided by its step count is one entry of `durations`, and
    `steps` counts the steps.

    A run resumed from a backup (`files.AtomicBackupAndRestore`) trains only the
    epochs after it; with a `record` its timings still cover every epoch. Each
    finished epoch's steps, step times and wall-clock seconds are written to the
    record (atomically) and read back when `fit` begins; an epoch recorded but
    not backed up (a kill between the two) is trained again, and its entry
    replaced when the resumed `fit` reaches it. Put the timer before the backup
    in `callbacks`, so that every epoch the backup holds is recorded.

    Args:
        skip: number of first calls (steps, with one step per call) left out of
            `seconds_per_step` (when more calls than that were timed).
        record: a JSON file for the timings of each epoch, or None. Each `fit` starts from
            the record's epochs (without one, from none).

    Attributes:
        durations, steps: seconds per step of each timed call, and the steps they hold.
        epochs: `{epoch index: {"seconds", "steps", "durations"}}` of the finished epochs.

    Example:
        timer = StepTimer()
        model.fit(x, epochs=1, callbacks=[timer])
        factor = timer.seconds_per_step / vae_timer.seconds_per_step
    """

    def __init__(self, skip=1, record=None):
        super().__init__()
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise ValueError(f"`skip` must be an integer >= 0. Received: skip={skip!r}")
        self.skip = skip
        self.record = None if record is None else Path(record)
        self.durations = []
        self.steps = 0
        self.epochs = {}
        self._current = None  # the epoch being trained: its start time, and `durations` and `steps` before it
        self._pruned = False
        self._start = None
        self._begin = None

    def on_train_begin(self, logs=None):
        self.epochs = self._read()
        self._pruned = False
        self._collect()

    def on_epoch_begin(self, epoch, logs=None):
        if not self._pruned:  # the first epoch of this `fit`: later ones recorded are trained again
            self._pruned = True
            self.epochs = {index: entry for index, entry in self.epochs.items() if index < epoch}
            self._collect()
        self._current = {"start": time.perf_counter(), "calls": len(self.durations), "steps": self.steps}

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._start is not None:
            seconds = time.perf_counter() - self._start
            # Keras passes the first and the last step of the call; the last call of an epoch
            # is reported as a full one, so it is cut at the epoch's step count when known.
            last = batch
            epoch_steps = (self.params or {}).get("steps")
            if epoch_steps:
                last = min(last, epoch_steps - 1)
            count = max(1, last - self._begin + 1)
            self.durations.append(seconds / count)
            self.steps += count
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        if self._current is None:
            return
        current, self._current = self._current, None
        self.epochs[epoch] = {
            "seconds": time.perf_counter() - current["start"],
            "steps": self.steps - current["steps"],
            "durations": self.durations[current["calls"] :],
        }
        if self.record is not None:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            files.write_json(self.record, {str(index): entry for index, entry in sorted(self.epochs.items())})

    @property
    def seconds_per_step(self):
        """Median seconds per step of the calls after the first `skip` (else of all calls); None before any."""
        if not self.durations:
            return None
        timed = self.durations[self.skip :] or self.durations
        return float(statistics.median(timed))

    @property
    def seconds(self):
        """Wall-clock seconds of the finished epochs, from their first step to their end (the
        callbacks before the timer's `on_epoch_end` included, those after it not)."""
        return float(sum(entry["seconds"] for entry in self.epochs.values()))

    def _read(self):
        if self.record is None or not self.record.is_file():
            return {}
        try:
            document = json.loads(self.record.read_text())
            return {
                int(index): {"seconds": float(entry["seconds"]), "steps": int(entry["steps"]),
                             "durations": [float(value) for value in entry["durations"]]}
                for index, entry in document.items()
            }
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"Not a step-time record of this library: {self.record} ({error})") from error

    def _collect(self):
        """`durations` and `steps` of the recorded epochs, in order."""
        ordered = [self.epochs[index] for index in sorted(self.epochs)]
        self.durations = [value for entry in ordered for value in entry["durations"]]
        self.steps = sum(entry["steps"] for entry in ordered)
