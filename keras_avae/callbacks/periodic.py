"""The schedule every evaluation callback shares: evaluate every n epochs, log, keep a history.

A subclass says what one evaluation is (its `evaluate(model)` method), how its results
become `logs` entries (`log_values`, `log_keys`) and how they read in one line
(`summary`); this base runs it at the end of every `every_n_epochs`-th epoch
and of the last one, writes the values into that epoch's `logs` (so
`History`, `TensorBoard` and `CSVLogger` see them), appends
`{"epoch", "results", "seconds"}` to `self.history`, and, when training stops
early after an epoch that was not evaluated, evaluates that model in
`on_train_end`, into `self.history` only.

In the epochs it does not evaluate it logs NaN under every key
(`fill_missing_epochs=True`, the default), because `CSVLogger` fixes its
columns at the first epoch: without the NaNs a callback that first evaluates
at epoch 2 would have no column at all.
"""

import math
import sys
import time

import keras

from keras_avae.validation import check_positive_int


class PeriodicEvaluation(keras.callbacks.Callback):
    """Base of the evaluation callbacks: the schedule, the logs and the history.

    Args:
        every_n_epochs: evaluate after every n-th epoch (and after the last).
        fill_missing_epochs: log NaN under every key in the epochs not evaluated.
        verbose: 1 prints one line per evaluation, 0 is silent.
    """

    def __init__(self, every_n_epochs=1, fill_missing_epochs=True, verbose=0):
        super().__init__()
        self.every_n_epochs = check_positive_int(every_n_epochs, "every_n_epochs")
        if not isinstance(fill_missing_epochs, bool):
            raise ValueError(
                f"`fill_missing_epochs` must be True or False. Received: fill_missing_epochs={fill_missing_epochs!r}"
            )
        self.fill_missing_epochs = fill_missing_epochs
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1. Received: verbose={verbose!r}")
        self.verbose = int(verbose)
        self.history = []
        self._last_epoch = None
        self._last_evaluated_epoch = None

    # What a subclass defines.

    name = "Evaluation"
    """The label of the verbose line."""

    @property
    def log_keys(self):
        """Every key this callback writes to `logs`."""
        raise NotImplementedError

    def log_values(self, results):
        """`results` as `{log key: number}`."""
        raise NotImplementedError

    def summary(self, results):
        """`results` in one line."""
        raise NotImplementedError

    def after_evaluation(self, record):
        """Called with each history record (e.g. to save a figure); adds nothing by default."""

    # The schedule.

    def on_train_begin(self, logs=None):
        self._last_epoch = None
        self._last_evaluated_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every_n_epochs == 0 or (last is not None and epoch + 1 == last):
            results = self._record(epoch)
            if logs is not None:
                logs.update(self.log_values(results))
        elif self.fill_missing_epochs and logs is not None:
            logs.update({key: math.nan for key in self.log_keys})

    def on_train_end(self, logs=None):
        if self._last_epoch is not None and self._last_evaluated_epoch != self._last_epoch:
            self._record(self._last_epoch)

    def last_results(self, results=None):
        """`results` if given, else those of the last evaluation in `history`."""
        if results is not None:
            return results
        if not self.history:
            raise ValueError("No results yet: pass `results` or run `evaluate` through the callback first.")
        return self.history[-1]["results"]

    def _record(self, epoch):
        start = time.perf_counter()
        results = self.evaluate(self.model)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "results": results, "seconds": seconds}
        self.after_evaluation(record)
        self.history.append(record)
        self._last_evaluated_epoch = epoch
        if self.verbose:
            print(f"{self.name} after epoch {epoch + 1}: {self.summary(results)} ({seconds:.1f} s)", file=sys.stdout)
        return results
