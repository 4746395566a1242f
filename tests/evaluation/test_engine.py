"""Tests for keras_avae/evaluation/engine.py: the attack ensemble on a classifier x -> logits.

The reference is a linear classifier logits = x A + c on the box [0, 1]^d: the
worst case over box and ball is known in closed form (each coordinate takes
the end of its interval that lowers the margin), so an attack can be checked
to reach it and never to pass it.
"""

import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

from keras_avae import attacks as losses
from keras_avae.evaluation import engine

SEED = 0
IMAGE = (6, 6, 1)  # ART's Square attack takes images, not too small
DIM = 36
EPSILON = 0.1
MARGIN_GAP = 1e-3


def _linear(num_classes, num_examples=120, seed=SEED):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(DIM, num_classes)).astype(np.float32)
    bias = (0.1 * rng.normal(size=num_classes)).astype(np.float32)
    x = rng.random((num_examples, DIM)).astype(np.float32)
    y = np.argmax(x @ kernel + bias, axis=1)
    keep = np.abs(_worst_margin(x, y, kernel, bias, EPSILON)) > MARGIN_GAP
    classifier = engine.Classifier(
        lambda t: tf.matmul(tf.reshape(t, [-1, DIM]), kernel) + bias, num_classes, (0.0, 1.0),
        tf.distribute.get_strategy(), 32,
    )
    return classifier, x[keep].reshape((-1, *IMAGE)), y[keep], (kernel, bias)


def _worst_margin(x, y, kernel, bias, epsilon):
    x = x.reshape(len(x), -1).astype(np.float64)
    lower, upper = np.maximum(0.0, x - epsilon), np.minimum(1.0, x + epsilon)
    worst = np.full(len(x), np.inf)
    for j in range(kernel.shape[1]):
        weights = kernel[:, y].T - kernel[:, j]
        margin = np.minimum(weights * lower, weights * upper).sum(axis=1) + bias[y] - bias[j]
        worst = np.where(y == j, worst, np.minimum(worst, margin))
    return worst


def _ensemble(classifier, x, y, attacks, **kwargs):
    settings = dict(losses=("cross_entropy", "margin"), steps=10, restarts=1, square_queries=200)
    settings.update(kwargs)
    return engine.run_ensemble(classifier, x, y, EPSILON, attacks, **settings)


def test_the_standard_ensemble_reaches_the_exact_worst_case_of_a_linear_classifier():
    classifier, x, y, linear = _linear(num_classes=5)
    exact = _worst_margin(x, y, *linear, EPSILON) > 0
    outcome = _ensemble(classifier, x, y, engine.ENSEMBLES["standard"])
    np.testing.assert_array_equal(outcome.robust, exact)
    assert 0 < exact.sum() < len(exact)
    # Every record names the run that broke its example, and nothing else is recorded.
    assert all((record is None) == robust for record, robust in zip(outcome.records, outcome.robust))
    assert set(outcome.broken_by()) <= set(engine.ATTACKS)


@pytest.mark.parametrize("attack", engine.ATTACKS)
def test_no_attack_breaks_a_truly_robust_example_or_leaves_the_ball(attack):
    classifier, x, y, linear = _linear(num_classes=4, num_examples=40)
    exact = _worst_margin(x, y, *linear, EPSILON) > 0
    outcome = _ensemble(classifier, x, y, (attack,))
    assert outcome.robust[exact].all()  # an attack can miss, never invent
    assert outcome.robust.mean() < 1.0  # and each one breaks something
    assert np.abs(outcome.adversarial - x).max() <= EPSILON + 1e-6
    assert outcome.adversarial.min() >= 0.0 and outcome.adversarial.max() <= 1.0
    assert outcome.violations == []
    fooled = np.argmax(classifier.predict(outcome.adversarial), axis=1) != y
    np.testing.assert_array_equal(fooled, ~outcome.robust)


def test_targeted_margin_pgd_alone_is_exact():
    classifier, x, y, linear = _linear(num_classes=4)
    outcome = _ensemble(classifier, x, y, ("pgd",), losses=("targeted_margin",), steps=5)
    np.testing.assert_array_equal(outcome.robust, _worst_margin(x, y, *linear, EPSILON) > 0)
    ranks = {record["target_rank"] for record in outcome.records if record is not None}
    assert ranks <= {1, 2, 3} and 1 in ranks


def test_best_iterate_pgd_breaks_every_example_last_iterate_pgd_breaks():
    # A nonlinear classifier where PGD with a large step overshoots: the last
    # iterate can be correct again after an earlier one fooled the classifier.
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(DIM, 3)).astype(np.float32)

    def logits(t):
        return tf.sin(4.0 * tf.matmul(t, kernel))

    classifier = engine.Classifier(logits, 3, (0.0, 1.0), tf.distribute.get_strategy(), 64)
    x = rng.random((200, DIM)).astype(np.float32)
    y = np.argmax(logits(x).numpy(), axis=1)
    steps, epsilon = 6, 0.3
    last = projected_gradient_descent(
        logits, x, eps=epsilon, eps_iter=losses.step_size(epsilon, steps), nb_iter=steps, norm=np.inf,
        loss_fn=losses.margin_loss, clip_min=0.0, clip_max=1.0, y=y, rand_init=False,
    )
    broken_by_last = np.argmax(logits(last).numpy(), axis=1) != y
    best = classifier.pgd(x, y, epsilon, steps, "margin")
    broken_by_best = np.argmax(logits(best).numpy(), axis=1) != y
    assert broken_by_best[broken_by_last].all()
    assert broken_by_best.sum() > broken_by_last.sum()  # the best iterate finds more here


def test_later_attacks_run_only_on_the_examples_still_robust(monkeypatch):
    classifier, x, y, _ = _linear(num_classes=4, num_examples=60)
    attacked = []
    real = engine._run_wave

    def recording(classifier, wave, x_run, *args):
        attacked.append((wave[0].attack, len(wave), len(x_run)))
        return real(classifier, wave, x_run, *args)

    monkeypatch.setattr(engine, "_run_wave", recording)
    outcome = _ensemble(classifier, x, y, ("pgd", "square"))
    assert attacked[0] == ("pgd", 1, len(x))  # everything correct at x is attacked first, by one run
    # cross-entropy from x broke some; margin from x sees only the rest
    assert attacked[1][2] < len(x)
    later = [size for _, _, size in attacked[1:]]
    assert later == sorted(later, reverse=True)
    assert outcome.broken_by().get("pgd", 0) > 0


def test_the_last_runs_stack_into_waves_that_give_the_run_by_run_result(monkeypatch):
    """Waves fill one batch with the remaining runs; the verdicts and records are those of
    the runs one by one (here every run starts from x, so both are deterministic)."""
    linear_classifier, x, y, linear = _linear(num_classes=4, num_examples=60)
    classifier, one_by_one = (
        engine.Classifier(linear_classifier.logits, 4, (0.0, 1.0), tf.distribute.get_strategy(), batch_size)
        for batch_size in (256, 1)
    )
    waves = []
    real = engine._run_wave

    def recording(classifier, wave, x_run, *args):
        waves.append((len(wave), len(x_run)))
        return real(classifier, wave, x_run, *args)

    monkeypatch.setattr(engine, "_run_wave", recording)
    settings = dict(losses=("cross_entropy", "margin", "targeted_margin"), steps=5)
    stacked = _ensemble(classifier, x, y, ("pgd",), **settings)
    assert max(runs for runs, _ in waves) > 1  # 5 runs: cross-entropy, margin, 3 targets
    assert all(runs == 1 or runs * size <= classifier.batch_size for runs, size in waves)
    waves.clear()
    alone = _ensemble(one_by_one, x, y, ("pgd",), **settings)
    assert {runs for runs, _ in waves} == {1}
    np.testing.assert_array_equal(stacked.robust, alone.robust)
    assert stacked.records == alone.records
    np.testing.assert_array_equal(stacked.robust, _worst_margin(x, y, *linear, EPSILON) > 0)


def test_only_limits_the_examples_attacked():
    classifier, x, y, _ = _linear(num_classes=4, num_examples=60)
    only = np.arange(len(x)) < 10
    outcome = _ensemble(classifier, x, y, ("pgd",), only=only)
    assert all(record is None for record in outcome.records[10:])
    assert outcome.robust[10:].all()


def test_candidates_outside_the_ball_are_reported_and_not_counted():
    x = np.full((3, 2), 0.5, np.float32)
    candidates = x + np.array([[0.05, 0.0], [0.3, 0.0], [0.0, -0.1 - 1e-7]], np.float32)
    violations = []
    kept = engine._in_ball(candidates, x, 0.1, (0.0, 1.0), engine.Run("apgd_ce", "cross_entropy"), violations)
    assert len(violations) == 1 and "apgd_ce (cross_entropy, restart 0) returned inputs 0.2" in violations[0]
    np.testing.assert_allclose(kept, [[0.55, 0.5], [0.5, 0.5], [0.5, 0.4]], atol=1e-6)  # the stray one is x again


def test_attack_runs_follow_the_settings():
    runs = engine.attack_runs("pgd", ("cross_entropy", "targeted_margin"), 2, 4, 1)
    assert [(r.loss, r.restart, r.target_rank) for r in runs[:4]] == [
        ("cross_entropy", 0, None), ("targeted_margin", 0, 1), ("targeted_margin", 0, 2), ("targeted_margin", 0, 3)
    ]
    assert len(runs) == 8
    assert len(engine.attack_runs("apgd_dlr_targeted", (), 1, 10, 1)) == engine.DLR_TARGETS
    assert engine.attack_runs("apgd_dlr_targeted", (), 1, 2, 1) == []  # needs 3 classes
    assert engine.attack_runs("square", (), 1, 2, 1, image_inputs=False) == []
    assert engine.square_fits((28, 28, 3)) and not engine.square_fits((4, 4, 1)) and not engine.square_fits((36,))
    with pytest.raises(ValueError, match="Unknown attack 'fab'"):
        engine.attack_runs("fab", (), 1, 3, 1)


def test_art_dlr_loss_matches_its_formula():
    logits = tf.constant([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, 5.0]])
    targets = tf.one_hot([1, 0], 4)
    loss = engine._ArtLoss("dlr_targeted")
    # -(z_t - max_{j != t} z_j) / (z_pi1 - z_pi3)
    expected = [-(1.0 - 3.0) / (3.0 - 0.0), -(0.0 - 5.0) / (5.0 - 1.0)]
    np.testing.assert_allclose(loss(targets, logits).numpy(), expected, rtol=1e-6)
    loss.reduction = "sum"
    assert float(loss(targets, logits)) == pytest.approx(sum(expected))


@pytest.mark.parametrize("loss", ["cross_entropy", "dlr_targeted"])
def test_the_compiled_art_estimator_gives_arts_own_loss_and_gradient(loss):
    # A nonlinear classifier, so the gradient depends on x: tanh of the linear logits.
    linear, _, _, _ = _linear(num_classes=4)
    classifier = engine.Classifier(lambda t: tf.tanh(linear.logits(t)), 4, (0.0, 1.0), tf.distribute.get_strategy(), 32)
    estimator = classifier.art(IMAGE, loss)
    eager = engine._art().estimators.classification.TensorFlowV2Classifier
    rng = np.random.default_rng(SEED)
    x = rng.random((7, *IMAGE)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 7)]
    compiled_gradient = estimator.loss_gradient(x, y)
    np.testing.assert_allclose(compiled_gradient, eager.loss_gradient(estimator, x, y), rtol=1e-4, atol=1e-5)
    assert np.abs(compiled_gradient).max() > 0
    np.testing.assert_allclose(
        estimator.compute_loss(x, y, reduction="none"), eager.compute_loss(estimator, x, y, reduction="none"), rtol=1e-4, atol=1e-6
    )
    # A reduction other than "none" goes through ART's own path and agrees with the per-example losses.
    assert estimator.compute_loss(x, y, reduction="sum") == pytest.approx(estimator.compute_loss(x, y).sum(), rel=1e-5)


def test_square_evaluates_each_input_once_and_finds_what_it_finds_without_the_memory(monkeypatch):
    """Square asks for the logits of most inputs two or three times; its estimator reuses them."""
    _, x, y, _ = _linear(num_classes=4, num_examples=40)
    results = {}
    for remembered in (0, engine.SQUARE_REMEMBERED_CALLS):
        monkeypatch.setattr(engine, "SQUARE_REMEMBERED_CALLS", remembered)
        classifier, *_ = _linear(num_classes=4, num_examples=40)
        candidates = engine._run_wave(classifier, [engine.Run("square")], x, y, EPSILON, 10, 200, SEED)
        results[remembered] = candidates, classifier.art(IMAGE).evaluated_rows
    (plain, plain_rows), (remembering, remembering_rows) = results.values()
    # The same search path: a different accepted square would move a pixel by EPSILON, while the
    # logits of a differently composed batch may round differently in the last bit on some CPUs.
    np.testing.assert_allclose(remembering, plain, rtol=0, atol=1e-6)
    assert (plain != x).any()  # the attack moved something
    assert remembering_rows < 0.4 * plain_rows  # three calls per iteration, one of them new inputs
