"""L-inf projected gradient attacks, through CleverHans' TF2 `projected_gradient_descent`.

Attacks run the networks in inference mode (`training=False`), so they update no
BatchNorm statistics, and their results carry no gradient back to the model.
"""

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

from keras_avae import objectives

# PGD step size as a multiple of epsilon / steps (Madry et al., 2018), capped at
# epsilon: large enough to cross the ball and back, small enough to settle.
STEP_SIZE_FACTOR = 2.5


def step_size(epsilon, steps):
    """The PGD step for radius `epsilon` in `steps` steps: min(eps, 2.5 eps / steps)."""
    return min(float(epsilon), STEP_SIZE_FACTOR * float(epsilon) / int(steps))


def pgd(model_fn, loss_fn, x, y, epsilon, steps, data_range=None, random_start=False):
    """Untargeted L-inf PGD that maximises `loss_fn(labels=y, logits=model_fn(x~))`.

    Args:
        model_fn: inputs -> outputs, differentiable in the inputs.
        loss_fn: `(labels, logits) -> (batch,)` loss to maximise.
        x: `(batch, ...)` clean inputs.
        y: what `loss_fn` compares against (always given: PGD's argmax fallback
            means nothing for latent codes).
        epsilon: L-inf radius (0 returns x).
        steps: number of gradient steps.
        data_range: `(low, high)` to clip x~ into, or None.
        random_start: start from a uniform point in the ball instead of x.

    Returns:
        x~ with ||x~ - x||_inf <= epsilon, inside `data_range`, without gradient.
    """
    x = tf.cast(x, tf.float32)
    if epsilon == 0:
        return tf.stop_gradient(x)
    clip_min, clip_max = data_range if data_range is not None else (None, None)
    adversarial = projected_gradient_descent(
        model_fn,
        x,
        eps=float(epsilon),
        eps_iter=step_size(epsilon, steps),
        nb_iter=int(steps),
        norm=np.inf,
        loss_fn=loss_fn,
        clip_min=clip_min,
        clip_max=clip_max,
        y=tf.stop_gradient(y),
        rand_init=random_start,
    )
    return tf.stop_gradient(adversarial)


def representation_attack(encode, x, epsilon, steps, rho, data_range=None, random_start=False):
    """The smooth encoder's augmentation step, eqs. (25)-(27).

    Finds x~ in the L-inf ball around x that maximises
    `objectives.representation_divergence` between q(z|x) and q(z'|x~).

    Args:
        encode: inputs -> `(z_mean, z_log_var)`, run in inference mode.
        x: `(batch, ...)` clean inputs.
        epsilon: L-inf radius.
        steps: PGD steps.
        rho: coupling strength of the divergence.
        data_range: `(low, high)` pixel range, or None.
        random_start: start from a random point in the ball.

    Returns:
        The adversarial x~, without gradient.
    """

    def model_fn(inputs):
        return tf.concat(encode(inputs), axis=-1)

    def divergence(labels, logits):
        z_mean, z_log_var = tf.split(labels, 2, axis=-1)
        aux_mean, aux_log_var = tf.split(logits, 2, axis=-1)
        return objectives.representation_divergence(z_mean, z_log_var, aux_mean, aux_log_var, rho)

    return pgd(model_fn, divergence, x, model_fn(x), epsilon, steps, data_range, random_start)
