"""Tests for keras_avae/metrics/kid.py: the unbiased polynomial-kernel MMD and the KID metric."""

import keras
import numpy as np
import pytest

from keras_avae.metrics.fid import ImageFeatures
from keras_avae.metrics.kid import KID, kernel_inception_distance, polynomial_mmd2

DIM = 3


def _identity_extractor(dim=DIM):
    return keras.Sequential([keras.Input((dim,)), keras.layers.Identity()], name="identity")


def _reference_mmd2(x, y, unbiased=True):
    """Binkowski et al.'s estimator written out pair by pair."""
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    if unbiased:
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    else:
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m)) / m**2
        yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n)) / n**2
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_matches_the_pairwise_reference(unbiased):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, DIM)), rng.normal(size=(5, DIM)) + 0.5
    assert polynomial_mmd2(x, y, unbiased=unbiased) == pytest.approx(_reference_mmd2(x, y, unbiased), rel=1e-12)


def test_unbiased_estimator_averages_to_zero_where_the_biased_one_is_positive():
    # Two samples of one distribution, many times: MMD^2 = 0 in expectation.
    rng = np.random.default_rng(1)
    trials = 400
    unbiased, biased = np.empty(trials), np.empty(trials)
    for t in range(trials):
        x, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
        unbiased[t] = polynomial_mmd2(x, y)
        biased[t] = polynomial_mmd2(x, y, unbiased=False)
    standard_error = unbiased.std() / np.sqrt(trials)
    assert abs(unbiased.mean()) < 3 * standard_error
    assert biased.mean() > 10 * biased.std() / np.sqrt(trials)


def test_kid_over_one_full_subset_is_the_mmd_of_the_sets():
    rng = np.random.default_rng(2)
    real, generated = rng.normal(size=(12, DIM)), rng.normal(size=(12, DIM)) * 2.0
    mean, std = kernel_inception_distance(real, generated, subsets=1, subset_size=12)
    assert mean == pytest.approx(_reference_mmd2(real, generated), rel=1e-12)
    assert std == 0.0


def test_kid_averages_over_the_documented_random_subsets():
    rng = np.random.default_rng(3)
    real, generated = rng.normal(size=(30, DIM)), rng.normal(size=(25, DIM)) + 0.2
    subsets, subset_size, seed = 5, 8, 11
    draw = np.random.default_rng(seed)
    expected = []
    for _ in range(subsets):
        r = real[draw.choice(len(real), subset_size, replace=False)]
        g = generated[draw.choice(len(generated), subset_size, replace=False)]
        expected.append(_reference_mmd2(r, g))
    mean, std = kernel_inception_distance(real, generated, subsets, subset_size, seed)
    assert mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert std == pytest.approx(np.std(expected), rel=1e-8)


def test_kid_separates_shifted_distributions():
    rng = np.random.default_rng(4)
    same, _ = kernel_inception_distance(rng.normal(size=(200, DIM)), rng.normal(size=(200, DIM)), 20, 100)
    shifted, std = kernel_inception_distance(rng.normal(size=(200, DIM)), rng.normal(size=(200, DIM)) + 1.0, 20, 100)
    assert abs(same) < 0.05
    assert shifted > 0.5 and shifted > 3 * std


# --- KID metric ----------------------------------------------------------------


def test_metric_equals_the_function_on_the_raw_features():
    rng = np.random.default_rng(5)
    real, generated = rng.normal(size=(40, DIM)), rng.normal(size=(30, DIM)) + 0.5
    kid = KID(feature_extractor=_identity_extractor(), data_range=None, subsets=4, subset_size=10, seed=3, batch_size=7)
    kid.update_state(real[:25], generated)
    kid.update_state(real[25:], None)
    assert isinstance(kid.features, ImageFeatures)
    assert kid.extractor_name == "identity (Sequential)"
    np.testing.assert_array_equal(kid.stored_features("real"), real.astype(np.float32))
    expected = kernel_inception_distance(real.astype(np.float32), generated.astype(np.float32), 4, 10, 3)
    assert kid.result_and_std() == pytest.approx(expected, rel=1e-12)
    assert kid.result() == pytest.approx(expected[0], rel=1e-12)
    assert kid.result() == kid.result()  # seeded: repeated calls agree


def test_reset_state_forgets_the_features():
    kid = KID(feature_extractor=_identity_extractor(), data_range=None, subset_size=2)
    kid.update_state(np.zeros((4, DIM)), np.ones((4, DIM)))
    kid.reset_state()
    assert kid.stored_features("real").shape == (0, DIM)
    with pytest.raises(ValueError, match=r"`real_features` must have shape \(num_examples >= 2"):
        kid.result()


def test_config_round_trip():
    kid = KID(feature_extractor=_identity_extractor(), data_range=None, subsets=3, subset_size=5, seed=7)
    restored = KID.from_config(kid.get_config())
    assert {k: v for k, v in restored.get_config().items() if k != "feature_extractor"} == {
        k: v for k, v in kid.get_config().items() if k != "feature_extractor"
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"subsets": 0}, "`subsets` must be an integer >= 1"),
        ({"subset_size": 1}, "`subset_size` must be an integer >= 2"),
        ({"subset_size": 2.5}, "`subset_size` must be an integer >= 2"),
        ({"seed": "0"}, "`seed` must be an int"),
        ({"batch_size": -1}, "`batch_size` must be an integer >= 1"),
        ({"feature_extractor": "identity"}, "`feature_extractor` must be a keras.Model"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, match):
    kwargs = {"feature_extractor": _identity_extractor(), "data_range": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        KID(**kwargs)


def test_functions_reject_bad_arguments():
    x = np.zeros((5, DIM))
    with pytest.raises(ValueError, match=r"`subset_size` must be at most the number of examples of each set \(5 real, 5 generated\)"):
        kernel_inception_distance(x, x, subsets=1, subset_size=6)
    with pytest.raises(ValueError, match="`x` and `y` must have the same number of features"):
        polynomial_mmd2(x, np.zeros((5, DIM + 1)))
    with pytest.raises(ValueError, match="`unbiased` must be True or False"):
        polynomial_mmd2(x, x, unbiased=1)
    with pytest.raises(ValueError, match=r"`y` must have shape \(num_examples >= 2"):
        polynomial_mmd2(x, np.zeros((1, DIM)))
    with pytest.raises(ValueError, match="`generated_features` must be finite real numbers"):
        kernel_inception_distance(x, np.full((5, DIM), np.nan), subsets=1, subset_size=2)
    kid = KID(feature_extractor=_identity_extractor(), data_range=None, subset_size=2)
    with pytest.raises(ValueError, match="Pass `real_images`, `generated_images` or both"):
        kid.update_state(None, None)
    with pytest.raises(ValueError, match="KID takes no `sample_weight`"):
        kid.update_state(x, x, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="`which` must be 'real' or 'generated'"):
        kid.stored_features("both")
