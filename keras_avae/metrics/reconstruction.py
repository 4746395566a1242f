"""Test reconstruction error of the mean mapping, the MSE column of Tables 1 and 2.

The reconstruction of x is the decoder mean at the posterior mean,
x_hat = g(f^mu(x)), without sampling and without clipping. Its error is
reported on one of three scales (`SCALES`):

- `"paper"`: the mean squared error per pixel, with pixels expressed in
  0..255 units, mean_{i, pixels} (255 (x - x_hat) / (high - low))^2, where
  (low, high) is the data range. This is the scale we infer for the paper's
  numbers, which are given without units: about 1370 on ColorMNIST (Table 1)
  and 7200 on CelebA (Table 2). Our short ColorMNIST MLP runs measure
  1073 to 1300 (AVAE) and 2030 (VAE) per pixel on this scale, the paper's
  order of magnitude, whereas the per-image sum of squared errors is 39 to 73
  in [0, 1] units (x 255^2: ~2.5e6 and more), far from it. On CelebA 64x64x3, 7200 is a
  per-pixel MSE of 0.11 in [0, 1] units (RMS error 0.33), plausible for the
  blurry reconstructions of a model with large observation noise.
- `"pixel"`: the mean squared error per pixel in the data's own units.
- `"sum"`: the sum of squared errors per image in the data's own units,
  averaged over images (the quadratic term of the Gaussian log-likelihood
  times 2v).

Example:
    mse = reconstruction_mse(avae, x_test)                    # Table 1's scale
    sse = reconstruction_mse(avae, x_test, scale="sum")       # per-image SSE in [0, 1] units
"""


import keras
import numpy as np

from keras_avae.validation import (
    check_data_range,
    check_model_inputs,
    check_positive_int,
)

SCALES = ("paper", "pixel", "sum")
"""Scales of `reconstruction_mse`, see the module docstring."""

PAPER_PIXEL_MAX = 255.0
"""The "paper" scale expresses pixels in 0..255 units."""

DEFAULT_BATCH_SIZE = 256
"""Images per encode-decode call."""


def reconstruction_mse(model, x, batch_size=DEFAULT_BATCH_SIZE, scale="paper", data_range=None):
    """Test reconstruction error of g(f^mu(x)), averaged over the images of `x`.

    Args:
        model: a built keras_avae model (`encode_mean` and `generate`); not modified.
        x: `(N, *example_shape)` test images, N >= 1, in the model's `data_range`.
        batch_size: images per encode-decode call.
        scale: `"paper"` (per-pixel MSE in 0..255 units, the scale of Tables 1
            and 2), `"pixel"` (per-pixel MSE in data units) or `"sum"`
            (per-image sum of squared errors in data units).
        data_range: `(low, high)` the pixels span, mapped to 0..255 by
            `"paper"`; defaults to the model's `data_range`. Only `"paper"`
            uses it.

    Returns:
        The mean error, a Python float.

    Example:
        reconstruction_mse(vae, x_test)   # ~1370 for the paper's ColorMNIST VAE
    """
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}. Received: scale={scale!r}")
    _check_model(model)
    batch_size = check_positive_int(batch_size, "batch_size")
    if data_range is None:
        data_range = getattr(model, "data_range", None)
    data_range = check_data_range(data_range)
    if scale == "paper" and data_range is None:
        raise ValueError(
            "scale='paper' expresses pixels in 0..255 units and needs their range: the model "
            "has data_range=None, so pass `data_range=(low, high)`."
        )
    x = check_model_inputs(x, model)
    sums = squared_errors(model, x, batch_size)
    if scale == "sum":
        return float(sums.mean())
    per_pixel = sums.mean() / np.prod(x.shape[1:])
    if scale == "pixel":
        return float(per_pixel)
    low, high = data_range
    return float(per_pixel * (PAPER_PIXEL_MAX / (high - low)) ** 2)


def squared_errors(model, x, batch_size=DEFAULT_BATCH_SIZE):
    """Per-image sum of squared errors ||x - g(f^mu(x))||^2 in data units, float64 `(N,)`."""
    errors = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        reconstruction = keras.ops.convert_to_numpy(model.generate(model.encode_mean(batch)))
        difference = batch.astype(np.float64) - reconstruction.astype(np.float64)
        errors.append(np.sum(difference.reshape(len(batch), -1) ** 2, axis=1))
    return np.concatenate(errors)


def _check_model(model):
    missing = [name for name in ("encode_mean", "generate") if not hasattr(model, name)]
    if missing:
        raise ValueError(
            "`model` must be a keras_avae model with `encode_mean` and `generate`; "
            f"{type(model).__name__} lacks {missing}."
        )
    if not getattr(model, "built", False):
        raise ValueError("`model` must be built: fit it or call it on data first.")




