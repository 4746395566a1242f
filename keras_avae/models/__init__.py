"""The models: thin `keras.Model` classes over `keras_avae.objectives`."""

from keras_avae.models.avae import AVAE
from keras_avae.models.avae_self_supervised import AVAESelfSupervised
from keras_avae.models.seavae import SEAVAE
from keras_avae.models.smooth_encoder import SmoothEncoder
from keras_avae.models.vae import VAE

__all__ = ["VAE", "AVAE", "AVAESelfSupervised", "SmoothEncoder", "SEAVAE"]
