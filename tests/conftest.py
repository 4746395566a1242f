"""Test set-up: two logical CPU devices (for tf.distribute tests) and small shared fixtures."""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Must run before TensorFlow initialises its devices.
_CPUS = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _CPUS[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

# TensorFlow's collective runtime behind MirroredStrategy on logical CPUs crashed a pytest-xdist
# worker once in four full runs here, in a test that passed 80 times in a row in a fresh process.
# Such a crash (never a failed assertion) gets one rerun in a fresh worker (pytest-rerunfailures).
RERUN_IF_THE_WORKER_CRASHES = pytest.mark.flaky(reruns=1, only_rerun=["crashed"])

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist.npz")

IMAGE_SHAPE = (6, 6, 1)
LATENT_DIM = 3


def tiny_networks(latent_dim=LATENT_DIM, image_shape=IMAGE_SHAPE, hidden=16):
    """A small MLP encoder (x -> 2 * latent_dim) and decoder (z -> sigmoid image)."""
    encoder = keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(2 * latent_dim),
        ]
    )
    decoder = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(int(np.prod(image_shape)), activation="sigmoid"),
            keras.layers.Reshape(image_shape),
        ]
    )
    return encoder, decoder


@pytest.fixture
def images():
    """32 random images in [0, 1] of shape IMAGE_SHAPE."""
    return np.random.default_rng(0).random((32,) + IMAGE_SHAPE, dtype=np.float32)


@pytest.fixture
def make_networks():
    """The `tiny_networks` factory, for tests that need several fresh pairs."""
    return tiny_networks


@pytest.fixture(autouse=True)
def _no_mnist_path_from_the_environment(monkeypatch):
    """Keep a caller's KERAS_AVAE_MNIST_PATH out of every test."""
    monkeypatch.delenv("KERAS_AVAE_MNIST_PATH", raising=False)


def _write_fake_mnist(path, num_train, num_test, seed=0):
    """Random uint8 'digits' in the keras.datasets mnist.npz layout."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.integers(0, 256, size=(num_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, size=num_train, dtype=np.uint8),
        x_test=rng.integers(0, 256, size=(num_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, size=num_test, dtype=np.uint8),
    )
    return path


@pytest.fixture
def write_fake_mnist():
    """`write(path, num_train, num_test)`: a small fake mnist.npz, so tests need no real data."""
    return _write_fake_mnist


EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(path, module_name):
    """Imports the script at `path` as a module named `module_name` (examples and benchmarks are scripts, not packages)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(filename, module_name):
    """Imports `examples/<filename>` as a module named `module_name`."""
    return load_script(EXAMPLES_DIR / filename, module_name)


def load_benchmark(name, module_name=None):
    """Imports `benchmarks/<name>.py` as a module named `module_name` (default: `name`)."""
    return load_script(BENCHMARKS_DIR / f"{name}.py", module_name or name)


def pytest_collection_modifyitems(items):
    """The `large` tests first, so the two workers do not wait at the end on one slow test."""
    items.sort(key=lambda item: item.get_closest_marker("large") is None)
