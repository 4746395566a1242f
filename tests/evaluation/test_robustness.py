"""Tests for keras_avae/evaluation/robustness.py (protocol step iii: the ensemble on encoder + linear probe).

The reference numbers come from a linear "encoder" and a hand-set linear probe:
then logits = A x + c, and the smallest margin logit_y - logit_j over the box
[0, 1]^d intersected with the L-inf ball is a sum over coordinates, each
taking the end of its interval that lowers the margin.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import RERUN_IF_THE_WORKER_CRASHES
from keras_avae import VAE, attacks
from keras_avae.evaluation import engine, probes
from keras_avae.evaluation.robustness import AdversarialEvaluator, attack

SEED = 0
LINEAR_SHAPE = (2, 2, 1)  # flattened: 4 pixels
LINEAR_LATENT = 3
# Radii where the closed form is compared; none puts a margin within
# MARGIN_GAP of 0 for the examples kept.
RADII = (0.05, 0.15, 0.35)
MARGIN_GAP = 1e-3
# Small budgets keep every test fast; 4 steps of 2.5 eps / 4 cross the ball (2 eps) from any start.
STEPS = 4
FAST = {"attack_steps": STEPS, "restarts": 1, "probe_kwargs": {"epochs": 1}, "attacks": "pgd", "checks": False}


# ------------------------------------------------------------------ fixtures


def _linear_networks():
    encoder = keras.Sequential(
        [keras.Input(LINEAR_SHAPE), keras.layers.Flatten(), keras.layers.Dense(2 * LINEAR_LATENT)]
    )
    decoder = keras.Sequential(
        [
            keras.Input((LINEAR_LATENT,)),
            keras.layers.Dense(int(np.prod(LINEAR_SHAPE)), activation="sigmoid"),
            keras.layers.Reshape(LINEAR_SHAPE),
        ]
    )
    return encoder, decoder


def _linear_problem(num_classes, num_examples=300, seed=SEED, strategy=None):
    """A VAE with f^mu(x) = x W + b, a probe z V + d, and examples away from ties.

    Returns the model, the probe, x, y and the overall map (A, c): logits = x_flat A + c.
    """
    rng = np.random.default_rng(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = VAE(*_linear_networks(), data_range=(0.0, 1.0), seed=SEED)
        model.build((None,) + LINEAR_SHAPE)
        probe = keras.Sequential([keras.Input((LINEAR_LATENT,)), keras.layers.Dense(num_classes)])
    encoder_kernel = rng.normal(size=(4, LINEAR_LATENT))
    encoder_bias = rng.normal(size=LINEAR_LATENT) * 0.1
    dense = model.encoder.layers[-1]
    dense.set_weights(
        [
            np.concatenate([encoder_kernel, np.zeros((4, LINEAR_LATENT))], axis=1).astype(np.float32),
            np.concatenate([encoder_bias, -2.0 * np.ones(LINEAR_LATENT)]).astype(np.float32),
        ]
    )
    probe_kernel = rng.normal(size=(LINEAR_LATENT, num_classes))
    probe_bias = rng.normal(size=num_classes) * 0.1
    probe.set_weights([probe_kernel.astype(np.float32), probe_bias.astype(np.float32)])
    kernel = encoder_kernel @ probe_kernel
    bias = encoder_bias @ probe_kernel + probe_bias

    x = rng.random((num_examples, 4))
    x[::7, 0] = 0.0  # some pixels on the edges of the data range
    x[::5, 1] = 1.0
    y = np.argmax(x @ kernel + bias, axis=1)
    flipped = rng.random(num_examples) < 0.15  # some misclassified examples
    y[flipped] = rng.integers(0, num_classes, size=int(flipped.sum()))
    keep = np.ones(num_examples, bool)
    for epsilon in (0.0,) + RADII:
        keep &= np.abs(_worst_margin(x, y, kernel, bias, epsilon)) > MARGIN_GAP
    x = x[keep].reshape((-1,) + LINEAR_SHAPE).astype(np.float32)
    return model, probe, x, y[keep], (kernel, bias)


def _worst_margin(x, y, kernel, bias, epsilon, low=0.0, high=1.0):
    """min over x' in box and ball, and over j != y, of logit_y(x') - logit_j(x'), in float64."""
    x = x.reshape(len(x), -1).astype(np.float64)
    lower, upper = np.maximum(low, x - epsilon), np.minimum(high, x + epsilon)
    worst = np.full(len(x), np.inf)
    for j in range(kernel.shape[1]):
        weights = kernel[:, y].T - kernel[:, j]  # (N, d): gradient of logit_y - logit_j
        margin = np.minimum(weights * lower, weights * upper).sum(axis=1) + bias[y] - bias[j]
        worst = np.where(y == j, worst, np.minimum(worst, margin))
    return worst


def _closed_form_robust(x, y, linear, epsilon):
    return _worst_margin(x, y, *linear, epsilon) > 0


def robust_masks(results):
    """`masks[task][epsilon]`: which examples the results record as robust."""
    return {
        task: {epsilon: np.array([record is None for record in records]) for epsilon, records in by_radius.items()}
        for task, by_radius in results.records.items()
    }


def _split(x, labels, num_train):
    return (
        (x[:num_train], {task: y[:num_train] for task, y in labels.items()}),
        (x[num_train:], {task: y[num_train:] for task, y in labels.items()}),
    )


@pytest.fixture(scope="module")
def tiny_vae():
    """A tiny MLP VAE fitted briefly on random 6x6 images, with a learnable and an arbitrary task."""
    from conftest import tiny_networks

    rng = np.random.default_rng(SEED)
    x = rng.random((160, 6, 6, 1), dtype=np.float32)
    brightness = x.reshape(len(x), -1).mean(axis=1)
    labels = {
        "bright": (brightness > np.median(brightness)).astype(np.int64),
        "parity": np.arange(len(x)) % 3,
    }
    keras.utils.set_random_seed(SEED)
    model = VAE(*tiny_networks(latent_dim=4, image_shape=(6, 6, 1)), seed=SEED)
    model.compile(optimizer="adam", jit_compile=False)  # an XLA compile costs more than this fit
    model.fit(x, epochs=2, batch_size=32, verbose=0)
    return model, *_split(x, labels, 96)


def _only_task(tiny_vae, task):
    """The tiny VAE's data with a single task (half the probes and attacks)."""
    model, (x_train, train_labels), (x_test, test_labels) = tiny_vae
    return model, (x_train, {task: train_labels[task]}), (x_test, {task: test_labels[task]})


# -------------------------------------------------------- closed-form (linear)


def test_margin_losses_match_their_definition():
    logits = tf.constant([[1.0, 3.0, -2.0], [0.5, 0.1, 0.2]])
    labels = tf.constant([0, 0])
    np.testing.assert_allclose(attacks.margin_loss(labels, logits), [2.0, -0.3], rtol=1e-6)
    pairs = tf.constant([[0, 2], [0, 1]])
    np.testing.assert_allclose(attacks.targeted_margin_loss(pairs, logits), [-3.0, -0.4], rtol=1e-6)
    expected = -np.log(np.exp([1.0, 0.5]) / np.exp(logits.numpy()).sum(axis=1))
    np.testing.assert_allclose(attacks.cross_entropy_loss(labels, logits), expected, rtol=1e-5)


def test_binary_linear_probe_pgd_finds_the_exact_robust_set():
    # For two classes the margin is linear in x, so PGD reaches the worst
    # corner of box and ball from any start, with either loss.
    restarts = 3  # x, then two random starts
    model, probe, x, y, linear = _linear_problem(num_classes=2)
    evaluator = AdversarialEvaluator(
        (x, {"task": y}), (x, {"task": y}), epsilons=(0.0,) + RADII, **{**FAST, "restarts": restarts}
    )
    results = evaluator.evaluate_with_probes(model, {"task": probe})
    for epsilon in RADII:
        expected = _closed_form_robust(x, y, linear, epsilon)
        assert results["task"][epsilon] == pytest.approx(expected.mean(), abs=1e-12)
    # Each loss alone finds the same examples.
    epsilon = RADII[1]
    expected = _closed_form_robust(x, y, linear, epsilon)
    for losses in (("cross_entropy",), ("margin",)):
        x_adv = attack(model, probe, x, y, epsilon, attacks="pgd", attack_steps=STEPS, restarts=restarts, losses=losses)
        found = np.argmax(probe(model.encode_mean(x_adv)).numpy(), axis=1) == y
        np.testing.assert_array_equal(found, expected, err_msg=f"{losses}")
    assert 0.0 < results["task"][RADII[-1]] < results["task"][RADII[0]] < results["task"][0.0]


def test_multiclass_linear_probe_targeted_margin_is_exact_and_defaults_never_undercount():
    model, probe, x, y, linear = _linear_problem(num_classes=4)
    targeted = AdversarialEvaluator(
        (x, {"task": y}), (x, {"task": y}), epsilons=RADII, losses=("targeted_margin",), **FAST
    )
    default = AdversarialEvaluator((x, {"task": y}), (x, {"task": y}), epsilons=RADII, **{**FAST, "restarts": 3})
    exact = robust_masks(targeted.evaluate_with_probes(model, {"task": probe}))["task"]
    found = robust_masks(default.evaluate_with_probes(model, {"task": probe}))["task"]
    for epsilon in RADII:
        expected = _closed_form_robust(x, y, linear, epsilon)
        np.testing.assert_array_equal(exact[epsilon], expected, err_msg=f"eps={epsilon}")
        # PGD can miss an adversarial example but never invent one: every
        # truly robust example must be reported robust.
        assert found[epsilon][expected].all(), f"eps={epsilon}"
        assert found[epsilon].mean() <= expected.mean() + 0.02  # and it misses few


# ------------------------------------------------------------ general checks


def test_clean_accuracy_at_epsilon_zero(tiny_vae):
    model, train, test = tiny_vae
    evaluator = AdversarialEvaluator(train, test, epsilons=(0.0, 0.1), **FAST)
    trained = evaluator.train_probes(model)
    results = evaluator.evaluate_with_probes(model, trained)
    assert results.keys() == {"bright", "parity"}
    assert {task: r[0.0] for task, r in results.items()} == probes.evaluate_probes(model, trained, test)
    for accuracies in results.values():
        assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in accuracies.values())


def test_adversarial_examples_stay_in_the_ball_and_the_data_range(tiny_vae):
    model, train, (x, labels) = tiny_vae
    x = x.copy()
    x[:, 0] = 0.0  # pixels on the edges, where clipping matters
    x[:, -1] = 1.0
    probe = probes.train_probes(model, train, epochs=2)["bright"]
    for epsilon in (0.0, 0.05, 0.3):
        x_adv = attack(model, probe, x, labels["bright"], epsilon, attacks="pgd", attack_steps=5, restarts=3, batch_size=16)
        assert x_adv.shape == x.shape and x_adv.dtype == np.float32
        assert np.abs(x_adv - x).max() <= epsilon + 1e-6
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        if epsilon == 0.0:
            np.testing.assert_array_equal(x_adv, x)
        else:  # only the examples it fooled moved
            y = labels["bright"]
            clean = np.argmax(probe(model.encode_mean(x)).numpy(), axis=1) == y
            fooled = np.argmax(probe(model.encode_mean(x_adv)).numpy(), axis=1) != y
            moved = np.abs(x_adv - x).reshape(len(x), -1).max(axis=1) > 0
            np.testing.assert_array_equal(moved, clean & fooled)


def test_accuracy_never_rises_with_epsilon_and_reaches_chance(tiny_vae):
    model, train, test = _only_task(tiny_vae, "bright")
    epsilons = (0.0, 0.02, 0.1, 1.0)
    evaluator = AdversarialEvaluator(train, test, epsilons=epsilons, **{**FAST, "restarts": 2})
    results = evaluator.evaluate(model)
    _, labels = test
    for task, accuracies in results.items():
        values = [accuracies[e] for e in epsilons]
        assert values == sorted(values, reverse=True), task
        chance = np.bincount(labels[task]).max() / len(labels[task])
        assert accuracies[1.0] <= chance + 0.05, task


def test_each_radius_attacks_only_the_examples_still_robust_at_the_smaller_one(tiny_vae, monkeypatch):
    model, train, test = _only_task(tiny_vae, "parity")
    epsilons = (0.0, 0.05, 0.3)
    attacked = []
    run_ensemble = engine.run_ensemble

    def recording(classifier, x, y, epsilon, attacks, **kwargs):
        attacked.append((epsilon, np.asarray(kwargs["only"]).copy()))  # FAST has no checks: every call is the evaluation's
        return run_ensemble(classifier, x, y, epsilon, attacks, **kwargs)

    monkeypatch.setattr(engine, "run_ensemble", recording)
    results = AdversarialEvaluator(train, test, epsilons=epsilons, **FAST).evaluate(model)
    masks = robust_masks(results)["parity"]
    assert [epsilon for epsilon, _ in attacked] == [0.05, 0.3]
    np.testing.assert_array_equal(attacked[0][1], masks[0.0])
    np.testing.assert_array_equal(attacked[1][1], masks[0.05])  # only the survivors of 0.05
    assert 0 < masks[0.05].sum() < masks[0.0].sum()  # so the pruning is seen at work
    new_breaks = 0
    for smaller, larger in zip(epsilons, epsilons[1:]):
        for before, record in zip(results.records["parity"][smaller], results.records["parity"][larger]):
            if before is not None:
                assert record == before  # broken at the smaller radius (or at x): the same break, its radius kept
            elif record is not None:
                assert record["epsilon"] == larger
                new_breaks += 1
    assert new_breaks == masks[0.0].sum() - masks[0.3].sum()  # every break is counted at the radius that found it


def test_seeded_runs_repeat(tiny_vae):
    model, train, test = _only_task(tiny_vae, "parity")
    kwargs = dict(epsilons=(0.0, 0.1), **{**FAST, "restarts": 3})
    first = AdversarialEvaluator(train, test, **kwargs).evaluate(model)
    second = AdversarialEvaluator(train, test, **kwargs).evaluate(model)
    assert first == second


@RERUN_IF_THE_WORKER_CRASHES
def test_mirrored_strategy_matches_one_device():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "conftest.py sets up two logical CPUs"
    single, probe, x, y, _ = _linear_problem(num_classes=3, num_examples=48)
    mirrored_strategy = tf.distribute.MirroredStrategy(devices)
    with mirrored_strategy.scope():
        mirrored = VAE(*_linear_networks(), seed=SEED)
        mirrored.build((None,) + LINEAR_SHAPE)
    mirrored.set_weights(single.get_weights())
    assert mirrored.distribute_strategy.num_replicas_in_sync == 2

    placed_on = set()

    def recording_probe(z):  # records where each replica's features live, while tracing
        placed_on.add(z.device.split("device:")[-1])
        return probe(z, training=False)

    # 15 does not divide the test set (the last batch is topped up) nor split
    # evenly over 2 replicas (8 + 7 examples).
    evaluator = AdversarialEvaluator((x, {"t": y}), (x, {"t": y}), epsilons=(0.0, 0.2), batch_size=15, **FAST)
    expected = robust_masks(evaluator.evaluate_with_probes(single, {"t": probe}))
    found = robust_masks(evaluator.evaluate_with_probes(mirrored, {"t": recording_probe}))
    for epsilon in (0.0, 0.2):
        np.testing.assert_array_equal(found["t"][epsilon], expected["t"][epsilon])
    assert 0 < expected["t"][0.2].sum() < expected["t"][0.0].sum()
    # Each batch was split over both replicas ('' is CleverHans' gradient function).
    assert {"CPU:0", "CPU:1"} <= placed_on, placed_on


# --------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilons": (0.0, -0.1)}, r"Every attack radius must be a finite number >= 0. Received -0.1 in epsilons=\(0.0, -0.1\)"),
        ({"epsilons": (float("nan"),)}, r"Received nan in epsilons"),
        ({"epsilons": ()}, r"`epsilons` is empty"),
        ({"epsilons": 0.1}, r"`epsilons` must be a sequence of attack radii >= 0. Received: epsilons=0.1"),
        ({"attack_steps": 0}, r"`attack_steps` must be an integer >= 1. Received: attack_steps=0"),
        ({"attack_steps": 2.5}, r"`attack_steps` must be an integer >= 1. Received: attack_steps=2.5"),
        ({"restarts": 0}, r"`restarts` must be an integer >= 1. Received: restarts=0"),
        ({"attacks": "autoattack"}, r"Unknown attacks='autoattack'; choose \('standard', 'pgd'\)"),
        ({"attacks": ("pgd", "fab")}, r"Unknown attack 'fab' in attacks=\('pgd', 'fab'\); choose from \('pgd', 'apgd_ce', 'apgd_dlr_targeted', 'square'\)"),
        ({"square_queries": 0}, r"`square_queries` must be an integer >= 1"),
        ({"apgd_restarts": 0}, r"`apgd_restarts` must be an integer >= 1"),
        ({"check_size": 0}, r"`check_size` must be an integer >= 1"),
        ({"checks": "yes"}, r"`checks` must be True or False. Received: checks='yes'"),
        ({"tolerance": -0.1}, r"`tolerance` must be a finite number >= 0"),
        ({"batch_size": -4}, r"`batch_size` must be an integer >= 1. Received: batch_size=-4"),
        ({"losses": ("margin", "hinge")}, r"Unknown loss 'hinge' in losses=\('margin', 'hinge'\); choose from \('cross_entropy', 'margin', 'targeted_margin'\)"),
        ({"losses": ()}, r"`losses` is empty"),
        ({"probe_kwargs": {"epoch": 3}}, r"`probe_kwargs` has unknown keys \['epoch'\]"),
        ({"seed": 1.5}, r"`seed` must be an int. Received: seed=1.5"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    x = np.zeros((4,) + LINEAR_SHAPE, np.float32)
    data = (x, {"t": np.arange(4) % 2})
    with pytest.raises(ValueError, match=message):
        AdversarialEvaluator(data, data, **kwargs)


@pytest.mark.parametrize(
    "train, test, message",
    [
        ("not data", None, r"`train_data` must be a pair \(x, labels\)"),
        (None, (np.zeros((4, 2, 2, 1)), [0, 1, 0, 1]), r"`test_data` labels must be a non-empty dict"),
        (None, (np.zeros((4, 2, 2, 1)), {"t": np.ones(3, int)}), r"`test_data labels\['t'\]` has 3 labels but `test_data inputs` has 4"),
        (None, (np.zeros((4, 2, 2, 1)), {"t": np.zeros(4)}), r"must be integer class ids"),
        (None, (np.zeros((4, 2, 2, 1)), {"other": np.zeros(4, int)}), r"`test_data` has no labels for tasks \['t'\]; it has \['other'\]"),
        (None, (np.zeros((4, 3, 3, 1)), {"t": np.zeros(4, int)}), r"inputs differ in shape: \(2, 2, 1\) vs \(3, 3, 1\)"),
    ],
)
def test_malformed_data_is_refused(train, test, message):
    good = (np.zeros((4,) + LINEAR_SHAPE, np.float32), {"t": np.arange(4) % 2})
    with pytest.raises(ValueError, match=message):
        AdversarialEvaluator(train if train is not None else good, test if test is not None else good)


def test_bad_model_probes_and_inputs_are_refused():
    model, probe, x, y, _ = _linear_problem(num_classes=2, num_examples=20)
    evaluator = AdversarialEvaluator((x, {"t": y}), (x, {"t": y}), **FAST)
    with pytest.raises(ValueError, match=r"does not declare the range of its inputs: pass `data_range=\(low, high\)`"):
        evaluator.evaluate(probe)
    with pytest.raises(ValueError, match=r"returns shape \(\d+, 1, 3\); the evaluation needs \(batch, features\)"):
        evaluator.evaluate(lambda t: tf.reshape(model.encode_mean(t), [-1, 1, LINEAR_LATENT]), data_range=(0, 1))
    with pytest.raises(ValueError, match=r"`test_data` has no labels for tasks \['other'\]"):
        evaluator.evaluate_with_probes(model, {"other": probe})
    with pytest.raises(ValueError, match=r"`probes` must be a non-empty dict"):
        evaluator.evaluate_with_probes(model, {})
    with pytest.raises(ValueError, match=r"`epsilon` must be a finite number >= 0. Received: epsilon=-1"):
        attack(model, probe, x, y, -1)
    with pytest.raises(ValueError, match=r"`x` does not fit the encoder: inputs span \[0, 2\]"):
        attack(model, probe, 2.0 * np.ones_like(x) * (np.arange(len(x)) % 2)[:, None, None, None], y, 0.1)
    bright = (2.0 * x, {"t": y})
    with pytest.raises(ValueError, match=r"`test_data` does not fit the encoder: inputs span"):
        AdversarialEvaluator(bright, bright, **FAST).evaluate_with_probes(model, {"t": probe})


# ------------------------------------------------- the ensemble on ColorMNIST


@pytest.mark.large
def test_an_undefended_vae_is_broken_everywhere_at_epsilon_0_3():
    from conftest import SHARED_MNIST

    from keras_avae import architectures
    from keras_avae.datasets import color_mnist

    train = color_mnist("train", path=SHARED_MNIST, limit=2000)
    test = color_mnist("test", path=SHARED_MNIST, limit=100)
    keras.utils.set_random_seed(SEED)
    model = VAE(*architectures.mlp(8, (28, 28, 3), hidden_units=64, hidden_layers=1), seed=SEED)
    model.compile(optimizer="adam", jit_compile=False)  # the XLA compile would double the fit's time
    model.fit(train[0], epochs=2, batch_size=64, verbose=0)
    evaluator = AdversarialEvaluator(
        train, test, epsilons=(0.0, 0.3), attack_steps=10, restarts=1, square_queries=100, check_size=20,
        probe_kwargs={"epochs": 5},
    )
    results = evaluator.evaluate(model)
    assert results["color"][0.0] > 0.9  # the colour is easy to read off f^mu
    for task in ("digit", "color"):
        assert results[task][0.3] <= 0.02, task
    assert not results.flagged, results.problems
    records = results.records["digit"][0.3]
    assert len(records) == 100 and all(record is not None for record in records)
