"""Every check of the library, in one module: numbers, choices, images, labels, features, models.

Each check raises a `ValueError` whose message names the argument, says what was
expected and what was received; a check that passes returns the value in the form the
caller needs (a Python float or int, a float32 array). Numbers are checked against
`numbers.Real` and `numbers.Integral`, so NumPy scalars pass and bools are refused.

The image check has two halves that share one verdict: `image_statistics` (NumPy, for
arrays checked whole before `fit` starts) and `image_statistics_tf` (TensorFlow ops, a
few reductions per batch for data that arrives in batches) compute the same four
numbers, and `statistics_problem` turns them into the one sentence both report.
"""

import math
import numbers
import warnings

import numpy as np

# TensorFlow is imported by the one check that needs it (`image_statistics_tf`), so the number
# checks serve light modules (the experiments' settings, `keras-avae --help`) without it.

INPUT_STRUCTURE = "alone or as the first item of an (x, y) or (x, y, sample_weight) tuple"
"""Where a model's images may sit in a batch of training or evaluation data."""


class SmallSampleWarning(UserWarning):
    """Fewer examples than feature dimensions: the statistics estimated from them are unreliable.

    FID's covariances then have rank below the feature dimension, so the distance is
    dominated by the offset added to make their product's square root exist; KID's
    estimate has a large variance. Use at least as many images per set as features
    (2048 for InceptionV3 pool3; 10,000 is the usual choice).
    """


# ------------------------------------------------------------------ numbers


def is_integer(value):
    """Whether `value` is an integer (Python or NumPy); bools are not."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """Whether `value` is a real number (Python or NumPy, integers included); bools are not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_rho(rho, name="rho"):
    """Checks a coupling strength: p_rho(z'|z) = N(rho z, (1 - rho^2) I) needs |rho| < 1.

    Args:
        rho: the coupling strength, a real number (NumPy scalars included).
        name: the argument's name, for the message.

    Returns:
        `rho` as a Python float.
    """
    if not is_real(rho) or not -1.0 < float(rho) < 1.0:
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


def check_bool(value, name):
    """Checks a flag: True or False (NumPy bools included). Returns a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def check_integer(value, name, minimum=None, allow_none=False, reason=""):
    """Checks an integer (not a bool, not a float, not a string), at least `minimum` when given.

    Args:
        value: the value.
        name: the argument's name, for the message.
        minimum: the smallest value accepted, or None.
        allow_none: whether None is accepted (and returned).
        reason: why, appended to the message.

    Returns:
        `value` as a Python int (or None).
    """
    if value is None and allow_none:
        return None
    if not is_integer(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        none = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be an integer{bound}{none}{reason}. Received: {name}={value!r}")
    return int(value)


def check_positive_int(value, name):
    """Checks a count: an integer >= 1 (not a bool). Returns it as a Python int, as Keras layers need."""
    return check_integer(value, name, minimum=1)


def check_non_negative(value, name, finite=True):
    """Checks that `value` is a number >= 0 (not a bool), finite unless `finite=False`; returns a float."""
    if not is_real(value) or math.isnan(value) or (finite and math.isinf(value)) or value < 0:
        kind = "a finite number" if finite else "a number"
        raise ValueError(f"`{name}` must be {kind} >= 0. Received: {name}={value!r}")
    return float(value)


def check_positive(value, name):
    """Checks that `value` is a finite number > 0 (not a bool) and returns it as a float."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def check_seed(seed, name="seed", allow_none=False):
    """Checks a random seed: an integer (not a bool), or None where `allow_none`. Returns a Python int."""
    if seed is None and allow_none:
        return None
    if not is_integer(seed):
        none = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be an int{none}. Received: {name}={seed!r}")
    return int(seed)


def check_data_range(data_range):
    """Checks a declared pixel range `(low, high)` with low < high, or None for no range.

    Returns:
        `(low, high)` as floats, or None.
    """
    if data_range is None:
        return None
    if isinstance(data_range, (str, bytes)):
        values = None
    else:
        try:
            values = tuple(data_range)
        except TypeError:
            values = None
    if values is None or len(values) != 2 or not all(is_real(v) for v in values):
        raise ValueError(
            f"`data_range` must be a pair (low, high) or None. Received: data_range={data_range!r}"
        )
    low, high = (float(v) for v in values)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"`data_range` must satisfy low < high, both finite. Received: data_range={data_range!r}"
        )
    return (low, high)


# ------------------------------------------------------------------- images


def describe_images(example_shape=None, data_range=None):
    """What a model takes, for messages: e.g. "images (batch, 6, 6, 1), finite, in data_range (0.0, 1.0)"."""
    dims = "H, W, C" if example_shape is None else ", ".join("any" if d is None else str(d) for d in example_shape)
    where = "" if data_range is None else f" in data_range {tuple(data_range)}"
    return f"images (batch, {dims}), finite,{where}".rstrip(",")


def shape_fits(shape, expected):
    """Whether `shape` matches `expected`, where None in `expected` matches any size."""
    shape, expected = tuple(shape), tuple(expected)
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def structure_problem(x):
    """Describes why `x` is not one array or tensor of images, or returns None when it is."""
    if isinstance(x, dict):
        keys = sorted(map(str, x))
        return (
            f"got a dict with keys {keys}: pass the images alone, e.g. "
            f"dataset.map(lambda d: d[{keys[0]!r}])" if keys else "got an empty dict"
        )
    if isinstance(x, (list, tuple)):
        return f"got a {type(x).__name__} of {len(x)} items (the model has one input): stack them into one array"
    if x is None:
        return "got None"
    return None


def as_array(x, name="x"):
    """`x` (an array, a tensor, or a list of equal-shaped examples) as a NumPy array.

    Raises:
        ValueError: `x` is a dict, None, a ragged list, or not numeric data.
    """
    if isinstance(x, dict) or x is None:
        raise ValueError(f"`{name}` must be an array of images; {structure_problem(x)}.")
    if hasattr(x, "numpy"):
        x = x.numpy()
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be one array of images (batch, H, W, C); {type(x).__name__} could not be "
            f"made into one ({error}): give every example the same shape."
        ) from None
    if array.dtype == object:
        raise ValueError(
            f"`{name}` must be one numeric array of images (batch, H, W, C); {type(x).__name__} gave an "
            "array of Python objects: give every example the same shape and a numeric dtype."
        )
    return array


def image_statistics(x):
    """`(size, non_finite, low, high)` of a NumPy array, without copying it; None when it is not real-valued."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        return None
    if not x.size:
        return 0, 0, 0.0, 0.0
    finite = np.isfinite(x)
    non_finite = x.size - int(np.count_nonzero(finite))
    if non_finite:
        return x.size, non_finite, math.nan, math.nan
    return x.size, 0, float(x.min()), float(x.max())


def image_statistics_tf(x):
    """`(size, non_finite, low, high)` of a tensor as scalar tensors: three reductions, no copy to the host."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    size = tf.size(x, out_type=tf.int64)
    non_finite = size - tf.math.count_nonzero(tf.math.is_finite(x), dtype=tf.int64)
    return size, non_finite, tf.cast(tf.reduce_min(x), tf.float64), tf.cast(tf.reduce_max(x), tf.float64)


def statistics_problem(size, non_finite, low, high, data_range):
    """The sentence for `image_statistics` (or their TensorFlow twins) of a batch, or None when they pass."""
    if int(non_finite):
        return f"inputs contain {int(non_finite)} NaN or infinite value(s)"
    if data_range is not None and int(size):
        low, high = float(low), float(high)
        if low < data_range[0] or high > data_range[1]:
            return (
                f"inputs span [{low:g}, {high:g}], outside the declared data_range "
                f"{tuple(data_range)}; rescale them (e.g. divide uint8 images by 255) or pass "
                "a matching `data_range` to the model"
            )
    return None


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
    statistics = image_statistics(x)
    if statistics is None:
        return f"inputs must be real numbers; received dtype {x.dtype}"
    return statistics_problem(*statistics, data_range)


def check_images(
    x,
    data_range=None,
    example_shape=None,
    name="x",
    min_examples=1,
    reason="",
    what=None,
    channels=None,
    taker="the model",
):
    """Checks a batch of images: an array of enough examples, of `example_shape`, finite, in `data_range`.

    Args:
        x: array, tensor or list `(N, *example_shape)`.
        data_range: `(low, high)` the values must lie in, or None.
        example_shape: the shape of one example (None in it: any size), or None for any.
        name: the argument's name, for the messages.
        min_examples: the fewest examples accepted.
        reason: what the examples are for, appended to the count's message.
        what: the messages' subject (e.g. "training data"); default `name` in backquotes.
        channels: the channel counts accepted (the last axis), or None for any.
        taker: what takes the examples, for the shape's message.

    Returns:
        `x` as a float32 NumPy array.
    """
    what = f"`{name}`" if what is None else what
    x = as_array(x, name)
    if x.ndim < 2 or len(x) < min_examples:
        needed = "be a non-empty batch of images" if min_examples == 1 else f"hold at least {min_examples} examples"
        raise ValueError(
            f"{what[0].upper()}{what[1:]} must {needed}{reason}: expected "
            f"{describe_images(example_shape, data_range)}. Received shape {x.shape}"
        )
    if example_shape is not None and not shape_fits(x.shape[1:], example_shape):
        raise ValueError(
            f"{what[0].upper()}{what[1:]} has examples of shape {tuple(x.shape[1:])}; {taker} takes "
            f"{tuple(example_shape)}: expected {describe_images(example_shape, data_range)}."
        )
    if channels is not None and (x.ndim != 4 or x.shape[-1] not in channels):
        raise ValueError(
            f"{what[0].upper()}{what[1:]} must have shape (num_images, height, width, "
            f"{' or '.join(map(str, channels))}). Received shape {x.shape}"
        )
    problem = input_problem(x, data_range)
    if problem:
        raise ValueError(f"Bad {what}: {problem}. Expected {describe_images(example_shape, data_range)}.")
    return x.astype(np.float32, copy=False)


def check_model_inputs(x, model, name="x", min_examples=1, reason=""):
    """Checks a batch of examples for a model: enough of them, its example shape, finite, in range.

    Args:
        x: array or tensor `(N, *example_shape)`.
        model: a keras_avae model (or None); its `example_shape` (when
            built) and `data_range` are checked.
        name: the argument's name, for the messages.
        min_examples: the fewest examples accepted.
        reason: what the examples are for, appended to the count's message.

    Returns:
        `x` as a float32 NumPy array.
    """
    return check_images(
        x,
        getattr(model, "data_range", None),
        getattr(model, "example_shape", None),
        name=name,
        min_examples=min_examples,
        reason=reason,
    )


# ----------------------------------------------------------- labels, features


def check_labels(labels, num_examples=None, name="labels", num_classes=None):
    """Checks class labels: `(N,)` integer class ids (whole-valued floats pass), >= 0, below `num_classes`.

    Args:
        labels: array, tensor or list of class ids.
        num_examples: how many labels there must be (one per example), or None.
        name: the argument's name, for the messages.
        num_classes: the number of classes, or None for no upper bound.

    Returns:
        `labels` as an int64 NumPy array.
    """
    array = as_array(labels, name)
    if array.ndim != 1 or not len(array):
        raise ValueError(f"`{name}` must be a non-empty (N,) array of class ids. Received shape {array.shape}")
    if num_examples is not None and len(array) != num_examples:
        raise ValueError(f"`{name}` has {len(array)} labels but there are {num_examples} examples: give one label each.")
    whole = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all() and np.all(array == np.round(array))
    )
    if not whole:
        raise ValueError(f"`{name}` must be integer class ids. Received dtype {array.dtype} with non-integer values")
    array = array.astype(np.int64)
    high = num_classes if num_classes is not None else math.inf
    if array.min() < 0 or array.max() >= high:
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(
            f"`{name}` must hold class ids {bound}. Received ids from {array.min()} to {array.max()}"
        )
    return array


def check_features(features, name, min_examples=1):
    """Checks `(N, d)` features: at least `min_examples` rows, d >= 1, finite real numbers. Returns them."""
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < min_examples or features.shape[1] < 1:
        raise ValueError(
            f"`{name}` must have shape (num_examples >= {min_examples}, num_features >= 1). "
            f"Received shape {features.shape}"
        )
    statistics = image_statistics(features)
    if statistics is None or statistics[1]:
        detail = f"dtype {features.dtype}" if statistics is None else f"{statistics[1]} NaN or infinite value(s)"
        raise ValueError(f"`{name}` must be finite real numbers. Received {detail}")
    return features


def warn_if_few_examples(count, num_features, what, stacklevel=3):
    """Warns (`SmallSampleWarning`) when `count` examples are fewer than `num_features` dimensions."""
    if count < num_features:
        warnings.warn(
            f"{what} from {int(count)} images, fewer than the {int(num_features)} feature dimensions: "
            f"the estimate is unreliable. Use at least {int(num_features)} images per set.",
            SmallSampleWarning,
            stacklevel=stacklevel,
        )


# ------------------------------------------------------------------- models


def check_model(model, methods=(), attributes=(), name="model", built=False):
    """Checks that `model` is a keras_avae model with the callable `methods` and the `attributes`.

    Args:
        model: the object.
        methods: names of methods it must have.
        attributes: names of attributes it must have.
        name: the argument's name, for the message.
        built: whether it must also be built.

    Returns:
        `model`.
    """
    missing = [m for m in methods if not callable(getattr(model, m, None))]
    missing += [a for a in attributes if not hasattr(model, a)]
    if missing:
        needs = ", ".join(f"`{n}`" for n in (*methods, *attributes))
        raise ValueError(
            f"`{name}` must be a keras_avae model with {needs}; {type(model).__name__} lacks {missing}."
        )
    if built and not getattr(model, "built", False):
        raise ValueError(f"`{name}` must be built: fit it or call it on data first.")
    return model
