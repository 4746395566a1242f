"""keras_avae: Keras 3 models that learn self-consistent, robust representations.

After "The Autoencoding Variational Autoencoder" (Cemgil et al., NeurIPS 2020).
"""
