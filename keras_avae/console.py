"""What `keras-avae` prints besides its results: no TensorFlow C++ log lines, one line per warning.

TensorFlow logs from C++ to the process's stderr: the oneDNN notice, "Could not find cuda
drivers", an `E0000 ... failed call to cuInit` line on every CPU-only machine, the XLA service
banner. `quiet()` turns that off before TensorFlow is imported (`TF_CPP_MIN_LOG_LEVEL`, unless
the user set it) and lowers its Python loggers to errors, until its block ends. A few lines are written while
TensorFlow's library loads, before it reads the variable; `native_log_filtered()` holds them
back during the import and passes on every other line. Python warnings become one line each,
`keras-avae: warning: <message> (<category>)`. Progress bars (stdout) are untouched; the CLI's
`--debug` skips all of this.

Example:
    with console.quiet() as level_set_here:
        with console.native_log_filtered(level_set_here):
            import tensorflow
        ...
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

PROG = "keras-avae"

TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
"""TensorFlow's C++ log level: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR."""

QUIET_TF_LOG_LEVEL = "3"
"""The CLI's default: the cuInit failure of a CPU-only machine is logged as an ERROR."""

PYTHON_LOGGERS = ("tensorflow", "absl")
"""`tf.get_logger()` and absl's Python logger, set to `logging.ERROR` by `quiet`."""

NATIVE_LOG_LINE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |WARNING: All log messages before absl::InitializeLog\(\))")
"""A line of TensorFlow's C++ (absl) log: severity, date, time (`I0000 00:00:1796427131.09 ...`),
and the notice absl writes before it is initialised."""


@contextlib.contextmanager
def quiet(active=True):
    """Inside the block: TensorFlow's logs off (enter it before TensorFlow is imported) and Python
    warnings one line each; both restored when it ends. Yields True when the C++ log level was set
    here (the user had not set `TF_CPP_MIN_LOG_LEVEL`): then `native_log_filtered` should hold back
    the lines TensorFlow writes before it reads the level. `active=False` (`--debug`): changes
    nothing and yields False."""
    if not active:
        yield False
        return
    saved_format = warnings.formatwarning
    saved_levels = {name: logging.getLogger(name).level for name in PYTHON_LOGGERS}
    set_here = TF_LOG_LEVEL_VARIABLE not in os.environ
    warnings.formatwarning = format_warning
    for name in PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if set_here:
        os.environ[TF_LOG_LEVEL_VARIABLE] = QUIET_TF_LOG_LEVEL
    try:
        yield set_here
    finally:
        warnings.formatwarning = saved_format
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        if set_here:
            os.environ.pop(TF_LOG_LEVEL_VARIABLE, None)


def format_warning(message, category, filename, lineno, line=None):
    """`warnings.formatwarning` for the CLI: `keras-avae: warning: <message> (<category>)`, one line."""
    text = " ".join(str(message).split())
    return f"{PROG}: warning: {text} ({category.__name__})\n"


@contextlib.contextmanager
def native_log_filtered(active=True):
    """Holds back what is written to file descriptor 2 inside the block, then writes it out without
    TensorFlow's C++ log lines (`NATIVE_LOG_LINE`). Python's own stderr goes through fd 2 too, so
    its lines come out, in order, when the block ends (also when it raises). `active=False`, or
    TensorFlow already imported (nothing left to hold back): a plain block."""
    if not active or "tensorflow" in sys.modules:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if not NATIVE_LOG_LINE.match(line)]
            if kept:
                os.write(2, b"".join(kept))
