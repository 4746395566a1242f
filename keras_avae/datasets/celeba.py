"""CelebA faces with the 17 binary attributes of the AVAE experiments.

Cemgil et al. (NeurIPS 2020) train on 64x64 CelebA faces and probe the
representation with 17 binary classification tasks (Table 3, Appendix H),
chosen to leave out sensitive or subjective attributes. `CELEBA_ATTRIBUTES`
lists them under the paper's names, in Table 3's order, and
`TFDS_ATTRIBUTE_KEYS` maps each to its column of CelebA's `list_attr_celeba.txt`
(the keys of the tensorflow-datasets `celeb_a` builder's `attributes`
feature). CelebA annotates "No_Beard", so the paper's "Beard" task is its
negation: beard = 1 - No_Beard (see `INVERTED_ATTRIBUTES`).

Images are the 218x178 aligned-and-cropped CelebA photos. As is usual for
64x64 CelebA VAEs, a 140x140 square is cut from the centre and resized to
`image_size` (the preprocessing of Tolstikhin et al., "Wasserstein
Auto-Encoders", ICLR 2018, Section 4, reused by e.g. Ghosh et al.,
"From Variational to Deterministic Autoencoders", ICLR 2020). The paper itself
does not state its crop.

CelebA is read from a local tensorflow-datasets data directory and never
downloaded, because the machines that build and test this project have no
network; see `celeba` for how to prepare one.
"""

import os

import numpy as np
import tensorflow as tf

from keras_avae.validation import check_positive_int, is_integer

CELEBA_DIR_ENV_VAR = "KERAS_AVAE_CELEBA_DIR"
"""Environment variable naming the tfds data directory, used when `data_dir` is None."""

TFDS_NAME = "celeb_a"
"""Name of the tensorflow-datasets builder that reads CelebA."""

SPLITS = ("train", "validation", "test")
"""Valid `split` values: CelebA's official partition (`list_eval_partition.txt`)."""

CELEBA_ATTRIBUTES = (
    "Bald",
    "Mustache",
    "Eyeglasses",
    "Necklace",
    "Smiling",
    "Lipstick",
    "Bangs",
    "Black Hair",
    "Blond Hair",
    "Brown Hair",
    "Gender",
    "Beard",
    "Straight Hair",
    "Wavy Hair",
    "Earrings",
    "Hat",
    "Necktie",
)
"""The 17 downstream tasks of Table 3, under the paper's names and in its order."""

TFDS_ATTRIBUTE_KEYS = {
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
"""Paper name -> CelebA / tfds attribute key. "Gender" is 1 for "Male"."""

INVERTED_ATTRIBUTES = frozenset({"Beard"})
"""Paper names whose label is 1 - the CelebA attribute: beard = not No_Beard."""

# The aligned-and-cropped CelebA images (`img_align_celeba`) are 218 x 178.
ALIGNED_HEIGHT = 218
ALIGNED_WIDTH = 178
NUM_CHANNELS = 3

CROP_SIZE = 140
"""Side of the centre square cut from each aligned image (Tolstikhin et al., 2018)."""

# Top-left corner of the centre crop: (39, 19).
CROP_TOP = (ALIGNED_HEIGHT - CROP_SIZE) // 2
CROP_LEFT = (ALIGNED_WIDTH - CROP_SIZE) // 2

IMAGE_SIZE = 64
"""Default side of the returned square images, as in the paper's CelebA networks."""

BATCH_SIZE = 64
"""Default batch size of `celeba_dataset`."""

SHUFFLE_BUFFER = 10_000
"""Default number of (still JPEG-encoded) examples `celeba_dataset` shuffles among."""

_ARRAY_BATCH_SIZE = 256  # batch size `celeba` reads with, to fill its arrays.
_MAX_PIXEL_VALUE = 255.0

_RAW_FILES = (
    "img_align_celeba.zip",
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "list_landmarks_align_celeba.txt",
    "identity_CelebA.txt",
)


def celeba(
    split="train",
    data_dir=None,
    image_size=IMAGE_SIZE,
    limit=None,
    attributes=CELEBA_ATTRIBUTES,
):
    """Load a CelebA split as NumPy arrays: centre-cropped faces and 0/1 labels.

    Examples come in the prepared tfds data's order (fixed, not sorted by file
    name). Each image is the `CROP_SIZE` x `CROP_SIZE` centre of the aligned
    218x178 photo, resized (bilinear, antialiased) to `image_size` on each side.
    The whole result is held in memory: the full training split at 64x64 takes
    about 8 GB, so pass `limit` or use `celeba_dataset` for training at scale.

    The data are read from a tensorflow-datasets data directory in which the
    `celeb_a` builder has been prepared: `data_dir` if given, else the
    directory named by the environment variable `KERAS_AVAE_CELEBA_DIR` (an
    empty value counts as unset), else the tfds default
    (`~/tensorflow_datasets`, or `$TFDS_DATA_DIR`). Nothing is downloaded. To
    prepare the directory, download from
    http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html the aligned images
    `img_align_celeba.zip` and the annotation files `list_eval_partition.txt`,
    `list_attr_celeba.txt`, `list_landmarks_align_celeba.txt` and
    `identity_CelebA.txt` into one folder `MANUAL_DIR`, then run
    `tfds build celeb_a --data_dir=DATA_DIR --manual_dir=MANUAL_DIR`, or in
    Python `tfds.builder("celeb_a", data_dir=DATA_DIR).download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=MANUAL_DIR))`.
    (tensorflow-datasets 4.9.10 needs `pip install importlib_resources` for
    that step; tensorflow/datasets#11212.)

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        data_dir: optional tfds data directory (str or `os.PathLike`), the
            folder that holds `celeb_a/<version>/`.
        image_size: positive int, the side of the returned square images.
        limit: optional positive int; keep only the first `limit` examples
            (the whole split if it has fewer). Only those are read.
        attributes: sequence of names from `CELEBA_ATTRIBUTES` to return
            labels for; may be empty.

    Returns:
        `(x, labels)`: `x` is float32 `(N, image_size, image_size, 3)` in
        [0, 1]; `labels` maps each name in `attributes` to an int64 `(N,)`
        array of 0/1, where 1 means the face has the attribute ("Gender" is
        1 for male, "Beard" is 1 where CelebA's `No_Beard` is 0).

    Raises:
        ValueError: a bad `split`, `image_size`, `limit` or `attributes`, or
            prepared data with unexpected image shapes.
        FileNotFoundError: no prepared `celeb_a` data in the data directory;
            the message says how to prepare it.

    Example:
        x, labels = celeba("test", data_dir="~/tensorflow_datasets", limit=1000)
        smiling = labels["Smiling"]
    """
    attributes = _check_args(split, image_size, limit, attributes)
    builder = _prepared_builder(data_dir)
    split_spec = _split_spec(builder, split, limit)
    num_examples = builder.info.splits[split_spec].num_examples

    x = np.empty((num_examples, image_size, image_size, NUM_CHANNELS), np.float32)
    labels = {name: np.empty((num_examples,), np.int64) for name in attributes}
    dataset = _pipeline(
        builder,
        split_spec,
        image_size,
        attributes,
        batch_size=_ARRAY_BATCH_SIZE,
        shuffle=False,
        seed=None,
        shuffle_buffer=None,
        drop_remainder=False,
    )
    # Fill preallocated arrays batch by batch, so no second copy of the split is made.
    start = 0
    for batch in dataset.as_numpy_iterator():
        images, batch_labels = batch if attributes else (batch, {})
        stop = start + len(images)
        x[start:stop] = images
        for name in attributes:
            labels[name][start:stop] = batch_labels[name]
        start = stop
    if start != num_examples:
        raise ValueError(
            f"CelebA {split_spec!r} in {builder.data_dir!r} yielded {start} "
            f"examples, but its metadata lists {num_examples}."
        )
    return x, labels


def celeba_dataset(
    split="train",
    data_dir=None,
    image_size=IMAGE_SIZE,
    limit=None,
    attributes=CELEBA_ATTRIBUTES,
    batch_size=BATCH_SIZE,
    shuffle=False,
    seed=None,
    shuffle_buffer=SHUFFLE_BUFFER,
    drop_remainder=False,
):
    """A batched `tf.data.Dataset` of CelebA, for training on the whole set.

    Applies the same crop, resize and labels as `celeba` (see there for the
    data directory and how to prepare it), but streams the examples: JPEGs
    are shuffled while still encoded, and only the centre crop of each is
    decoded.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        data_dir: optional tfds data directory; see `celeba`.
        image_size: positive int, the side of the square images.
        limit: optional positive int; use only the first `limit` examples.
        attributes: sequence of names from `CELEBA_ATTRIBUTES`. If empty, the
            dataset yields images alone.
        batch_size: positive int.
        shuffle: whether to shuffle the files and the examples (anew on each
            pass).
        seed: optional int seeding the shuffles.
        shuffle_buffer: positive int, examples in the shuffle buffer.
        drop_remainder: whether to drop a last, smaller batch.

    Returns:
        A `tf.data.Dataset` of `(x, labels)` with `x` float32
        `(batch, image_size, image_size, 3)` in [0, 1] and `labels` a dict of
        int64 `(batch,)` 0/1 tensors; of `x` alone if `attributes` is empty.
        `VAE.fit` ignores the labels.

    Raises:
        ValueError: a bad argument, or prepared data with unexpected image
            shapes.
        FileNotFoundError: no prepared `celeb_a` data in the data directory.

    Example:
        train = celeba_dataset("train", attributes=(), batch_size=64, shuffle=True)
        vae.fit(train, epochs=10)
    """
    attributes = _check_args(split, image_size, limit, attributes)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(shuffle_buffer, "shuffle_buffer")
    if seed is not None and not is_integer(seed):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    builder = _prepared_builder(data_dir)
    return _pipeline(
        builder,
        _split_spec(builder, split, limit),
        image_size,
        attributes,
        batch_size=int(batch_size),
        shuffle=bool(shuffle),
        seed=None if seed is None else int(seed),
        shuffle_buffer=int(shuffle_buffer),
        drop_remainder=bool(drop_remainder),
    )


def _missing_data_message(data_dir):
    """What to do when no prepared CelebA is found under `data_dir`."""
    return (
        f"No prepared CelebA (tensorflow-datasets `{TFDS_NAME}`) found in "
        f"{data_dir!r}. Download the aligned images and annotations "
        f"({', '.join(_RAW_FILES)}) from "
        "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into a folder "
        "MANUAL_DIR, then run `tfds build celeb_a --data_dir=DATA_DIR "
        "--manual_dir=MANUAL_DIR` (or `tfds.builder('celeb_a', data_dir=DATA_DIR)"
        ".download_and_prepare(download_config=tfds.download.DownloadConfig("
        "manual_dir=MANUAL_DIR))`; tensorflow-datasets 4.9.10 also needs "
        "`pip install importlib_resources` for this). Then pass `data_dir=DATA_DIR` "
        f"or set the environment variable {CELEBA_DIR_ENV_VAR}=DATA_DIR."
    )


def _check_args(split, image_size, limit, attributes):
    """Check the arguments shared by both loaders; return `attributes` as a tuple."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    check_positive_int(image_size, "image_size")
    if limit is not None and (not is_integer(limit) or limit <= 0):
        raise ValueError(
            f"`limit` must be a positive integer or None. Received: limit={limit!r}"
        )
    if isinstance(attributes, str) or not isinstance(attributes, (list, tuple)):
        raise ValueError(
            "`attributes` must be a list or tuple of names from CELEBA_ATTRIBUTES. "
            f"Received: attributes={attributes!r}"
        )
    unknown = [name for name in attributes if name not in TFDS_ATTRIBUTE_KEYS]
    if unknown:
        raise ValueError(
            f"Unknown CelebA attributes {unknown}; expected names from "
            f"CELEBA_ATTRIBUTES: {CELEBA_ATTRIBUTES}."
        )
    if len(set(attributes)) != len(attributes):
        raise ValueError(
            f"`attributes` has repeated names. Received: attributes={attributes!r}"
        )
    return tuple(attributes)


def _resolve_data_dir(data_dir):
    """The tfds data directory from `data_dir` or the environment, or None (tfds default)."""
    if data_dir is None:
        data_dir = os.environ.get(CELEBA_DIR_ENV_VAR) or None
    if data_dir is None:
        return None
    return os.path.expanduser(os.fspath(data_dir))


def _prepared_builder(data_dir):
    """The `celeb_a` builder over a prepared data directory, else FileNotFoundError."""
    resolved = _resolve_data_dir(data_dir)
    if resolved is not None and not os.path.isdir(resolved):
        raise FileNotFoundError(_missing_data_message(resolved))
    import tensorflow_datasets as tfds  # here, so `import keras_avae` does not load it

    builder = tfds.builder(TFDS_NAME, data_dir=resolved)
    if not builder.is_prepared():
        raise FileNotFoundError(_missing_data_message(os.fspath(builder.data_dir)))
    image_shape = tuple(builder.info.features["image"].shape)
    if image_shape != (ALIGNED_HEIGHT, ALIGNED_WIDTH, NUM_CHANNELS):
        raise ValueError(
            f"CelebA in {os.fspath(builder.data_dir)!r} has images of shape "
            f"{image_shape}; expected the aligned "
            f"{(ALIGNED_HEIGHT, ALIGNED_WIDTH, NUM_CHANNELS)}."
        )
    return builder


def _split_spec(builder, split, limit):
    """The tfds split string, e.g. `"train[:100]"`, so only `limit` examples are read.

    tfds refuses a slice longer than the split, so `limit` is first capped at
    the split's size.
    """
    if limit is None:
        return split
    return f"{split}[:{min(int(limit), builder.info.splits[split].num_examples)}]"


def _crop_and_resize(encoded_jpeg, image_size):
    """Decode the centre `CROP_SIZE` square of a JPEG and resize it, in [0, 1]."""
    crop_window = [CROP_TOP, CROP_LEFT, CROP_SIZE, CROP_SIZE]
    image = tf.io.decode_and_crop_jpeg(encoded_jpeg, crop_window, channels=NUM_CHANNELS)
    image = tf.cast(image, tf.float32) / _MAX_PIXEL_VALUE
    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    # The antialiased bilinear kernel is non-negative, so this only trims rounding.
    return tf.clip_by_value(image, 0.0, 1.0)


def _labels(example_attributes, attributes):
    """The int64 0/1 label of each requested attribute, inverting `INVERTED_ATTRIBUTES`."""
    labels = {}
    for name in attributes:
        value = tf.cast(example_attributes[TFDS_ATTRIBUTE_KEYS[name]], tf.int64)
        labels[name] = 1 - value if name in INVERTED_ATTRIBUTES else value
    return labels


def _pipeline(
    builder,
    split_spec,
    image_size,
    attributes,
    batch_size,
    shuffle,
    seed,
    shuffle_buffer,
    drop_remainder,
):
    """Read, (optionally) shuffle, crop, resize and batch one split."""
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(shuffle_seed=seed) if seed is not None else None
    dataset = builder.as_dataset(
        split=split_spec,
        shuffle_files=shuffle,
        read_config=read_config,
        # Keep the JPEG bytes, so the shuffle buffer is small and only the crop is decoded.
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def prepare(example):
        x = _crop_and_resize(example["image"], image_size)
        if not attributes:
            return x
        return x, _labels(example["attributes"], attributes)

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
