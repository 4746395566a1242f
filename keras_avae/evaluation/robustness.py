"""Adversarial accuracy of a frozen representation: step iii of the evaluation protocol (Section 4).

Cemgil et al. (2020) score a representation in three steps: i) train an
encoder-decoder pair without labels; ii) freeze the encoder and train one
linear classifier per task on its mean f^mu, normally, without attacks
(`keras_avae.evaluation.probes`); iii) attack encoder and classifier together,
`logits = probe(f^mu(x))`, within an L-inf ball of radius epsilon, and report
the fraction of test examples whose decision no attack changes (Table 1;
epsilon = 0 is the clean accuracy). Appendix F fixes the PGD budget on Color
MNIST at 40 iterations and 10 random restarts; these are the defaults here.

What this module adds to the paper, where it is silent or weak:

- An ensemble (`keras_avae.evaluation.engine`): PGD with the cross-entropy and
  the Carlini-Wagner margin (best iterate kept), ART's Auto-PGD on the
  cross-entropy and, targeted, on the difference of logits ratio, and the
  gradient-free Square attack, run AutoAttack's way: each on the examples
  still robust. `attacks="pgd"` runs PGD alone.
- Worst case per example: robust only if correct at x and after every run.
  The radii run in increasing order, each only on the examples still robust at
  the smaller one: an example broken at a smaller radius is broken at every
  larger one (its adversarial input lies in every larger ball).
- Checks that run by themselves (`keras_avae.evaluation.checks`): accuracy
  monotone in epsilon (one run of the first attack at each radius on its own,
  on a subset); the black-box attack no stronger than the white-box
  ones; twice the steps and restarts on a subset change nothing; a radius
  spanning the data range gives chance; every candidate in the ball and range.
  A failed check flags the results (`results.flagged`, `results.problems`),
  warns (`RobustnessSanityWarning`) and is written into the JSON and tables.
- Per-example records (`results.records[task][epsilon][i]`): None if robust,
  else the run that broke it (attack, loss, restart, target rank, radius).

The encoder can be any: a keras_avae model, a Keras model or layer, a TF
SavedModel or a callable, with a `data_range` (`keras_avae.evaluation.encoders`).

Example:
    evaluator = AdversarialEvaluator(train_data, test_data, epsilons=(0.0, 0.1))
    results = evaluator.evaluate(model)        # results["digit"][0.1] -> 0.45
    results.flagged, results.problems          # what the checks found
"""

import collections
import math
import numbers
import warnings

import numpy as np
import tensorflow as tf

from keras_avae import attacks as attacks_lib
from keras_avae.evaluation import checks as checks_lib
from keras_avae.evaluation import encoders
from keras_avae.evaluation import engine
from keras_avae.evaluation import probes as probes_lib
from keras_avae.validation import check_non_negative, check_positive_int, check_seed, input_problem

DEFAULT_EPSILONS = (0.0, 0.1, 0.2)
"""The attack radii of Table 1, for pixels in [0, 1]."""

DEFAULT_ATTACK_STEPS = 40
"""Appendix F: "In evaluation, PGD with iteration budget 40 is used" (Color MNIST)."""

DEFAULT_RESTARTS = 10
"""Appendix F: "while evaluating 10 random restarts are used"."""

DEFAULT_LOSSES = ("cross_entropy", "margin")
"""The PGD losses every start is run with."""

DEFAULT_BATCH_SIZE = 256
"""Test examples per (global) attacked batch."""

DEFAULT_ATTACKS = "standard"
"""The ensemble of `keras_avae.evaluation.engine.ENSEMBLES` run by default."""

DEFAULT_CHECK_SIZE = 100
"""Test examples the `monotone`, `more_effort` and `huge_epsilon` checks attack again."""

EFFORT_FACTOR = 2
"""The `more_effort` check multiplies the steps and restarts by this."""

PROBE_ARGUMENTS = ("epochs", "batch_size", "learning_rate", "seed")
"""The `keras_avae.evaluation.probes.train_linear_probe` arguments `probe_kwargs` may set."""


class RobustnessSanityWarning(UserWarning):
    """A check of the evaluation failed: the reported robust accuracy may be too high."""


def log_key(task, epsilon):
    """The Keras `logs` key of one result, e.g. `robust_digit_eps0_1` for epsilon 0.1 (`eps0` is the clean
    accuracy). The radius' "." becomes "_": log keys are identifiers (TensorBoard tags, CSV columns)."""
    return f"robust_{task}_eps{float(epsilon):g}".replace(".", "_")


class RobustnessResults(dict):
    """`results[task][epsilon]` accuracies, with what the evaluation found about itself.

    A dict task -> {epsilon: accuracy in [0, 1]}, as before the ensemble, plus:

    Attributes:
        records: `records[task][epsilon]`: one entry per test example, None if
            robust, else a dict naming the run that broke it (`attack`, `loss`,
            `restart`, `target_rank`, and `epsilon`, the radius it was found
            at; `{"attack": "clean"}` for a clean error).
        checks: list of `keras_avae.evaluation.checks.Check`.
        broken_by: `broken_by[task][epsilon]`: `{attack: examples it broke}`.
        seconds: `seconds[task]`: `{attack: wall seconds}`.
    """

    def __init__(self, accuracy, records=None, checks=(), broken_by=None, seconds=None):
        super().__init__(accuracy)
        self.records = records or {}
        self.checks = list(checks)
        self.broken_by = broken_by or {}
        self.seconds = seconds or {}

    @property
    def problems(self):
        """The sentences of the failed checks."""
        return [f"{check.task}: {check.detail}" if check.task else check.detail for check in self.checks if not check.passed]

    @property
    def flagged(self):
        """True when a check failed."""
        return bool(self.problems)


class AdversarialEvaluator:
    """Adversarial accuracy of linear probes on f^mu under an attack ensemble, as in Table 1.

    `evaluate(encoder)` trains one linear probe per task on the frozen f^mu of
    `train_data`, attacks `probe(f^mu(x))` on `test_data` at every radius,
    checks itself, and returns `RobustnessResults` (`results[task][epsilon]`).
    The Keras callback `keras_avae.RobustnessEvaluator` runs it during `fit`.
    (`RobustnessEvaluator` was this class's name here before; it still works, with a
    `DeprecationWarning`.)

    Args:
        train_data: `(x, labels)`, labels a dict task -> `(N,)` integer array,
            as `keras_avae.datasets.color_mnist` returns; the probes learn on it.
        test_data: `(x, labels)` with labels for every task of `train_data`;
            the attacks run on it.
        epsilons: attack radii >= 0 in the units of x (sorted, deduplicated).
        attack_steps: iterations of every PGD and Auto-PGD run (Appendix F: 40).
        restarts: PGD starts per loss, the first from x (Appendix F: 10).
        batch_size: test examples per attacked batch.
        losses: PGD losses, names from `engine.PGD_LOSSES`.
        probe_kwargs: `train_linear_probe` arguments; `seed` defaults to `seed`.
        seed: seed of the probes' shuffling and of every random start.
        attacks: `"standard"` (the ensemble), `"pgd"` (PGD alone), or a
            sequence of names from `engine.ATTACKS`, run in that order.
        apgd_restarts: random starts of each Auto-PGD run.
        square_queries: queries per example of the Square attack.
        checks: run the checks (see the module docstring).
        check_size: test examples attacked again by the `monotone`,
            `more_effort` and `huge_epsilon` checks.
        tolerance: slack, in accuracy, of every check.
    """

    def __init__(
        self,
        train_data,
        test_data,
        epsilons=DEFAULT_EPSILONS,
        attack_steps=DEFAULT_ATTACK_STEPS,
        restarts=DEFAULT_RESTARTS,
        batch_size=DEFAULT_BATCH_SIZE,
        losses=DEFAULT_LOSSES,
        probe_kwargs=None,
        seed=0,
        attacks=DEFAULT_ATTACKS,
        apgd_restarts=engine.DEFAULT_APGD_RESTARTS,
        square_queries=engine.DEFAULT_SQUARE_QUERIES,
        checks=True,
        check_size=DEFAULT_CHECK_SIZE,
        tolerance=checks_lib.DEFAULT_TOLERANCE,
    ):
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
            task: int(max(train_labels[task].max(), test_labels[task].max())) + 1 for task in self.tasks
        }
        self.epsilons = check_epsilons(epsilons)
        self.attack_steps = check_positive_int(attack_steps, "attack_steps")
        self.restarts = check_positive_int(restarts, "restarts")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.losses = check_losses(losses)
        self.seed = check_seed(seed)
        self.probe_kwargs = _check_probe_kwargs(probe_kwargs, self.seed)
        self.attacks = check_attacks(attacks)
        self.apgd_restarts = check_positive_int(apgd_restarts, "apgd_restarts")
        self.square_queries = check_positive_int(square_queries, "square_queries")
        if not isinstance(checks, bool):
            raise ValueError(f"`checks` must be True or False. Received: checks={checks!r}")
        self.checks = checks
        self.check_size = check_positive_int(check_size, "check_size")
        self.tolerance = check_non_negative(tolerance, "tolerance")

    # -------------------------------------------------------------- protocol

    def evaluate(self, encoder, data_range=None):
        """Protocol steps ii and iii: probes on frozen f^mu, then the attacks and the checks.

        Args:
            encoder: see `keras_avae.evaluation.encoders.as_encoder`; not modified.
            data_range: `(low, high)` of the inputs, for encoders that do not declare one.

        Returns:
            `RobustnessResults`.
        """
        encoder = encoders.as_encoder(encoder, data_range)
        return self.evaluate_with_probes(encoder, self.train_probes(encoder))

    def train_probes(self, encoder, data_range=None):
        """Step ii: one linear probe per task on the frozen means of `train_data`."""
        encoder = encoders.as_encoder(encoder, data_range)
        return probes_lib.train_probes(encoder, self.train_data, num_classes=self.num_classes, **self.probe_kwargs)

    def evaluate_with_probes(self, encoder, probes, data_range=None):
        """Step iii with given probes: the ensemble on `probe(f^mu(x))` at every radius, then the checks.

        Args:
            encoder: see `as_encoder`; not modified.
            probes: dict task -> Keras model (or callable) mapping f^mu(x) to logits.
            data_range: for encoders that do not declare one.

        Returns:
            `RobustnessResults`.
        """
        encoder = encoders.as_encoder(encoder, data_range)
        if not isinstance(probes, dict) or not probes:
            raise ValueError(f"`probes` must be a non-empty dict task name -> probe. Received: {probes!r:.80}")
        x, labels = self.test_data
        probes_lib.check_tasks_present(probes, labels, "test_data")
        problem = input_problem(x, encoder.data_range)
        if problem:
            raise ValueError(f"`test_data` does not fit the encoder: {problem}.")
        results = RobustnessResults({})
        for task, probe in probes.items():
            self._evaluate_task(results, task, self.classifier(encoder, probe, task), x, labels[task])
        for problem in results.problems:
            warnings.warn(problem, RobustnessSanityWarning, stacklevel=2)
        return results

    def get_config(self):
        """The attack settings (not the data), e.g. for `report.to_json`."""
        return {
            "epsilons": list(self.epsilons),
            "attacks": list(self.attacks),
            "attack_steps": self.attack_steps,
            "restarts": self.restarts,
            "losses": list(self.losses),
            "step_sizes": {f"{e:g}": attacks_lib.step_size(e, self.attack_steps) for e in self.epsilons if e > 0},
            "apgd_restarts": self.apgd_restarts,
            "square_queries": self.square_queries,
            "checks": self.checks,
            "check_size": self.check_size,
            "tolerance": self.tolerance,
            "batch_size": self.batch_size,
            "probe_kwargs": dict(self.probe_kwargs),
            "seed": self.seed,
            "num_train": int(len(self.train_data[0])),
            "num_test": int(len(self.test_data[0])),
        }

    # ------------------------------------- the protocol's parts (sharded.py runs them across workers)

    def classifier(self, encoder, probe, task):
        """The attacked classifier of `task`: `probe` on `encoder`'s representation (`stacked_classifier`)."""
        return stacked_classifier(encoder, probe, self.num_classes[task], self.batch_size)

    def ensemble(self, classifier, x, y, epsilon, **overrides):
        """The evaluator's attack ensemble on `(x, y)` at `epsilon` (`engine.run_ensemble`): an `Outcome`.

        `overrides` replace the evaluator's settings for this run (`attacks`, `losses`, `steps`,
        `restarts`, `apgd_restarts`, `square_queries`, `seed`) or pass on to the engine (`clean`, `only`).
        """
        settings = dict(
            losses=self.losses,
            steps=self.attack_steps,
            restarts=self.restarts,
            apgd_restarts=self.apgd_restarts,
            square_queries=self.square_queries,
            seed=self.seed,
        )
        settings.update(overrides)
        attacks = settings.pop("attacks", self.attacks)
        return engine.run_ensemble(classifier, x, y, epsilon, attacks, **settings)

    def _evaluate_task(self, results, task, classifier, x, y):
        """Fills `results` for one task: accuracies, records, broken_by, seconds, checks.

        The radii run in increasing order, each on the examples still robust at
        the one before: an adversarial input found at a smaller radius lies in
        every larger ball, so those examples are broken there too (their record
        keeps the radius that broke them).
        """
        clean_wrong, _ = engine.judge(tf.constant(classifier.predict(x)), tf.constant(y))
        clean = ~clean_wrong.numpy()
        accuracy = {0.0: float(np.mean(clean))}
        records = {0.0: [None if ok else {"attack": "clean"} for ok in clean]}
        seconds = collections.Counter()
        task_checks = []
        violations = []
        carried = records[0.0]
        for epsilon in (e for e in self.epsilons if e > 0):
            still_robust = np.array([record is None for record in carried])
            outcome = self.ensemble(classifier, x, y, epsilon, clean=clean, only=still_robust)
            outcome.records = [
                old if old is not None else None if new is None else {**new, "epsilon": epsilon}
                for old, new in zip(carried, outcome.records)
            ]
            outcome.robust &= still_robust
            if self.checks:
                task_checks.extend(self.check_effort_and_black_box(classifier, x, y, epsilon, outcome, task))
            carried = records[epsilon] = outcome.records
            accuracy[epsilon] = float(np.mean(outcome.robust))
            violations.extend(outcome.violations)
            seconds.update(outcome.seconds)
        broken_by = {
            epsilon: dict(collections.Counter(r["attack"] for r in by_example if r is not None))
            for epsilon, by_example in records.items()
        }
        if self.checks:
            task_checks.insert(0, self.check_monotone(classifier, x, y, clean, task))
            task_checks.append(checks_lib.in_ball(violations, task))
            task_checks.append(self.check_huge_epsilon(classifier, x, y, task))
        results[task] = accuracy
        results.records[task] = records
        results.broken_by[task] = broken_by
        results.seconds[task] = dict(seconds)
        results.checks.extend(task_checks)

    def check_monotone(self, classifier, x, y, clean, task):
        """The `monotone` check: one run of the first attack (its first loss, one start), at each radius
        on its own, on `check_size` examples.

        (The evaluation itself carries a break at a smaller radius to every
        larger one, so its accuracies fall with epsilon by construction; one
        run per radius is enough to see an optimiser that does worse in a
        larger ball, and costs little.)
        """
        subset = np.arange(min(self.check_size, len(x)))
        single_run = dict(attacks=self.attacks[:1], losses=self.losses[:1], restarts=1, apgd_restarts=1)
        accuracy = {0.0: float(np.mean(clean[subset]))}
        for epsilon in (e for e in self.epsilons if e > 0):
            again = self.ensemble(classifier, x[subset], y[subset], epsilon, clean=clean[subset], **single_run)
            accuracy[epsilon] = float(np.mean(again.robust))
        return checks_lib.monotone(accuracy, task, self.tolerance)

    def check_effort_and_black_box(self, classifier, x, y, epsilon, outcome, task):
        """The `black_box` and `more_effort` checks at one radius; examples they break are marked in `outcome`."""
        found = []
        white = [a for a in self.attacks if a in engine.WHITE_BOX]
        if "square" in self.attacks and white:
            by_square = sum(1 for record in outcome.records if _broken_here_by(record, "square", epsilon))
            survived_white = int(np.sum(outcome.robust)) + by_square
            found.append(checks_lib.black_box(by_square, survived_white, len(x), epsilon, task, self.tolerance))
        subset = np.arange(min(self.check_size, len(x)))
        if white:
            again = self.ensemble(
                classifier,
                x[subset],
                y[subset],
                epsilon,
                attacks=white,
                steps=EFFORT_FACTOR * self.attack_steps,
                restarts=EFFORT_FACTOR * self.restarts,
                apgd_restarts=EFFORT_FACTOR * self.apgd_restarts,
                seed=self.seed + 1,
                only=outcome.robust[subset],
            )
            before = float(np.mean(outcome.robust[subset]))
            newly = subset[outcome.robust[subset] & ~again.robust]
            for i in newly:
                outcome.robust[i] = False
                outcome.records[i] = {**again.records[i], "epsilon": epsilon, "check": "more_effort"}
            found.append(checks_lib.more_effort(before, float(np.mean(outcome.robust[subset])), len(subset), epsilon, task, self.tolerance))
        return found

    def check_huge_epsilon(self, classifier, x, y, task):
        """The `huge_epsilon` check: at a radius spanning the data range, PGD must bring the accuracy to chance."""
        low, high = classifier.data_range
        epsilon = high - low
        subset = np.arange(min(self.check_size, len(x)))
        outcome = self.ensemble(classifier, x[subset], y[subset], epsilon, attacks=("pgd",), losses=("margin",), restarts=1)
        chance = float(np.max(np.bincount(y, minlength=classifier.num_classes)) / len(y))
        return checks_lib.huge_epsilon(float(np.mean(outcome.robust)), chance, epsilon, task, self.tolerance)


def attack(
    encoder,
    probe,
    x,
    y,
    epsilon,
    *,
    attacks=DEFAULT_ATTACKS,
    attack_steps=DEFAULT_ATTACK_STEPS,
    restarts=DEFAULT_RESTARTS,
    losses=DEFAULT_LOSSES,
    batch_size=DEFAULT_BATCH_SIZE,
    seed=0,
    data_range=None,
):
    """The adversarial input found for each example against `probe(f^mu(x))`, by the ensemble.

    Args:
        encoder: see `keras_avae.evaluation.encoders.as_encoder`; not modified.
        probe: Keras model (or callable) mapping f^mu(x) to logits.
        x: `(N, ...)` inputs inside the encoder's data range.
        y: `(N,)` integer true classes.
        epsilon: L-inf radius >= 0 (0 returns x).
        attacks, attack_steps, restarts, losses, batch_size, seed: as for `AdversarialEvaluator`.
        data_range: for encoders that do not declare one.

    Returns:
        float32 NumPy array shaped like x: for each example the input that
        fooled the classifier, or x itself where no run did; inside the ball
        and the data range.

    Example:
        x_adv = attack(vae, probes["digit"], x_test, labels["digit"], epsilon=0.1)
    """
    encoder = encoders.as_encoder(encoder, data_range)
    epsilon = check_non_negative(epsilon, "epsilon")
    x = _as_float32(x, "x")
    if x.ndim < 2 or not len(x):
        raise ValueError(f"`x` must be a non-empty array of examples. Received shape {x.shape}")
    problem = input_problem(x, encoder.data_range)
    if problem:
        raise ValueError(f"`x` does not fit the encoder: {problem}.")
    y = probes_lib.check_labels(y, "y", len(x), "x")
    if epsilon == 0:
        return x.copy()
    classifier = stacked_classifier(encoder, probe, None, check_positive_int(batch_size, "batch_size"), x[:1])
    outcome = engine.run_ensemble(
        classifier,
        x,
        y,
        epsilon,
        check_attacks(attacks),
        losses=check_losses(losses),
        steps=check_positive_int(attack_steps, "attack_steps"),
        restarts=check_positive_int(restarts, "restarts"),
        seed=check_seed(seed),
    )
    return outcome.adversarial


def stacked_classifier(encoder, probe, num_classes, batch_size, example=None):
    """`probe(f^mu(x))` as the engine's `Classifier`; `num_classes` None: read off `probe`'s output on `example`."""
    call_probe = (lambda z: probe(z, training=False)) if hasattr(probe, "trainable_variables") else probe

    def logits(inputs):
        return call_probe(encoder.encode_mean(inputs))

    if num_classes is None:
        num_classes = int(np.asarray(logits(example)).shape[-1])
    return engine.Classifier(logits, num_classes, encoder.data_range, encoder.distribute_strategy, batch_size)


# ------------------------------------------------------------------- checks


def _broken_here_by(record, attack, epsilon):
    """Whether `record` says `attack` broke its example at `epsilon` (not at a smaller radius)."""
    return record is not None and record["attack"] == attack and record.get("epsilon") == epsilon


def check_epsilons(epsilons):
    """Attack radii: a non-empty sequence of finite numbers >= 0; returns them sorted, deduplicated."""
    if isinstance(epsilons, (str, bytes)) or not isinstance(epsilons, collections.abc.Iterable):
        raise ValueError(f"`epsilons` must be a sequence of attack radii >= 0. Received: epsilons={epsilons!r}")
    epsilons = tuple(epsilons)
    if not epsilons:
        raise ValueError("`epsilons` is empty: give at least one attack radius (0 is the clean accuracy).")
    for epsilon in epsilons:
        if not isinstance(epsilon, numbers.Real) or isinstance(epsilon, bool) or not math.isfinite(epsilon) or epsilon < 0:
            raise ValueError(
                f"Every attack radius must be a finite number >= 0. Received {epsilon!r} in epsilons={epsilons!r}"
            )
    return tuple(sorted({float(epsilon) for epsilon in epsilons}))


def check_losses(losses):
    """PGD loss names from `engine.PGD_LOSSES`; returns them as a tuple without duplicates."""
    return _check_names(losses, engine.PGD_LOSSES, "losses", "loss")


def check_attacks(attacks):
    """`"standard"`, `"pgd"` or a sequence of names from `engine.ATTACKS`; returns the names."""
    if isinstance(attacks, str) and attacks in engine.ENSEMBLES:
        return engine.ENSEMBLES[attacks]
    if isinstance(attacks, str):
        raise ValueError(
            f"Unknown attacks={attacks!r}; choose {tuple(engine.ENSEMBLES)} or a sequence of names from {engine.ATTACKS}."
        )
    return _check_names(attacks, engine.ATTACKS, "attacks", "attack")


def _check_names(values, known, name, noun):
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, collections.abc.Iterable):
        raise ValueError(f"`{name}` must be a sequence of {noun} names. Received: {name}={values!r}")
    values = tuple(values)
    if not values:
        raise ValueError(f"`{name}` is empty: choose from {tuple(known)}.")
    for value in values:
        if value not in known:
            raise ValueError(f"Unknown {noun} {value!r} in {name}={values!r}; choose from {tuple(known)}.")
    return tuple(dict.fromkeys(values))


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


def _as_float32(x, name):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"`{name}` inputs must be numeric. Received dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


def __getattr__(name):
    if name == "RobustnessEvaluator":  # the old name of `AdversarialEvaluator`
        warnings.warn(
            "`keras_avae.evaluation.robustness.RobustnessEvaluator` is now `AdversarialEvaluator`; "
            "`keras_avae.RobustnessEvaluator` is the Keras callback.",
            DeprecationWarning,
            stacklevel=2,
        )
        return AdversarialEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
