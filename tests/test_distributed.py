"""MirroredStrategy over two logical CPUs trains exactly like one device.

The encoder's log-variance head starts at LOG_VAR_BIAS, so the posterior noise
(std exp(LOG_VAR_BIAS / 2)) is far below float32 resolution and, with the decoder
mean as the AVAE's delusion, one SGD step is deterministic. A loss scaled per replica rather than by the global batch would
double the update and fail the comparison.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_avae
from conftest import RERUN_IF_THE_WORKER_CRASHES
from tiny_networks import IMAGE_SHAPE, tiny_networks

pytestmark = RERUN_IF_THE_WORKER_CRASHES

LOG_VAR_BIAS = -60.0
GLOBAL_BATCH = 16


def _networks():
    return tiny_networks(LOG_VAR_BIAS)


def _train(model_class, images, weights, strategy):
    with strategy.scope():
        model = model_class(*_networks(), seed=0)
        model(images[:1])
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(images, epochs=1, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0)
    return model, history.history


@pytest.mark.parametrize(
    "model_class", [keras_avae.VAE, functools.partial(keras_avae.AVAE, delusion="mean")], ids=["VAE", "AVAE"]
)
def test_two_replicas_match_one_device(model_class):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "conftest.py sets up two logical CPUs"
    images = np.random.default_rng(0).random((2 * GLOBAL_BATCH,) + IMAGE_SHAPE, dtype=np.float32)
    reference = model_class(*_networks(), seed=0)
    reference(images[:1])
    weights = reference.get_weights()

    single, single_history = _train(model_class, images, weights, tf.distribute.OneDeviceStrategy(devices[0]))
    mirrored, mirrored_history = _train(model_class, images, weights, tf.distribute.MirroredStrategy(devices))

    assert mirrored.distribute_strategy.num_replicas_in_sync == 2
    for name, values in single_history.items():
        np.testing.assert_allclose(mirrored_history[name], values, rtol=1e-4, err_msg=name)
    moved = max(np.abs(a - b).max() for a, b in zip(weights, single.get_weights()))
    assert moved > 1e-3
    for one, two in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-6)
