"""Tests for keras_avae/validation.py: each check returns the canonical value or raises a ValueError naming
the argument, what it expects and what it received (the checks on every model and metric path:
tests/test_bad_inputs.py)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_avae import validation


@pytest.mark.parametrize(
    "check, value, expected, kind",
    [
        (validation.check_rho, np.float32(0.5), 0.5, float),
        (validation.check_rho, -0.999, -0.999, float),
        (lambda v: validation.check_integer(v, "n", minimum=2), np.int64(2), 2, int),
        (lambda v: validation.check_integer(v, "n", allow_none=True), None, None, type(None)),
        (lambda v: validation.check_non_negative(v, "x", finite=False), math.inf, math.inf, float),
        (lambda v: validation.check_positive(v, "x"), 3, 3.0, float),
        (lambda v: validation.check_bool(v, "f"), np.bool_(True), True, bool),
        (lambda v: validation.check_seed(v), np.int32(7), 7, int),
        (lambda v: validation.check_choice(v, ("a", "b"), "c"), "a", "a", str),
        (validation.check_data_range, [0, 255], (0.0, 255.0), tuple),
        (validation.check_data_range, None, None, type(None)),
    ],
)
def test_a_passing_check_returns_the_python_value(check, value, expected, kind):
    result = check(value)
    assert result == expected and type(result) is kind


@pytest.mark.parametrize(
    "check, value, message",
    [
        (validation.check_rho, 1.0, r"`rho` must be a number in \(-1, 1\): the coupling variance is 1 - rho\*\*2\. Received: rho=1\.0"),
        (validation.check_rho, True, r"Received: rho=True"),
        (validation.check_rho, "0.5", r"Received: rho='0\.5'"),
        (lambda v: validation.check_integer(v, "n", minimum=1, reason=" (one per step)"), 0,
         r"`n` must be an integer >= 1 \(one per step\)\. Received: n=0"),
        (lambda v: validation.check_integer(v, "n"), 2.0, r"`n` must be an integer\. Received: n=2\.0"),
        (lambda v: validation.check_integer(v, "n", allow_none=True), "3", r"`n` must be an integer or None"),
        (lambda v: validation.check_non_negative(v, "x"), math.nan, r"`x` must be a finite number >= 0\. Received: x=nan"),
        (lambda v: validation.check_non_negative(v, "x"), math.inf, r"`x` must be a finite number >= 0"),
        (lambda v: validation.check_positive(v, "x"), 0, r"`x` must be a finite number > 0\. Received: x=0"),
        (lambda v: validation.check_bool(v, "f"), 1, r"`f` must be True or False\. Received: f=1"),
        (lambda v: validation.check_seed(v), 1.5, r"`seed` must be an int\. Received: seed=1\.5"),
        (lambda v: validation.check_choice(v, ("a", "b"), "c"), "z", r"`c` must be one of \('a', 'b'\)\. Received: c='z'"),
        (validation.check_data_range, "01", r"`data_range` must be a pair \(low, high\) or None\. Received: data_range='01'"),
        (validation.check_data_range, (1, 0), r"`data_range` must satisfy low < high, both finite"),
        (validation.check_data_range, (0, math.inf), r"`data_range` must satisfy low < high, both finite"),
    ],
)
def test_a_failing_check_names_argument_expectation_and_value(check, value, message):
    with pytest.raises(ValueError, match=message):
        check(value)


def test_image_statistics_agree_between_numpy_and_tensorflow():
    x = np.random.default_rng(0).random((3, 4, 4, 1)).astype(np.float32) * 2 - 0.5
    x[0, 0, 0, 0] = np.inf
    for array in (x, x[1:]):
        numpy_statistics = validation.image_statistics(array)
        tf_statistics = [float(t) for t in validation.image_statistics_tf(tf.constant(array))]
        assert numpy_statistics[:2] == tuple(tf_statistics[:2])
        if not numpy_statistics[1]:
            np.testing.assert_allclose(numpy_statistics[2:], tf_statistics[2:], rtol=1e-6)
            assert numpy_statistics[2:] == (float(array.min()), float(array.max()))
    assert validation.image_statistics(np.array(["a"])) is None
    assert validation.image_statistics(np.zeros((0, 2))) == (0, 0, 0.0, 0.0)


def test_input_problem_is_one_sentence_or_none():
    assert validation.input_problem(np.full((2, 2), 0.5), (0.0, 1.0)) is None
    assert validation.input_problem(np.full((2, 2), 255.0), None) is None  # no declared range: any finite values
    assert validation.input_problem(np.array([[np.nan, 1.0]]), (0.0, 1.0)) == "inputs contain 1 NaN or infinite value(s)"
    assert validation.input_problem(np.array([[0.0, 255.0]]), (0.0, 1.0)).startswith(
        "inputs span [0, 255], outside the declared data_range (0.0, 1.0); rescale them (e.g. divide uint8 images by 255)"
    )
    assert validation.input_problem(np.array([["x"]]), None) == "inputs must be real numbers; received dtype <U1"


def test_check_images_returns_float32_and_refuses_each_problem():
    x = np.zeros((2, 4, 4, 1), np.uint8)
    checked = validation.check_images(x, data_range=(0.0, 255.0), example_shape=(4, 4, 1))
    assert checked.dtype == np.float32 and checked.shape == (2, 4, 4, 1)
    with pytest.raises(ValueError, match=r"`x` must hold at least 3 examples for FID: expected images \(batch, 4, 4, 1\)"):
        validation.check_images(x, example_shape=(4, 4, 1), min_examples=3, reason=" for FID")
    with pytest.raises(ValueError, match=r"`x` has examples of shape \(4, 4, 1\); the model takes \(4, 4, 3\)"):
        validation.check_images(x, example_shape=(4, 4, 3))
    with pytest.raises(ValueError, match=r"Images must have shape \(num_images, height, width, 3\)"):
        validation.check_images(x, what="images", channels=(3,))
    with pytest.raises(ValueError, match=r"`x` must be one array of images .* list could not be made into one"):
        validation.check_images([np.zeros((2, 2)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match=r"`x` must be an array of images; got a dict with keys \['image'\]"):
        validation.check_images({"image": x})


def test_shape_fits_and_describe_images():
    assert validation.shape_fits((4, 4, 1), (None, None, 1)) and not validation.shape_fits((4, 4), (4, 4, 1))
    assert validation.describe_images((6, None, 1), (0.0, 1.0)) == "images (batch, 6, any, 1), finite, in data_range (0.0, 1.0)"
    assert validation.describe_images() == "images (batch, H, W, C), finite"


def test_check_labels():
    np.testing.assert_array_equal(validation.check_labels([0.0, 2.0, 1.0], num_examples=3, num_classes=3), [0, 2, 1])
    for labels, kwargs, message in (
        ([[0, 1]], {}, r"`labels` must be a non-empty \(N,\) array of class ids\. Received shape \(1, 2\)"),
        ([0, 1], {"num_examples": 3}, r"`labels` has 2 labels but there are 3 examples: give one label each"),
        ([0.5, 1], {}, r"`labels` must be integer class ids\. Received dtype float64 with non-integer values"),
        ([0, 3], {"num_classes": 3}, r"`labels` must hold class ids \[0, 3\)\. Received ids from 0 to 3"),
        ([-1, 0], {}, r"`labels` must hold class ids >= 0\. Received ids from -1 to 0"),
    ):
        with pytest.raises(ValueError, match=message):
            validation.check_labels(labels, **kwargs)


def test_check_features_and_the_small_sample_warning():
    features = np.ones((3, 2))
    assert validation.check_features(features, "f") is features
    with pytest.raises(ValueError, match=r"`f` must have shape \(num_examples >= 4, num_features >= 1\)\. Received shape \(3, 2\)"):
        validation.check_features(features, "f", min_examples=4)
    with pytest.warns(validation.SmallSampleWarning, match=r"FID from 3 images, fewer than the 8 feature dimensions"):
        validation.warn_if_few_examples(3, 8, "FID")


def test_check_model():
    class Built:
        built = False

        def encode_mean(self):
            pass

    assert validation.check_model(Built(), ("encode_mean",), ("built",)).__class__ is Built
    with pytest.raises(ValueError, match=r"`model` must be built: fit it or call it on data first"):
        validation.check_model(Built(), ("encode_mean",), built=True)
    with pytest.raises(ValueError, match=r"`encoder` must be a keras_avae model with `decode`; Built lacks \['decode'\]"):
        validation.check_model(Built(), ("decode",), name="encoder")
