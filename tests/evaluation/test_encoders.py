"""Tests for keras_avae/evaluation/encoders.py and the evaluation of encoders trained elsewhere.

A plain Keras encoder, its TF SavedModel export, a `.keras` file and a bare
callable must give the same robust accuracies; an encoder whose gradient is
masked (a `stop_gradient` or a hard threshold) must be caught by the
black-box check, and the same encoder without the mask must not.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_avae.evaluation import AdversarialEvaluator, as_encoder, encoders

SEED = 0
IMAGE = (8, 8, 1)
LATENT = 4
EPSILONS = (0.0, 0.1)
# One PGD loss: on a linear encoder and a two-class linear probe the margin is linear in x, so
# margin PGD alone reaches the worst case and a second loss would only add a run.
FAST = dict(
    epsilons=EPSILONS, attack_steps=5, restarts=1, losses=("margin",), probe_kwargs={"epochs": 10}, seed=SEED
)


@pytest.fixture(scope="module")
def problem():
    """A linear encoder x -> x W and a two-class task the probe learns from its features."""
    rng = np.random.default_rng(SEED)
    kernel = rng.normal(size=(int(np.prod(IMAGE)), LATENT)).astype(np.float32)
    x = rng.random((240,) + IMAGE).astype(np.float32)
    y = ((x.reshape(len(x), -1) @ kernel)[:, 0] > np.median((x.reshape(len(x), -1) @ kernel)[:, 0])).astype(np.int64)
    train, test = (x[:160], {"t": y[:160]}), (x[160:], {"t": y[160:]})
    return kernel, train, test


def _encoder(kernel, mask=None):
    layers = [keras.Input(IMAGE)]
    if mask == "stop_gradient":
        layers.append(keras.layers.Lambda(lambda t: keras.ops.stop_gradient(t)))
    elif mask == "threshold":
        layers.append(keras.layers.Lambda(lambda t: keras.ops.round(4.0 * t) / 4.0))
    dense = keras.layers.Dense(LATENT, use_bias=False)
    model = keras.Sequential(layers + [keras.layers.Flatten(), dense])
    dense.set_weights([kernel])
    return model


def test_a_sequential_encoder_its_saved_model_its_file_and_a_callable_agree(problem, tmp_path):
    kernel, train, test = problem
    encoder = _encoder(kernel)
    evaluator = AdversarialEvaluator(train, test, attacks="pgd", checks=False, **FAST)
    expected = evaluator.evaluate(encoder, data_range=(0.0, 1.0))
    assert 0.0 < expected["t"][0.1] < expected["t"][0.0]
    encoder.export(tmp_path / "saved")
    encoder.save(tmp_path / "encoder.keras")
    for source in (
        tf.saved_model.load(str(tmp_path / "saved")),
        str(tmp_path / "saved"),
        tmp_path / "encoder.keras",
        lambda t: tf.reshape(t, [-1, int(np.prod(IMAGE))]) @ kernel,
    ):
        results = evaluator.evaluate(source, data_range=(0.0, 1.0))
        assert dict(results) == dict(expected), type(source).__name__


class _LinearModule(tf.Module):
    """A plain TF module x -> x W, exported as a standard SavedModel (not Keras)."""

    def __init__(self, kernel, outputs=("features",)):
        super().__init__()
        self.kernel = tf.Variable(kernel)
        self.outputs = outputs

    @tf.function(input_signature=[tf.TensorSpec((None,) + IMAGE, tf.float32, name="images")])
    def __call__(self, images):
        features = tf.reshape(images, [-1, int(np.prod(IMAGE))]) @ self.kernel
        return {name: features for name in self.outputs}


def _save_module(kernel, path, outputs=("features",)):
    module = _LinearModule(kernel, outputs)
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def test_a_standard_saved_model_is_called_through_its_keyword_signature(problem, tmp_path):
    """Red team (issue 23, item 4): the serving signature takes keywords and returns a dict; it was called
    positionally (TypeError)."""
    kernel, train, test = problem
    evaluator = AdversarialEvaluator(train, test, attacks="pgd", checks=False, **FAST)
    expected = evaluator.evaluate(_encoder(kernel), data_range=(0.0, 1.0))
    path = _save_module(kernel, tmp_path / "module")
    loaded = tf.saved_model.load(str(path))
    assert not hasattr(loaded, "serve") and "serving_default" in loaded.signatures
    for source in (loaded, str(path)):
        results = evaluator.evaluate(source, data_range=(0.0, 1.0))
        assert dict(results) == dict(expected), type(source).__name__


def test_a_signature_with_several_outputs_is_refused_naming_them(problem, tmp_path):
    kernel, _, _ = problem
    path = _save_module(kernel, tmp_path / "module", outputs=("mean", "log_var"))
    with pytest.raises(ValueError, match=r"'SavedModel.serving_default' returns 2 outputs \(log_var, mean\); the evaluation needs one"):
        as_encoder(str(path), data_range=(0.0, 1.0))


def test_check_encoder_says_in_one_sentence_that_an_encoder_cannot_take_the_data(problem):
    kernel, _, test = problem
    x = test[0][:2]
    assert tuple(encoders.check_encoder(as_encoder(_encoder(kernel), data_range=(0, 1)), x).shape) == (2, LATENT)
    reshape = as_encoder(lambda t: tf.reshape(t, [-1, 5]), data_range=(0, 1))  # 64 values per image: not 5
    with pytest.raises(ValueError, match=r"The encoder 'mine' cannot be applied to inputs of shape \(2, 8, 8, 1\) "
                       r"\(float32\): InvalidArgumentError: .*") as raised:
        encoders.check_encoder(reshape, x, name="mine")
    assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match=r"returns a tuple; the evaluation needs one tensor"):
        encoders.check_encoder(as_encoder(lambda t: (t, t), data_range=(0, 1)), x)


def test_the_black_box_check_catches_masked_gradients(problem):
    kernel, train, test = problem
    # PGD and Square suffice here: the check compares the black-box attack with the white-box ones.
    evaluator = AdversarialEvaluator(train, test, attacks=("pgd", "square"), square_queries=100, check_size=40, **FAST)
    sound = evaluator.evaluate(_encoder(kernel), data_range=(0.0, 1.0))
    assert not [c for c in sound.checks if c.name == "black_box" and not c.passed], sound.problems
    for mask in ("stop_gradient", "threshold"):
        with pytest.warns(UserWarning, match="likely gradient masking"):
            masked = evaluator.evaluate(_encoder(kernel, mask), data_range=(0.0, 1.0))
        failed = {c.name for c in masked.checks if not c.passed}
        assert "black_box" in failed and masked.flagged, mask
        assert masked.broken_by["t"][0.1].get("square", 0) > 0  # and they count as broken
        assert masked["t"][0.1] < masked["t"][0.0]


def test_an_encoder_must_say_its_data_range_and_return_one_tensor(problem, tmp_path):
    kernel, train, test = problem
    with pytest.raises(ValueError, match=r"does not declare the range of its inputs: pass `data_range=\(low, high\)`"):
        as_encoder(_encoder(kernel))
    with pytest.raises(ValueError, match=r"returns a tuple; the evaluation needs one tensor"):
        as_encoder(lambda t: (t, t), data_range=(0, 1)).encode_mean(test[0])
    with pytest.raises(ValueError, match=r"`data_range` must satisfy low < high"):
        as_encoder(_encoder(kernel), data_range=(1, 0))
    with pytest.raises(ValueError, match=r"folder without saved_model.pb: not a TF SavedModel"):
        encoders.load(tmp_path)
    with pytest.raises(ValueError, match=r"`encoder` must be a keras_avae model, a Keras model or layer"):
        as_encoder(42, data_range=(0, 1))
    dict_encoder = as_encoder(lambda t: {"z": tf.reshape(t, [len(t), -1])}, data_range=(0, 1))
    assert dict_encoder.encode_mean(test[0]).shape == (len(test[0]), int(np.prod(IMAGE)))


def test_a_keras_avae_model_keeps_its_own_range(tiny_model):
    assert as_encoder(tiny_model) is tiny_model
    with pytest.raises(ValueError, match=r"disagrees with the model's own data_range"):
        as_encoder(tiny_model, data_range=(-1.0, 1.0))


@pytest.fixture(scope="module")
def tiny_model():
    from conftest import tiny_networks

    from keras_avae import VAE

    model = VAE(*tiny_networks(latent_dim=2, image_shape=(4, 4, 1)), seed=SEED)
    model.build((None, 4, 4, 1))
    return model
