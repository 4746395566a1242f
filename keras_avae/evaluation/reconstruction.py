"""Test reconstruction error of the mean mapping, the MSE column of Tables 1 and 2.

The reconstruction of x is the decoder mean at the posterior mean,
x_hat = g(f^mu(x)), without sampling and without clipping. Its error is
reported on one of four scales (`SCALES`):

- `"nll"`: the per-image Gaussian negative log-likelihood of x under the
  decoder at the posterior mean, -log N(x; x_hat, v I) =
  D/2 log(2 pi v) + ||x - x_hat||^2 / (2 v), D pixels per image, in the
  data's own units, averaged over images; v is the model's `obs_var` unless
  `obs_var=` is given. This is the reading of the paper's MSE column that
  fits best, see below.
- `"paper"`: the mean squared error per pixel with pixels expressed in
  0..255 units, mean_{i, pixels} (255 (x - x_hat) / (high - low))^2, where
  (low, high) is the data range. The name is historical: this is the
  per-pixel 0..255 reading of the paper's column, the weaker of the two
  readings below. It stays the default so that existing results keep their
  meaning.
- `"pixel"`: the mean squared error per pixel in the data's own units.
- `"sum"`: the sum of squared errors per image in the data's own units,
  averaged over images (the quadratic term of the Gaussian log-likelihood
  times 2v). At v = 0.5 the `"nll"` value is `"sum"` plus the constant
  `gaussian_nll_constant(example_shape)`, so either can be computed from
  the other.

Which scale the paper's MSE column uses. The paper gives no units. Its
numbers are 1369.2 to 1379.3 on ColorMNIST, 28x28x3 (Table 1), and 7203.9
(VAE, Table 3) and 7208.8 to 7347.3 on CelebA, 64x64x3 (Tables 2 and 3); its
pixels are in [0, 1] (Table 1's caption). Two readings:

- Per-image Gaussian NLL at v = 0.5 (`"nll"`, `PAPER_OBS_VAR`). The constant
  D/2 log(2 pi v) = D/2 log(pi) is 1346.2 for D = 2352 and 7033.2 for
  D = 12288. Every number in both tables lies just above its constant, as
  an NLL must (||x - x_hat||^2 >= 0): the excess (paper - constant) * 2v / D
  is a per-pixel squared error of 0.0098 to 0.0141 in [0, 1] units on
  ColorMNIST (RMS 0.10 to 0.12, per-image sum 23.0 to 33.1) and 0.0139 to
  0.0256 on CelebA (RMS 0.12 to 0.16, per-image sum 171 to 314), ordinary
  values for VAE reconstructions, a little worse on the harder data set.
  Conversely the numbers bound v: an NLL >= D/2 log(2 pi v) needs
  v <= 0.510 (ColorMNIST) and v <= 0.514 (CelebA): both tables allow
  v = 0.5, this package's default `obs_var`, and nothing much larger. The
  constants scale with D, so their ratio is exactly the pixel-count ratio
  12288 / 2352 = 5.224; the paper's CelebA / ColorMNIST ratio is
  7203.9 / 1369.2 = 5.261 for the VAE (5.22 to 5.37 over all pairs of rows),
  a little above 5.224 because CelebA's per-pixel error is the larger
  (1.42 times ColorMNIST's).
- Per-pixel MSE in 0..255 units (`"paper"`). The numbers are then a
  per-pixel squared error of 0.0211 to 0.0212 in [0, 1] units on ColorMNIST
  (RMS 0.145, 37 grey levels) and 0.111 to 0.113 on CelebA (RMS 0.333, 85
  grey levels). Nothing in this reading ties the numbers to the pixel count:
  per-pixel errors do not grow with the image size, so the CelebA /
  ColorMNIST ratio would be expected of order 1, yet it is 5.26, which this
  reading can only take as CelebA's per-pixel error being 5.25 times
  ColorMNIST's and, by chance, within 1% of the pixel-count ratio. It also makes the seven ColorMNIST
  models agree to 0.7% and the CelebA ones to 2%, and gives CelebA an RMS
  error of a third of the pixel range.

The NLL reading explains the size of both columns, their ratio and their
floors with one known constant; the per-pixel reading needs a coincidence
for each. The NLL reading fits better; it is still an inference, the paper
does not state its formula.

Example:
    mse = reconstruction_mse(avae, x_test)                    # per-pixel 0..255 reading
    nll = reconstruction_mse(avae, x_test, scale="nll")       # per-image NLL reading, v = avae.obs_var
    sse = reconstruction_mse(avae, x_test, scale="sum")       # per-image SSE in [0, 1] units
"""


import math

import keras
import numpy as np

from keras_avae.validation import (
    check_data_range,
    check_positive,
    check_model_inputs,
    check_positive_int,
)

SCALES = ("paper", "pixel", "sum", "nll")
"""Scales of `reconstruction_mse`, see the module docstring."""

PAPER_PIXEL_MAX = 255.0
"""The "paper" scale expresses pixels in 0..255 units."""

PAPER_OBS_VAR = 0.5
"""The observation variance v at which the "nll" reading matches the paper's MSE column."""

DEFAULT_BATCH_SIZE = 256
"""Images per encode-decode call."""


def reconstruction_mse(
    model, x, batch_size=DEFAULT_BATCH_SIZE, scale="paper", data_range=None, obs_var=None
):
    """Test reconstruction error of g(f^mu(x)), averaged over the images of `x`.

    Args:
        model: a built keras_avae model (`encode_mean` and `generate`); not modified.
        x: `(N, *example_shape)` test images, N >= 1, in the model's `data_range`.
        batch_size: images per encode-decode call.
        scale: `"paper"` (per-pixel MSE in 0..255 units, the per-pixel
            reading of Tables 1 and 2), `"nll"` (per-image Gaussian negative
            log-likelihood D/2 log(2 pi v) + ||x - g(f^mu(x))||^2 / (2 v) in
            data units, the per-image NLL reading), `"pixel"` (per-pixel MSE
            in data units) or `"sum"` (per-image sum of squared errors in
            data units). See the module docstring for the two readings.
        data_range: `(low, high)` the pixels span, mapped to 0..255 by
            `"paper"`; defaults to the model's `data_range`. Only `"paper"`
            uses it.
        obs_var: the variance v of `"nll"`, a finite number > 0; defaults to
            the model's `obs_var` (the paper's reading needs
            `PAPER_OBS_VAR`, the default of keras_avae models). Only
            `"nll"` uses it.

    Returns:
        The mean error, a Python float.

    Example:
        reconstruction_mse(vae, x_test)                 # per-pixel 0..255 reading
        reconstruction_mse(vae, x_test, scale="nll")    # ~1370 for the paper's ColorMNIST VAE
    """
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}. Received: scale={scale!r}")
    return reconstruction_errors(model, x, (scale,), batch_size, data_range, obs_var)[scale]


def reconstruction_errors(model, x, scales=SCALES, batch_size=DEFAULT_BATCH_SIZE, data_range=None, obs_var=None):
    """`reconstruction_mse` on several `scales` from one encode-decode pass over `x`.

    Args:
        scales: names from `SCALES`; the other arguments are `reconstruction_mse`'s.

    Returns:
        Dict scale -> mean error (Python floats).

    Example:
        errors = reconstruction_errors(vae, x_test, ("paper", "nll"))
    """
    unknown = [scale for scale in scales if scale not in SCALES]
    if unknown or not scales:
        raise ValueError(f"`scales` must name scales from {SCALES}. Received: scales={scales!r}")
    _check_model(model)
    batch_size = check_positive_int(batch_size, "batch_size")
    if data_range is None:
        data_range = getattr(model, "data_range", None)
    data_range = check_data_range(data_range)
    if "paper" in scales and data_range is None:
        raise ValueError(
            "scale='paper' expresses pixels in 0..255 units and needs their range: the model "
            "has data_range=None, so pass `data_range=(low, high)`."
        )
    if obs_var is not None:
        obs_var = check_positive(obs_var, "obs_var")
    elif "nll" in scales:
        obs_var = _model_obs_var(model)
    x = check_model_inputs(x, model)
    per_image = squared_errors(model, x, batch_size).mean()
    per_pixel = per_image / np.prod(x.shape[1:])
    errors = {"sum": per_image, "pixel": per_pixel}
    if "nll" in scales:
        errors["nll"] = gaussian_nll_constant(x.shape[1:], obs_var) + per_image / (2.0 * obs_var)
    if "paper" in scales:
        low, high = data_range
        errors["paper"] = per_pixel * (PAPER_PIXEL_MAX / (high - low)) ** 2
    return {scale: float(errors[scale]) for scale in scales}


def gaussian_nll_constant(example_shape, obs_var=PAPER_OBS_VAR):
    """D/2 log(2 pi v), the `"nll"` value of a perfect reconstruction, D = prod(example_shape).

    Example:
        gaussian_nll_constant((28, 28, 3))   # 1346.2, the floor of Table 1's column
        gaussian_nll_constant((64, 64, 3))   # 7033.2, the floor of Table 2's
    """
    obs_var = check_positive(obs_var, "obs_var")
    pixels = int(np.prod(example_shape))
    return 0.5 * pixels * math.log(2.0 * math.pi * obs_var)


def squared_errors(model, x, batch_size=DEFAULT_BATCH_SIZE):
    """Per-image sum of squared errors ||x - g(f^mu(x))||^2 in data units, float64 `(N,)`."""
    errors = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        reconstruction = keras.ops.convert_to_numpy(model.generate(model.encode_mean(batch)))
        difference = batch.astype(np.float64) - reconstruction.astype(np.float64)
        errors.append(np.sum(difference.reshape(len(batch), -1) ** 2, axis=1))
    return np.concatenate(errors)


def _model_obs_var(model):
    if getattr(model, "likelihood", "gaussian") != "gaussian":
        raise ValueError(
            f"scale='nll' is the Gaussian negative log-likelihood, but the model's likelihood is "
            f"{model.likelihood!r}: pass `obs_var` to score it as Gaussian anyway."
        )
    obs_var = getattr(model, "obs_var", None)
    if obs_var is None:
        raise ValueError(
            f"scale='nll' needs the observation variance v: {type(model).__name__} has no "
            "`obs_var`, so pass `obs_var=`."
        )
    return check_positive(obs_var, "obs_var")


def _check_model(model):
    missing = [name for name in ("encode_mean", "generate") if not hasattr(model, name)]
    if missing:
        raise ValueError(
            "`model` must be a keras_avae model with `encode_mean` and `generate`; "
            f"{type(model).__name__} lacks {missing}."
        )
    if not getattr(model, "built", False):
        raise ValueError("`model` must be built: fit it or call it on data first.")
