"""Adversarial accuracy of a frozen representation: step iii of the evaluation protocol (Section 4).

Cemgil et al. (2020) score a representation in three steps: i) train an
encoder-decoder pair without labels; ii) freeze the encoder and train one
linear classifier per task on its mean f^mu, normally, without attacks
(`keras_avae.evaluation.probes`); iii) attack encoder and classifier together,
`logits = probe(f^mu(x))`, with L-inf PGD of radius epsilon, and report the
fraction of test examples for which no attack changes the decision (Table 1;
epsilon = 0 is the clean accuracy). Appendix F fixes the evaluation attack on
Color MNIST at 40 PGD iterations and 10 random restarts; these are the
defaults here.

What this module adds to the paper's description, where it is silent or weak:

- Step size. The paper does not give one. `keras_avae.attacks.step_size`
  scales it with the radius: min(eps, 2.5 eps / steps) (Madry et al., 2018),
  so every radius gets the same number of steps to cross its ball.
- Two losses. Besides softmax cross-entropy, whose gradient underflows to 0
  when the true class is predicted confidently (a classic source of
  gradient masking), every start is also run with the Carlini-Wagner margin
  max_{j != y} logit_j - logit_y. `"targeted_margin"` (one run per wrong class
  t, maximising logit_t - logit_y; Gowal et al., 2019) can be added for a
  stronger, (num_classes - 1) times costlier attack; it is exact for
  classifiers linear in x.
- Worst case per example. An example counts as robust only if it is
  classified correctly at x and after every start of every loss; an
  adversarial example found at a smaller radius also lies in every larger
  ball, so it counts there too and accuracy never rises with epsilon.
- Restarts. The first start of each loss is x itself; the other
  `restarts - 1` are uniform in the ball (CleverHans' `rand_init`).
- Sanity checks (`RobustnessEvaluator.sanity_check`), after Carlini et al.
  (2019), "On evaluating adversarial robustness": a radius that spans the
  whole data range must bring accuracy down to chance (the majority-class
  rate), and more PGD steps must not raise it.

Every attack goes through `keras_avae.attacks.pgd` (CleverHans'
`projected_gradient_descent`) with the true labels, the model in inference
mode, and x~ clipped to the model's `data_range`. Attacks run in batches,
compiled with `tf.function`, under the model's `distribute_strategy`, each
batch split over its replicas with `strategy.run`.

Example:
    train_data = keras_avae.datasets.color_mnist("train", path=path, limit=10000)
    test_data = keras_avae.datasets.color_mnist("test", path=path, limit=2000)
    evaluator = RobustnessEvaluator(train_data, test_data)
    results = evaluator.evaluate(model)       # {"digit": {0.0: 0.97, 0.1: 0.88, ...}, ...}
    print(to_markdown(results, model_name="AVAE"))
    model.fit(x_train, epochs=50, callbacks=[RobustnessEvaluator(train_data, test_data, every_n_epochs=10)])
"""

import collections
import json
import math
import numbers
import sys
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_avae import attacks
from keras_avae.evaluation import probes as probes_lib
from keras_avae.validation import (
    check_non_negative,
    check_positive_int,
    check_seed,
    input_problem,
)

DEFAULT_EPSILONS = (0.0, 0.1, 0.2)
"""The attack radii of Table 1, for pixels in [0, 1]."""

DEFAULT_ATTACK_STEPS = 40
"""Appendix F: "In evaluation, PGD with iteration budget 40 is used" (Color MNIST)."""

DEFAULT_RESTARTS = 10
"""Appendix F: "while evaluating 10 random restarts are used"."""

DEFAULT_LOSSES = ("cross_entropy", "margin")
"""The losses every start is run with."""

DEFAULT_BATCH_SIZE = 256
"""Test examples per attacked (global) batch."""

LOSSES = {
    "cross_entropy": attacks.cross_entropy_loss,
    "margin": attacks.margin_loss,
    "targeted_margin": attacks.targeted_margin_loss,
}
"""Attack losses by name. `"targeted_margin"` runs once per wrong class."""

# Position of each loss in `_run_loss`.
_LOSS_INDEX = {name: index for index, name in enumerate(LOSSES)}

PROBE_ARGUMENTS = ("epochs", "batch_size", "learning_rate", "seed")
"""The `keras_avae.evaluation.probes.train_linear_probe` arguments `probe_kwargs` may set."""

SANITY_TOLERANCE = 0.02
"""Default slack, in accuracy, of the sanity checks."""

SANITY_STEPS_FACTOR = 4
"""The sanity check repeats the attack with this many times more PGD steps."""

# Compiled attacks kept per evaluator (one per probe, radius and step count).
_MAX_CACHED_ATTACKS = 64


class RobustnessSanityWarning(UserWarning):
    """A sanity check of the attack failed: the reported robust accuracy may be too high."""


class SanityCheckError(RuntimeError):
    """Raised by `RobustnessEvaluator.sanity_check(..., strict=True)` when a check fails."""


def log_key(task, epsilon):
    """The Keras `logs` key of one result, e.g. `robust_digit_eps0.1` (`eps0` is the clean accuracy)."""
    return f"robust_{task}_eps{float(epsilon):g}"


# --------------------------------------------------------------------- attack


def attack(
    model,
    probe,
    x,
    y,
    epsilon,
    attack_steps=DEFAULT_ATTACK_STEPS,
    restarts=DEFAULT_RESTARTS,
    losses=DEFAULT_LOSSES,
    batch_size=DEFAULT_BATCH_SIZE,
    seed=0,
):
    """The worst adversarial example found for each input, against `probe(model.encode_mean(x))`.

    Runs every loss in `losses` from x and from `restarts - 1` random starts,
    and keeps for each example the candidate (x included) that fools the
    classifier, or, if none does, the one with the largest margin
    max_{j != y} logit_j - logit_y. So an example is robust under this
    attack exactly when `argmax probe(f^mu(x~)) == y`.

    Args:
        model: a keras_avae model (`encode_mean`, `data_range`,
            `distribute_strategy`), run in inference mode, not modified.
        probe: Keras model (or callable) mapping f^mu(x) to logits.
        x: `(N, ...)` inputs inside `model.data_range`.
        y: `(N,)` integer true classes.
        epsilon: L-inf radius >= 0 (0 returns x).
        attack_steps: PGD steps per start.
        restarts: starts per loss (the first is x itself).
        losses: names from `LOSSES`.
        batch_size: examples per global batch, split over the model's replicas.
        seed: seed of the random starts.

    Returns:
        float32 NumPy array x~ shaped like x, with ||x~ - x||_inf <= epsilon and
        x~ inside `model.data_range`.

    Example:
        x_adv = attack(vae, probes["digit"], x_test, labels["digit"], epsilon=0.1)
    """
    _check_model(model)
    epsilon = check_non_negative(epsilon, "epsilon")
    attack_steps = check_positive_int(attack_steps, "attack_steps")
    restarts = check_positive_int(restarts, "restarts")
    losses = _check_losses(losses)
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    x = _check_inputs(x, model, "x")
    y = probes_lib.check_labels(y, "y", len(x), "x")
    compiled = _Attack(model, probe, epsilon, attack_steps, restarts, losses, seed)
    adversarial, _ = compiled(x, y, batch_size)
    return adversarial


class _Attack:
    """One compiled attack: encoder + one probe at one radius and step count.

    Holds the model and probe, so that cached instances keep them alive.
    """

    def __init__(self, model, probe, epsilon, attack_steps, restarts, losses, seed):
        self.model = model
        self.probe = probe
        self.epsilon = float(epsilon)
        self.attack_steps = int(attack_steps)
        self.restarts = int(restarts)
        self.losses = tuple(losses)
        self.seed = int(seed)
        self.data_range = model.data_range
        self.strategy = model.distribute_strategy
        call_probe = (
            (lambda z: probe(z, training=False)) if isinstance(probe, keras.layers.Layer) else probe
        )

        # One function object for every PGD call, so that CleverHans'
        # compiled gradient function is traced once, not once per call.
        def logits(inputs):
            return tf.cast(call_probe(model.encode_mean(inputs)), tf.float32)

        self.logits = logits
        self._step = tf.function(self._distributed_step, reduce_retracing=True)

    def __call__(self, x, labels, batch_size):
        """Attacks every example; returns `(x_adv, robust)` NumPy arrays in input order."""
        count = len(x)
        # The last batch is topped up with copies of the first examples (index
        # -1, dropped below), so every batch has one shape and one trace.
        batch_size = min(batch_size, count)
        padding = -count % batch_size
        index = np.concatenate([np.arange(count), np.full(padding, -1)]).astype(np.int64)
        adversarial = np.empty(x.shape, np.float32)
        labels = labels.astype(np.int64)
        if padding:
            fill = np.arange(padding) % count
            x, labels = np.concatenate([x, x[fill]]), np.concatenate([labels, labels[fill]])
        dataset = tf.data.Dataset.from_tensor_slices((x, labels, index)).batch(batch_size)
        robust = np.zeros(count, bool)
        with self.strategy.scope():
            for batch in self.strategy.experimental_distribute_dataset(dataset):
                outputs = self._step(*batch)
                local = [self.strategy.experimental_local_results(value) for value in outputs]
                for batch_index, worst_x, is_robust in zip(*local):
                    batch_index = batch_index.numpy()
                    real = batch_index >= 0
                    adversarial[batch_index[real]] = worst_x.numpy()[real]
                    robust[batch_index[real]] = is_robust.numpy()[real]
        return adversarial, robust

    def _distributed_step(self, x, labels, index):
        # Inside tf.function this seeds the function graph only, so the random
        # starts are reproducible and the user's global seed is left alone.
        tf.random.set_seed(self.seed)
        return self.strategy.run(self._replica_step, args=(x, labels, index))

    def _replica_step(self, x, labels, index):
        x = tf.cast(x, tf.float32)
        labels = tf.cast(labels, tf.int64)
        logits = self.logits(x)
        wrong, margin = _judge(logits, labels)
        worst = (x, wrong, margin)
        if self.epsilon > 0:
            num_classes = tf.shape(logits, out_type=tf.int64)[-1]
            table = self._run_table(num_classes)
            worst = self._runs(x, labels, num_classes, table, 1, False, worst)
            if self.restarts > 1:
                worst = self._runs(x, labels, num_classes, table, self.restarts - 1, True, worst)
        worst_x, worst_wrong, _ = worst
        return index, worst_x, tf.logical_not(worst_wrong)

    def _run_table(self, num_classes):
        """The PGD runs of one start: each loss's `LOSSES` index and target offset t - y.

        `"targeted_margin"` contributes one run per wrong class.
        """
        modes, offsets = [], []
        for name in self.losses:
            runs = num_classes - 1 if name == "targeted_margin" else tf.constant(1, tf.int64)
            modes.append(tf.fill([runs], tf.constant(_LOSS_INDEX[name], tf.int64)))
            offsets.append(tf.range(1, runs + 1) if name == "targeted_margin" else tf.zeros([1], tf.int64))
        return tf.concat(modes, axis=0), tf.concat(offsets, axis=0)

    def _runs(self, x, labels, num_classes, table, starts, random_start, worst):
        """`starts` times every run of the table, keeping each example's worst candidate.

        Every run goes through one traced PGD: the loss is picked per run by
        its index, so the graph holds one PGD for the start from x and one for
        the random starts, whatever the losses.
        """
        modes, offsets = table
        table_size = tf.shape(modes, out_type=tf.int64)[0]
        example_axes = [1] * (len(x.shape) - 1)

        def body(run, worst_x, worst_wrong, worst_margin):
            entry = run % table_size
            target = (labels + offsets[entry]) % num_classes
            run_labels = tf.stack([labels, target, tf.fill(tf.shape(labels), modes[entry])], axis=-1)
            candidate = attacks.pgd(
                self.logits,
                _run_loss,
                x,
                run_labels,
                self.epsilon,
                self.attack_steps,
                self.data_range,
                random_start=random_start,
            )
            wrong, margin = _judge(self.logits(candidate), labels)
            # Misclassified beats correct; then the larger margin wins.
            worse = (wrong & ~worst_wrong) | ((wrong == worst_wrong) & (margin > worst_margin))
            return (
                run + 1,
                tf.where(tf.reshape(worse, [-1] + example_axes), candidate, worst_x),
                worst_wrong | wrong,
                tf.where(worse, margin, worst_margin),
            )

        # parallel_iterations=1: runs draw their random starts in a fixed order.
        _, *worst = tf.while_loop(
            lambda run, *_: run < starts * table_size,
            body,
            (tf.constant(0, tf.int64), *worst),
            parallel_iterations=1,
        )
        return tuple(worst)


def _run_loss(labels, logits):
    """The loss of one run: `labels` holds `(y, target, LOSSES index)` per example.

    Every loss is computed and the run's own one is selected, so its gradient
    alone reaches the inputs.
    """
    true_labels, pairs, mode = labels[:, 0], labels[:, :2], labels[:, 2]
    loss = tf.zeros(tf.shape(true_labels), logits.dtype)
    for name, loss_fn in LOSSES.items():
        value = loss_fn(pairs if name == "targeted_margin" else true_labels, logits)
        loss = tf.where(tf.equal(mode, _LOSS_INDEX[name]), value, loss)
    return loss


def _judge(logits, labels):
    """Whether each example is misclassified (argmax != y), and its margin."""
    wrong = tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int64), labels)
    return wrong, attacks.margin_loss(labels, logits)


# ------------------------------------------------------------------ evaluator


class RobustnessEvaluator(keras.callbacks.Callback):
    """Adversarial accuracy of linear probes on f^mu, as in Table 1; a Keras callback too.

    `evaluate(model)` runs the protocol of Section 4 (see the module
    docstring): trains one linear probe per task on the frozen f^mu of
    `train_data` (`keras_avae.evaluation.probes.train_probes`), then attacks
    `probe(model.encode_mean(x))` on `test_data` at every radius. It returns
    `results[task][epsilon]`, the fraction of test examples that survive every
    start of every loss (a Python float in [0, 1]; epsilon 0 is the clean
    accuracy, and accuracy never rises with epsilon).

    As a callback (`model.fit(..., callbacks=[evaluator, CSVLogger(...)])`)
    it evaluates `self.model` at the end of every `every_n_epochs`-th epoch
    and of the last one, writes each result to the epoch's `logs` under
    `log_key(task, epsilon)` (e.g. `robust_digit_eps0.1`), so `History`,
    `TensorBoard` and `CSVLogger` see them, and appends
    `{"epoch", "results", "seconds"}` to `self.history`. Put it before those
    callbacks in the list: Keras calls them in order. If training stops early
    (e.g. `EarlyStopping`) after an epoch that was not evaluated, that model is
    evaluated in `on_train_end`, into `self.history` only.

    `CSVLogger` fixes its columns at the first epoch and fails on keys it has
    not seen, so with it use `every_n_epochs=1`, or `fill_missing_epochs=True`
    to log NaN in the epochs that are not evaluated.

    The attack is compiled once per probe slot, radius and step count and
    reused across epochs; its random starts come from `seed`, so a run is
    reproducible, but successive evaluations draw new starts.

    Args:
        train_data: `(x, labels)` with `labels` a dict task name -> `(N,)`
            integer array, as `keras_avae.datasets.color_mnist` returns; the
            probes are trained on it.
        test_data: `(x, labels)` with labels for every task of `train_data`;
            the attacks run on it. Its inputs must lie in the model's
            `data_range`.
        epsilons: attack radii >= 0, in the units of x (sorted, duplicates dropped).
        attack_steps: PGD steps per start (Appendix F: 40).
        restarts: starts per loss, the first from x itself (Appendix F: 10).
        every_n_epochs: evaluate after every n-th epoch (and after the last).
        batch_size: test examples per global batch of the attack, split over
            the model's replicas.
        losses: attack losses, names from `LOSSES`.
        probe_kwargs: `train_linear_probe` arguments (`epochs`, `batch_size`,
            `learning_rate`, `seed`); `seed` defaults to `seed`.
        seed: seed of the probes' shuffling and of the random starts.
        fill_missing_epochs: log NaN under every key in epochs that are not evaluated.
        verbose: 1 prints one line per evaluation, 0 is silent.

    Example:
        evaluator = RobustnessEvaluator(train_data, test_data, attack_steps=20, restarts=2)
        results = evaluator.evaluate(avae)
        print(evaluator.to_markdown(results, model_name="AVAE"))
        evaluator.sanity_check(avae)  # warns if the attack looks too weak
    """

    def __init__(
        self,
        train_data,
        test_data,
        epsilons=DEFAULT_EPSILONS,
        attack_steps=DEFAULT_ATTACK_STEPS,
        restarts=DEFAULT_RESTARTS,
        every_n_epochs=1,
        batch_size=DEFAULT_BATCH_SIZE,
        losses=DEFAULT_LOSSES,
        probe_kwargs=None,
        seed=0,
        fill_missing_epochs=False,
        verbose=1,
    ):
        super().__init__()
        x_train, train_labels = probes_lib.check_labelled_data(train_data, "train_data")
        x_test, test_labels = probes_lib.check_labelled_data(test_data, "test_data")
        probes_lib.check_tasks_present(train_labels, test_labels, "test_data")
        if tuple(x_train.shape[1:]) != tuple(x_test.shape[1:]):
            raise ValueError(
                f"`train_data` and `test_data` inputs differ in shape: {tuple(x_train.shape[1:])} "
                f"vs {tuple(x_test.shape[1:])} per example."
            )
        self.train_data = (x_train, train_labels)
        self.test_data = (_as_float32(x_test, "test_data"), {t: test_labels[t] for t in train_labels})
        self.tasks = tuple(train_labels)
        self.num_classes = {
            task: int(max(train_labels[task].max(), test_labels[task].max())) + 1
            for task in self.tasks
        }
        self.epsilons = _check_epsilons(epsilons)
        self.attack_steps = check_positive_int(attack_steps, "attack_steps")
        self.restarts = check_positive_int(restarts, "restarts")
        self.every_n_epochs = check_positive_int(every_n_epochs, "every_n_epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.losses = _check_losses(losses)
        self.seed = check_seed(seed)
        self.probe_kwargs = _check_probe_kwargs(probe_kwargs, self.seed)
        if not isinstance(fill_missing_epochs, bool):
            raise ValueError(
                f"`fill_missing_epochs` must be True or False. Received: fill_missing_epochs={fill_missing_epochs!r}"
            )
        self.fill_missing_epochs = fill_missing_epochs
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1. Received: verbose={verbose!r}")
        self.verbose = int(verbose)
        self.history = []
        self._last_epoch = None
        self._last_evaluated_epoch = None
        self._cached_model = None
        self._attacks = collections.OrderedDict()
        self._probe_slots = {}

    # -------------------------------------------------------------- protocol

    def evaluate(self, model):
        """Protocol steps ii and iii: train probes on frozen f^mu, then attack them.

        Args:
            model: a keras_avae model (`encode_mean`, `data_range`,
                `distribute_strategy`); not modified.

        Returns:
            `results[task][epsilon]`: adversarial test accuracy in [0, 1].
        """
        _check_model(model)
        return self.evaluate_with_probes(model, self.train_probes(model))

    def train_probes(self, model):
        """Step ii: one linear probe per task on the frozen means of `train_data`."""
        _check_model(model)
        return probes_lib.train_probes(
            model, self.train_data, num_classes=self.num_classes, **self.probe_kwargs
        )

    def evaluate_with_probes(self, model, probes):
        """Step iii with given probes: adversarial accuracy of `probe(model.encode_mean(x))`.

        Args:
            model: a keras_avae model; not modified.
            probes: dict task name -> Keras model (or callable) mapping f^mu(x)
                to logits; `test_data` must have labels for each task.

        Returns:
            `results[task][epsilon]`: adversarial test accuracy in [0, 1].
        """
        robust = self._robust_masks(model, probes, self.epsilons, self.attack_steps)
        return {
            task: {epsilon: float(np.mean(mask)) for epsilon, mask in masks.items()}
            for task, masks in robust.items()
        }

    def sanity_check(
        self,
        model,
        probes=None,
        huge_epsilon=None,
        more_steps=None,
        tolerance=SANITY_TOLERANCE,
        strict=False,
    ):
        """Checks that the attack is strong enough for its numbers to mean something.

        1. At `huge_epsilon` (default: the width of `model.data_range`, a ball
           that holds the whole data range) every non-constant classifier can
           be fooled on every example, so accuracy must be at most chance (the
           test set's majority-class rate) + `tolerance`.
        2. With `more_steps` PGD steps (default `SANITY_STEPS_FACTOR` times
           `attack_steps`) accuracy at each nonzero radius must not rise by
           more than `tolerance` (a rise points at a broken attack) nor fall by
           more than `tolerance` (the attack has not converged: raise
           `attack_steps`).

        Each failure is issued as a `RobustnessSanityWarning`.

        Args:
            model: the model to check.
            probes: dict task -> probe; default: trained as in `evaluate`.
            huge_epsilon: radius of check 1; required if `model.data_range` is None.
            more_steps: PGD steps of check 2, > `attack_steps`.
            tolerance: slack in accuracy, in [0, 1].
            strict: raise `SanityCheckError` instead of returning on failure.

        Returns:
            Dict with `passed` (bool), `problems` (list of sentences),
            `huge_epsilon`, `chance`, `huge_epsilon_accuracy` (task -> float),
            `more_steps`, and `more_steps_accuracy` (task -> epsilon ->
            `(accuracy, accuracy_with_more_steps)`).
        """
        _check_model(model)
        if huge_epsilon is None:
            if model.data_range is None:
                raise ValueError(
                    "`huge_epsilon` is needed when the model has no `data_range`."
                )
            huge_epsilon = model.data_range[1] - model.data_range[0]
        huge_epsilon = check_non_negative(huge_epsilon, "huge_epsilon")
        if huge_epsilon == 0:
            raise ValueError(f"`huge_epsilon` must be > 0. Received: huge_epsilon={huge_epsilon!r}")
        if more_steps is None:
            more_steps = SANITY_STEPS_FACTOR * self.attack_steps
        more_steps = check_positive_int(more_steps, "more_steps")
        if more_steps <= self.attack_steps:
            raise ValueError(
                f"`more_steps` must exceed `attack_steps`={self.attack_steps}. Received: more_steps={more_steps}"
            )
        if not isinstance(tolerance, numbers.Real) or not 0 <= tolerance <= 1:
            raise ValueError(f"`tolerance` must be a number in [0, 1]. Received: tolerance={tolerance!r}")
        if probes is None:
            probes = self.train_probes(model)

        _, labels = self.test_data
        problems = []
        chance = {}
        huge = {}
        for task, masks in self._robust_masks(model, probes, (huge_epsilon,), self.attack_steps).items():
            chance[task] = float(np.bincount(labels[task]).max() / len(labels[task]))
            huge[task] = float(np.mean(masks[huge_epsilon]))
            if huge[task] > chance[task] + tolerance:
                problems.append(
                    f"{task}: accuracy {huge[task]:.3f} at epsilon={huge_epsilon:g}, a ball that "
                    f"spans the data range, is above chance {chance[task]:.3f} + tolerance "
                    f"{tolerance:g}: the attack fails where it cannot (masked or vanishing "
                    "gradients?), so its robust accuracies are too high."
                )

        radii = tuple(epsilon for epsilon in self.epsilons if epsilon > 0)
        compared = {}
        if radii:
            base = self._robust_masks(model, probes, radii, self.attack_steps)
            stronger = self._robust_masks(model, probes, radii, more_steps)
            for task in base:
                compared[task] = {}
                for epsilon in radii:
                    before = float(np.mean(base[task][epsilon]))
                    after = float(np.mean(stronger[task][epsilon]))
                    compared[task][epsilon] = (before, after)
                    if after > before + tolerance:
                        problems.append(
                            f"{task}, epsilon={epsilon:g}: {more_steps} PGD steps raised accuracy "
                            f"from {before:.3f} to {after:.3f}: more steps must not help the "
                            "classifier; the attack is unstable (step size?)."
                        )
                    elif after < before - tolerance:
                        problems.append(
                            f"{task}, epsilon={epsilon:g}: {more_steps} PGD steps lowered accuracy "
                            f"from {before:.3f} to {after:.3f}: the attack with "
                            f"attack_steps={self.attack_steps} has not converged; raise `attack_steps`."
                        )

        for problem in problems:
            warnings.warn(problem, RobustnessSanityWarning, stacklevel=2)
        if strict and problems:
            raise SanityCheckError(" ".join(problems))
        return {
            "passed": not problems,
            "problems": problems,
            "huge_epsilon": huge_epsilon,
            "chance": chance,
            "huge_epsilon_accuracy": huge,
            "more_steps": more_steps,
            "more_steps_accuracy": compared,
        }

    # ---------------------------------------------------------------- output

    def get_config(self):
        """The attack and schedule settings (not the data), e.g. for `to_json`."""
        return {
            "epsilons": list(self.epsilons),
            "attack_steps": self.attack_steps,
            "restarts": self.restarts,
            "losses": list(self.losses),
            "step_sizes": {f"{e:g}": attacks.step_size(e, self.attack_steps) for e in self.epsilons},
            "every_n_epochs": self.every_n_epochs,
            "batch_size": self.batch_size,
            "probe_kwargs": dict(self.probe_kwargs),
            "seed": self.seed,
            "num_train": int(len(self.train_data[0])),
            "num_test": int(len(self.test_data[0])),
        }

    def log_values(self, results):
        """`results` flattened to `{log_key(task, epsilon): accuracy}`."""
        return {
            log_key(task, epsilon): accuracy
            for task, accuracies in results.items()
            for epsilon, accuracy in accuracies.items()
        }

    @property
    def log_keys(self):
        """Every key this callback writes to `logs`."""
        return [log_key(task, epsilon) for task in self.tasks for epsilon in self.epsilons]

    def to_markdown(self, results=None, model_name=None):
        """`to_markdown` of `results` (default: the last evaluation in `history`)."""
        return to_markdown(self._results_or_last(results), model_name=model_name)

    def to_json(self, results=None, model_name=None):
        """`to_json` of `results` (default: the last evaluation), with `get_config()`."""
        return to_json(self._results_or_last(results), model_name=model_name, config=self.get_config())

    # ------------------------------------------------------------- callback

    def on_train_begin(self, logs=None):
        self._last_epoch = None
        self._last_evaluated_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every_n_epochs == 0 or (last is not None and epoch + 1 == last):
            results = self._record(epoch)
            if logs is not None:
                logs.update(self.log_values(results))
        elif self.fill_missing_epochs and logs is not None:
            logs.update({key: math.nan for key in self.log_keys})

    def on_train_end(self, logs=None):
        if self._last_epoch is not None and self._last_evaluated_epoch != self._last_epoch:
            self._record(self._last_epoch)

    def _record(self, epoch):
        start = time.perf_counter()
        results = self.evaluate(self.model)
        seconds = time.perf_counter() - start
        self.history.append({"epoch": epoch, "results": results, "seconds": seconds})
        self._last_evaluated_epoch = epoch
        if self.verbose:
            summary = "; ".join(
                f"{task} " + " ".join(f"eps={e:g}: {100 * a:.1f}%" for e, a in accuracies.items())
                for task, accuracies in results.items()
            )
            print(f"Robust accuracy after epoch {epoch + 1}: {summary} ({seconds:.1f} s)", file=sys.stdout)
        return results

    # -------------------------------------------------------------- helpers

    def _results_or_last(self, results):
        if results is not None:
            return results
        if not self.history:
            raise ValueError("No results yet: pass `results` or run `evaluate` through the callback first.")
        return self.history[-1]["results"]

    def _robust_masks(self, model, probes, epsilons, attack_steps):
        """`masks[task][epsilon]`: which test examples survive every attack at radii <= epsilon."""
        _check_model(model)
        if not isinstance(probes, dict) or not probes:
            raise ValueError(
                f"`probes` must be a non-empty dict task name -> probe. Received: {probes!r:.80}"
            )
        x, labels = self.test_data
        probes_lib.check_tasks_present(probes, labels, "test_data")
        problem = input_problem(x, model.data_range)
        if problem:
            raise ValueError(f"`test_data` does not fit the model: {problem}.")
        masks = {}
        for task, probe in probes.items():
            probe = self._slot(model, task, probe)
            survivors = np.ones(len(x), bool)
            masks[task] = {}
            # An adversarial example within a smaller radius lies in every
            # larger ball, so robustness can only be lost as epsilon grows.
            for epsilon in sorted(epsilons):
                _, robust = self._attack_for(model, probe, epsilon, attack_steps)(x, labels[task], self.batch_size)
                survivors &= robust
                masks[task][epsilon] = survivors.copy()
        return masks

    def _slot(self, model, task, probe):
        """The probe as a persistent copy under the model's strategy, if it is a Keras model.

        Probes from `train_probes` are new objects each time; copying their
        weights into one model per task lets the compiled attack be reused.
        """
        self._forget_other_models(model)
        if not isinstance(probe, keras.Model):
            return probe
        weights = probe.get_weights()
        slot = self._probe_slots.get(task)
        if slot is None or [w.shape for w in slot.get_weights()] != [w.shape for w in weights]:
            try:
                with model.distribute_strategy.scope():
                    slot = keras.models.clone_model(probe)
            except (ValueError, TypeError, NotImplementedError):
                return probe  # e.g. a subclassed model without a config: attack it as it is
            self._probe_slots[task] = slot
        slot.set_weights(weights)
        return slot

    def _attack_for(self, model, probe, epsilon, attack_steps):
        self._forget_other_models(model)
        key = (id(probe), float(epsilon), int(attack_steps))
        if key in self._attacks:
            self._attacks.move_to_end(key)
        else:
            self._attacks[key] = _Attack(
                model, probe, epsilon, attack_steps, self.restarts, self.losses, self.seed
            )
            while len(self._attacks) > _MAX_CACHED_ATTACKS:
                self._attacks.popitem(last=False)
        return self._attacks[key]

    def _forget_other_models(self, model):
        if self._cached_model is not model:
            self._cached_model = model
            self._attacks.clear()
            self._probe_slots.clear()


# ---------------------------------------------------------------------- tables


def to_markdown(results, model_name=None):
    """A Markdown table in the layout of Table 1: accuracy in percent, one column per task and radius.

    Args:
        results: one model's `results[task][epsilon]`, or a dict model name ->
            such results for one row per model.
        model_name: the row label for a single model's results (default "model").

    Returns:
        The table as a string, e.g.

            | Model | digit ε=0 | digit ε=0.1 | color ε=0 | color ε=0.1 |
            |:--|--:|--:|--:|--:|
            | AVAE | 97.3 | 88.1 | 100.0 | 99.8 |
    """
    rows = _rows(results, model_name)
    columns = []
    for row in rows.values():
        for task, accuracies in row.items():
            for epsilon in accuracies:
                if (task, float(epsilon)) not in columns:
                    columns.append((task, float(epsilon)))
    tasks = list(dict.fromkeys(task for task, _ in columns))
    columns = [(task, epsilon) for task in tasks for epsilon in sorted(e for t, e in columns if t == task)]
    lines = [
        "| Model | " + " | ".join(f"{task} ε={epsilon:g}" for task, epsilon in columns) + " |",
        "|:--|" + "--:|" * len(columns),
    ]
    for name, row in rows.items():
        cells = []
        for task, epsilon in columns:
            accuracies = {float(e): a for e, a in row.get(task, {}).items()}
            cells.append(f"{100 * accuracies[epsilon]:.1f}" if epsilon in accuracies else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_json(results, model_name=None, config=None, indent=2):
    """Results as JSON: `{"accuracy": {task: {"0.1": acc}}, "model": ..., "config": ...}`.

    Radii become strings (`f"{epsilon:g}"`); `results_from_json` reads them back.

    Args:
        results: `results[task][epsilon]`.
        model_name: optional name stored under `"model"`.
        config: optional dict of settings (e.g. `RobustnessEvaluator.get_config()`).
        indent: JSON indentation.

    Returns:
        A JSON string.
    """
    document = {}
    if model_name is not None:
        document["model"] = model_name
    document["accuracy"] = {
        task: {f"{float(epsilon):g}": float(accuracy) for epsilon, accuracy in accuracies.items()}
        for task, accuracies in _check_results(results).items()
    }
    if config is not None:
        document["config"] = config
    return json.dumps(document, indent=indent)


def results_from_json(text):
    """`results[task][epsilon]` (float radii) from a `to_json` string."""
    document = json.loads(text)
    return {
        task: {float(epsilon): float(accuracy) for epsilon, accuracy in accuracies.items()}
        for task, accuracies in document["accuracy"].items()
    }


def _rows(results, model_name):
    if not isinstance(results, dict) or not results:
        raise ValueError(f"`results` must be a non-empty dict. Received: {results!r:.80}")
    first = next(iter(results.values()))
    nested = isinstance(first, dict) and first and isinstance(next(iter(first.values())), dict)
    if nested:
        if model_name is not None:
            raise ValueError("`model_name` names a single model's results; these are per model already.")
        return {name: _check_results(row) for name, row in results.items()}
    return {model_name if model_name is not None else "model": _check_results(results)}


def _check_results(results):
    if not isinstance(results, dict) or not results or not all(
        isinstance(accuracies, dict) and all(isinstance(a, numbers.Real) for a in accuracies.values())
        for accuracies in results.values()
    ):
        raise ValueError(
            f"`results` must be a dict task -> {{epsilon: accuracy}}. Received: {results!r:.80}"
        )
    return results


# ------------------------------------------------------------------- checks


def _check_model(model):
    missing = [name for name in ("encode_mean", "data_range", "distribute_strategy") if not hasattr(model, name)]
    if missing:
        raise ValueError(
            f"`model` must be a keras_avae model with `encode_mean`, `data_range` and "
            f"`distribute_strategy`; {type(model).__name__} lacks {missing}."
        )


def _check_epsilons(epsilons):
    if isinstance(epsilons, (str, bytes)) or not isinstance(epsilons, collections.abc.Iterable):
        raise ValueError(
            f"`epsilons` must be a sequence of attack radii >= 0. Received: epsilons={epsilons!r}"
        )
    epsilons = tuple(epsilons)
    if not epsilons:
        raise ValueError("`epsilons` is empty: give at least one attack radius (0 is the clean accuracy).")
    for epsilon in epsilons:
        if (
            not isinstance(epsilon, numbers.Real)
            or isinstance(epsilon, bool)
            or not math.isfinite(epsilon)
            or epsilon < 0
        ):
            raise ValueError(
                f"Every attack radius must be a finite number >= 0. Received {epsilon!r} "
                f"in epsilons={epsilons!r}"
            )
    return tuple(sorted({float(epsilon) for epsilon in epsilons}))


def _check_losses(losses):
    if isinstance(losses, str):
        losses = (losses,)
    if not isinstance(losses, collections.abc.Iterable):
        raise ValueError(f"`losses` must be a sequence of loss names. Received: losses={losses!r}")
    losses = tuple(losses)
    if not losses:
        raise ValueError(f"`losses` is empty: choose from {tuple(LOSSES)}.")
    for name in losses:
        if name not in LOSSES:
            raise ValueError(
                f"Unknown attack loss {name!r} in losses={losses!r}; choose from {tuple(LOSSES)}."
            )
    return tuple(dict.fromkeys(losses))


def _check_probe_kwargs(probe_kwargs, seed):
    if probe_kwargs is None:
        probe_kwargs = {}
    if not isinstance(probe_kwargs, dict):
        raise ValueError(f"`probe_kwargs` must be a dict or None. Received: probe_kwargs={probe_kwargs!r}")
    unknown = sorted(set(probe_kwargs) - set(PROBE_ARGUMENTS))
    if unknown:
        raise ValueError(
            f"`probe_kwargs` has unknown keys {unknown}; it takes {list(PROBE_ARGUMENTS)} "
            "(see keras_avae.evaluation.probes.train_linear_probe)."
        )
    return {"seed": seed, **probe_kwargs}


def _check_inputs(x, model, name):
    if not hasattr(x, "shape") or len(x.shape) < 2:
        raise ValueError(f"`{name}` must be an array of examples. Received: {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"`{name}` is empty: there is nothing to attack.")
    x = _as_float32(x, name)
    problem = input_problem(x, model.data_range)
    if problem:
        raise ValueError(f"`{name}` does not fit the model: {problem}.")
    return x


def _as_float32(x, name):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"`{name}` inputs must be numeric. Received dtype {x.dtype}")
    return x.astype(np.float32, copy=False)
