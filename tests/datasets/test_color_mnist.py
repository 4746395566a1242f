"""Tests for keras_avae/datasets/color_mnist.py."""

from pathlib import Path

import keras
import numpy as np
import pytest

from keras_avae.datasets import color_mnist, load_mnist
from keras_avae.datasets.color_mnist import (
    CHANNEL_MASKS,
    COLOR_NAMES,
    MNIST_PATH_ENV_VAR,
)

# The real MNIST copy, at ../shared/data/mnist.npz from the repository root.
REAL_MNIST_PATH = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist.npz"
# Test-split digit counts for 0..9, from shared/data/README.md.
TEST_DIGIT_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
NUM_COLORS = 7
# On 10000 images a colour's count has std sqrt(10000 * 1/7 * 6/7) ~= 35, i.e. a
# frequency std of 0.0035; 0.02 is more than 5 std.
COLOR_FREQUENCY_TOLERANCE = 0.02
SMALL_TRAIN, SMALL_TEST = 50, 30
# (red, green, blue) channels each colour lights, written out by hand.
EXPECTED_MASKS = {
    "red": [1, 0, 0],
    "green": [0, 1, 0],
    "yellow": [1, 1, 0],
    "blue": [0, 0, 1],
    "magenta": [1, 0, 1],
    "cyan": [0, 1, 1],
    "white": [1, 1, 1],
}


@pytest.fixture(scope="module")
def real_path():
    if not REAL_MNIST_PATH.exists():
        pytest.skip(f"real MNIST not found at {REAL_MNIST_PATH}")
    return REAL_MNIST_PATH


@pytest.fixture(scope="module")
def real_test_split(real_path):
    """The full coloured test split and its grey images, shared by several tests."""
    x, labels = color_mnist("test", path=real_path)
    (_, _), (grey, digits) = load_mnist(real_path)
    return x, labels, grey, digits


def _small_arrays(seed=0):
    """Random uint8 arrays in the mnist.npz layout, small enough to be fast."""
    rng = np.random.default_rng(seed)
    image_shape = (28, 28)
    return {
        "x_train": rng.integers(0, 256, (SMALL_TRAIN,) + image_shape, dtype=np.uint8),
        "y_train": rng.integers(0, 10, SMALL_TRAIN, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (SMALL_TEST,) + image_shape, dtype=np.uint8),
        "y_test": rng.integers(0, 10, SMALL_TEST, dtype=np.uint8),
    }


def _write_npz(tmp_path, arrays, name="mnist.npz"):
    path = tmp_path / name
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def small_path(tmp_path):
    return _write_npz(tmp_path, _small_arrays())


@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt fail the test."""

    def _fail():
        raise AssertionError("keras.datasets.mnist.load_data() was called")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", _fail)


# Real data.


def test_real_shapes_dtypes_and_range(real_path, no_download):
    limit = 1000
    x, labels = color_mnist("test", path=real_path, limit=limit)
    assert x.shape == (limit, 28, 28, 3)
    assert x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(labels) == {"digit", "color"}
    for name in ("digit", "color"):
        assert labels[name].dtype == np.int64
        assert labels[name].shape == (limit,)
    assert labels["color"].min() >= 0 and labels["color"].max() < NUM_COLORS


def test_real_load_mnist_layout(real_path, no_download):
    (x_train, y_train), (x_test, y_test) = load_mnist(real_path)
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8


def test_real_test_digit_counts(real_test_split):
    _, labels, _, digits = real_test_split
    assert labels["digit"].shape == (10000,)
    np.testing.assert_array_equal(np.bincount(labels["digit"]), TEST_DIGIT_COUNTS)
    np.testing.assert_array_equal(labels["digit"], digits)


def test_real_color_frequencies_roughly_uniform(real_test_split):
    _, labels, _, _ = real_test_split
    frequencies = np.bincount(labels["color"], minlength=NUM_COLORS) / len(
        labels["color"]
    )
    assert len(frequencies) == NUM_COLORS
    np.testing.assert_allclose(
        frequencies, 1.0 / NUM_COLORS, atol=COLOR_FREQUENCY_TOLERANCE
    )


def test_real_each_color_mask_exact(real_test_split):
    x, labels, grey, _ = real_test_split
    grey_unit = grey.astype(np.float32) / np.float32(255)
    for color in range(NUM_COLORS):
        chosen = labels["color"] == color
        assert chosen.any(), COLOR_NAMES[color]
        name = COLOR_NAMES[color]
        mask = np.array(EXPECTED_MASKS[name], dtype=np.float32)
        expected = grey_unit[chosen][..., None] * mask
        np.testing.assert_array_equal(x[chosen], expected, err_msg=name)


# Colours.


def test_color_names_and_masks_follow_id_bits():
    assert COLOR_NAMES == ("red", "green", "yellow", "blue", "magenta", "cyan", "white")
    for label in range(NUM_COLORS):
        color_id = label + 1
        expected = [color_id % 2, (color_id // 2) % 2, color_id // 4]
        np.testing.assert_array_equal(CHANNEL_MASKS[label], expected)
        name = COLOR_NAMES[label]
        np.testing.assert_array_equal(CHANNEL_MASKS[label], EXPECTED_MASKS[name])
    assert CHANNEL_MASKS.dtype == np.float32


def test_small_image_is_grey_times_mask(small_path):
    arrays = _small_arrays()
    x, labels = color_mnist("train", path=small_path)
    assert x.shape == (SMALL_TRAIN, 28, 28, 3)
    expected = (arrays["x_train"].astype(np.float32) / np.float32(255))[..., None]
    expected = expected * CHANNEL_MASKS[labels["color"]][:, None, None, :]
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(labels["digit"], arrays["y_train"])


def test_same_seed_same_colors(small_path):
    x_a, labels_a = color_mnist("train", path=small_path, seed=3)
    x_b, labels_b = color_mnist("train", path=small_path, seed=3)
    np.testing.assert_array_equal(labels_a["color"], labels_b["color"])
    np.testing.assert_array_equal(x_a, x_b)


def test_different_seeds_different_colors(small_path):
    _, labels_a = color_mnist("train", path=small_path, seed=0)
    _, labels_b = color_mnist("train", path=small_path, seed=1)
    # Independent draws agree on about 1/7 of the images.
    assert np.mean(labels_a["color"] == labels_b["color"]) < 0.5


def test_train_and_test_colors_differ(tmp_path):
    # Equal split sizes, so only the split seeds the difference.
    arrays = _small_arrays()
    arrays["x_test"], arrays["y_test"] = arrays["x_train"], arrays["y_train"]
    path = _write_npz(tmp_path, arrays)
    _, train_labels = color_mnist("train", path=path)
    _, test_labels = color_mnist("test", path=path)
    assert np.mean(train_labels["color"] == test_labels["color"]) < 0.5


def test_colors_do_not_depend_on_limit(small_path):
    limit = 7
    x_full, labels_full = color_mnist("test", path=small_path)
    x_part, labels_part = color_mnist("test", path=small_path, limit=limit)
    assert x_part.shape == (limit, 28, 28, 3)
    np.testing.assert_array_equal(labels_part["color"], labels_full["color"][:limit])
    np.testing.assert_array_equal(labels_part["digit"], labels_full["digit"][:limit])
    np.testing.assert_array_equal(x_part, x_full[:limit])


def test_limit_above_split_size_keeps_whole_split(small_path):
    x, labels = color_mnist("test", path=small_path, limit=SMALL_TEST + 100)
    assert x.shape[0] == SMALL_TEST and labels["color"].shape == (SMALL_TEST,)


# Path resolution.


def test_env_var_path(monkeypatch, small_path, no_download):
    monkeypatch.setenv(MNIST_PATH_ENV_VAR, str(small_path))
    x, _ = color_mnist("test")
    assert x.shape == (SMALL_TEST, 28, 28, 3)
    (x_train, _), _ = load_mnist()
    np.testing.assert_array_equal(x_train, _small_arrays()["x_train"])


def test_path_argument_beats_env_var(monkeypatch, tmp_path, small_path, no_download):
    monkeypatch.setenv(MNIST_PATH_ENV_VAR, str(tmp_path / "absent.npz"))
    x, _ = color_mnist("train", path=small_path)
    assert x.shape == (SMALL_TRAIN, 28, 28, 3)


def test_no_download_when_path_given(small_path, no_download):
    (x_train, _), (x_test, _) = load_mnist(str(small_path))
    assert x_train.shape == (SMALL_TRAIN, 28, 28)
    assert x_test.shape == (SMALL_TEST, 28, 28)


def test_download_used_without_path(monkeypatch):
    arrays = _small_arrays()
    monkeypatch.setattr(
        keras.datasets.mnist,
        "load_data",
        lambda: (
            (arrays["x_train"], arrays["y_train"]),
            (arrays["x_test"], arrays["y_test"]),
        ),
    )
    x, labels = color_mnist("test")
    assert x.shape == (SMALL_TEST, 28, 28, 3)
    np.testing.assert_array_equal(labels["digit"], arrays["y_test"])


def test_download_failure_says_how_to_pass_a_path(monkeypatch):
    def _offline():
        raise Exception("URL fetch failure")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", _offline)
    with pytest.raises(OSError, match=r"Pass `path=`.*KERAS_AVAE_MNIST_PATH"):
        load_mnist()
    with pytest.raises(OSError, match=r"Could not download MNIST.*URL fetch failure"):
        color_mnist("train")


# Errors.


def test_missing_file(tmp_path, no_download):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match=r"MNIST file not found: .*nowhere"):
        color_mnist("train", path=path)


def test_missing_file_from_env_var(monkeypatch, tmp_path, no_download):
    monkeypatch.setenv(MNIST_PATH_ENV_VAR, str(tmp_path / "env_nowhere.npz"))
    with pytest.raises(FileNotFoundError, match=r"env_nowhere\.npz"):
        load_mnist()


def test_random_bytes_file(tmp_path, no_download):
    path = tmp_path / "garbage.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match=r"garbage\.npz' is not a zip \(\.npz\)"):
        color_mnist("train", path=path)


def test_corrupt_zip_member(tmp_path, no_download):
    path = _write_npz(tmp_path, _small_arrays(), name="truncated.npz")
    data = path.read_bytes()
    # Zero the middle of the compressed data, keeping the zip directory intact.
    middle = len(data) // 2
    path.write_bytes(data[: middle - 200] + bytes(400) + data[middle + 200 :])
    with pytest.raises(ValueError, match=r"truncated\.npz.*could not be read"):
        load_mnist(path)


def test_missing_keys(tmp_path, no_download):
    arrays = _small_arrays()
    del arrays["y_test"]
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(ValueError, match=r"mnist\.npz.* is missing keys \['y_test'\]"):
        load_mnist(path)
    with pytest.raises(ValueError, match=r"missing keys \['y_test'\]"):
        color_mnist("test", path=path)


def test_wrong_keys(tmp_path, no_download):
    path = _write_npz(tmp_path, {"images": np.zeros((2, 28, 28), np.uint8)})
    with pytest.raises(
        ValueError, match=r"missing keys \['x_train', 'y_train'\]; it has \['images'\]"
    ):
        color_mnist("train", path=path)


def test_wrong_image_dtype(tmp_path, no_download):
    arrays = _small_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(
        ValueError,
        match=r"MNIST file .*mnist\.npz.*: `x_train` has dtype float32, expected uint8",
    ):
        color_mnist("train", path=path)


def test_wrong_label_dtype(tmp_path, no_download):
    arrays = _small_arrays()
    arrays["y_test"] = arrays["y_test"].astype(np.int64)
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(ValueError, match=r"`y_test` has dtype int64, expected uint8"):
        load_mnist(path)


def test_wrong_image_shape(tmp_path, no_download):
    arrays = _small_arrays()
    arrays["x_test"] = arrays["x_test"].reshape(SMALL_TEST, 28 * 28)
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(
        ValueError,
        match=r"mnist\.npz.*`x_test` has shape \(30, 784\), expected \(N, 28, 28\)",
    ):
        color_mnist("test", path=path)


def test_wrong_label_shape(tmp_path, no_download):
    arrays = _small_arrays()
    arrays["y_train"] = arrays["y_train"][:, None]
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(
        ValueError, match=r"`y_train` has shape \(50, 1\), expected \(N,\)"
    ):
        load_mnist(path)


def test_label_count_mismatch(tmp_path, no_download):
    arrays = _small_arrays()
    arrays["y_train"] = arrays["y_train"][:-1]
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(
        ValueError, match=r"`x_train` has 50 images but `y_train` has 49 labels"
    ):
        color_mnist("train", path=path)


def test_label_out_of_range(tmp_path, no_download):
    arrays = _small_arrays()
    arrays["y_test"][0] = 10
    path = _write_npz(tmp_path, arrays)
    with pytest.raises(
        ValueError, match=r"`y_test` has label 10, expected digits 0\.\.9"
    ):
        load_mnist(path)


@pytest.mark.parametrize("split", ["validation", "Train", None])
def test_bad_split(small_path, split):
    with pytest.raises(
        ValueError,
        match=rf"`split` must be one of \('train', 'test'\)\. "
        rf"Received: split={split!r}",
    ):
        color_mnist(split, path=small_path)


@pytest.mark.parametrize("limit", [0, -5, 2.5, True])
def test_bad_limit(small_path, limit):
    with pytest.raises(
        ValueError,
        match=rf"`limit` must be a positive integer or None\. "
        rf"Received: limit={limit!r}",
    ):
        color_mnist("train", path=small_path, limit=limit)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed(small_path, seed):
    with pytest.raises(
        ValueError,
        match=rf"`seed` must be a non-negative integer\. Received: seed={seed!r}",
    ):
        color_mnist("train", path=small_path, seed=seed)


def test_bad_split_checked_before_reading(tmp_path, no_download):
    with pytest.raises(ValueError, match=r"Received: split='val'"):
        color_mnist("val", path=tmp_path / "absent.npz")
