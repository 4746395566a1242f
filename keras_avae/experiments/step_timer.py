"""Wall-clock time of training steps, for the time factors of Tables 1-3."""

import statistics
import time

import keras


class StepTimer(keras.callbacks.Callback):
    """Times every training step of `fit`, from `on_train_batch_begin` to `on_train_batch_end`.

    Tables 1-3 of Cemgil et al. (2020) report each model's wall-clock time
    relative to the VAE's; `seconds_per_step` is the median step time, with the
    first `skip` steps (which trace and compile the step) left out, so the
    ratio of two timers compares the steps themselves, not start-up costs or
    the evaluation between epochs.

    Keras converts the step's logs to Python numbers before calling
    `on_train_batch_end`, which waits for the step to finish, so a step's time
    includes all of its computation.

    Args:
        skip: number of first steps left out of `seconds_per_step` (when more
            steps than that were timed).

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
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._start is not None:
            self.durations.append(time.perf_counter() - self._start)
            self._start = None

    @property
    def steps(self):
        """The number of steps timed."""
        return len(self.durations)

    @property
    def seconds_per_step(self):
        """Median seconds of the steps after the first `skip` (of all steps if no more were run); None before any."""
        if not self.durations:
            return None
        timed = self.durations[self.skip :] or self.durations
        return float(statistics.median(timed))
