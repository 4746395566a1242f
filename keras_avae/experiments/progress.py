"""A text progress bar over the models of a reproduction, with elapsed time and ETA."""

import sys
import time

BAR_WIDTH = 24


def format_seconds(seconds):
    """`seconds` as e.g. `"1h02m"`, `"3m07s"` or `"12s"`."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


class Progress:
    """Prints one line per stage of a long run: a bar, the stage, elapsed time and an ETA.

    Keras' progress bars show each `fit`; this bar counts the models around
    them. The ETA assumes the remaining stages take as long, on average, as
    the finished ones.

    Args:
        total: number of stages (e.g. models to train and evaluate).
        verbose: 0 prints nothing.
        stream: where to print (default `sys.stdout`).

    Example:
        progress = Progress(len(rows))
        for row in rows:
            progress.start(row.label)
            ...
            progress.done()
    """

    def __init__(self, total, verbose=1, stream=None):
        self.total = max(1, int(total))
        self.verbose = verbose
        self.stream = stream
        self.finished = 0
        self.begun = time.perf_counter()

    def _print(self, text):
        if self.verbose:
            print(text, file=self.stream or sys.stdout, flush=True)

    def bar(self):
        """The bar, e.g. `[########----------------]  3/14`."""
        filled = round(BAR_WIDTH * self.finished / self.total)
        return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.finished:>2}/{self.total}"

    def start(self, stage):
        """Announces `stage`, with the time so far and the ETA of the whole run."""
        elapsed = time.perf_counter() - self.begun
        eta = ""
        if self.finished:
            eta = f", ETA {format_seconds(elapsed / self.finished * (self.total - self.finished))}"
        self._print(f"\n{self.bar()} {stage} (elapsed {format_seconds(elapsed)}{eta})")

    def done(self):
        """Counts one stage as finished."""
        self.finished += 1

    def close(self):
        """Prints the full bar and the total time."""
        self._print(f"\n{self.bar()} done in {format_seconds(time.perf_counter() - self.begun)}")
