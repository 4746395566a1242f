"""How far a small input perturbation moves the representation f^mu, measured against class separation.

A linear probe on f^mu (step ii of Section 4) keeps its decision under an
attack of radius epsilon only if no x~ with ||x~ - x||_inf <= epsilon moves
f^mu(x~) across the probe's boundary. `representation_sensitivity` puts numbers
on both sides of that:

- `shift`: E_x max_{||x~ - x||_inf <= epsilon} ||f^mu(x~) - f^mu(x)||_2, the
  inner maximum found by L-inf PGD (`keras_avae.attacks.pgd`) on the squared
  distance; a lower bound on the true worst case, as every attack is;
- `random_shift`: the same distance for a random corner of the ball,
  x~ = x + epsilon * s with random signs s (clipped to the data range): what
  noise of the same size does;
- per task, `centroid_distance`: the median over pairs of classes of the
  distance between the classes' mean f^mu, and `shift_ratio` = shift /
  centroid_distance (infinite when the centres coincide). A ratio near 1 or above means the attack can carry a
  typical representation as far as the gap between two classes' centres,
  and a linear probe cannot stay robust.

The squared distance has zero gradient at x~ = x, so the attack starts from a
uniform random point of the ball (seeded; the seed applies inside the traced
attack only and leaves TensorFlow's global seed alone).

Example:
    sensitivity = representation_sensitivity(avae, x_test[:500], 0.1, labels={"digit": y_digit[:500]})
    print(sensitivity["shift"], sensitivity["shift_ratio"]["digit"])
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_avae import attacks
from keras_avae.evaluation.probes import check_labels
from keras_avae.validation import (
    check_model_inputs,
    check_non_negative,
    check_positive_int,
    check_seed,
)

DEFAULT_STEPS = 10
"""PGD steps of the representation attack."""

DEFAULT_BATCH_SIZE = 256
"""Examples per attacked batch."""



def representation_sensitivity(model, x, epsilon, labels=None, steps=DEFAULT_STEPS, batch_size=DEFAULT_BATCH_SIZE, seed=0):
    """The worst-case and random shift of f^mu within an L-inf ball, and its ratio to class separation.

    Args:
        model: a keras_avae model (`encode_mean`; `data_range` is respected
            when the model has one); not modified.
        x: `(N, *example_shape)` inputs.
        epsilon: L-inf radius >= 0, in the units of x.
        labels: optional dict task -> `(N,)` integer labels (as
            `keras_avae.datasets.color_mnist` returns) for the centroid
            distances; each task needs at least two classes present.
        steps: PGD steps, >= 1.
        batch_size: examples per attacked batch, >= 1.
        seed: int seeding the random corners and the attack's random starts.

    Returns:
        Dict with Python floats `shift` and `random_shift` and, when `labels`
        is given, dicts `centroid_distance` and `shift_ratio` keyed by task.
    """
    if not hasattr(model, "encode_mean"):
        raise ValueError(f"`model` must be a keras_avae model with `encode_mean`; got {type(model).__name__}.")
    epsilon = check_non_negative(epsilon, "epsilon")
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    x = check_model_inputs(x, model)
    data_range = getattr(model, "data_range", None)

    @tf.function(reduce_retracing=True)
    def farthest(batch, code):
        tf.random.set_seed(seed)  # seeds this graph only
        return attacks.pgd(
            model.encode_mean, _squared_distance, batch, code, epsilon, steps, data_range, random_start=True
        )

    rng = np.random.default_rng(seed)
    codes, shifts, random_shifts = [], [], []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        code = _encode(model, batch)
        adversarial = farthest(batch, code) if epsilon > 0 else batch
        corner = batch + epsilon * rng.choice([-1.0, 1.0], size=batch.shape).astype(np.float32)
        if data_range is not None:
            corner = np.clip(corner, *data_range)
        codes.append(code)
        shifts.append(np.linalg.norm(_encode(model, adversarial) - code, axis=-1))
        random_shifts.append(np.linalg.norm(_encode(model, corner) - code, axis=-1))
    result = {
        "shift": float(np.concatenate(shifts).mean()),
        "random_shift": float(np.concatenate(random_shifts).mean()),
    }
    if labels is not None:
        codes = np.concatenate(codes)
        distances = {task: centroid_distance(codes, check_labels(y, f"labels[{task!r}]", len(x), "x"))
                     for task, y in dict(labels).items()}
        result["centroid_distance"] = distances
        result["shift_ratio"] = {
            task: result["shift"] / distance if distance > 0 else math.inf for task, distance in distances.items()
        }
    return result


def centroid_distance(features, labels):
    """Median Euclidean distance between the means of `features` of each pair of classes in `labels`."""
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(f"Centroid distances need at least two classes in the labels; found {classes.tolist()}.")
    centroids = np.stack([features[labels == label].mean(axis=0) for label in classes])
    pairs = np.triu_indices(len(classes), k=1)
    return float(np.median(np.linalg.norm(centroids[pairs[0]] - centroids[pairs[1]], axis=-1)))


def _squared_distance(labels, logits):
    """The attack's objective: ||f^mu(x~) - target||^2 per example (CleverHans' loss signature)."""
    return tf.reduce_sum(tf.square(logits - labels), axis=-1)


def _encode(model, x):
    return keras.ops.convert_to_numpy(model.encode_mean(x)).astype(np.float32)

