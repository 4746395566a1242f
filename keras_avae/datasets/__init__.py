"""Data sets of the paper's experiments, read from local copies."""

from keras_avae.datasets.color_mnist import color_mnist, load_mnist

__all__ = ["color_mnist", "load_mnist"]
