"""Wall-clock time of training steps, for the time factors of Tables 1-3."""

import statistics
import time

import keras


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

    Args:
        skip: number of first calls (steps, with one step per call) left out of
            `seconds_per_step` (when more calls than that were timed).

    Example:
        timer = StepTimer()
        model.fit(x, epochs=1, callbacks=[timer])
        factor = timer.seconds_per_step / vae_timer.seconds_per_step
    """

    def __init__(self, skip=1):
        super().__init__()
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise ValueError(f"`skip` must be an integer >= 0. Received: skip={skip!r}")
        self.skip = skip
        self.durations = []
        self.steps = 0
        self._start = None
        self._begin = None

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

    @property
    def seconds_per_step(self):
        """Median seconds per step of the calls after the first `skip` (else of all calls); None before any."""
        if not self.durations:
            return None
        timed = self.durations[self.skip :] or self.durations
        return float(statistics.median(timed))
