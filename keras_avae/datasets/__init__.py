"""Data sets of the paper's experiments, read from local copies."""

from keras_avae.datasets.celeba import CELEBA_ATTRIBUTES, celeba, celeba_dataset
from keras_avae.datasets.color_mnist import color_mnist, load_mnist

__all__ = ["CELEBA_ATTRIBUTES", "celeba", "celeba_dataset", "color_mnist", "load_mnist"]
