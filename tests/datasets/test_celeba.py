"""Tests for keras_avae/datasets/celeba.py.

The fake CelebA is prepared the way a user prepares the real one: raw files
in CelebA's own formats (a zip of 218x178 JPEGs under `img_align_celeba/`,
`list_eval_partition.txt`, `list_attr_celeba.txt` with +1/-1 columns,
`list_landmarks_align_celeba.txt`, `identity_CelebA.txt`) are written to
`tmp_path`, and tensorflow-datasets' own `celeb_a` builder turns them into its
on-disk format (`celeb_a/2.1.0/` with tfrecord shards and dataset_info.json)
with `download_and_prepare`. Only `DownloadManager.download` is replaced, to
hand the builder the local files instead of fetching its Google Drive URLs
(whose registered checksums the fake files cannot match).
"""

import importlib
import importlib.resources
import sys
import zipfile
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.datasets.celeb_a import celeb_a_dataset_builder

from keras_avae import VAE
from keras_avae.datasets.celeba import (
    CELEBA_ATTRIBUTES,
    CELEBA_DIR_ENV_VAR,
    CROP_LEFT,
    CROP_SIZE,
    CROP_TOP,
    INVERTED_ATTRIBUTES,
    SPLITS,
    TFDS_ATTRIBUTE_KEYS,
    celeba,
    celeba_dataset,
)

# Examples per split of the fake CelebA (partition ids 0, 1, 2).
SPLIT_SIZES = {"train": 5, "validation": 3, "test": 2}
NUM_EXAMPLES = sum(SPLIT_SIZES.values())
ALIGNED_SHAPE = (218, 178, 3)
# The 140x140 centre square of a 218x178 image starts at row 39, column 19.
# The fake images are drawn from these numbers, not from the module's constants,
# so a wrong crop in the module shows up in the pixels.
EXPECTED_TOP, EXPECTED_LEFT, EXPECTED_CROP = 39, 19, 140
# Example i's centre square is this solid colour; the border around it is its
# complement, so any border pixel that leaked into the crop would show.
CENTRE_COLORS = np.array(
    [(30 + 20 * i, 220 - 15 * i, 60 + 10 * (i % 4)) for i in range(NUM_EXAMPLES)],
    dtype=np.uint8,
)
# JPEG (quality 95, no chroma subsampling) moves pixels next to the square's
# edges by a few levels (3 seen); 8 levels of 255 is well above that, and far
# below the gap between the colours, or between a colour and the border, so a
# crop a pixel or two off shows. (With 4:2:0 chroma subsampling the border
# bleeds ~35 levels into the outer pixels.)
PIXEL_TOLERANCE = 8 / 255
JPEG_QUALITY = 95

# The paper's 17 tasks and CelebA's columns, written out by hand from Table 3.
EXPECTED_KEYS = {
    "Bald": "Bald",
    "Mustache": "Mustache",
    "Eyeglasses": "Eyeglasses",
    "Necklace": "Wearing_Necklace",
    "Smiling": "Smiling",
    "Lipstick": "Wearing_Lipstick",
    "Bangs": "Bangs",
    "Black Hair": "Black_Hair",
    "Blond Hair": "Blond_Hair",
    "Brown Hair": "Brown_Hair",
    "Gender": "Male",
    "Beard": "No_Beard",
    "Straight Hair": "Straight_Hair",
    "Wavy Hair": "Wavy_Hair",
    "Earrings": "Wearing_Earrings",
    "Hat": "Wearing_Hat",
    "Necktie": "Wearing_Necktie",
}
_RAW_FILES = {
    "img_align_celeba": "img_align_celeba.zip",
    "list_eval_partition": "list_eval_partition.txt",
    "list_attr_celeba": "list_attr_celeba.txt",
    "landmarks_celeba": "list_landmarks_align_celeba.txt",
    "identity_celeba": "identity_CelebA.txt",
}


def _file_name(i):
    return f"{i + 1:06d}.jpg"


def _fake_image(i):
    """A 218x178 image: the centre crop window in colour i, the rest its complement."""
    image = np.empty(ALIGNED_SHAPE, np.uint8)
    image[...] = 255 - CENTRE_COLORS[i]
    rows = slice(EXPECTED_TOP, EXPECTED_TOP + EXPECTED_CROP)
    columns = slice(EXPECTED_LEFT, EXPECTED_LEFT + EXPECTED_CROP)
    image[rows, columns] = CENTRE_COLORS[i]
    return image


def _fake_attributes():
    """`(NUM_EXAMPLES, 40)` +1/-1 CelebA attributes, seeded, both signs in every column."""
    signs = np.where(np.random.default_rng(0).random((NUM_EXAMPLES, 40)) < 0.5, -1, 1)
    signs[0], signs[1] = 1, -1  # every column takes both values
    return signs


def _write_raw_celeba(raw_dir):
    """Write the five CelebA files in their original formats; return the attribute table."""
    raw_dir.mkdir(parents=True)
    names = [_file_name(i) for i in range(NUM_EXAMPLES)]
    partition = np.repeat(np.arange(len(SPLITS)), [SPLIT_SIZES[s] for s in SPLITS])
    with zipfile.ZipFile(raw_dir / _RAW_FILES["img_align_celeba"], "w") as archive:
        for i, name in enumerate(names):
            jpeg = tf.io.encode_jpeg(
                _fake_image(i), quality=JPEG_QUALITY, chroma_downsampling=False
            ).numpy()
            archive.writestr(f"img_align_celeba/{name}", jpeg)
    (raw_dir / _RAW_FILES["list_eval_partition"]).write_text(
        "".join(f"{name} {part}\n" for name, part in zip(names, partition))
    )
    signs = _fake_attributes()
    headings = celeb_a_dataset_builder.ATTR_HEADINGS
    (raw_dir / _RAW_FILES["list_attr_celeba"]).write_text(
        f"{NUM_EXAMPLES}\n"
        + " ".join(headings)
        + "\n"
        + "".join(
            f"{name} " + " ".join(f"{s:2d}" for s in row) + "\n"
            for name, row in zip(names, signs)
        )
    )
    landmarks = celeb_a_dataset_builder.LANDMARK_HEADINGS
    (raw_dir / _RAW_FILES["landmarks_celeba"]).write_text(
        f"{NUM_EXAMPLES}\n"
        + " ".join(landmarks)
        + "\n"
        + "".join(f"{name} " + " ".join(["70"] * len(landmarks)) + "\n" for name in names)
    )
    (raw_dir / _RAW_FILES["identity_celeba"]).write_text(
        "".join(f"{name} {i}\n" for i, name in enumerate(names))
    )
    return {
        i: {key: int(sign > 0) for key, sign in zip(headings, signs[i])}
        for i in range(NUM_EXAMPLES)
    }


@pytest.fixture(scope="module")
def fake_celeba(tmp_path_factory):
    """A prepared tfds `celeb_a` data dir of NUM_EXAMPLES fake faces, and their attributes.

    Returns:
        `(data_dir, attributes)`: `attributes[i][tfds_key]` is example i's 0/1 value.
    """
    root = tmp_path_factory.mktemp("celeba")
    raw_dir, data_dir = root / "raw", root / "tensorflow_datasets"
    attributes = _write_raw_celeba(raw_dir)

    def local_download(self, url_or_urls):
        return {key: raw_dir / _RAW_FILES[key] for key in url_or_urls}

    with pytest.MonkeyPatch.context() as patch:
        # tensorflow-datasets 4.9.10 imports `importlib_resources` while preparing
        # but declares it only for Python < 3.9 (tensorflow/datasets#11212); the
        # standard library's `importlib.resources` has the one name it uses.
        try:
            importlib.import_module("importlib_resources")
        except ImportError:
            patch.setitem(sys.modules, "importlib_resources", importlib.resources)
        with mock.patch.object(tfds.download.DownloadManager, "download", local_download):
            tfds.builder("celeb_a", data_dir=data_dir).download_and_prepare(
                download_config=tfds.download.DownloadConfig(
                    compute_stats=tfds.download.ComputeStatsMode.SKIP
                )
            )
    return data_dir, attributes


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch):
    """Keep a caller's KERAS_AVAE_CELEBA_DIR out of every test."""
    monkeypatch.delenv(CELEBA_DIR_ENV_VAR, raising=False)


def _example_ids(x):
    """Which fake example each image is, from its mean colour (checked to be exact)."""
    mean_colors = x.mean(axis=(1, 2)) * 255
    distances = np.abs(mean_colors[:, None, :] - CENTRE_COLORS[None].astype(np.float64))
    ids = distances.max(axis=-1).argmin(axis=-1)
    np.testing.assert_array_less(distances.max(axis=-1).min(axis=-1), 255 * PIXEL_TOLERANCE)
    return ids


def _split_ids(split):
    start = sum(SPLIT_SIZES[s] for s in SPLITS[: SPLITS.index(split)])
    return set(range(start, start + SPLIT_SIZES[split]))


# ------------------------------------------------------------------ constants


def test_attribute_table_matches_the_paper():
    assert len(CELEBA_ATTRIBUTES) == 17
    assert CELEBA_ATTRIBUTES == tuple(EXPECTED_KEYS)
    assert TFDS_ATTRIBUTE_KEYS == EXPECTED_KEYS
    assert INVERTED_ATTRIBUTES == {"Beard"}
    assert set(TFDS_ATTRIBUTE_KEYS.values()) <= set(celeb_a_dataset_builder.ATTR_HEADINGS)


def test_crop_is_the_centre_square():
    assert (CROP_TOP, CROP_LEFT, CROP_SIZE) == (EXPECTED_TOP, EXPECTED_LEFT, EXPECTED_CROP)


# --------------------------------------------------------------------- celeba


@pytest.mark.parametrize("split", SPLITS)
def test_images_are_centre_crops_in_unit_range(fake_celeba, split):
    data_dir, _ = fake_celeba
    x, _ = celeba(split, data_dir=data_dir)
    assert x.shape == (SPLIT_SIZES[split], 64, 64, 3)
    assert x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    ids = _example_ids(x)
    assert set(ids) == _split_ids(split)
    # Every pixel is the centre colour: no border pixel made it into the crop.
    expected = CENTRE_COLORS[ids][:, None, None, :] / 255
    np.testing.assert_allclose(x, np.broadcast_to(expected, x.shape), atol=PIXEL_TOLERANCE)


def test_labels_follow_the_attribute_table(fake_celeba):
    data_dir, attributes = fake_celeba
    x, labels = celeba("train", data_dir=data_dir)
    assert tuple(labels) == CELEBA_ATTRIBUTES
    ids = _example_ids(x)
    for name, tfds_key in EXPECTED_KEYS.items():
        assert labels[name].dtype == np.int64 and labels[name].shape == (len(x),)
        expected = np.array([attributes[i][tfds_key] for i in ids])
        if name == "Beard":
            expected = 1 - expected
        np.testing.assert_array_equal(labels[name], expected, err_msg=name)


def test_beard_is_the_negation_of_no_beard(fake_celeba):
    data_dir, attributes = fake_celeba
    x, labels = celeba("train", data_dir=data_dir, attributes=["Beard", "Gender"])
    ids = _example_ids(x)
    no_beard = np.array([attributes[i]["No_Beard"] for i in ids])
    assert set(no_beard) == {0, 1}  # examples 0 and 1 are in train with both values
    np.testing.assert_array_equal(labels["Beard"], 1 - no_beard)
    np.testing.assert_array_equal(labels["Gender"], [attributes[i]["Male"] for i in ids])


def test_limit_keeps_the_first_examples(fake_celeba):
    data_dir, _ = fake_celeba
    x_all, labels_all = celeba("train", data_dir=data_dir)
    x, labels = celeba("train", data_dir=data_dir, limit=2)
    assert x.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(x, x_all[:2])
    for name in CELEBA_ATTRIBUTES:
        np.testing.assert_array_equal(labels[name], labels_all[name][:2])
    x_big, _ = celeba("train", data_dir=data_dir, limit=1000)
    assert len(x_big) == SPLIT_SIZES["train"]


def test_image_size_and_attribute_subset(fake_celeba):
    data_dir, _ = fake_celeba
    x, labels = celeba("test", data_dir=data_dir, image_size=16, attributes=("Hat", "Bald"))
    assert x.shape == (SPLIT_SIZES["test"], 16, 16, 3)
    assert list(labels) == ["Hat", "Bald"]
    x, labels = celeba("test", data_dir=data_dir, image_size=16, attributes=())
    assert labels == {}


def test_environment_variable_names_the_data_dir(fake_celeba, monkeypatch, tmp_path):
    data_dir, _ = fake_celeba
    monkeypatch.setenv(CELEBA_DIR_ENV_VAR, str(data_dir))
    x, _ = celeba("test")
    assert len(x) == SPLIT_SIZES["test"]
    # An explicit `data_dir` wins over the environment.
    monkeypatch.setenv(CELEBA_DIR_ENV_VAR, str(tmp_path / "elsewhere"))
    x, _ = celeba("test", data_dir=data_dir)
    assert len(x) == SPLIT_SIZES["test"]
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        celeba("test")


@pytest.mark.parametrize("exists", [False, True], ids=["no_dir", "empty_dir"])
def test_missing_data_says_how_to_prepare_it(tmp_path, exists):
    data_dir = tmp_path / "tensorflow_datasets"
    if exists:
        data_dir.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        celeba("train", data_dir=data_dir)
    message = str(error.value)
    assert str(data_dir) in message
    for needed in (
        "img_align_celeba.zip",
        "list_attr_celeba.txt",
        "tfds build celeb_a --data_dir=DATA_DIR --manual_dir=MANUAL_DIR",
        "download_and_prepare",
        CELEBA_DIR_ENV_VAR,
    ):
        assert needed in message
    with pytest.raises(FileNotFoundError, match="No prepared CelebA"):
        celeba_dataset("train", data_dir=data_dir)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "valid"}, r"`split` must be one of \('train', 'validation', 'test'\)"),
        ({"attributes": ["Big Nose"]}, r"Unknown CelebA attributes \['Big Nose'\]"),
        ({"attributes": ["No_Beard"]}, r"Unknown CelebA attributes \['No_Beard'\]"),
        ({"attributes": "Bald"}, "`attributes` must be a list or tuple"),
        ({"attributes": ["Bald", "Bald"]}, "`attributes` has repeated names"),
        ({"limit": 0}, "`limit` must be a positive integer or None"),
        ({"limit": 2.0}, "`limit` must be a positive integer or None"),
        ({"image_size": 0}, "`image_size` must be an integer >= 1"),
        ({"image_size": True}, "`image_size` must be an integer >= 1"),
    ],
)
def test_bad_arguments_raise_before_reading(tmp_path, kwargs, match):
    # The directory is missing too: the argument error must come first.
    kwargs = {"data_dir": tmp_path / "missing", **kwargs}
    with pytest.raises(ValueError, match=match):
        celeba(**kwargs)
    with pytest.raises(ValueError, match=match):
        celeba_dataset(**kwargs)


# ------------------------------------------------------------- celeba_dataset


def test_dataset_matches_the_arrays(fake_celeba):
    data_dir, _ = fake_celeba
    x, labels = celeba("train", data_dir=data_dir)
    dataset = celeba_dataset("train", data_dir=data_dir, batch_size=2)
    assert dataset.element_spec[0].shape.as_list() == [None, 64, 64, 3]
    batches = list(dataset.as_numpy_iterator())
    assert [len(images) for images, _ in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([images for images, _ in batches]), x)
    for name in CELEBA_ATTRIBUTES:
        streamed = np.concatenate([batch_labels[name] for _, batch_labels in batches])
        np.testing.assert_array_equal(streamed, labels[name])


def test_dataset_shuffles_reproducibly(fake_celeba):
    data_dir, _ = fake_celeba

    def ids(dataset):
        return np.concatenate([_example_ids(b) for b in dataset.as_numpy_iterator()])

    kwargs = {"data_dir": data_dir, "attributes": (), "batch_size": 5, "shuffle": True}
    first = ids(celeba_dataset("train", seed=3, **kwargs))
    assert sorted(first) == sorted(_split_ids("train"))
    np.testing.assert_array_equal(ids(celeba_dataset("train", seed=3, **kwargs)), first)


def test_dataset_shuffle_changes_the_order_and_reshuffles_each_epoch(fake_celeba):
    """The shuffle test above would pass with no shuffle at all; this one would not."""
    data_dir, _ = fake_celeba

    def ids(dataset):
        return tuple(np.concatenate([_example_ids(b) for b in dataset.as_numpy_iterator()]))

    kwargs = {"data_dir": data_dir, "attributes": (), "batch_size": 5}
    unshuffled = ids(celeba_dataset("train", **kwargs))
    dataset = celeba_dataset("train", shuffle=True, seed=3, **kwargs)
    epochs = {ids(dataset) for _ in range(4)}  # iterating again is another epoch
    assert len(epochs) > 1 and any(order != unshuffled for order in epochs)
    assert all(sorted(order) == sorted(unshuffled) for order in epochs)


def test_dataset_images_only_and_drop_remainder(fake_celeba):
    data_dir, _ = fake_celeba
    dataset = celeba_dataset(
        "train", data_dir=data_dir, image_size=8, attributes=(), batch_size=2,
        drop_remainder=True, limit=3,
    )
    assert dataset.element_spec.shape.as_list() == [2, 8, 8, 3]
    assert [b.shape for b in dataset.as_numpy_iterator()] == [(2, 8, 8, 3)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
        ({"shuffle_buffer": -1}, "`shuffle_buffer` must be an integer >= 1"),
        ({"seed": "1"}, "`seed` must be an integer or None"),
    ],
)
def test_dataset_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        celeba_dataset(data_dir=tmp_path, **kwargs)


def test_vae_fits_on_the_dataset_with_labels(fake_celeba, make_networks):
    data_dir, _ = fake_celeba
    image_shape = (8, 8, 3)
    encoder, decoder = make_networks(image_shape=image_shape)
    vae = VAE(encoder, decoder, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)  # the dataset is under test, not XLA
    dataset = celeba_dataset("train", data_dir=data_dir, image_size=8, batch_size=4)
    history = vae.fit(dataset, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
