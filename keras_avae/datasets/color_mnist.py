"""Colour MNIST: each digit drawn in one of seven colours, as in the AVAE experiments.

Cemgil et al. (NeurIPS 2020) colour every MNIST digit with a random colour id in
1..7 whose three bits switch the red, green and blue channels on:
red = id % 2, green = (id // 2) % 2, blue = id // 4. Id 0 (black) is left out,
so the colour label `id - 1` takes seven values, named in `COLOR_NAMES`.

MNIST is read from a local copy in the `keras.datasets.mnist` `.npz` layout,
because the machines that build and test this project have no network.
"""

import os
import zipfile

import keras
import numpy as np

from keras_avae.validation import is_integer

MNIST_PATH_ENV_VAR = "KERAS_AVAE_MNIST_PATH"
"""Environment variable naming the local `mnist.npz`, used when `path` is None."""

SPLITS = ("train", "test")
"""Valid `split` values; a split's index here also seeds its colour stream."""

COLOR_NAMES = ("red", "green", "yellow", "blue", "magenta", "cyan", "white")
"""Colour names in label order: label `k` is colour id `k + 1`."""

IMAGE_SIZE = 28
NUM_DIGITS = 10
NUM_CHANNELS = 3
MAX_PIXEL_VALUE = 255
FIRST_COLOR_ID = 1  # id 0 would switch every channel off (black on black).
NUM_COLOR_IDS = 2**NUM_CHANNELS  # ids 0..7, one bit per channel.

_MNIST_DTYPE = np.uint8
_IMAGE_KEYS = {"train": "x_train", "test": "x_test"}
_LABEL_KEYS = {"train": "y_train", "test": "y_test"}
_MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")

# CHANNEL_MASKS[color_label, channel] is 1.0 where that colour lights the channel.
_COLOR_IDS = np.arange(FIRST_COLOR_ID, NUM_COLOR_IDS)
CHANNEL_MASKS = (
    (_COLOR_IDS[:, None] >> np.arange(NUM_CHANNELS)[None, :]) & 1
).astype(np.float32)
"""`(7, 3)` float32 channel masks (red, green, blue) in colour-label order."""


def load_mnist(path=None):
    """Load MNIST in the `keras.datasets.mnist.load_data()` layout.

    The file is `path` if given, else the file named by the environment variable
    `KERAS_AVAE_MNIST_PATH` (an empty value counts as unset); only when neither
    is set is MNIST downloaded with `keras.datasets.mnist.load_data()`. Any
    number of images per split is accepted, so small copies work too.

    Args:
        path: optional path (str or `os.PathLike`) to an `.npz` file with uint8
            arrays `x_train` `(N, 28, 28)`, `y_train` `(N,)`, `x_test`
            `(M, 28, 28)` and `y_test` `(M,)`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` uint8 NumPy arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a valid MNIST archive (not a zip, a key
            missing, a wrong dtype, shape or label value).
        OSError: no path was given and the download failed.

    Example:
        (x_train, y_train), (x_test, y_test) = load_mnist("mnist.npz")
    """
    arrays = _read_mnist(path, _MNIST_KEYS)
    return (
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_test"], arrays["y_test"]),
    )


def color_mnist(split="train", path=None, seed=0, limit=None):
    """Colour MNIST digits with random colours, one colour per image.

    Each image gets a colour id in 1..7 drawn uniformly from
    `np.random.default_rng([seed, SPLITS.index(split)])`, so the train and test
    splits get different but reproducible colours. Colours are drawn for the
    whole split before `limit` is applied, so an image's colour does not depend
    on `limit`. The image is `grey / 255` times the colour's channel mask.

    Args:
        split: `"train"` or `"test"`.
        path: optional path to a local `mnist.npz`; see `load_mnist`.
        seed: non-negative int seeding the colour draw.
        limit: optional positive int; keep only the first `limit` examples
            (the whole split if it has fewer).

    Returns:
        `(x, labels)`: `x` is float32 `(N, 28, 28, 3)` in [0, 1]; `labels` is
        `{"digit": int64 (N,), "color": int64 (N,)}`, where the colour label
        indexes `COLOR_NAMES` and `CHANNEL_MASKS`.

    Raises:
        ValueError: a bad `split`, `seed` or `limit`, or an invalid file.
        FileNotFoundError: the MNIST file does not exist.
        OSError: no path was given and the download failed.

    Example:
        x, labels = color_mnist("test", path="mnist.npz", limit=1000)
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    if not is_integer(seed) or seed < 0:
        raise ValueError(
            f"`seed` must be a non-negative integer. Received: seed={seed!r}"
        )
    if limit is not None and (not is_integer(limit) or limit <= 0):
        raise ValueError(
            f"`limit` must be a positive integer or None. Received: limit={limit!r}"
        )

    image_key, label_key = _IMAGE_KEYS[split], _LABEL_KEYS[split]
    arrays = _read_mnist(path, (image_key, label_key))
    grey, digits = arrays[image_key], arrays[label_key]

    rng = np.random.default_rng([seed, SPLITS.index(split)])
    color_ids = rng.integers(FIRST_COLOR_ID, NUM_COLOR_IDS, size=len(grey))
    colors = color_ids - FIRST_COLOR_ID
    if limit is not None:
        grey, digits, colors = grey[:limit], digits[:limit], colors[:limit]

    # Fill one output buffer with grey / 255 in every channel, then mask in place,
    # so no second image-sized float array is made.
    x = np.empty(grey.shape + (NUM_CHANNELS,), dtype=np.float32)
    np.divide(grey[..., None], np.float32(MAX_PIXEL_VALUE), out=x, dtype=np.float32)
    x *= CHANNEL_MASKS[colors][:, None, None, :]
    labels = {"digit": digits.astype(np.int64), "color": colors.astype(np.int64)}
    return x, labels


def _resolve_path(path):
    """Return the MNIST file path from `path` or the environment, or None."""
    if path is None:
        path = os.environ.get(MNIST_PATH_ENV_VAR) or None
    if path is None:
        return None
    return os.path.expanduser(os.fspath(path))


def _read_mnist(path, keys):
    """Read and check the arrays named by `keys`, from a file or a download.

    Args:
        path: the `path` argument of the public loaders, or None.
        keys: which of `x_train`, `y_train`, `x_test`, `y_test` to return.

    Returns:
        A dict from each key to its checked uint8 array.
    """
    resolved = _resolve_path(path)
    if resolved is None:
        source = "download from keras.datasets.mnist.load_data()"
        downloaded = _download_mnist()
        arrays = {key: downloaded[key] for key in keys}
    else:
        source = f"file {resolved!r}"
        arrays = _read_npz(resolved, keys)
    _check_arrays(arrays, source)
    return arrays


def _download_mnist():
    """Download MNIST with Keras, returning a dict of the four arrays."""
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:
        raise OSError(
            "Could not download MNIST with keras.datasets.mnist.load_data() "
            f"({type(error).__name__}: {error}). Pass `path=` to a local "
            f"mnist.npz or set the environment variable {MNIST_PATH_ENV_VAR}."
        ) from error
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _read_npz(path, keys):
    """Read `keys` from the `.npz` file at `path`.

    Args:
        path: path of the `.npz` file.
        keys: names of the arrays to read.

    Returns:
        A dict from each key to its array, not yet checked.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"MNIST file not found: {path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"MNIST file {path!r} is not a zip (.npz) archive.")
    unreadable = (OSError, EOFError, ValueError, zipfile.BadZipFile)
    try:
        archive = np.load(path, allow_pickle=False)
    except unreadable as error:
        raise _unreadable_error(path, error) from error
    with archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(
                f"MNIST file {path!r} is missing keys {missing}; "
                f"it has {sorted(archive.files)}."
            )
        try:
            return {key: archive[key] for key in keys}
        except unreadable as error:
            raise _unreadable_error(path, error) from error


def _unreadable_error(path, error):
    """A ValueError saying that the archive at `path` could not be read."""
    return ValueError(
        f"MNIST file {path!r} could not be read: {type(error).__name__}: {error}"
    )


def _check_arrays(arrays, source):
    """Raise ValueError unless `arrays` follow the `keras.datasets.mnist` layout.

    Args:
        arrays: dict with image keys (`x_*`) and label keys (`y_*`).
        source: where the arrays came from, for error messages
            (`"file '<path>'"` or the download).
    """
    for key, array in arrays.items():
        if array.dtype != _MNIST_DTYPE:
            raise ValueError(
                f"MNIST {source}: `{key}` has dtype {array.dtype}, expected uint8."
            )
        is_images = key.startswith("x_")
        expected_ndim = 3 if is_images else 1
        if array.ndim != expected_ndim or (
            is_images and array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
        ):
            expected = "(N, 28, 28)" if is_images else "(N,)"
            raise ValueError(
                f"MNIST {source}: `{key}` has shape {array.shape}, "
                f"expected {expected}."
            )
        if not is_images and array.size and array.max() >= NUM_DIGITS:
            raise ValueError(
                f"MNIST {source}: `{key}` has label {array.max()}, "
                f"expected digits 0..{NUM_DIGITS - 1}."
            )
    for split in SPLITS:
        image_key, label_key = _IMAGE_KEYS[split], _LABEL_KEYS[split]
        if image_key in arrays and label_key in arrays:
            num_images, num_labels = len(arrays[image_key]), len(arrays[label_key])
            if num_images != num_labels:
                raise ValueError(
                    f"MNIST {source}: `{image_key}` has {num_images} images "
                    f"but `{label_key}` has {num_labels} labels."
                )
