"""Self-consistency of an encoder-decoder pair: does the model autoencode its own samples?

The paper's thesis (abstract, Section 2.1, appendix B): a nominally trained VAE
need not encode the samples it generates back to where they came from. For
z ~ p(z), a self-consistent pair has f^mu(g(z)) ~= z (exactly so for the pPCA
posterior as the observation noise v -> 0, appendix B), and the chain
x_{t+1} = g(f^mu(x_t)) of Figure 1 stays put instead of drifting.

`self_consistency` measures this with numbers. It draws z_0 ~ N(0, I),
x_0 = g(z_0), and runs the chain z_t = f^mu(x_{t-1}), x_t = g(z_t) for
t = 1..steps. Squared errors are summed over latent dimensions (z) or over
pixels (x, in the data's units) and averaged over the n samples.

Collapsed dimensions. With the paper's observation noise most latent
dimensions collapse to the prior: f^mu(x) is (nearly) constant there, so
f^mu(g(z)) cannot recover z in them and each adds about E[z_i^2] = 1 to the
z-space error whatever the encoder does. The errors are therefore
also reported over the active dimensions only, those whose posterior mean
varies over data, Var_x[f^mu(x)] > `active_threshold` (0.01, the usual
choice), with x the real data passed as `x=` or else the generated samples
x_0 = g(z_0); and in x-space, where collapsed dimensions do not count.

An active dimension is not necessarily an informative one: a dimension whose
mean varies a little (variance 0.05, say) passes the threshold yet cannot
return a unit-variance z: a model with many such dimensions can have the larger
`z_error_active` and still be the more consistent one in x-space (the
documentation's results page has a measured case). Read the z- and x-space
keys together.

Reference points: an encoder that ignores its input and returns 0 scores
`z_error` = latent_dim (`z_error_active` = `active_dims`); a perfectly
self-consistent pair scores 0 on every key.
"""

import math
import numbers

import keras
import numpy as np

from keras_avae.validation import check_model_inputs, check_non_negative, check_seed

DEFAULT_SAMPLES = 1000
"""Latent samples z ~ p(z) per evaluation."""

DEFAULT_STEPS = 5
"""Encode-decode steps of the chain (Figure 1)."""

ACTIVE_THRESHOLD = 0.01
"""A latent dimension is active when Var_x[f^mu(x)] exceeds this."""

VARIANCES_REASON = " to estimate variances"
"""Why `x` needs at least two examples, for the message."""

DEFAULT_BATCH_SIZE = 256
"""Samples per encoder or decoder call."""


def self_consistency(
    model,
    n=DEFAULT_SAMPLES,
    steps=DEFAULT_STEPS,
    active_threshold=ACTIVE_THRESHOLD,
    x=None,
    batch_size=DEFAULT_BATCH_SIZE,
    seed=0,
):
    """How far the model's encoder is from inverting its decoder on its own samples.

    Draws z_0 ~ N(0, I) (NumPy, seeded: the model's seed generator is not
    touched), x_0 = g(z_0), and iterates z_t = f^mu(x_{t-1}), x_t = g(z_t).

    Returned keys, each a Python float averaged over the n samples:

    - `z_error`: E||f^mu(g(z)) - z||^2, summed over all latent dimensions
      (= `z_drift_1`).
    - `z_error_active`: the same summed over the active dimensions only.
    - `z_error_noisy`, `z_error_noisy_active`: the same for x ~ p(x|z), the
      decoder's observation noise added: N(g(z), obs_var I) clipped to the
      model's `data_range` (if any), or Bernoulli(g(z)) for a Bernoulli
      likelihood.
    - `x_error`: E||g(f^mu(g(z))) - g(z)||^2, summed over pixels in the data's
      units (= `x_drift_1`).
    - `active_dims`: the number of active dimensions, Var[f^mu(x)] >
      `active_threshold` over `x` if given, else over x_0 = g(z_0).
    - `z_drift_{t}`, `z_drift_active_{t}`, `x_drift_{t}` for t = 1..steps:
      ||z_t - z_0||^2 (all and active dimensions) and ||x_t - x_0||^2 along
      the chain of Figure 1.

    Args:
        model: a built keras_avae model (`encode_mean`, `generate`,
            `latent_dim`, `obs_var`, `likelihood`, `data_range`); not modified.
        n: number of latent samples, >= 2.
        steps: chain length, >= 1.
        active_threshold: variance threshold >= 0 for active dimensions.
        x: optional real data `(N >= 2, *example_shape)` for the
            active-dimension variances.
        batch_size: samples per encoder or decoder call.
        seed: int seeding z_0 and the observation noise.

    Returns:
        Dict of Python floats with the keys above.

    Example:
        scores = self_consistency(avae, n=1000, x=x_test[:2000])
        print(scores["z_error_active"], scores["active_dims"], scores["x_drift_5"])
    """
    _check_model(model)
    n = _check_int(n, "n", 2)
    steps = _check_int(steps, "steps", 1)
    active_threshold = check_non_negative(active_threshold, "active_threshold")
    batch_size = _check_int(batch_size, "batch_size", 1)
    seed = check_seed(seed)
    if x is not None:
        x = check_model_inputs(x, model, min_examples=2, reason=VARIANCES_REASON)

    def encode(images):
        return keras.ops.convert_to_numpy(model.encode_mean(images.astype(np.float32))).astype(np.float64)

    def decode(latents):
        return keras.ops.convert_to_numpy(model.generate(latents.astype(np.float32))).astype(np.float64)

    rng = np.random.default_rng(seed)
    latent_dim = int(model.latent_dim)
    z_start = rng.normal(size=(n, latent_dim))
    z_sq = np.zeros((steps, latent_dim))  # per step, per dimension: sum over samples
    x_sq = np.zeros(steps)
    z_noisy_sq = np.zeros(latent_dim)
    first_codes = np.empty((n, latent_dim))
    for start in range(0, n, batch_size):
        z0 = z_start[start : start + batch_size]
        x0 = decode(z0)
        noisy_code = encode(_observe(model, x0, rng))
        z_noisy_sq += np.sum((noisy_code - z0) ** 2, axis=0)
        x_t = x0
        for t in range(steps):
            z_t = encode(x_t)
            x_t = decode(z_t)
            if t == 0:
                first_codes[start : start + len(z0)] = z_t
            z_sq[t] += np.sum((z_t - z0) ** 2, axis=0)
            x_sq[t] += np.sum((x_t - x0) ** 2)

    if x is None:
        variances = first_codes.var(axis=0)
    else:
        variances = np.concatenate(
            [encode(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
        ).var(axis=0)
    active = variances > active_threshold

    results = {
        "z_error": z_sq[0].sum() / n,
        "z_error_active": z_sq[0][active].sum() / n,
        "z_error_noisy": z_noisy_sq.sum() / n,
        "z_error_noisy_active": z_noisy_sq[active].sum() / n,
        "x_error": x_sq[0] / n,
        "active_dims": active.sum(),
    }
    for t in range(steps):
        results[f"z_drift_{t + 1}"] = z_sq[t].sum() / n
        results[f"z_drift_active_{t + 1}"] = z_sq[t][active].sum() / n
        results[f"x_drift_{t + 1}"] = x_sq[t] / n
    return {key: float(value) for key, value in results.items()}


def _observe(model, x_mean, rng):
    """A sample of p(x|z) with mean `x_mean`, clipped to the model's data range."""
    if getattr(model, "likelihood", "gaussian") == "bernoulli":
        return (rng.random(x_mean.shape) < x_mean).astype(np.float64)
    noisy = x_mean + math.sqrt(model.obs_var) * rng.normal(size=x_mean.shape)
    data_range = getattr(model, "data_range", None)
    if data_range is not None:
        noisy = np.clip(noisy, data_range[0], data_range[1])
    return noisy


def _check_model(model):
    missing = [
        name for name in ("encode_mean", "generate", "latent_dim", "obs_var") if not hasattr(model, name)
    ]
    if missing:
        raise ValueError(
            "`model` must be a keras_avae model (`encode_mean`, `generate`, `latent_dim`, "
            f"`obs_var`); {type(model).__name__} lacks {missing}."
        )
    if model.latent_dim is None:
        raise ValueError("`model` must be built (its latent_dim is unknown): fit it or call it on data first.")


def _check_int(value, name, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


