"""Argument and input checks shared by the models: each raises a `ValueError` that names the value."""

import math
import numbers

import numpy as np


def check_rho(rho, name="rho"):
    """Checks a coupling strength: p_rho(z'|z) = N(rho z, (1 - rho^2) I) needs |rho| < 1.

    Args:
        rho: the coupling strength.
        name: the argument's name, for the message.

    Returns:
        `rho` as a Python float.
    """
    if not isinstance(rho, (int, float)) or not -1.0 < float(rho) < 1.0:
        raise ValueError(
            f"`{name}` must be a number in (-1, 1): the coupling variance is 1 - {name}**2. "
            f"Received: {name}={rho!r}"
        )
    return float(rho)


def check_choice(value, choices, name):
    """Checks that `value` is one of the strings `choices`; returns it."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")
    return value


def check_positive_int(value, name):
    """Checks a count: an integer >= 1 (not a bool). Returns it as a Python int, as Keras layers need."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    return int(value)


def check_non_negative(value, name):
    """Checks that `value` is a finite number >= 0 (not a bool) and returns it as a float."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def check_seed(seed, name="seed"):
    """Checks a random seed: an integer (not a bool). Returns it as a Python int."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"`{name}` must be an int. Received: {name}={seed!r}")
    return int(seed)


def check_positive(value, name):
    """Checks that `value` is a finite number > 0 and returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def check_data_range(data_range):
    """Checks a declared pixel range `(low, high)` with low < high, or None for no range.

    Returns:
        `(low, high)` as floats, or None.
    """
    if data_range is None:
        return None
    try:
        low, high = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"`data_range` must be a pair (low, high) or None. Received: data_range={data_range!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"`data_range` must satisfy low < high, both finite. Received: data_range={data_range!r}"
        )
    return (low, high)


def check_model_inputs(x, model, name="x", min_examples=1, reason=""):
    """Checks a batch of examples for a model: enough of them, its example shape, finite, in range.

    Args:
        x: array or tensor `(N, *example_shape)`.
        model: a keras_avae model; its `example_shape` (when built) and
            `data_range` are checked.
        name: the argument's name, for the messages.
        min_examples: the fewest examples accepted.
        reason: what the examples are for, appended to the count's message.

    Returns:
        `x` as a float32 NumPy array.
    """
    if hasattr(x, "numpy"):
        x = x.numpy()
    x = np.asarray(x)
    if x.ndim < 2 or len(x) < min_examples:
        needed = "be a non-empty batch of images" if min_examples == 1 else f"hold at least {min_examples} examples"
        raise ValueError(f"`{name}` must {needed}{reason}. Received shape {x.shape}")
    example_shape = getattr(model, "example_shape", None)
    if example_shape is not None and tuple(x.shape[1:]) != tuple(example_shape):
        raise ValueError(
            f"`{name}` has examples of shape {tuple(x.shape[1:])}; the model takes {tuple(example_shape)}."
        )
    problem = input_problem(x, getattr(model, "data_range", None))
    if problem:
        raise ValueError(f"Bad `{name}`: {problem}.")
    return x.astype(np.float32, copy=False)


def input_problem(x, data_range):
    """Describes what is wrong with a batch of inputs, or returns None when nothing is.

    Works on NumPy arrays without copying them, so a whole training set can be
    checked before `fit` starts.

    Args:
        x: an array of inputs.
        data_range: `(low, high)` the pixels must lie in, or None.

    Returns:
        A sentence naming the problem, or None.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        return f"inputs must be numeric; received dtype {x.dtype}"
    finite = np.isfinite(x)
    if not finite.all():
        bad = x.size - int(np.count_nonzero(finite))
        return f"inputs contain {bad} NaN or infinite value(s)"
    if data_range is not None and x.size:
        low, high = float(x.min()), float(x.max())
        if low < data_range[0] or high > data_range[1]:
            return (
                f"inputs span [{low:g}, {high:g}], outside the declared data_range "
                f"{data_range}; rescale them (e.g. divide uint8 images by 255) or pass "
                "a matching `data_range` to the model"
            )
    return None
