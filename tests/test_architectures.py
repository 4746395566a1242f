"""Tests for keras_avae/architectures.py (Cemgil et al., 2020, Appendix F)."""

import math
import re

import keras
import numpy as np
import pytest
from keras import layers

from keras_avae import architectures

BATCH = 2
SEED = 0
# CelebA-sized networks are large; a 16x16 image keeps their tests fast
# while keeping every layer of the paper (16 is the smallest legal side).
SMALL_CELEBA_SHAPE = (16, 16, 3)
ONE_SHAPE_PER_BUILDER = [
    ("mlp", (28, 28, 3)),
    ("conv", (28, 28, 3)),
    ("celeba", SMALL_CELEBA_SHAPE),
]
# Round-trip outputs must spread at least this much to be a fair check.
MIN_OUTPUT_STD = 1e-3

BUILDERS = {
    "mlp": architectures.mlp,
    "conv": architectures.conv,
    "celeba": architectures.celeba,
}


def _run(model, shape):
    rng = np.random.default_rng(SEED)
    inputs = rng.uniform(size=(BATCH, *shape)).astype("float32")
    return inputs, keras.ops.convert_to_numpy(model(inputs, training=False))


def _randomize_weights(model):
    """Sets every weight, BatchNorm statistics included, to seeded values.

    Kernels get a zero-mean fan-in scaled draw, so activations stay O(1)
    and the sigmoid output does not saturate; moving variances stay
    positive.
    """
    rng = np.random.default_rng(SEED)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "moving_variance" in variable.path:
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            fan_in = math.prod(shape[:-1]) if len(shape) > 1 else 1
            value = rng.normal(size=shape) / math.sqrt(fan_in)
        variable.assign(value.astype(variable.dtype))


@pytest.fixture(scope="module")
def conv_models():
    return architectures.conv()


# --- Shapes and ranges -----------------------------------------------------


@pytest.mark.parametrize(
    "name, input_shape, latent_dim",
    [
        ("mlp", (28, 28, 3), 1),
        ("mlp", (28, 28, 3), 64),
        ("mlp", (10,), 3),
        ("mlp", [4, 6], 2),
        ("conv", (28, 28, 3), 1),
        ("conv", (28, 28, 3), 64),
        ("conv", (32, 16, 1), 8),
        ("celeba", SMALL_CELEBA_SHAPE, 2),
        ("celeba", (32, 48, 1), 64),
    ],
)
def test_output_shapes_and_range(name, input_shape, latent_dim):
    encoder, decoder = BUILDERS[name](latent_dim=latent_dim, input_shape=input_shape)
    input_shape = tuple(input_shape)

    assert encoder.name == f"{name}_encoder"
    assert decoder.name == f"{name}_decoder"
    assert tuple(encoder.input_shape) == (None, *input_shape)
    assert tuple(encoder.output_shape) == (None, 2 * latent_dim)
    assert tuple(decoder.input_shape) == (None, latent_dim)
    assert tuple(decoder.output_shape) == (None, *input_shape)

    _, stats = _run(encoder, input_shape)
    assert stats.shape == (BATCH, 2 * latent_dim)
    assert np.all(np.isfinite(stats))

    _, x_mean = _run(decoder, (latent_dim,))
    assert x_mean.shape == (BATCH, *input_shape)
    assert np.all(np.isfinite(x_mean))
    assert np.all((x_mean >= 0.0) & (x_mean <= 1.0))


def test_accepts_numpy_ints():
    encoder, decoder = architectures.mlp(
        latent_dim=np.int64(3), input_shape=[np.int64(4), 5]
    )
    assert tuple(encoder.output_shape) == (None, 6)
    assert tuple(decoder.output_shape) == (None, 4, 5)


def test_default_shapes():
    for name, default_shape in [("mlp", (28, 28, 3)), ("conv", (28, 28, 3))]:
        encoder, decoder = BUILDERS[name]()
        assert tuple(encoder.output_shape) == (None, 128)
        assert tuple(decoder.output_shape) == (None, *default_shape)


def test_celeba_default_shapes_and_run():
    encoder, decoder = architectures.celeba()
    assert tuple(encoder.input_shape) == (None, 64, 64, 3)
    assert tuple(encoder.output_shape) == (None, 128)
    assert tuple(decoder.output_shape) == (None, 64, 64, 3)
    _, x_mean = _run(decoder, (64,))
    assert x_mean.shape == (BATCH, 64, 64, 3)
    assert np.all((x_mean >= 0.0) & (x_mean <= 1.0))


def test_decoder_saturates_within_unit_interval():
    # Large latents push the sigmoid to its limits; it must stay in [0, 1].
    _, decoder = architectures.mlp(latent_dim=4)
    z = np.full((BATCH, 4), 1e4, dtype="float32")
    x_mean = keras.ops.convert_to_numpy(decoder(z))
    assert np.all((x_mean >= 0.0) & (x_mean <= 1.0))


def test_encoder_head_is_linear():
    # With a zero kernel the head outputs its bias; a ReLU would clip the
    # negative log-variances and means to 0, a sigmoid would squash them.
    encoder, _ = architectures.mlp(latent_dim=8)
    head = encoder.layers[-1]
    assert isinstance(head, layers.Dense)
    assert head.activation is keras.activations.linear
    head.kernel.assign(np.zeros(head.kernel.shape, dtype="float32"))
    bias = np.linspace(-3.0, 3.0, 16).astype("float32")
    head.bias.assign(bias)
    _, stats = _run(encoder, (28, 28, 3))
    np.testing.assert_allclose(stats, np.broadcast_to(bias, (BATCH, 16)))


# --- Paper structure ---------------------------------------------------------


def test_mlp_has_four_hidden_dense_200_per_side():
    encoder, decoder = architectures.mlp()
    for model, n_dense in [(encoder, 5), (decoder, 5)]:
        dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
        assert len(dense) == n_dense
        for layer in dense[:-1]:
            assert layer.units == 200
            assert layer.activation is keras.activations.relu
    assert encoder.layers[-1].units == 128
    assert decoder.get_layer("x_mean_flat").units == 28 * 28 * 3
    assert decoder.get_layer("x_mean_flat").activation is keras.activations.sigmoid


def test_mlp_parameter_counts_match_closed_form():
    d, h, n = 28 * 28 * 3, 200, 4
    latent_dim = 64
    hidden = (n - 1) * (h * h + h)
    expected_encoder = (d * h + h) + hidden + (h * 2 * latent_dim + 2 * latent_dim)
    expected_decoder = (latent_dim * h + h) + hidden + (h * d + d)
    encoder, decoder = architectures.mlp(latent_dim=latent_dim)
    assert encoder.count_params() == expected_encoder
    assert decoder.count_params() == expected_decoder


def test_mlp_hidden_arguments():
    encoder, decoder = architectures.mlp(latent_dim=3, hidden_units=7, hidden_layers=2)
    for model in (encoder, decoder):
        dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
        assert [layer.units for layer in dense[:-1]] == [7, 7]


def _layers_of(model, layer_class):
    return [layer for layer in model.layers if type(layer) is layer_class]


def _assert_bn_relu_after(model, layer_class, expected_count):
    """Asserts BatchNormalization then ReLU follow the first `expected_count`
    layers of type `layer_class` in `model`."""
    model_layers = model.layers
    convs = [
        i for i, layer in enumerate(model_layers) if type(layer) is layer_class
    ]
    for i in convs[:expected_count]:
        assert isinstance(model_layers[i + 1], layers.BatchNormalization)
        assert isinstance(model_layers[i + 2], layers.ReLU)


def test_conv_encoder_matches_appendix_f(conv_models):
    encoder, _ = conv_models
    convs = _layers_of(encoder, layers.Conv2D)
    assert [c.filters for c in convs] == [8, 16, 32, 64, 128, 256, 512]
    assert [c.strides for c in convs] == [(s, s) for s in (2, 1, 2, 1, 2, 1, 2)]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(c.padding == "same" for c in convs)
    _assert_bn_relu_after(encoder, layers.Conv2D, len(convs))
    assert len(_layers_of(encoder, layers.BatchNormalization)) == len(convs)
    assert isinstance(encoder.layers[-1], layers.Dense)


def test_conv_decoder_matches_appendix_f(conv_models):
    _, decoder = conv_models
    deconvs = _layers_of(decoder, layers.Conv2DTranspose)
    assert [c.filters for c in deconvs] == [64, 32, 3]
    assert [c.strides for c in deconvs] == [(1, 1), (2, 2), (1, 1)]
    assert all(c.kernel_size == (3, 3) for c in deconvs)
    # BatchNorm between de-conv layers, none after the last one.
    _assert_bn_relu_after(decoder, layers.Conv2DTranspose, len(deconvs) - 1)
    assert len(_layers_of(decoder, layers.BatchNormalization)) == len(deconvs) - 1
    assert decoder.layers[-1] is deconvs[-1]
    assert deconvs[-1].activation is keras.activations.sigmoid
    projection = decoder.get_layer("projection_reshape")
    assert tuple(projection.output.shape) == (None, 14, 14, 64)


def test_conv_follows_input_channels():
    _, decoder = architectures.conv(latent_dim=2, input_shape=(8, 8, 1))
    assert _layers_of(decoder, layers.Conv2DTranspose)[-1].filters == 1


def test_celeba_matches_appendix_f():
    encoder, decoder = architectures.celeba(
        latent_dim=2, input_shape=SMALL_CELEBA_SHAPE
    )
    convs = _layers_of(encoder, layers.Conv2D)
    assert [c.filters for c in convs] == [128, 256, 512, 1024]
    assert all(c.strides == (2, 2) for c in convs)
    assert all(c.kernel_size == (5, 5) for c in convs)
    _assert_bn_relu_after(encoder, layers.Conv2D, len(convs))

    deconvs = _layers_of(decoder, layers.Conv2DTranspose)
    assert [c.filters for c in deconvs] == [512, 256, 128, 3]
    assert all(c.strides == (2, 2) for c in deconvs)
    assert all(c.kernel_size == (5, 5) for c in deconvs)
    _assert_bn_relu_after(decoder, layers.Conv2DTranspose, len(deconvs) - 1)
    assert len(_layers_of(decoder, layers.BatchNormalization)) == len(deconvs) - 1
    assert deconvs[-1].activation is keras.activations.sigmoid
    projection = decoder.get_layer("projection_reshape")
    assert tuple(projection.output.shape) == (None, 1, 1, 512)


def test_module_constants_match_appendix_f():
    assert architectures.CONV_ENCODER_CHANNELS == (8, 16, 32, 64, 128, 256, 512)
    assert architectures.CONV_ENCODER_STRIDES == (2, 1, 2, 1, 2, 1, 2)
    assert architectures.CONV_DECODER_STRIDES == (1, 2, 1)
    assert architectures.CELEBA_ENCODER_CHANNELS == (128, 256, 512, 1024)
    assert architectures.CELEBA_DECODER_HIDDEN_CHANNELS == (512, 256, 128)


@pytest.mark.parametrize("name, input_shape", ONE_SHAPE_PER_BUILDER)
def test_parameter_counts_positive(name, input_shape):
    for model in BUILDERS[name](latent_dim=4, input_shape=input_shape):
        count = model.count_params()
        assert isinstance(count, int)
        assert 0 < count < math.inf


def test_no_lambda_layers():
    for name, shape in ONE_SHAPE_PER_BUILDER:
        for model in BUILDERS[name](latent_dim=2, input_shape=shape):
            assert not any(isinstance(layer, layers.Lambda) for layer in model.layers)


# --- Saving ------------------------------------------------------------------


@pytest.mark.parametrize("name, input_shape", ONE_SHAPE_PER_BUILDER)
def test_keras_round_trip(name, input_shape, tmp_path):
    latent_dim = 4
    encoder, decoder = BUILDERS[name](latent_dim=latent_dim, input_shape=input_shape)
    for model, shape in [(encoder, input_shape), (decoder, (latent_dim,))]:
        _randomize_weights(model)
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert loaded.name == model.name
        inputs, expected = _run(model, shape)
        actual = keras.ops.convert_to_numpy(loaded(inputs, training=False))
        # Outputs vary, so equal outputs mean the weights came back.
        assert np.std(expected) > MIN_OUTPUT_STD
        np.testing.assert_array_equal(actual, expected)


# --- Argument checks ---------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("latent_dim", [0, -1, 2.0, "8", True, None])
def test_bad_latent_dim(name, latent_dim):
    match = (
        r"`latent_dim` must be an integer >= 1\. "
        rf"Received: latent_dim={re.escape(repr(latent_dim))}$"
    )
    with pytest.raises(ValueError, match=match):
        BUILDERS[name](latent_dim=latent_dim)


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize(
    "input_shape, shown",
    [
        ((), r"\(\)"),
        ((28, 0, 3), r"\(28, 0, 3\)"),
        ((28, -28, 3), r"\(28, -28, 3\)"),
        ((28.0, 28, 3), r"\(28\.0, 28, 3\)"),
        ("28x28x3", r"'28x28x3'"),
        (28, r"28"),
        (None, r"None"),
    ],
)
def test_bad_input_shape(name, input_shape, shown):
    match = (
        r"`input_shape` must be a non-empty tuple of positive ints\. "
        rf"Received: input_shape={shown}$"
    )
    with pytest.raises(ValueError, match=match):
        BUILDERS[name](input_shape=input_shape)


@pytest.mark.parametrize("name", ["conv", "celeba"])
@pytest.mark.parametrize(
    "input_shape, shown",
    [((64, 64), r"\(64, 64\)"), ((1, 64, 64, 3), r"\(1, 64, 64, 3\)")],
)
def test_image_builders_need_rank_three(name, input_shape, shown):
    match = (
        r"`input_shape` must be \(height, width, channels\)\. "
        rf"Received: input_shape={shown}$"
    )
    with pytest.raises(ValueError, match=match):
        BUILDERS[name](input_shape=input_shape)


@pytest.mark.parametrize("input_shape", [(27, 28, 3), (28, 27, 3)])
def test_conv_needs_even_sides(input_shape):
    match = (
        r"`input_shape` height and width must be divisible by 2\. "
        rf"Received: input_shape=\({input_shape[0]}, {input_shape[1]}, 3\)$"
    )
    with pytest.raises(ValueError, match=match):
        architectures.conv(input_shape=input_shape)


@pytest.mark.parametrize("input_shape", [(28, 28, 3), (64, 56, 3), (8, 16, 3)])
def test_celeba_needs_sides_divisible_by_16(input_shape):
    shown = ", ".join(str(s) for s in input_shape)
    match = (
        r"`input_shape` height and width must be divisible by 16\. "
        rf"Received: input_shape=\({shown}\)$"
    )
    with pytest.raises(ValueError, match=match):
        architectures.celeba(input_shape=input_shape)


@pytest.mark.parametrize("argument", ["hidden_units", "hidden_layers"])
@pytest.mark.parametrize(
    "value, shown",
    [(0, "0"), (-3, "-3"), (1.5, r"1\.5"), (False, "False"), ("4", "'4'")],
)
def test_mlp_bad_hidden_arguments(argument, value, shown):
    match = rf"`{argument}` must be an integer >= 1\. Received: {argument}={shown}$"
    with pytest.raises(ValueError, match=match):
        architectures.mlp(**{argument: value})


# --- Dtype policy ------------------------------------------------------------

OUTPUT_LAYERS = {
    "mlp": ({"posterior"}, {"x_mean_flat", "x_mean"}),
    "conv": ({"head_flatten", "head_posterior"}, {"x_mean"}),
    "celeba": ({"head_flatten", "head_posterior"}, {"x_mean"}),
}
"""The layers of each builder's encoder and decoder that compute in the policy's variable dtype."""


@pytest.mark.parametrize("name, input_shape", ONE_SHAPE_PER_BUILDER)
def test_mixed_bfloat16_computes_in_bfloat16_but_the_output_layers(name, input_shape):
    encoder, decoder = BUILDERS[name](latent_dim=4, input_shape=input_shape, dtype="mixed_bfloat16")
    for network, outputs in zip((encoder, decoder), OUTPUT_LAYERS[name]):
        policies = {layer.name: layer.dtype_policy.name for layer in network.layers[1:]}
        assert {layer for layer, policy in policies.items() if policy == "float32"} == outputs
        assert set(policies.values()) == {"mixed_bfloat16", "float32"}
        assert network.output.dtype == "float32"
        assert {variable.dtype for variable in network.weights} == {"float32"}
        last_hidden = [layer for layer in network.layers if layer.dtype_policy.name == "mixed_bfloat16"][-1]
        assert last_hidden.output.dtype == "bfloat16"
    _, decoded = _run(decoder, (4,))
    assert decoded.dtype == np.float32 and np.all((decoded >= 0) & (decoded <= 1))


@pytest.mark.parametrize("name, input_shape", ONE_SHAPE_PER_BUILDER)
def test_float32_is_the_network_built_before_the_dtype_argument(name, input_shape):
    """dtype="float32" and dtype=None (under Keras' default policy) give the same layers and weights."""
    built = []
    for dtype in (None, "float32"):
        keras.utils.set_random_seed(SEED)
        networks = BUILDERS[name](latent_dim=4, input_shape=input_shape, dtype=dtype)
        built.append([(network.get_config(), network.get_weights()) for network in networks])
    for (config, weights), (config_32, weights_32) in zip(*built):
        assert config == config_32
        for weight, weight_32 in zip(weights, weights_32, strict=True):
            np.testing.assert_array_equal(weight, weight_32)
    assert {layer.dtype_policy.name for network in BUILDERS[name](4, input_shape) for layer in network.layers} == {"float32"}


def test_dtype_none_follows_keras_global_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        encoder, decoder = architectures.conv(latent_dim=4, input_shape=(4, 4, 3))
    finally:
        keras.config.set_dtype_policy("float32")
    assert encoder.get_layer("block_0_conv").dtype_policy.name == "mixed_bfloat16"
    assert encoder.get_layer("head_posterior").dtype_policy.name == "float32"
    assert decoder.get_layer("x_mean").dtype_policy.name == "float32"


def test_mixed_bfloat16_round_trip(tmp_path):
    encoder, decoder = architectures.conv(latent_dim=4, input_shape=(4, 4, 3), dtype="mixed_bfloat16")
    _randomize_weights(decoder)
    decoder.save(tmp_path / "decoder.keras")
    loaded = keras.models.load_model(tmp_path / "decoder.keras")
    assert [layer.dtype_policy.name for layer in loaded.layers] == [layer.dtype_policy.name for layer in decoder.layers]
    inputs, expected = _run(decoder, (4,))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(inputs, training=False)), expected)


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("dtype", ["int32", "bf16", "int8_from_float32", 3])
def test_bad_dtype(name, dtype):
    with pytest.raises(ValueError, match=re.escape(
        f"`dtype` must be a Keras floating dtype policy, e.g. one of ('float32', 'mixed_bfloat16'), or None. "
        f"Received: dtype={dtype!r}"
    )):
        BUILDERS[name](dtype=dtype)
