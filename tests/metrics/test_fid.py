"""Tests for keras_avae/metrics/fid.py: the Frechet distance, feature extraction and the FID metric."""

import keras
import numpy as np
import pytest
import scipy.linalg

from keras_avae.metrics import fid as fid_module
from keras_avae.metrics.fid import (
    FID,
    ImageFeatures,
    frechet_distance,
    gaussian_statistics,
    inception_preprocess,
)

DIM = 3


def _identity_extractor(dim=DIM):
    """An identity-like extractor: small vector "images" are their own features."""
    return keras.Sequential([keras.Input((dim,)), keras.layers.Identity()], name="identity")


def _random_covariance(rng, dim, rank=None):
    factor = rng.normal(size=(dim, rank or dim))
    return factor @ factor.T / dim + (0.1 * np.eye(dim) if rank is None else 0.0)


def _frechet_by_eigenvalues(mu1, cov1, mu2, cov2):
    """Re-derivation: Tr((S1 S2)^(1/2)) = sum of sqrt(eigenvalues of S1^(1/2) S2 S1^(1/2))."""
    root1 = scipy.linalg.sqrtm(cov1).real
    eigenvalues = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    trace_root = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
    diff = mu1 - mu2
    return diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_root


def _stub_inception(weights):
    """Stands in for InceptionV3: the mean of each channel of its (299, 299, 3) input."""
    del weights
    return keras.Sequential(
        [keras.Input((299, 299, 3)), keras.layers.GlobalAveragePooling2D()], name="stub_inception"
    )


@pytest.fixture
def stub_inception(monkeypatch, tmp_path):
    """Replaces InceptionV3 by `_stub_inception`; returns the path of a (dummy) weights file."""
    monkeypatch.setattr(fid_module, "_inception_v3", _stub_inception)
    path = tmp_path / "inception.weights.h5"
    path.write_bytes(b"")
    return str(path)


# --- frechet_distance --------------------------------------------------------


def test_diagonal_gaussians_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_full_covariances_match_the_eigenvalue_derivation():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    cov1, cov2 = _random_covariance(rng, 5), _random_covariance(rng, 5)
    expected = _frechet_by_eigenvalues(mu1, cov1, mu2, cov2)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)


def test_a_gaussian_is_at_distance_zero_from_itself():
    rng = np.random.default_rng(1)
    mu, cov = rng.normal(size=4), _random_covariance(rng, 4)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-10


def test_near_singular_covariances_stay_finite():
    # Covariances of 5 samples in 10 dimensions have rank 4: cov1 @ cov2 is singular.
    rng = np.random.default_rng(2)
    cov1 = np.cov(rng.normal(size=(5, 10)), rowvar=False)
    cov2 = np.cov(rng.normal(size=(5, 10)), rowvar=False)
    mu = np.zeros(10)
    distance = frechet_distance(mu, cov1, mu, cov2)
    assert np.isfinite(distance)
    # The eps * I offset moves the result by O(sqrt(eps)) per null direction.
    assert distance == pytest.approx(_frechet_by_eigenvalues(mu, cov1, mu, cov2), abs=0.05)
    # Zero covariances: the offset leaves -2 d eps, as in pytorch-fid.
    zero = np.zeros((10, 10))
    assert frechet_distance(mu, zero, mu, zero) == pytest.approx(-2 * 10 * 1e-6, abs=1e-9)


def test_large_imaginary_parts_raise_and_name_their_size():
    # cov1 is not positive semi-definite: its square root has an imaginary diagonal entry of 1.
    with pytest.raises(ValueError, match=r"imaginary parts up to 1 on its diagonal"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), {}, "`mu1` and `mu2` must have the same length"),
        ((np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2)), {}, "`mu1` must be a non-empty vector"),
        ((np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), {}, r"`cov1` must have shape \(2, 2\)"),
        ((np.zeros(2), np.eye(2), np.zeros(2), np.ones(2)), {}, r"`cov2` must have shape \(2, 2\)"),
        ((np.array([0.0, np.nan]), np.eye(2), np.zeros(2), np.eye(2)), {}, "`mu1` contains NaN"),
        ((np.zeros(2), np.diag([np.inf, 1.0]), np.zeros(2), np.eye(2)), {}, "`cov1` contains NaN"),
        ((np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)), {"eps": 0.0}, "`eps` must be a finite number > 0"),
        (
            (np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)),
            {"imaginary_tolerance": -1.0},
            "`imaginary_tolerance` must be a number >= 0",
        ),
    ],
)
def test_frechet_distance_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(*args, **kwargs)


# --- FID metric with an identity extractor -------------------------------------


def test_two_samples_of_one_gaussian_are_near_zero():
    rng = np.random.default_rng(3)
    fid = FID(feature_extractor=_identity_extractor(), data_range=None)
    fid.update_state(rng.normal(size=(4000, DIM)), rng.normal(size=(4000, DIM)))
    # Sampling error alone: of order DIM^2 / N.
    assert 0.0 <= fid.result() < 0.01


def test_shifted_gaussians_match_the_closed_form():
    rng = np.random.default_rng(4)
    mu1, mu2 = np.zeros(DIM), np.array([1.0, -2.0, 0.5])
    scales1, scales2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, 1.5])
    real = mu1 + scales1 * rng.normal(size=(20000, DIM))
    generated = mu2 + scales2 * rng.normal(size=(20000, DIM))
    fid = FID(feature_extractor=_identity_extractor(), data_range=None, batch_size=4096)
    fid.update_state(real, generated)
    # Exactly the distance between the samples' Gaussians ...
    exact = frechet_distance(*gaussian_statistics(real), *gaussian_statistics(generated))
    assert fid.result() == pytest.approx(exact, rel=1e-9)
    # ... and, within sampling error, the population closed form (the
    # estimated mean difference alone has a standard error of about 0.07).
    closed_form = np.sum((mu1 - mu2) ** 2) + np.sum((scales1 - scales2) ** 2)
    assert fid.result() == pytest.approx(closed_form, abs=0.3)


def test_a_set_against_itself_is_zero():
    x = np.random.default_rng(5).normal(size=(500, DIM)) * [1.0, 3.0, 0.1] + 7.0
    fid = FID(feature_extractor=_identity_extractor(), data_range=None)
    fid.update_state(x, x)
    assert abs(fid.result()) < 1e-9


def test_several_batches_equal_one_batch():
    rng = np.random.default_rng(6)
    real, generated = rng.normal(size=(103, DIM)), rng.normal(size=(91, DIM)) + 0.3
    whole = FID(feature_extractor=_identity_extractor(), data_range=None, batch_size=1000)
    whole.update_state(real, generated)
    pieces = FID(feature_extractor=_identity_extractor(), data_range=None, batch_size=7)
    for start in range(0, 103, 40):
        pieces.update_state(real[start : start + 40], None)
    pieces.update_state(None, generated[:50])
    pieces.update_state(None, generated[50:])
    assert pieces.result() == pytest.approx(whole.result(), rel=1e-10)
    for which, x in (("real", real), ("generated", generated)):
        x = x.astype(np.float32).astype(np.float64)  # the extractor works in float32
        mean, covariance = pieces.statistics(which)
        np.testing.assert_allclose(mean, x.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(covariance, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)


def test_state_is_float64_sums_that_reset():
    fid = FID(feature_extractor=_identity_extractor(), data_range=None)
    assert sorted(tuple(v.shape) for v in fid.variables) == [(), (), (DIM,), (DIM,), (DIM, DIM), (DIM, DIM)]
    assert {v.dtype for v in fid.variables} == {"float64"}
    fid.update_state(np.ones((4, DIM)), np.zeros((4, DIM)))
    fid.reset_state()
    assert all(not np.any(v.numpy()) for v in fid.variables)
    with pytest.raises(ValueError, match="FID needs at least 2 real images.*it has seen 0"):
        fid.result()


def test_extractor_name_and_config_round_trip():
    fid = FID(feature_extractor=_identity_extractor(), data_range=None, batch_size=8)
    assert fid.extractor_name == "identity (Sequential)"
    restored = FID.from_config(fid.get_config())
    assert restored.extractor_name == fid.extractor_name
    assert restored.get_config()["batch_size"] == 8


def test_images_are_checked_against_the_data_range():
    fid = FID(feature_extractor=_identity_extractor())
    with pytest.raises(ValueError, match=r"Bad `generated_images`: inputs span .* outside the declared data_range"):
        fid.update_state(np.full((2, DIM), 0.5), np.full((2, DIM), 255.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"feature_extractor": "inception"}, "`feature_extractor` must be a keras.Model"),
        ({"feature_extractor": _identity_extractor(), "weights": "w.h5"}, "Pass either `feature_extractor` or `weights`"),
        ({"weights": "/no/such/file.h5"}, "`weights` must be None or 'imagenet' .* Received: weights='/no/such/file.h5'"),
        ({"weights": 3}, "`weights` must be None or 'imagenet'"),
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
        ({"eps": -1.0}, "`eps` must be a finite number > 0"),
        ({"data_range": (1.0, 0.0)}, "`data_range` must satisfy low < high"),
        ({"data_range": None}, "InceptionV3 needs the pixel range"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FID(**kwargs)


def test_extractor_must_output_a_feature_vector():
    image_to_image = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Identity()])
    with pytest.raises(ValueError, match=r"`feature_extractor` must be a built model with one output of shape \(batch, num_features\)"):
        FID(feature_extractor=image_to_image)


def test_update_state_rejects_bad_arguments():
    fid = FID(feature_extractor=_identity_extractor(), data_range=None)
    with pytest.raises(ValueError, match="Pass `real_images`, `generated_images` or both"):
        fid.update_state(None, None)
    with pytest.raises(ValueError, match="FID takes no `sample_weight`"):
        fid.update_state(np.zeros((2, DIM)), np.zeros((2, DIM)), sample_weight=np.ones(2))
    with pytest.raises(ValueError, match="`real_images` must be a non-empty batch of images"):
        fid.update_state(np.zeros((0, DIM)), None)
    with pytest.raises(ValueError, match="`which` must be 'real' or 'generated'"):
        fid.statistics("fake")


# --- InceptionV3 path ----------------------------------------------------------


def test_inception_preprocessing_resizes_repeats_and_scales_to_minus_one_one():
    grey = np.stack([np.full((6, 6, 1), v, np.float32) for v in (0.0, 0.5, 1.0)])
    prepared = inception_preprocess(grey, (0.0, 1.0)).numpy()
    assert prepared.shape == (3, 299, 299, 3)
    np.testing.assert_allclose(prepared[0], -1.0, atol=1e-6)
    np.testing.assert_allclose(prepared[1], 0.0, atol=1e-6)
    np.testing.assert_allclose(prepared[2], 1.0, atol=1e-6)
    uint8_scale = inception_preprocess(np.full((1, 8, 8, 3), 51.0), (0.0, 255.0)).numpy()
    np.testing.assert_allclose(uint8_scale, 51.0 / 127.5 - 1.0, atol=1e-6)


def test_inception_path_feeds_preprocessed_images_to_the_network(stub_inception):
    features = ImageFeatures(weights=stub_inception, batch_size=2)
    assert features.name == f"InceptionV3 pool3 (weights: {stub_inception})"
    colour = np.zeros((3, 5, 5, 3), np.float32)
    colour[:, :, :, 0] = np.array([0.0, 0.5, 1.0])[:, None, None]
    colour[:, :, :, 2] = 1.0
    np.testing.assert_allclose(features(colour), [[-1, -1, 1], [0, -1, 1], [1, -1, 1]], atol=1e-5)
    fid = FID(weights=stub_inception)
    assert fid.extractor_name == features.name
    fid.update_state(colour, colour[::-1])
    # 0 but for the eps offset (-2 d eps): 3 images give singular covariances.
    assert abs(fid.result()) < 1e-5


def test_inception_needs_image_shaped_inputs(stub_inception):
    features = ImageFeatures(weights=stub_inception)
    with pytest.raises(ValueError, match=r"`images` must have shape \(num_images, height, width, 1 or 3\)"):
        features(np.zeros((2, 5, 5, 2), np.float32))


def test_missing_imagenet_weights_say_what_to_pass(monkeypatch):
    def offline(weights):
        raise Exception(f"URL fetch failure on https://storage.googleapis.com/{weights}: None -- no network")

    monkeypatch.setattr(fid_module, "_inception_v3", offline)
    message = (
        r"Could not load the ImageNet InceptionV3 weights .*URL fetch failure.*\)\. "
        r"Pass `weights=` the path of a local InceptionV3 weights file \(no top\), "
        r"or a `feature_extractor` model\."
    )
    with pytest.raises(RuntimeError, match=message):
        FID()
    with pytest.raises(RuntimeError, match=message):
        FID(weights="imagenet")


@pytest.mark.large
def test_inception_v3_loads_a_local_weights_file_and_runs(tmp_path, images):
    # Random weights (no download); the file is ~90 MB.
    path = str(tmp_path / "inception_v3_notop.weights.h5")
    keras.applications.InceptionV3(
        weights=None, include_top=False, pooling="avg", input_shape=(299, 299, 3)
    ).save_weights(path)
    fid = FID(weights=path, batch_size=4)
    assert fid.extractor_name == f"InceptionV3 pool3 (weights: {path})"
    fid.update_state(images[:4], images[4:8])
    for which in ("real", "generated"):
        mean, covariance = fid.statistics(which)
        assert mean.shape == (2048,) and covariance.shape == (2048, 2048)
        assert np.isfinite(mean).all() and np.isfinite(covariance).all()
    # `result()` itself is not run: scipy's sqrtm of a 2048 x 2048 matrix takes
    # tens of seconds on two CPU cores; `frechet_distance` is tested above.
