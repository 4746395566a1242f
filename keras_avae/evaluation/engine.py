"""The attack engine: an ensemble of L-inf attacks on a classifier `x -> logits`.

Run the way AutoAttack runs its attacks (Croce & Hein, 2020, "Reliable
evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"): the attacks go in a fixed order, each run only on
the examples that every earlier run left correctly classified, and an example
is robust when no run of any attack changed its decision. So the cost follows
the robust fraction: a model that is not robust is broken by the first run and
costs little more than one attack.

The runs of one attack go in waves: once few examples are left, the next runs
are stacked into one batch (as many as fill `batch_size`), so that the many
runs an attack makes on the last few examples cost about what one run costs.
An example's record names the first run of its wave that broke it, the run
that would have broken it had the runs gone one by one.

Attacks (`ATTACKS`):

- `"pgd"`: L-inf PGD (Madry et al., 2018) with each loss of `losses` (see
  `keras_avae.attacks`: cross-entropy, the Carlini-Wagner margin, the targeted
  margin once per wrong class), the first start from x, the other
  `restarts - 1` uniform in the ball. Its steps are CleverHans' own
  (`optimize_linear` for the sign step, `clip_eta` for the projection); unlike
  CleverHans' `projected_gradient_descent`, which returns the last iterate,
  every iterate is judged and the best one kept (the first that fools the
  classifier, else the one of largest margin), and a batch stops once all its
  examples are fooled.
- `"apgd_ce"`: the Adversarial Robustness Toolbox's Auto-PGD (Croce & Hein,
  2020) on the cross-entropy.
- `"apgd_dlr_targeted"`: ART's Auto-PGD, targeted, on the difference of logits
  ratio, once for each of the `DLR_TARGETS` most likely wrong classes at x
  (needs at least 3 classes: the ratio's scale is z_pi1 - z_pi3).
- `"square"`: ART's Square attack (Andriushchenko et al., 2020), which queries
  the classifier's outputs and never its gradient: the black-box check of
  gradient masking.

`"standard"` is all four in that order; `"pgd"` alone is the evaluation
before the ensemble (PGD with the given losses and restarts).

Every run is one `Run` (attack, loss, restart, target rank), and every broken
example keeps the record of the run that broke it. Candidates are checked to
lie in the L-inf ball and the data range (`BALL_TOLERANCE`); a run that
leaves them is reported in `Outcome.violations` and its outside candidates do
not count.
"""

import collections
import dataclasses
import functools
import logging.config
import time
import warnings

import keras
import numpy as np
import tensorflow as tf
from cleverhans.tf2.utils import clip_eta, optimize_linear

from keras_avae import attacks as losses_lib

PGD_LOSSES = {
    "cross_entropy": losses_lib.cross_entropy_loss,
    "margin": losses_lib.margin_loss,
    "targeted_margin": losses_lib.targeted_margin_loss,
}
"""PGD losses by name; `"targeted_margin"` runs once per wrong class."""

ATTACKS = ("pgd", "apgd_ce", "apgd_dlr_targeted", "square")
"""The attacks, in the order `"standard"` runs them."""

ENSEMBLES = {"standard": ATTACKS, "pgd": ("pgd",)}
"""Named attack lists."""

WHITE_BOX = ("pgd", "apgd_ce", "apgd_dlr_targeted")
"""The attacks that follow the classifier's gradient."""

DLR_TARGETS = 9
"""Target classes of the targeted DLR attack: the most likely wrong ones at x (AutoAttack's 9)."""

DLR_MIN_CLASSES = 3
"""The difference of logits ratio divides by z_pi1 - z_pi3: it needs 3 classes."""

DEFAULT_SQUARE_QUERIES = 1000
"""Queries of the Square attack per example (AutoAttack's standard version uses 5,000)."""

DEFAULT_APGD_RESTARTS = 1
"""Random starts of each Auto-PGD run (AutoAttack's standard version: 1)."""

BALL_TOLERANCE = 1e-5
"""How far (L-inf) a candidate may stray outside the ball or the data range and be clipped back."""

_LOSS_INDEX = {name: index for index, name in enumerate(PGD_LOSSES)}


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of one attack: what an example's record names when this run broke it.

    Attributes:
        attack: a name from `ATTACKS`, or a check's name.
        loss: the loss the run maximised, or None (Square).
        restart: 0 for the start from x (PGD) or the first random start.
        target_rank: for targeted runs, k: the target is the k-th most likely
            wrong class at x (1 = the runner-up); None for untargeted runs.
    """

    attack: str
    loss: str = None
    restart: int = 0
    target_rank: int = None

    def record(self):
        """This run as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Outcome:
    """What an ensemble found on a set of examples at one radius.

    Attributes:
        robust: `(N,)` bool, correctly classified after every run.
        records: list of N entries: None for a robust example, else the
            `Run.record()` of the run that broke it (`{"attack": "clean"}` when
            it was misclassified at x).
        adversarial: `(N, ...)` float32, the breaking input of each broken
            example (x itself for robust ones).
        violations: sentences naming runs whose candidates left the ball or range.
        seconds: wall time per attack name.
    """

    robust: np.ndarray
    records: list
    adversarial: np.ndarray
    violations: list = dataclasses.field(default_factory=list)
    seconds: dict = dataclasses.field(default_factory=dict)

    def broken_by(self):
        """`{attack name: number of examples it broke}` (the clean errors under "clean")."""
        counts = {}
        for record in self.records:
            if record is not None:
                counts[record["attack"]] = counts.get(record["attack"], 0) + 1
        return counts


class Classifier:
    """A classifier `x -> logits` under attack: the function, its input range and its strategy.

    Args:
        logits: TF-traceable callable, `(batch, ...)` inputs -> `(batch, classes)` logits.
        num_classes: number of classes.
        data_range: `(low, high)` the inputs live in (attacks clip to it), or None.
        strategy: the `tf.distribute.Strategy` the variables live under; PGD
            batches are split over its replicas.
        batch_size: examples per (global) attacked batch.
    """

    def __init__(self, logits, num_classes, data_range, strategy, batch_size):
        self.logits = logits
        self.num_classes = int(num_classes)
        self.data_range = data_range
        self.strategy = strategy
        self.batch_size = int(batch_size)
        self.compiled_logits = tf.function(self.float_logits, reduce_retracing=True)
        self._pgd = tf.function(self._distributed_pgd, reduce_retracing=True)
        self._art_estimators = {}

    def float_logits(self, x):
        """The logits as float32."""
        return tf.cast(self.logits(x), tf.float32)

    def predict(self, x):
        """Logits of a NumPy batch, in batches, as NumPy."""
        return np.concatenate(
            [
                self.compiled_logits(tf.constant(x[start : start + self.batch_size])).numpy()
                for start in range(0, len(x), self.batch_size)
            ]
        )

    # ---------------------------------------------------------------- PGD

    def pgd(self, x, y, epsilon, steps, loss, target_rank=None, start=None):
        """Best-iterate PGD on NumPy `x`, `y`: the best iterate of each example, as NumPy.

        Args:
            x, y: `(N, ...)` inputs and `(N,)` true classes.
            epsilon: L-inf radius.
            steps: iterations.
            loss: a name from `PGD_LOSSES`, or `(N,)` names, one per example.
            target_rank: for `"targeted_margin"`, k (the target is the k-th most
                likely wrong class at x), one or `(N,)`; None otherwise.
            start: `(N, ...)` offsets in [-1, 1], in units of epsilon, where each
                example starts (None: every example starts from x).
        """
        count = len(x)
        per_example = {
            "loss": np.broadcast_to(np.vectorize(_LOSS_INDEX.__getitem__, otypes=[np.int64])(loss), (count,)),
            "target_rank": np.broadcast_to(np.asarray(0 if target_rank is None else target_rank, np.int64), (count,)),
            "start": np.zeros(x.shape, np.float32) if start is None else np.asarray(start, np.float32),
        }
        batch_size = min(self.batch_size, count)
        padding = -count % batch_size
        index = np.concatenate([np.arange(count), np.full(padding, -1)]).astype(np.int64)
        fill = np.concatenate([np.arange(count), np.arange(padding) % count])
        columns = (x[fill], y.astype(np.int64)[fill], index, *(value[fill] for value in per_example.values()))
        settings = (
            tf.constant(float(epsilon)),
            tf.constant(losses_lib.step_size(epsilon, steps)),
            tf.constant(int(steps), tf.int64),
        )
        best = np.empty((count, *x.shape[1:]), np.float32)
        dataset = tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
        with self.strategy.scope():
            for batch in self.strategy.experimental_distribute_dataset(dataset):
                outputs = self._pgd(*batch, *settings)
                for batch_index, batch_best in zip(
                    *(self.strategy.experimental_local_results(value) for value in outputs)
                ):
                    batch_index = batch_index.numpy()
                    real = batch_index >= 0
                    best[batch_index[real]] = batch_best.numpy()[real]
        return best

    def _distributed_pgd(self, *args):
        return self.strategy.run(self._replica_pgd, args=args)

    def _replica_pgd(self, x, y, index, loss_index, target_rank, start, epsilon, step, steps):
        x = tf.cast(x, tf.float32)
        clean_logits = self.float_logits(x)
        target = _target_class(clean_logits, y, tf.maximum(target_rank, 1))
        run_labels = tf.stack([y, target, loss_index], axis=-1)
        start = self._clip(x + epsilon * start, x, epsilon)

        def body(i, x_adv, best_x, best_wrong, best_margin):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                logits = self.float_logits(x_adv)
                loss = _run_loss(run_labels, logits)
            wrong, margin = judge(logits, y)
            better = _worse_for_classifier(wrong, margin, best_wrong, best_margin)
            best_x = tf.where(_per_example(better, x), x_adv, best_x)
            best_wrong = best_wrong | wrong
            best_margin = tf.where(better, margin, best_margin)
            # A classifier without a gradient (a hard threshold) gets a zero one: PGD stands
            # still, which is what the black-box check is there to notice.
            gradient = tape.gradient(loss, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            x_next = self._clip(x_adv + optimize_linear(gradient, step, np.inf), x, epsilon)
            return i + 1, x_next, best_x, best_wrong, best_margin

        wrong, margin = judge(clean_logits, y)
        # Iterate i is judged in step i, so steps + 1 passes judge x_0 .. x_steps;
        # a batch stops early once every example is fooled.
        _, _, best_x, _, _ = tf.while_loop(
            lambda i, _x, _b, best_wrong, _m: (i <= steps) & ~tf.reduce_all(best_wrong),
            body,
            (tf.constant(0, tf.int64), start, x, wrong, margin),
        )
        return index, best_x

    def _clip(self, candidate, x, epsilon):
        candidate = x + clip_eta(candidate - x, np.inf, epsilon)
        if self.data_range is not None:
            candidate = tf.clip_by_value(candidate, *self.data_range)
        return candidate

    # ---------------------------------------------------------------- ART

    def art(self, input_shape, loss=None):
        """This classifier as ART's `TensorFlowV2Classifier` with `loss` ("cross_entropy" or "dlr_targeted").

        Made once per input shape and loss: each estimator traces its own
        forward pass, which costs more than a short attack on a few examples.
        """
        key = (tuple(input_shape), loss)
        if key not in self._art_estimators:
            self._art_estimators[key] = self._make_art(input_shape, loss)
        return self._art_estimators[key]

    def _make_art(self, input_shape, loss):
        def model(x, training=False):
            # + 0 * sum(x): a defined (zero) gradient where the classifier has none, as ART needs.
            logits = self.float_logits(x)
            return logits + 0.0 * tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1, keepdims=True)

        return _compiled_estimator_class()(
            model=model,
            nb_classes=self.num_classes,
            input_shape=tuple(input_shape),
            loss_object=_ArtLoss(loss) if loss else None,
            clip_values=self.data_range,
            preprocessing=None,  # none: the compiled loss and gradient apply (and ART's default one is the identity)
            remembered_calls=0 if loss else SQUARE_REMEMBERED_CALLS,
        )


def judge(logits, labels):
    """Whether each example is misclassified (argmax != y), and its margin max_{j != y} z_j - z_y."""
    wrong = tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int64), labels)
    return wrong, losses_lib.margin_loss(labels, logits)


def _worse_for_classifier(wrong, margin, best_wrong, best_margin):
    """Misclassified beats correct; then the larger margin wins."""
    return (wrong & ~best_wrong) | ((wrong == best_wrong) & (margin > best_margin))


def _per_example(mask, x):
    return tf.reshape(mask, [-1] + [1] * (len(x.shape) - 1))


def _target_class(logits, labels, rank):
    """The `rank`-th most likely class other than the true one (1 = the runner-up); `rank` one or per example."""
    is_true = tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False)
    others = tf.where(is_true, tf.fill(tf.shape(logits), logits.dtype.min), logits)
    order = tf.argsort(others, axis=-1, direction="DESCENDING", stable=True)
    rank = tf.broadcast_to(tf.cast(rank, tf.int64), tf.shape(labels, out_type=tf.int64))
    return tf.cast(tf.gather(order, rank - 1, batch_dims=1), tf.int64)


def _run_loss(labels, logits):
    """The loss of one PGD run: `labels` holds `(y, target, PGD_LOSSES index)` per example."""
    true_labels, pairs, mode = labels[:, 0], labels[:, :2], labels[:, 2]
    loss = tf.zeros(tf.shape(true_labels), logits.dtype)
    for name, loss_fn in PGD_LOSSES.items():
        value = loss_fn(pairs if name == "targeted_margin" else true_labels, logits)
        loss = tf.where(tf.equal(mode, _LOSS_INDEX[name]), value, loss)
    return loss


class _ArtLoss:
    """A loss for ART's estimator: `(one-hot y, logits) -> loss`, with ART's `reduction` switch.

    `"cross_entropy"`: softmax cross-entropy of y. `"dlr_targeted"`: with y the
    target t, -(z_t - max_{j != t} z_j) / (z_pi1 - z_pi3), the difference of
    logits ratio (Croce & Hein, 2020) with the target in the true class's
    place; ART's targeted mode minimises it, raising z_t above every other
    logit, in units of the logits' own spread, so no scaling of the logits
    masks its gradient.
    """

    def __init__(self, loss):
        self.loss = loss
        self.reduction = "none"

    def __call__(self, y_true, y_pred, *args, **kwargs):
        y_pred = tf.cast(y_pred, tf.float32)
        y_true = tf.cast(y_true, tf.float32)
        if self.loss == "cross_entropy":
            values = tf.nn.softmax_cross_entropy_with_logits(labels=y_true, logits=y_pred)
        else:
            is_target = y_true > 0.5
            target_logit = tf.reduce_sum(tf.where(is_target, y_pred, 0.0), axis=-1)
            best_other = tf.reduce_max(tf.where(is_target, y_pred.dtype.min, y_pred), axis=-1)
            ordered = tf.sort(y_pred, axis=-1, direction="DESCENDING")
            scale = ordered[:, 0] - ordered[:, 2] + 1e-12
            values = -(target_logit - best_other) / scale
        reduction = str(getattr(self.reduction, "value", self.reduction)).lower()
        if reduction in ("none",):
            return values
        if reduction == "sum":
            return tf.reduce_sum(values)
        return tf.reduce_mean(values)


# ------------------------------------------------------------------- runner


def attack_runs(attack, losses, restarts, num_classes, apgd_restarts, image_inputs=True):
    """The runs of one attack, in order.

    Args:
        attack: a name from `ATTACKS`.
        losses: PGD losses (names from `PGD_LOSSES`).
        restarts: PGD starts per loss, the first from x.
        num_classes: classes of the classifier.
        apgd_restarts: random starts of each Auto-PGD run.
        image_inputs: whether ART's Square attack can run on the inputs
            (`square_fits`: images, not too small).

    Returns:
        A list of `Run`s (empty where the attack does not apply: the targeted
        DLR with fewer than `DLR_MIN_CLASSES` classes, Square where `square_fits` says no).
    """
    wrong_classes = num_classes - 1
    if attack == "pgd":
        return [
            Run("pgd", loss, restart, rank)
            for restart in range(restarts)
            for loss in losses
            for rank in (range(1, wrong_classes + 1) if loss == "targeted_margin" else (None,))
        ]
    if attack == "apgd_ce":
        return [Run("apgd_ce", "cross_entropy", restart) for restart in range(apgd_restarts)]
    if attack == "apgd_dlr_targeted":
        if num_classes < DLR_MIN_CLASSES:
            return []
        return [
            Run("apgd_dlr_targeted", "dlr_targeted", restart, rank)
            for restart in range(apgd_restarts)
            for rank in range(1, min(DLR_TARGETS, wrong_classes) + 1)
        ]
    if attack == "square":
        return [Run("square")] if image_inputs else []
    raise ValueError(f"Unknown attack {attack!r}; choose from {ATTACKS}.")


def run_ensemble(
    classifier,
    x,
    y,
    epsilon,
    attacks,
    *,
    losses,
    steps,
    restarts,
    apgd_restarts=DEFAULT_APGD_RESTARTS,
    square_queries=DEFAULT_SQUARE_QUERIES,
    seed=0,
    only=None,
    clean=None,
):
    """Runs the attacks in order, each on the examples still robust; the per-example worst case.

    Each attack's runs go in waves of `max(1, classifier.batch_size // n)` runs on
    the n examples still robust (see the module docstring).

    Args:
        classifier: a `Classifier`.
        x: `(N, ...)` float32 NumPy inputs in `classifier.data_range`.
        y: `(N,)` int64 true classes.
        epsilon: L-inf radius > 0.
        attacks: attack names from `ATTACKS`, run in this order.
        losses: the PGD losses.
        steps: iterations of every PGD and Auto-PGD run.
        restarts: PGD starts per loss.
        apgd_restarts: Auto-PGD random starts.
        square_queries: Square attack queries per example.
        seed: seed of every random start.
        only: optional `(N,)` bool, the examples to attack (the others keep
            their clean verdict, as if attacked and not broken).
        clean: optional `(N,)` bool, which examples the classifier gets right
            at x, when the caller knows it (else predicted here).

    Returns:
        An `Outcome`.
    """
    if clean is None:
        clean_wrong, _ = judge(tf.constant(classifier.predict(x)), tf.constant(y))
        clean = ~clean_wrong.numpy()
    robust = np.array(clean, bool, copy=True)
    records = [{"attack": "clean"} if not ok else None for ok in robust]
    adversarial = np.array(x, np.float32, copy=True)
    outcome = Outcome(robust, records, adversarial)
    pending = robust.copy() if only is None else robust & np.asarray(only, bool)
    run_number = seed
    for attack in attacks:
        start = time.perf_counter()
        runs = attack_runs(attack, losses, restarts, classifier.num_classes, apgd_restarts, square_fits(x.shape[1:]))
        done = 0
        while done < len(runs) and pending.any():
            chosen = np.flatnonzero(pending)
            wave = runs[done : done + max(1, classifier.batch_size // len(chosen))]
            stacked = _run_wave(classifier, wave, x[chosen], y[chosen], epsilon, steps, square_queries, run_number + done + 1)
            _keep_breaks(classifier, outcome, pending, chosen, wave, np.split(stacked, len(wave)), x, y, epsilon)
            done += len(wave)
        run_number += len(runs)
        outcome.seconds[attack] = outcome.seconds.get(attack, 0.0) + time.perf_counter() - start
    return outcome


def _keep_breaks(classifier, outcome, pending, chosen, wave, candidates, x, y, epsilon):
    """Marks in `outcome` (and off `pending`) the examples `chosen` that each run of `wave` broke.

    `candidates[k]` holds run k's inputs for `x[chosen]`; those outside the ball or
    range are reported and not counted (`_in_ball`). The first run of the wave
    that breaks an example is its record.
    """
    candidates = [
        _in_ball(run_candidates, x[chosen], epsilon, classifier.data_range, run, outcome.violations)
        for run, run_candidates in zip(wave, candidates)
    ]
    labels = np.tile(y[chosen], len(wave))
    wrong, _ = judge(tf.constant(classifier.predict(np.concatenate(candidates))), tf.constant(labels))
    for run, run_candidates, run_wrong in zip(wave, candidates, np.split(wrong.numpy(), len(wave))):
        run_wrong &= pending[chosen]
        broken = chosen[run_wrong]
        outcome.robust[broken] = False
        pending[broken] = False
        outcome.adversarial[broken] = run_candidates[run_wrong]
        for example in broken:
            outcome.records[example] = run.record()


def _run_wave(classifier, wave, x, y, epsilon, steps, square_queries, seed):
    """The candidates of a wave of runs of one attack on NumPy `x`, `y`, all attacked at once.

    A wave stacks its runs' copies of the examples into one attack (`x` once
    per run, in the order of `wave`): on the few examples the first runs of an
    attack leave, one batch of all the remaining runs costs about what one run
    costs. Run k of the wave has seed `seed + k`.
    """
    stacked_x, stacked_y = np.concatenate([x] * len(wave)), np.tile(y, len(wave))
    attack = wave[0].attack
    if attack == "pgd":
        starts = [
            np.random.default_rng(seed + k).uniform(-1.0, 1.0, x.shape).astype(np.float32)
            if run.restart > 0 else np.zeros(x.shape, np.float32)
            for k, run in enumerate(wave)
        ]
        return classifier.pgd(
            stacked_x, stacked_y, epsilon, steps, np.repeat([run.loss for run in wave], len(x)),
            np.repeat([run.target_rank or 0 for run in wave], len(x)), np.concatenate(starts),
        )
    evasion = _art().attacks.evasion
    np.random.seed(seed % 2**32)  # ART draws its random starts and squares from NumPy's global state
    if attack == "square":
        (run,) = wave
        square = evasion.SquareAttack(
            classifier.art(x.shape[1:]),
            norm=np.inf,
            eps=float(epsilon),
            max_iter=int(square_queries),
            nb_restarts=1,
            p_init=SQUARE_FIRST_FRACTION,
            batch_size=classifier.batch_size,
            verbose=False,
        )
        return square.generate(x, y=y).astype(np.float32)
    targeted = wave[0].target_rank is not None
    labels = stacked_y
    if targeted:
        ranks = np.repeat([run.target_rank for run in wave], len(x))
        logits = np.tile(classifier.predict(x), (len(wave), 1))
        labels = _target_class(tf.constant(logits), tf.constant(stacked_y), tf.constant(ranks)).numpy()
    apgd = evasion.AutoProjectedGradientDescent(
        classifier.art(x.shape[1:], wave[0].loss),
        norm=np.inf,
        eps=float(epsilon),
        eps_step=float(epsilon),  # Auto-PGD's first step is 2 eps_step = 2 eps, as AutoAttack's
        max_iter=int(steps),
        targeted=targeted,
        nb_random_init=1,
        batch_size=classifier.batch_size,
        loss_type=None,
        verbose=False,
    )
    return apgd.generate(stacked_x, y=keras.utils.to_categorical(labels, classifier.num_classes)).astype(np.float32)


SQUARE_FIRST_FRACTION = 0.8
"""ART's `p_init`: the first square covers this fraction of the image."""

SQUARE_REMEMBERED_CALLS = 2
"""Calls whose logits Square's estimator reuses: the two before each call hold every input it repeats."""


def square_fits(example_shape):
    """Whether ART's Square attack can run on examples of this shape: images `(H, W, C)` whose
    first square (`SQUARE_FIRST_FRACTION` of the pixels) is smaller than the image's side."""
    if len(example_shape) != 3:
        return False
    height, width = example_shape[:2]
    return round((SQUARE_FIRST_FRACTION * height * width) ** 0.5) < min(height, width)


@functools.cache
def _compiled_estimator_class():
    """ART's `TensorFlowV2Classifier` with its loss and loss gradient each in one compiled graph.

    ART computes both eagerly: a `tf.GradientTape` around the model and the
    loss, op by op, on every Auto-PGD iteration. On the few examples the
    later attacks see, that overhead, not the network, sets their cost; the
    compiled versions compute the same numbers (the loss object's reduction
    is part of the trace, so a change of it traces again). Inputs ART's own
    path must handle (tensors, training mode, preprocessing, a reduced loss)
    go to it.
    """

    class CompiledTensorFlowV2Classifier(_art().estimators.classification.TensorFlowV2Classifier):
        def __init__(self, *args, remembered_calls=0, **kwargs):
            super().__init__(*args, **kwargs)
            self._compiled_loss = tf.function(self._graph_loss, reduce_retracing=True)
            self._compiled_loss_gradient = tf.function(self._graph_loss_gradient, reduce_retracing=True)
            self._remembered = collections.deque(maxlen=remembered_calls)
            self.evaluated_rows = 0

        def predict(self, x, batch_size=128, training_mode=False, **kwargs):
            """ART's `predict`; with `remembered_calls`, the logits of an input seen in the last calls are reused.

            Square asks three times per iteration and all but one of them for
            inputs it asked about in the two calls before (the iterate, then its
            robust rows, then the candidates); the classifier is deterministic,
            so each input is evaluated once. `evaluated_rows` counts the inputs
            the model saw.
            """
            if not self._remembered.maxlen or not self._compiles(x, training_mode):
                self.evaluated_rows += len(x)
                return super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
            keys = [row.tobytes() for row in x]
            known = {key: logits for memory in self._remembered for key, logits in memory.items()}
            missing = [i for i, key in enumerate(keys) if key not in known]
            if missing:
                self.evaluated_rows += len(missing)
                computed = super().predict(x[missing], batch_size=batch_size, **kwargs)
                known.update(zip((keys[i] for i in missing), computed))
            logits = np.stack([known[key] for key in keys]) if keys else np.zeros((0, self.nb_classes), np.float32)
            self._remembered.append(dict(zip(keys, logits)))
            return logits

        def _graph_loss(self, x, y, reduction):
            del reduction  # a key of the trace: the loss object reads its `reduction` when called
            return self._loss_object(y, self._model(x, training=False))

        def _graph_loss_gradient(self, x, y, reduction):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = self._graph_loss(x, y, reduction)
            return tape.gradient(loss, x)

        def _compiles(self, x, training_mode):
            return isinstance(x, np.ndarray) and not training_mode and not self.preprocessing_operations

        def _compiled_call(self, function, x, y):
            x = tf.convert_to_tensor(x, tf.float32)
            y = tf.convert_to_tensor(y, tf.float32)
            return function(x, y, str(self._loss_object.reduction)).numpy()

        def loss_gradient(self, x, y, training_mode=False, **kwargs):
            if not self._compiles(x, training_mode):
                return super().loss_gradient(x, y, training_mode=training_mode, **kwargs)
            return self._compiled_call(self._compiled_loss_gradient, x, y)

        def compute_loss(self, x, y, reduction="none", training_mode=False, **kwargs):
            if reduction != "none" or not self._compiles(x, training_mode):
                return super().compute_loss(x, y, reduction=reduction, training_mode=training_mode, **kwargs)
            y = _art().utils.check_and_transform_label_format(y, self.nb_classes)
            return self._compiled_call(self._compiled_loss, x, y)

    return CompiledTensorFlowV2Classifier


def _art():
    """The Adversarial Robustness Toolbox, imported when first needed.

    Its `__init__` calls `logging.config.dictConfig`, which closes every
    logging handler the program has set up (a test runner's capture
    included); the import here keeps them, and hides ART's notice that
    PyTorch (which this library does not use) is missing.
    """
    configure = logging.config.dictConfig
    logging.config.dictConfig = lambda config: None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*PyTorch not found.*")
            import art.attacks.evasion
            import art.estimators.classification
            import art.utils
    finally:
        logging.config.dictConfig = configure
    return art


def _in_ball(candidates, x, epsilon, data_range, run, violations):
    """Candidates clipped into the ball and range; a run that strays further than the tolerance is reported."""
    low, high = x - epsilon, x + epsilon
    if data_range is not None:
        low, high = np.maximum(low, data_range[0]), np.minimum(high, data_range[1])
    stray = float(np.max(np.maximum(candidates - high, low - candidates), initial=0.0))
    if stray > BALL_TOLERANCE:
        violations.append(
            f"{run.attack} ({run.loss or 'no loss'}, restart {run.restart}) returned inputs {stray:.3g} "
            f"outside the epsilon={epsilon:g} ball or the data range; they were not counted"
        )
        inside = np.max(np.maximum(candidates - high, low - candidates).reshape(len(x), -1), axis=1) <= BALL_TOLERANCE
        candidates = np.where(inside.reshape((-1,) + (1,) * (x.ndim - 1)), candidates, x)
    return np.clip(candidates, low, high).astype(np.float32)
