"""Tests for keras_avae/figures.py."""

import json

import matplotlib.image
import numpy as np
import pytest

from keras_avae import VAE, architectures, figures
from keras_avae.figures import (
    ADVERSARIAL_PAIRS_PER_ROW,
    ADVERSARIAL_PANEL_INCHES,
    CURVE_FIGSIZE,
    DPI,
    IMAGE_INCHES,
    MAX_ADVERSARIAL_EXAMPLES,
    MAX_IMAGES,
    MIN_PANEL_INCHES,
    PAD_VALUE,
    PADDING,
    TITLE_INCHES,
    accuracy_vs_epsilon,
    accuracy_vs_rho,
    adversarial_examples,
    encode_decode_chain,
    encode_decode_chains,
    reconstruction_grid,
    sample_grid,
)

IMAGE_SHAPE = (28, 28, 3)
NUM_IMAGES = 3
# A blank figure has one colour; text alone gives a few dozen antialiased greys,
# while the random test images give thousands.
MIN_COLORS = 10
MIN_IMAGE_COLORS = 1000
TOO_MANY_EXAMPLES_SHAPE = (MAX_ADVERSARIAL_EXAMPLES + 1, 4, 4, 3)
# Two results in the `AdversarialEvaluator.evaluate` layout, {task: {epsilon: accuracy}}.
VAE_RESULTS = {"digit": {0.0: 0.97, 0.1: 0.12, 0.2: 0.01}, "color": {0.0: 1.0, 0.1: 0.4}}
AVAE_RESULTS = {"digit": {0.0: 0.95, 0.1: 0.81, 0.2: 0.55}, "color": {0.0: 1.0, 0.1: 0.99}}
RESULTS_BY_RHO = {
    0.9: {"digit": {0.0: 0.96, 0.1: 0.5}},
    0.975: {"digit": {0.0: 0.95, 0.1: 0.8}},
    0.95: {"digit": {0.0: 0.95, 0.1: 0.7}},
}


def _tiny_vae(seed):
    encoder, decoder = architectures.mlp(
        latent_dim=4, input_shape=IMAGE_SHAPE, hidden_units=8, hidden_layers=1
    )
    vae = VAE(encoder, decoder, seed=seed, name=f"vae_{seed}")
    vae.build((None,) + IMAGE_SHAPE)
    return vae


@pytest.fixture(scope="module")
def vaes():
    return _tiny_vae(0), _tiny_vae(1)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((NUM_IMAGES,) + IMAGE_SHAPE, dtype=np.float32)


def _read_png(path, expected_inches=None):
    """The PNG at `path` as an (h, w, 4) array, checked not to be blank."""
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[-1] in (3, 4)
    assert image.std() > 0
    colors = np.unique(image.reshape(-1, image.shape[-1]), axis=0)
    assert len(colors) >= MIN_COLORS
    if expected_inches is not None:
        width, height = expected_inches
        assert image.shape[:2] == (round(height * DPI), round(width * DPI))
    return image


def _num_colors(image):
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


def _has_coloured_pixels(image):
    """Whether some pixel is neither white, black nor grey (R, G, B not all equal)."""
    rgb = image[..., :3]
    return bool(np.any(np.ptp(rgb, axis=-1) > 0.2))


# ------------------------------------------------------------------- chains


def test_chain_iterates_reconstruct(vaes, x):
    vae, _ = vaes
    chain = encode_decode_chain(vae, x, steps=3)
    assert chain.shape == (4,) + x.shape and chain.dtype == np.float32
    np.testing.assert_array_equal(chain[0], x)
    for t in range(3):
        np.testing.assert_allclose(chain[t + 1], np.asarray(vae.reconstruct(chain[t])), atol=1e-6)


def test_encode_decode_chains_draws_one_block_per_model(vaes, x, tmp_path):
    path = encode_decode_chains(
        list(vaes), x, steps=4, path=tmp_path / "chains.png", titles=["VAE", "AVAE"]
    )
    assert path == str(tmp_path / "chains.png")
    height = 2 * (IMAGE_INCHES * NUM_IMAGES + TITLE_INCHES)
    image = _read_png(path, expected_inches=(IMAGE_INCHES * 5 + TITLE_INCHES, height))
    assert _num_colors(image) >= MIN_IMAGE_COLORS


def test_encode_decode_chains_takes_one_model_and_makes_folders(vaes, x, tmp_path):
    vae, _ = vaes
    path = encode_decode_chains(vae, x[:1], steps=1, path=tmp_path / "a" / "b" / "c.png")
    _read_png(path, expected_inches=(IMAGE_INCHES * 2 + TITLE_INCHES, IMAGE_INCHES + TITLE_INCHES))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"models": []}, "`models` must hold at least one model"),
        ({"models": [object()]}, r"`models\[0\]` must be a keras_avae model with `reconstruct`"),
        ({"titles": ["only one"]}, "`titles` must have one title per model: 2 models, 1 titles"),
        ({"titles": "VAE"}, "`titles` must be a list of strings or None"),
        ({"steps": 0}, "`steps` must be an integer >= 1"),
        (
            {"x": np.zeros((2, 28, 28))},
            r"`x` must be a non-empty \(n, height, width, channels\) array",
        ),
        ({"x": np.zeros((0, 28, 28, 3))}, "`x` must be a non-empty"),
        ({"x": np.full((1, 28, 28, 3), np.nan)}, "`x` holds NaN or infinite pixels"),
        ({"steps": MAX_IMAGES}, rf"len\(x\) \* \(steps \+ 1\) = {NUM_IMAGES * (MAX_IMAGES + 1)}"),
        ({"path": 3}, "`path` must be a str or os.PathLike"),
    ],
)
def test_encode_decode_chains_bad_arguments(vaes, x, tmp_path, kwargs, match):
    arguments = {"models": list(vaes), "x": x, "steps": 2, "path": tmp_path / "c.png", **kwargs}
    with pytest.raises(ValueError, match=match):
        encode_decode_chains(**arguments)


# -------------------------------------------------------------- accuracies


def test_accuracy_vs_epsilon(tmp_path):
    results = {"VAE": VAE_RESULTS, "AVAE": AVAE_RESULTS}
    path = accuracy_vs_epsilon(results, "digit", tmp_path / "epsilon.png")
    image = _read_png(path, expected_inches=CURVE_FIGSIZE)
    assert _has_coloured_pixels(image)


def test_accuracy_vs_epsilon_reads_json_radii(tmp_path):
    # Results read back from JSON without `results_from_json` have string radii.
    results = {"AVAE": json.loads(json.dumps(AVAE_RESULTS))}
    assert "0.1" in results["AVAE"]["digit"]
    _read_png(accuracy_vs_epsilon(results, "color", tmp_path / "json.png"))


@pytest.mark.parametrize(
    "results, task, match",
    [
        ({}, "digit", "`results_by_model` must be a non-empty dict"),
        (
            {"VAE": VAE_RESULTS, "SE": {"color": {0.0: 1.0}}},
            "digit",
            r"results_by_model\['SE'\] has no task 'digit'",
        ),
        ({"VAE": {"digit": {0.1: 97.0}}}, "digit", r"Accuracies must be fractions in \[0, 1\]"),
        ({"VAE": {"digit": {}}}, "digit", "must be a non-empty dict epsilon -> accuracy"),
        ({"VAE": {"digit": {"big": 0.5}}}, "digit", "must be a number. Received: 'big'"),
        ({"VAE": {"digit": {0.1: float("nan")}}}, "digit", "must be finite"),
    ],
)
def test_accuracy_vs_epsilon_bad_results(tmp_path, results, task, match):
    with pytest.raises(ValueError, match=match):
        accuracy_vs_epsilon(results, task, tmp_path / "bad.png")


@pytest.mark.parametrize("epsilon", [0.1, [0.0, 0.1], "0.1"])
def test_accuracy_vs_rho(tmp_path, epsilon):
    path = accuracy_vs_rho(RESULTS_BY_RHO, "digit", epsilon, tmp_path / "rho.png")
    image = _read_png(path, expected_inches=CURVE_FIGSIZE)
    assert _has_coloured_pixels(image)


@pytest.mark.parametrize(
    "results, epsilon, match",
    [
        (RESULTS_BY_RHO, 0.3, r"has no accuracy at epsilon=0.3; it has radii \[0.0, 0.1\]"),
        (RESULTS_BY_RHO, [], "`epsilon` must be a radius or a non-empty list"),
        ({1.5: {"digit": {0.1: 0.5}}}, 0.1, r"rho must be in \[-1, 1\]"),
        ({"rho": {"digit": {0.1: 0.5}}}, 0.1, "rho\\) must be a number"),
        ({0.9: {"color": {0.1: 0.5}}}, 0.1, r"results_by_rho\[0.9\] has no task 'digit'"),
    ],
)
def test_accuracy_vs_rho_bad_arguments(tmp_path, results, epsilon, match):
    with pytest.raises(ValueError, match=match):
        accuracy_vs_rho(results, "digit", epsilon, tmp_path / "bad.png")


# ------------------------------------------------------------- image grids


def test_tile_places_images_on_a_padded_grid():
    images = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 3, 1), np.float32)
    mosaic = figures._tile(images, columns=3)
    assert mosaic.shape == (2 * (2 + PADDING) + PADDING, 3 * (3 + PADDING) + PADDING, 1)
    for index in range(5):
        row, column = divmod(index, 3)
        top, left = PADDING + row * (2 + PADDING), PADDING + column * (3 + PADDING)
        np.testing.assert_array_equal(mosaic[top : top + 2, left : left + 3], index)
    # The sixth cell, and the gaps, are background.
    assert np.all(mosaic[PADDING + 2 + PADDING :, PADDING + 2 * (3 + PADDING) :] == PAD_VALUE)
    assert np.all(mosaic[:, 0] == PAD_VALUE)


def test_reconstruction_grid(vaes, x, tmp_path):
    vae, _ = vaes
    path = reconstruction_grid(vae, x, tmp_path / "reconstructions.png")
    # 3 images: a 2 x 2 grid in each of the two panels.
    image = _read_png(path, expected_inches=(2 * MIN_PANEL_INCHES, IMAGE_INCHES * 2 + TITLE_INCHES))
    assert _num_colors(image) >= MIN_IMAGE_COLORS


def test_sample_grid(vaes, tmp_path):
    vae, _ = vaes
    # 4 samples in 2 columns get the least width, so the title fits.
    path = sample_grid(vae, 4, tmp_path / "samples.png")
    _read_png(path, expected_inches=(MIN_PANEL_INCHES, IMAGE_INCHES * 2 + TITLE_INCHES))
    # Wide grids grow past the least width: 16 samples in 4 columns.
    path = sample_grid(vae, 16, tmp_path / "samples_16.png")
    _read_png(path, expected_inches=(IMAGE_INCHES * 4, IMAGE_INCHES * 4 + TITLE_INCHES))


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda vae, x, p: reconstruction_grid(object(), x, p),
            "`model` must be a keras_avae model with `reconstruct`",
        ),
        (lambda vae, x, p: reconstruction_grid(vae, x[0], p), r"Received shape \(28, 28, 3\)"),
        (lambda vae, x, p: sample_grid(vae, 0, p), "`n` must be an integer >= 1"),
        (lambda vae, x, p: sample_grid(vae, 2.0, p), "`n` must be an integer >= 1"),
        (lambda vae, x, p: sample_grid(vae, MAX_IMAGES + 1, p), f"at most {MAX_IMAGES} are drawn"),
        (
            lambda vae, x, p: sample_grid(x, 4, p),
            "`model` must be a keras_avae model with `sample`",
        ),
    ],
)
def test_grid_bad_arguments(vaes, x, tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(vaes[0], x, tmp_path / "bad.png")


# ---------------------------------------------------- adversarial examples


def test_adversarial_examples_with_scores_and_names(x, tmp_path):
    rng = np.random.default_rng(1)
    x_adversarial = np.clip(x + rng.uniform(-0.1, 0.1, x.shape), 0, 1).astype(np.float32)
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 1.0, 0.0]])
    labels = np.array([0, 1, 2])
    path = adversarial_examples(
        x, x_adversarial, logits, labels, tmp_path / "adversarial.png",
        class_names=["red", "green", "blue"],
    )
    image = _read_png(path)
    assert _num_colors(image) >= MIN_IMAGE_COLORS
    assert _has_coloured_pixels(image)


def test_adversarial_examples_grey_images_and_ids(tmp_path):
    x = np.random.default_rng(2).random((6, 8, 8), dtype=np.float32)
    labels = np.zeros(6, np.int64)
    path = adversarial_examples(x, 1 - x, np.arange(6), labels, tmp_path / "grey.png")
    # 6 pairs: two rows of ADVERSARIAL_PAIRS_PER_ROW pairs, each pair two panels.
    image = _read_png(
        path,
        expected_inches=(
            2 * ADVERSARIAL_PANEL_INCHES * ADVERSARIAL_PAIRS_PER_ROW,
            2 * (IMAGE_INCHES + TITLE_INCHES),
        ),
    )
    # The images are grey; the titles are coloured (one decision kept, five changed).
    assert _has_coloured_pixels(image)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x_adversarial": np.zeros((3, 28, 28, 1))}, "`x_adversarial` must have the shape of `x`"),
        (
            {"predictions": np.array([0, 1])},
            r"`predictions` must be \(3,\) class ids or \(3, num_classes\) scores",
        ),
        (
            {"labels": np.zeros((3, 2))},
            r"`labels` must be \(3,\) class ids. Received shape \(3, 2\)",
        ),
        ({"labels": np.array([0, -1, 2])}, "`labels` holds a negative class id"),
        ({"predictions": np.array([0.5, 1, 2])}, "`predictions` must be"),
        ({"class_names": ["a", "b"]}, "`class_names` has 2 names but class id 2 occurs"),
        (
            {"x": np.zeros(TOO_MANY_EXAMPLES_SHAPE),
             "x_adversarial": np.zeros(TOO_MANY_EXAMPLES_SHAPE)},
            f"pass at most {MAX_ADVERSARIAL_EXAMPLES}",
        ),
    ],
)
def test_adversarial_examples_bad_arguments(x, tmp_path, kwargs, match):
    arguments = {
        "x": x,
        "x_adversarial": x,
        "predictions": np.array([0, 1, 2]),
        "labels": np.array([0, 1, 2]),
        "path": tmp_path / "bad.png",
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        adversarial_examples(**arguments)
