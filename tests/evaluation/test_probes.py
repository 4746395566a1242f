"""Tests for keras_avae/probes.py (protocol step ii: linear probes on frozen f^mu)."""

import keras
import numpy as np
import pytest

from keras_avae import VAE
from keras_avae.evaluation import probes

SEED = 0
IMAGE_SHAPE = (6, 6, 1)
LATENT_DIM = 3
NUM_CLASSES = 4
FEATURE_DIM = 8
# Few epochs keep the tests that do not measure accuracy fast.
FAST = {"epochs": 2}


def _separable(num_examples, seed=SEED, scale=1.0, offset=0.0):
    """Features whose class is the argmax of a fixed linear map, with a margin."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * np.eye(NUM_CLASSES, FEATURE_DIM)
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    features = centres[labels] + rng.uniform(-1.0, 1.0, size=(num_examples, FEATURE_DIM))
    return (scale * features + offset).astype(np.float32), labels


@pytest.fixture(scope="module")
def tiny_vae():
    """A tiny VAE fitted for one epoch on random images, with two label tasks (shared by the module:
    no test changes it, and `test_probes_leave_the_encoder_unchanged` checks that probing does not)."""
    from conftest import tiny_networks

    rng = np.random.default_rng(SEED)
    x = rng.random((96,) + IMAGE_SHAPE, dtype=np.float32)
    # "bright" is a function of the image; "parity" is arbitrary.
    brightness = x.reshape(len(x), -1).mean(axis=1)
    labels = {
        "bright": (brightness > np.median(brightness)).astype(np.int64),
        "parity": np.arange(len(x)) % 2,
    }
    model = VAE(*tiny_networks(latent_dim=LATENT_DIM, image_shape=IMAGE_SHAPE), seed=SEED)
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    train = (x[:64], {task: y[:64] for task, y in labels.items()})
    test = (x[64:], {task: y[64:] for task, y in labels.items()})
    return model, train, test


# --- Accuracy --------------------------------------------------------------


def test_separable_features_are_classified_perfectly():
    features, labels = _separable(600)
    probe = probes.train_linear_probe(features[:400], labels[:400], seed=SEED)
    assert probes.probe_accuracy(probe, features[:400], labels[:400]) == 1.0
    assert probes.probe_accuracy(probe, features[400:], labels[400:]) >= 0.99


def test_probe_takes_raw_features_whatever_their_scale_and_offset():
    # Adam's per-parameter step sizes cope with shifted and scaled features.
    features, labels = _separable(600, scale=250.0, offset=-1000.0)
    probe = probes.train_linear_probe(features[:400], labels[:400], seed=SEED)
    assert probes.probe_accuracy(probe, features[400:], labels[400:]) >= 0.99


def test_random_labels_give_chance_accuracy():
    rng = np.random.default_rng(SEED)
    num_classes, num_train, num_test = 10, 2000, 2000
    features = rng.normal(size=(num_train + num_test, FEATURE_DIM)).astype(np.float32)
    labels = rng.integers(0, num_classes, size=num_train + num_test)
    probe = probes.train_linear_probe(features[:num_train], labels[:num_train], seed=SEED)
    accuracy = probes.probe_accuracy(probe, features[num_train:], labels[num_train:])
    # Chance is 0.1; its std on 2000 examples is sqrt(0.1 * 0.9 / 2000) ~= 0.0067,
    # so 0.04 is about 6 std.
    assert abs(accuracy - 1.0 / num_classes) < 0.04


def test_probe_fits_the_cross_entropy_minimum():
    # Gaussian classes with shared covariance: the logistic model is exact, so
    # the fitted probe must reach the loss of the true posterior log-odds.
    rng = np.random.default_rng(SEED)
    num_examples = 4000
    means = rng.normal(size=(NUM_CLASSES, FEATURE_DIM))
    # Correlated latents of different scales, as an encoder's means are.
    rotation, _ = np.linalg.qr(rng.normal(size=(FEATURE_DIM, FEATURE_DIM)))
    mixing = rotation * rng.uniform(0.5, 2.0, size=FEATURE_DIM)
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    noise = rng.normal(size=(num_examples, FEATURE_DIM))
    features = ((means[labels] + noise) @ mixing).astype(np.float32)
    probe = probes.train_linear_probe(features, labels, seed=SEED)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    fitted = float(loss(labels, probe(features)))
    # Bayes posterior with identity noise: logits = x_latent . m_k - |m_k|^2 / 2.
    latent = features.astype(np.float64) @ np.linalg.inv(mixing)
    bayes_logits = latent @ means.T - 0.5 * np.sum(means**2, axis=1)
    bayes = float(loss(labels, bayes_logits.astype(np.float32)))
    # The maximum-likelihood fit on the training set is at most the Bayes loss
    # plus optimiser slack.
    assert fitted < bayes + 0.01


# --- The probe model -------------------------------------------------------


def test_probe_is_a_single_dense_layer_to_logits():
    features, labels = _separable(64)
    probe = probes.train_linear_probe(features, labels, **FAST)
    assert isinstance(probe, keras.Sequential)
    assert len(probe.layers) == 1
    assert isinstance(probe.layers[0], keras.layers.Dense)
    assert probe.layers[0].activation is keras.activations.linear
    assert probe.input_shape == (None, FEATURE_DIM)
    assert probe.output_shape == (None, NUM_CLASSES)


def test_num_classes_defaults_to_max_label_plus_one_and_can_be_wider():
    features, labels = _separable(64)
    labels = np.minimum(labels, 2)  # classes 0..2
    assert probes.train_linear_probe(features, labels, **FAST).output_shape == (None, 3)
    wide = probes.train_linear_probe(features, labels, num_classes=6, **FAST)
    assert wide.output_shape == (None, 6)


def test_same_seed_gives_same_probe():
    features, labels = _separable(128)
    first = probes.train_linear_probe(features, labels, seed=3, **FAST)
    second = probes.train_linear_probe(features, labels, seed=3, **FAST)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_constant_and_duplicate_features_give_finite_weights():
    features, labels = _separable(128)
    constant = np.full((len(features), 1), 3.0, dtype=np.float32)
    features = np.concatenate([features, constant, features[:, :1]], axis=1)
    probe = probes.train_linear_probe(features, labels, seed=SEED)
    assert all(np.isfinite(w).all() for w in probe.get_weights())
    assert probes.probe_accuracy(probe, features, labels) >= 0.99


def test_single_example_trains():
    probe = probes.train_linear_probe(np.ones((1, 3)), np.array([1]), **FAST)
    assert probes.probe_accuracy(probe, np.ones((1, 3)), np.array([1])) == 1.0


def test_label_without_a_logit_counts_as_wrong():
    features, labels = _separable(64)
    probe = probes.train_linear_probe(features, labels, **FAST)
    assert probes.probe_accuracy(probe, features[:4], np.full(4, NUM_CLASSES + 5)) == 0.0


# --- With a model ----------------------------------------------------------


def test_encode_means_matches_encode_mean_in_batches(tiny_vae):
    model, (x, _), _ = tiny_vae
    means = probes.encode_means(model, x, batch_size=10)  # 64 = 6 * 10 + 4
    assert means.dtype == np.float32
    assert means.shape == (len(x), LATENT_DIM)
    np.testing.assert_allclose(means, keras.ops.convert_to_numpy(model.encode_mean(x)), atol=1e-6)


def test_probe_accuracies_on_a_tiny_vae(tiny_vae):
    model, train, test = tiny_vae
    accuracies = probes.probe_accuracies(model, train, test, seed=SEED)
    assert list(accuracies) == ["bright", "parity"]
    for accuracy in accuracies.values():
        assert isinstance(accuracy, float)
        assert 0.0 <= accuracy <= 1.0


def test_train_and_evaluate_probes_match_probe_accuracies(tiny_vae):
    model, train, test = tiny_vae
    trained = probes.train_probes(model, train, num_classes={"bright": 2, "parity": 2}, seed=SEED)
    assert set(trained) == {"bright", "parity"}
    assert probes.evaluate_probes(model, trained, test) == probes.probe_accuracies(
        model, train, test, seed=SEED
    )
    # The probe stacks on the encoder's mean: accuracy by hand is the same.
    x_test, labels = test
    logits = keras.ops.convert_to_numpy(trained["bright"](model.encode_mean(x_test)))
    by_hand = float(np.mean(logits.argmax(axis=-1) == labels["bright"]))
    assert probes.evaluate_probes(model, {"bright": trained["bright"]}, test)["bright"] == by_hand


def test_probes_leave_the_encoder_unchanged(tiny_vae):
    model, train, test = tiny_vae
    before = [w.copy() for w in model.get_weights()]
    probes.probe_accuracies(model, train, test, **FAST)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- Errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "features, labels, kwargs, match",
    [
        (np.zeros((4, 2)), np.zeros(3, dtype=int), {}, r"has 3 labels but `features` has 4 examples"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), {}, r"`features` is empty"),
        (np.zeros((4, 2)), np.zeros(4), {}, r"`labels` must be integer class ids.*float64"),
        (np.zeros((4, 2)), np.array([True, False] * 2), {}, r"`labels` must be integer class ids.*bool"),
        (np.zeros((4, 2)), np.array([0, -1, 0, 1]), {}, r"non-negative class ids"),
        (np.zeros((4, 2)), np.zeros((4, 1), dtype=int), {}, r"`labels` must have shape \(num_examples,\)"),
        (np.zeros(4), np.zeros(4, dtype=int), {}, r"`features` must have shape \(num_examples, latent_dim\)"),
        (np.full((4, 2), np.nan), np.zeros(4, dtype=int), {}, r"`features` contains 8 NaN or infinite value"),
        (np.zeros((4, 2)), np.array([0, 1, 2, 3]), {"num_classes": 3}, r"go up to 3, beyond `num_classes`=3"),
        (np.zeros((4, 2)), np.zeros(4, dtype=int), {"epochs": 0}, r"`epochs` must be an integer >= 1"),
        (np.zeros((4, 2)), np.zeros(4, dtype=int), {"learning_rate": -1.0}, r"`learning_rate` must be"),
    ],
)
def test_train_linear_probe_errors(features, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        probes.train_linear_probe(features, labels, **kwargs)


def test_encode_means_errors(tiny_vae):
    model, (x, _), _ = tiny_vae
    with pytest.raises(ValueError, match=r"`x` is empty"):
        probes.encode_means(model, x[:0])
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer >= 1"):
        probes.encode_means(model, x, batch_size=0)
    with pytest.raises(ValueError, match=r"must have an `encode_mean` method"):
        probes.encode_means(keras.Sequential([keras.layers.Dense(2)]), x)


def test_probe_accuracies_errors(tiny_vae):
    model, (x, labels), test = tiny_vae
    with pytest.raises(ValueError, match=r"`test_data` has no labels for tasks \['parity'\]"):
        probes.probe_accuracies(model, (x, labels), (test[0], {"bright": test[1]["bright"]}))
    with pytest.raises(
        ValueError,
        match=r"`train_data labels\['bright'\]` has 63 labels but `train_data inputs` has 64",
    ):
        probes.probe_accuracies(model, (x, {"bright": labels["bright"][:-1]}), test)
    with pytest.raises(ValueError, match=r"`train_data` is empty"):
        probes.probe_accuracies(model, (x[:0], {"bright": labels["bright"][:0]}), test)
    with pytest.raises(ValueError, match=r"must be integer class ids"):
        probes.probe_accuracies(model, (x, {"bright": labels["bright"].astype(float)}), test)
    with pytest.raises(ValueError, match=r"labels must be a non-empty dict"):
        probes.probe_accuracies(model, (x, {}), test)
    with pytest.raises(ValueError, match=r"`train_data` must be a pair \(x, labels\)"):
        probes.probe_accuracies(model, x, test)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'num_classes'"):
        probes.probe_accuracies(model, (x, labels), test, num_classes=2)  # set per task from the labels


def test_the_wrappers_list_the_probes_training_arguments():
    """No `**probe_kwargs` hides `epochs`, `batch_size`, `learning_rate`, `seed` from `help()` and IDEs."""
    import inspect

    training = {
        name: parameter.default for name, parameter in inspect.signature(probes.train_linear_probe).parameters.items()
        if name not in ("features", "labels", "num_classes")
    }
    for wrapper in (probes.train_probes, probes.probe_accuracies):
        parameters = inspect.signature(wrapper).parameters
        assert not [p for p in parameters.values() if p.kind is p.VAR_KEYWORD], wrapper.__name__
        assert {name: parameters[name].default for name in training} == training, wrapper.__name__


def test_train_and_evaluate_probes_errors(tiny_vae):
    model, train, test = tiny_vae
    with pytest.raises(ValueError, match=r"`num_classes` names tasks \['colour'\]"):
        probes.train_probes(model, train, num_classes={"colour": 7})
    with pytest.raises(ValueError, match=r"`probes` must be a non-empty dict"):
        probes.evaluate_probes(model, {}, test)
