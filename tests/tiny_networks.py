"""The tiny encoder-decoder pair of the distribution tests (tests/test_distributed.py and the worker
processes of tests/test_distribute.py): deterministic to the bit on any number of replicas when the
posterior noise is far below float32 resolution."""

import keras
import numpy as np

IMAGE_SHAPE, LATENT_DIM = (4, 4, 1), 2


def tiny_networks(log_var_bias):
    """`(encoder, decoder)`: x (4, 4, 1) -> (z_mean, z_log_var) of width 2, z_log_var's bias `log_var_bias`
    (exp(log_var_bias / 2) is the posterior std); z -> a sigmoid image."""
    inputs = keras.Input(IMAGE_SHAPE)
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(inputs))
    z_mean = keras.layers.Dense(LATENT_DIM)(hidden)
    z_log_var = keras.layers.Dense(
        LATENT_DIM, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(log_var_bias)
    )(hidden)
    encoder = keras.Model(inputs, [z_mean, z_log_var])
    decoder = keras.Sequential(
        [keras.Input((LATENT_DIM,)), keras.layers.Dense(int(np.prod(IMAGE_SHAPE)), activation="sigmoid"),
         keras.layers.Reshape(IMAGE_SHAPE)]
    )
    return encoder, decoder
