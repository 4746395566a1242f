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

ATTACK_NAME_SCOPE = "representation_attack"
"""The TensorFlow name scope of every op of `representation_attack` (benchmarks/profile_step.py reads it)."""

ATTACK_TARGET_NAME_SCOPE = "target"
"""The scope, inside `ATTACK_NAME_SCOPE`, of the attack's encoding of the clean x (before its PGD steps)."""


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

    # The scopes name every op of the attack, forward and backward: the encoding of x that the
    # divergence compares with, then the PGD steps; a profile of a training step
    # (benchmarks/profile_step.py) tells the attack's time from the rest by them.
    with tf.name_scope(ATTACK_NAME_SCOPE):
        with tf.name_scope(ATTACK_TARGET_NAME_SCOPE):
            target = model_fn(x)
        return pgd(model_fn, divergence, x, target, epsilon, steps, data_range, random_start)


# ------------------------------------------------------------ classifier losses
#
# Losses for attacking a classifier `logits = probe(f^mu(x))` with `pgd`, step
# iii of the evaluation protocol (Section 4). Each maps `(labels, logits)` to a
# `(batch,)` value that the attack maximises.


def cross_entropy_loss(labels, logits):
    """Softmax cross-entropy of the true class, the usual PGD loss (Madry et al., 2018).

    Its gradient is `softmax(logits) - onehot(y)`, which underflows to exactly 0
    in float32 once the true logit leads by about 100: sign-gradient PGD then
    stops moving. `margin_loss` has no such flat region.

    Args:
        labels: `(batch,)` integer true classes y.
        logits: `(batch, num_classes)` classifier outputs.

    Returns:
        `(batch,)` -log softmax(logits)_y.
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int64), logits=logits
    )


def margin_loss(labels, logits):
    """Carlini-Wagner margin max_{j != y} logit_j - logit_y (Carlini & Wagner, 2017).

    Positive when another class outscores the true one, so maximising it aims
    straight at changing the decision; its gradient does not vanish when the
    true class is confidently predicted. With a single class it is the most
    negative float32.

    Args:
        labels: `(batch,)` integer true classes y.
        logits: `(batch, num_classes)` classifier outputs.

    Returns:
        `(batch,)` margins.
    """
    is_true = tf.one_hot(tf.cast(labels, tf.int64), tf.shape(logits)[-1], on_value=True, off_value=False)
    true_logit = tf.reduce_sum(tf.where(is_true, logits, tf.zeros_like(logits)), axis=-1)
    lowest = tf.fill(tf.shape(logits), tf.constant(logits.dtype.min, logits.dtype))
    best_other = tf.reduce_max(tf.where(is_true, lowest, logits), axis=-1)
    return best_other - true_logit


def targeted_margin_loss(labels, logits):
    """logit_t - logit_y for a chosen wrong class t (one run of a multi-targeted attack).

    Running it once for every t != y (Gowal et al., 2019, "An alternative
    surrogate loss for PGD-based adversarial testing") finds, for a classifier
    linear in x, the exact worst case over the box, because each run then
    maximises a linear function.

    Args:
        labels: `(batch, 2)` integer pairs `(y, t)`: true class, then target class.
        logits: `(batch, num_classes)` classifier outputs.

    Returns:
        `(batch,)` logit_t - logit_y.
    """
    labels = tf.cast(labels, tf.int64)
    true_logit = tf.gather(logits, labels[:, 0], axis=-1, batch_dims=1)
    target_logit = tf.gather(logits, labels[:, 1], axis=-1, batch_dims=1)
    return target_logit - true_logit
