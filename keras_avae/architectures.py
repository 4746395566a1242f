"""Encoder and decoder networks of Cemgil et al. (2020), Appendix F.

Each builder returns `(encoder, decoder)` as Keras Functional models:

- the encoder maps `x` of shape `input_shape` to a `(batch, 2 * latent_dim)`
  tensor whose first half is the posterior mean and whose second half is the
  posterior log-variance (a final linear `Dense`, no activation);
- the decoder maps `z` of shape `(batch, latent_dim)` to the mean of `x`, of
  shape `(batch, *input_shape)`, through a final sigmoid, so pixels lie in
  `[0, 1]`.

No `Lambda` layers are used, so saved `.keras` files load with
`safe_mode=True`.

Each builder takes a Keras `dtype` policy for its layers (`DTYPE_POLICIES`;
None: Keras' global policy, `keras.config.dtype_policy()`). Under a mixed
policy such as `"mixed_bfloat16"` the layers compute in bfloat16 and keep
float32 variables, except the two output layers, the encoder's posterior
head and the decoder's mean, which compute in the policy's variable dtype
(float32), as Keras' mixed-precision guide advises for a model's last layer:
the posterior parameters and g(z) leave the networks as float32, and the
objectives (`keras_avae.objectives`) run in float32. The policy of every
layer is saved with the network.

Example:
    encoder, decoder = conv(latent_dim=64, input_shape=(28, 28, 3))
    stats = encoder(x)
    z_mean, z_log_var = stats[:, :64], stats[:, 64:]
    x_mean = decoder(z_mean)
"""

import math
import numbers

import keras
from keras import layers

from keras_avae.validation import check_positive_int

# Appendix F, Color MNIST with MLP: "a 4 layer multi layer perceptron (MLP),
# with 200 neurons at each layer, is used for both encoder and decoder".
MLP_HIDDEN_UNITS = 200
MLP_HIDDEN_LAYERS = 4

# Appendix F, Color MNIST with conv: "a 7 layer VGG network is used for
# encoder with number of output channels 8, 16, 32, 64, 128, 256 and 512
# respectively with strides 2, 1, 2, 1, 2, 1 and 2 respectively and kernel
# shape of (3, 3)".
CONV_ENCODER_CHANNELS = (8, 16, 32, 64, 128, 256, 512)
CONV_ENCODER_STRIDES = (2, 1, 2, 1, 2, 1, 2)
CONV_KERNEL_SIZE = (3, 3)

# Appendix F: "For decoder a de-convolutional architecture 3 de-conv layers
# with output channels 64, 32 and 3, strides 1, 2 and 1, and kernel shape
# (3, 3) is used". The last layer's channels follow the input's channels
# (3 for Color MNIST), so only the hidden channels are listed here.
CONV_DECODER_HIDDEN_CHANNELS = (64, 32)
CONV_DECODER_STRIDES = (1, 2, 1)
# The decoder's stride product: `z` is projected onto a map this many times
# smaller than the image on each side.
CONV_DECODER_UPSAMPLING = math.prod(CONV_DECODER_STRIDES)
# Channels of the map that `z` is projected onto; they match the first
# de-conv layer's channels (not specified in the paper).
CONV_DECODER_PROJECTION_CHANNELS = 64

# Appendix F, CelebA: "VGG encoder with 4 convolutional layers, output
# channels 128, 256, 512, and 1024 respectively, stride 2 and kernel size
# (5, 5)".
CELEBA_ENCODER_CHANNELS = (128, 256, 512, 1024)
CELEBA_STRIDE = 2
CELEBA_KERNEL_SIZE = (5, 5)

# Appendix F: "CelebA decoder is VGG network with 4 layers, output channels
# 512, 256, 128 and 3, stride 2 and kernel shape (5, 5)". The last layer's
# channels follow the input's channels (3 for CelebA).
CELEBA_DECODER_HIDDEN_CHANNELS = (512, 256, 128)
# Four stride-2 layers upsample by 2**4 on each side.
CELEBA_DECODER_UPSAMPLING = CELEBA_STRIDE ** (len(CELEBA_DECODER_HIDDEN_CHANNELS) + 1)
# Channels of the map that `z` is projected onto; they match the first
# de-conv layer's channels (not specified in the paper).
CELEBA_DECODER_PROJECTION_CHANNELS = 512

# Rank of an image shape `(height, width, channels)`.
IMAGE_RANK = 3

DTYPE_POLICIES = ("float32", "mixed_bfloat16")
"""The dtype policies the experiments offer (`keras-avae train --dtype-policy`) and the tests train
under: float32, and bfloat16 compute with float32 variables (a CPU with AVX512_BF16 or AMX, a
TPU, an Ampere or later GPU). A builder's `dtype` also takes any other Keras floating policy; with
`"mixed_float16"` the optimizer needs loss scaling (`keras.optimizers.LossScaleOptimizer`)."""

# Padding that keeps `ceil(size / stride)` on the way down and
# `size * stride` on the way up.
PADDING = "same"


def _is_positive_int(value):
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value > 0
    )


def _check_input_shape(input_shape, rank=None):
    """Checks `input_shape` and returns it as a tuple of ints.

    Args:
        input_shape: a tuple or list of positive ints.
        rank: the required length, or `None` for any length of at least 1.

    Returns:
        `input_shape` as a tuple of Python ints.
    """
    if (
        not isinstance(input_shape, (tuple, list))
        or not input_shape
        or not all(_is_positive_int(size) for size in input_shape)
    ):
        raise ValueError(
            "`input_shape` must be a non-empty tuple of positive ints. "
            f"Received: input_shape={input_shape!r}"
        )
    if rank is not None and len(input_shape) != rank:
        raise ValueError(
            "`input_shape` must be (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(int(size) for size in input_shape)


def _check_image_divisible(input_shape, factor):
    """Raises unless height and width of `input_shape` divide by `factor`."""
    height, width, _ = input_shape
    if height % factor or width % factor:
        raise ValueError(
            f"`input_shape` height and width must be divisible by {factor}. "
            f"Received: input_shape={input_shape!r}"
        )


def _check_dtype(dtype):
    """`(policy, output_policy)` names for the layers and the two output layers of a network.

    Args:
        dtype: a Keras dtype policy (a name such as `"mixed_bfloat16"`, or a
            `keras.DTypePolicy`), or None for Keras' global policy.

    Returns:
        The policy's name, and the name of its variable dtype (float32 for a
        mixed policy), which the output layers compute in.
    """
    try:
        policy = keras.dtype_policies.get(dtype)
    except (TypeError, ValueError):
        policy = None
    if (
        policy is None
        or getattr(policy, "quantization_mode", None) is not None
        or "float" not in policy.compute_dtype
    ):
        raise ValueError(
            "`dtype` must be a Keras floating dtype policy, e.g. one of "
            f"{DTYPE_POLICIES}, or None. Received: dtype={dtype!r}"
        )
    return policy.name, policy.variable_dtype


def _conv_bn_relu(x, conv_class, filters, kernel_size, strides, name, dtype):
    """Applies `conv_class` -> BatchNormalization -> ReLU."""
    x = conv_class(
        filters,
        kernel_size,
        strides=strides,
        padding=PADDING,
        name=f"{name}_conv",
        dtype=dtype,
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn", dtype=dtype)(x)
    return layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)


def _project(z, height, width, channels, name, dtype):
    """Maps `z` to a `(height, width, channels)` map with Dense -> ReLU."""
    x = layers.Dense(
        height * width * channels, activation="relu", name=f"{name}_dense", dtype=dtype
    )(z)
    return layers.Reshape(
        (height, width, channels), name=f"{name}_reshape", dtype=dtype
    )(x)


def _posterior_head(x, latent_dim, name, dtype):
    """Flattens `x` and returns the linear `(batch, 2 * latent_dim)` head, in `dtype`."""
    x = layers.Flatten(name=f"{name}_flatten", dtype=dtype)(x)
    return layers.Dense(2 * latent_dim, name=f"{name}_posterior", dtype=dtype)(x)


def mlp(
    latent_dim=64,
    input_shape=(28, 28, 3),
    hidden_units=MLP_HIDDEN_UNITS,
    hidden_layers=MLP_HIDDEN_LAYERS,
    dtype=None,
):
    """The Color MNIST MLP of Appendix F (4 ReLU layers of 200 units per side).

    Args:
        latent_dim: positive int, the size of `z`.
        input_shape: tuple of positive ints, the shape of one `x` (any rank).
        hidden_units: positive int, units in each hidden `Dense` layer.
        hidden_layers: positive int, hidden `Dense` layers in each network.
        dtype: the layers' Keras dtype policy, e.g. `"mixed_bfloat16"`
            (`DTYPE_POLICIES`); None: Keras' global policy. The output
            layers compute in its variable dtype (float32).

    Returns:
        `(encoder, decoder)`, named `"mlp_encoder"` and `"mlp_decoder"`. The
        encoder maps `x` to `(batch, 2 * latent_dim)` (posterior mean, then
        log-variance); the decoder maps `(batch, latent_dim)` to the mean of
        `x` in `[0, 1]`, shaped `(batch, *input_shape)`.

    Example:
        encoder, decoder = mlp(latent_dim=64, input_shape=(28, 28, 3))
    """
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    input_shape = _check_input_shape(input_shape)
    hidden_units = check_positive_int(hidden_units, "hidden_units")
    hidden_layers = check_positive_int(hidden_layers, "hidden_layers")
    dtype, output_dtype = _check_dtype(dtype)

    x_in = keras.Input(shape=input_shape, name="x")
    h = layers.Flatten(name="flatten", dtype=dtype)(x_in)
    for i in range(hidden_layers):
        h = layers.Dense(
            hidden_units, activation="relu", name=f"hidden_{i}", dtype=dtype
        )(h)
    stats = layers.Dense(2 * latent_dim, name="posterior", dtype=output_dtype)(h)
    encoder = keras.Model(x_in, stats, name="mlp_encoder")

    z_in = keras.Input(shape=(latent_dim,), name="z")
    h = z_in
    for i in range(hidden_layers):
        h = layers.Dense(
            hidden_units, activation="relu", name=f"hidden_{i}", dtype=dtype
        )(h)
    h = layers.Dense(
        math.prod(input_shape),
        activation="sigmoid",
        name="x_mean_flat",
        dtype=output_dtype,
    )(h)
    x_mean = layers.Reshape(input_shape, name="x_mean", dtype=output_dtype)(h)
    decoder = keras.Model(z_in, x_mean, name="mlp_decoder")
    return encoder, decoder


def conv(latent_dim=64, input_shape=(28, 28, 3), dtype=None):
    """The Color MNIST convnet of Appendix F (7-layer VGG, 3 de-conv layers).

    The encoder applies `Conv2D(3x3, padding="same")` -> BatchNormalization
    -> ReLU with `CONV_ENCODER_CHANNELS` and `CONV_ENCODER_STRIDES`, then a
    linear `Dense` head. The decoder projects `z` onto a
    `(height / 2, width / 2, 64)` map (Dense -> ReLU), then applies
    `Conv2DTranspose` layers with channels 64, 32 and `channels` and strides
    1, 2 and 1, with BatchNormalization -> ReLU between them and a sigmoid
    at the end.

    Args:
        latent_dim: positive int, the size of `z`.
        input_shape: `(height, width, channels)` of positive ints; height
            and width must be even.
        dtype: the layers' Keras dtype policy, e.g. `"mixed_bfloat16"`
            (`DTYPE_POLICIES`); None: Keras' global policy. The output
            layers compute in its variable dtype (float32).

    Returns:
        `(encoder, decoder)`, named `"conv_encoder"` and `"conv_decoder"`.
        The encoder maps `x` to `(batch, 2 * latent_dim)` (posterior mean,
        then log-variance); the decoder maps `(batch, latent_dim)` to the
        mean of `x` in `[0, 1]`, shaped `(batch, *input_shape)`.

    Example:
        encoder, decoder = conv(latent_dim=64, input_shape=(28, 28, 3))
    """
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    input_shape = _check_input_shape(input_shape, rank=IMAGE_RANK)
    _check_image_divisible(input_shape, CONV_DECODER_UPSAMPLING)
    height, width, channels = input_shape
    dtype, output_dtype = _check_dtype(dtype)

    x_in = keras.Input(shape=input_shape, name="x")
    h = x_in
    for i, (filters, strides) in enumerate(
        zip(CONV_ENCODER_CHANNELS, CONV_ENCODER_STRIDES)
    ):
        h = _conv_bn_relu(
            h, layers.Conv2D, filters, CONV_KERNEL_SIZE, strides, f"block_{i}", dtype
        )
    stats = _posterior_head(h, latent_dim, "head", output_dtype)
    encoder = keras.Model(x_in, stats, name="conv_encoder")

    z_in = keras.Input(shape=(latent_dim,), name="z")
    h = _project(
        z_in,
        height // CONV_DECODER_UPSAMPLING,
        width // CONV_DECODER_UPSAMPLING,
        CONV_DECODER_PROJECTION_CHANNELS,
        "projection",
        dtype,
    )
    for i, (filters, strides) in enumerate(
        zip(CONV_DECODER_HIDDEN_CHANNELS, CONV_DECODER_STRIDES)
    ):
        h = _conv_bn_relu(
            h,
            layers.Conv2DTranspose,
            filters,
            CONV_KERNEL_SIZE,
            strides,
            f"block_{i}",
            dtype,
        )
    x_mean = layers.Conv2DTranspose(
        channels,
        CONV_KERNEL_SIZE,
        strides=CONV_DECODER_STRIDES[-1],
        padding=PADDING,
        activation="sigmoid",
        name="x_mean",
        dtype=output_dtype,
    )(h)
    decoder = keras.Model(z_in, x_mean, name="conv_decoder")
    return encoder, decoder


def celeba(latent_dim=64, input_shape=(64, 64, 3), dtype=None):
    """The CelebA convnet of Appendix F (4 conv and 4 de-conv layers, 5x5).

    The encoder applies `Conv2D(5x5, stride 2, padding="same")` ->
    BatchNormalization -> ReLU with `CELEBA_ENCODER_CHANNELS`, then a linear
    `Dense` head. The decoder projects `z` onto a
    `(height / 16, width / 16, 512)` map (Dense -> ReLU), then applies four
    stride-2 `Conv2DTranspose` layers with channels 512, 256, 128 and
    `channels`, with BatchNormalization -> ReLU between them and a sigmoid
    at the end.

    Args:
        latent_dim: positive int, the size of `z`.
        input_shape: `(height, width, channels)` of positive ints; height
            and width must be divisible by 16.
        dtype: the layers' Keras dtype policy, e.g. `"mixed_bfloat16"`
            (`DTYPE_POLICIES`); None: Keras' global policy. The output
            layers compute in its variable dtype (float32).

    Returns:
        `(encoder, decoder)`, named `"celeba_encoder"` and
        `"celeba_decoder"`. The encoder maps `x` to `(batch, 2 * latent_dim)`
        (posterior mean, then log-variance); the decoder maps
        `(batch, latent_dim)` to the mean of `x` in `[0, 1]`, shaped
        `(batch, *input_shape)`.

    Example:
        encoder, decoder = celeba(latent_dim=64, input_shape=(64, 64, 3))
    """
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    input_shape = _check_input_shape(input_shape, rank=IMAGE_RANK)
    _check_image_divisible(input_shape, CELEBA_DECODER_UPSAMPLING)
    height, width, channels = input_shape
    dtype, output_dtype = _check_dtype(dtype)

    x_in = keras.Input(shape=input_shape, name="x")
    h = x_in
    for i, filters in enumerate(CELEBA_ENCODER_CHANNELS):
        h = _conv_bn_relu(
            h,
            layers.Conv2D,
            filters,
            CELEBA_KERNEL_SIZE,
            CELEBA_STRIDE,
            f"block_{i}",
            dtype,
        )
    stats = _posterior_head(h, latent_dim, "head", output_dtype)
    encoder = keras.Model(x_in, stats, name="celeba_encoder")

    z_in = keras.Input(shape=(latent_dim,), name="z")
    h = _project(
        z_in,
        height // CELEBA_DECODER_UPSAMPLING,
        width // CELEBA_DECODER_UPSAMPLING,
        CELEBA_DECODER_PROJECTION_CHANNELS,
        "projection",
        dtype,
    )
    for i, filters in enumerate(CELEBA_DECODER_HIDDEN_CHANNELS):
        h = _conv_bn_relu(
            h,
            layers.Conv2DTranspose,
            filters,
            CELEBA_KERNEL_SIZE,
            CELEBA_STRIDE,
            f"block_{i}",
            dtype,
        )
    x_mean = layers.Conv2DTranspose(
        channels,
        CELEBA_KERNEL_SIZE,
        strides=CELEBA_STRIDE,
        padding=PADDING,
        activation="sigmoid",
        name="x_mean",
        dtype=output_dtype,
    )(h)
    decoder = keras.Model(z_in, x_mean, name="celeba_decoder")
    return encoder, decoder
