"""The models: thin `keras.Model` classes over `keras_avae.objectives`."""

from keras_avae.models.avae import AVAE
from keras_avae.models.avae_self_supervised import AVAESelfSupervised
from keras_avae.models.vae import VAE

__all__ = ["VAE", "AVAE", "AVAESelfSupervised"]
