"""Tests for keras_avae/metrics/sensitivity.py, on linear encoders where the worst case is known.

For f^mu(x) = W x (no clipping), max_{||d||_inf <= eps} ||W d||_2 is eps * ||w||_1
for a single row w (the corner sign(w)) and eps * sqrt(d) for W = I; a random
corner moves an identity encoder by exactly eps * sqrt(d) too.
"""

import keras
import numpy as np
import pytest

import keras_avae
from keras_avae.evaluation import representation_sensitivity
from keras_avae.evaluation.sensitivity import centroid_distance

INPUT_DIM = 6
EPSILON = 0.1


def _linear_vae(mean_map, data_range=None):
    """A VAE whose encoder mean is `mean_map @ x` (log-variance 0); the decoder is irrelevant here."""
    latent_dim = mean_map.shape[0]
    encoder = keras.Sequential([keras.Input((INPUT_DIM,)), keras.layers.Dense(2 * latent_dim)])
    kernel = np.concatenate([mean_map.T, np.zeros((INPUT_DIM, latent_dim))], axis=1)
    encoder.layers[0].set_weights([kernel, np.zeros(2 * latent_dim)])
    decoder = keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(INPUT_DIM)])
    model = keras_avae.VAE(encoder, decoder, data_range=data_range, seed=0)
    model(np.zeros((1, INPUT_DIM), np.float32))
    return model


def _inputs(n=40, seed=0):
    return np.random.default_rng(seed).normal(size=(n, INPUT_DIM)).astype(np.float32)


def test_one_row_encoder_shift_is_epsilon_times_l1_norm():
    w = np.array([[1.0, -2.0, 0.5, 3.0, -0.25, 1.5]])
    result = representation_sensitivity(_linear_vae(w), _inputs(), EPSILON, steps=5)
    assert result["shift"] == pytest.approx(EPSILON * np.abs(w).sum(), rel=1e-4)
    # A random corner can only do as well as the worst one, and here does worse on average.
    assert result["random_shift"] < result["shift"]


def test_identity_encoder_shift_is_epsilon_sqrt_d_for_worst_and_random_corners():
    result = representation_sensitivity(_linear_vae(np.eye(INPUT_DIM)), _inputs(), EPSILON)
    assert result["shift"] == pytest.approx(EPSILON * np.sqrt(INPUT_DIM), rel=1e-4)
    assert result["random_shift"] == pytest.approx(EPSILON * np.sqrt(INPUT_DIM), rel=1e-4)


def test_zero_radius_moves_nothing():
    result = representation_sensitivity(_linear_vae(np.eye(INPUT_DIM)), _inputs(), 0.0)
    assert result["shift"] == 0.0 and result["random_shift"] == 0.0


def test_data_range_clips_the_perturbation():
    # Every pixel at the top of [0, 1]: only the downward half of the ball is reachable,
    # and for w >= 0 the attack pushes every pixel down by the full radius.
    x = np.ones((8, INPUT_DIM), np.float32)
    w = np.ones((1, INPUT_DIM))
    result = representation_sensitivity(_linear_vae(w, data_range=(0.0, 1.0)), x, EPSILON)
    assert result["shift"] == pytest.approx(EPSILON * INPUT_DIM, rel=1e-4)
    # A random corner is clipped back wherever its sign is +, so it moves about half as far.
    assert result["random_shift"] < 0.8 * result["shift"]


def test_centroid_distance_and_ratio_per_task():
    x = np.zeros((20, INPUT_DIM), np.float32)
    x[10:, 0], x[10:, 1] = 3.0, 4.0  # class 1's centre is 5 away from class 0's
    labels = {"task": np.repeat([0, 1], 10), "half": np.tile([0, 1], 10)}
    result = representation_sensitivity(_linear_vae(np.eye(INPUT_DIM)), x, EPSILON, labels=labels)
    assert result["centroid_distance"]["task"] == pytest.approx(5.0)
    assert result["shift_ratio"]["task"] == pytest.approx(EPSILON * np.sqrt(INPUT_DIM) / 5.0, rel=1e-4)
    # Alternating labels split both groups evenly: equal centres, no separation to cross.
    assert result["centroid_distance"]["half"] == pytest.approx(0.0, abs=1e-6)
    assert result["shift_ratio"]["half"] == np.inf


def test_centroid_distance_is_the_median_over_class_pairs():
    features = np.array([[0.0], [1.0], [3.0]])  # pair distances 1, 3, 2
    assert centroid_distance(features, np.array([0, 1, 2])) == pytest.approx(2.0)


def test_batching_does_not_change_the_result():
    # One row: every start climbs to a corner worth eps * ||w||_1, so the starts drawn per batch do not matter.
    model = _linear_vae(np.random.default_rng(1).normal(size=(1, INPUT_DIM)))
    whole = representation_sensitivity(model, _inputs(), EPSILON, batch_size=64)
    batched = representation_sensitivity(model, _inputs(), EPSILON, batch_size=7)
    assert whole["shift"] == pytest.approx(batched["shift"], rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilon": -0.1}, "`epsilon` must be a finite number >= 0"),
        ({"epsilon": float("nan")}, "`epsilon` must be a finite number >= 0"),
        ({"steps": 0}, "`steps` must be an integer >= 1"),
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
        ({"seed": 1.5}, "`seed` must be an int"),
        ({"labels": {"task": np.zeros(3, int)}}, "labels"),
        ({"labels": {"task": np.zeros(40, int)}}, "at least two classes"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"epsilon": EPSILON, **kwargs}
    with pytest.raises(ValueError, match=message):
        representation_sensitivity(_linear_vae(np.eye(INPUT_DIM)), _inputs(), **arguments)


def test_bad_inputs_and_models_are_named():
    model = _linear_vae(np.eye(INPUT_DIM), data_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="outside the declared data_range"):
        representation_sensitivity(model, _inputs() + 5.0, EPSILON)
    x = np.full((4, INPUT_DIM), 0.5, np.float32)
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        representation_sensitivity(model, x, EPSILON)
    with pytest.raises(ValueError, match=r"`x` has examples of shape \(5,\); the model takes \(6,\)"):
        representation_sensitivity(model, x[:, :5], EPSILON)
    with pytest.raises(ValueError, match="encode_mean"):
        representation_sensitivity(object(), x, EPSILON)
