"""Tests for keras_avae/experiments/color_mnist.py (named apart from tests/datasets/test_color_mnist.py)."""

import json

import keras
import numpy as np
import pytest

import keras_avae
from keras_avae.experiments import FIDScorer, color_mnist
from keras_avae.experiments.settings import TrainSettings

NUM_TRAIN, NUM_TEST = 48, 24


@pytest.fixture
def fake_mnist(tmp_path, write_fake_mnist):
    return write_fake_mnist(tmp_path / "mnist.npz", NUM_TRAIN, NUM_TEST)


def test_fid_extractor_is_a_colour_digit_classifier(fake_mnist, tmp_path):
    train, test = color_mnist.load_data(str(fake_mnist), NUM_TRAIN, NUM_TEST)
    features, info = color_mnist.train_fid_extractor(train, test, epochs=1)
    assert features.name == "color_mnist_classifier_features"
    assert features.output_shape == (None, color_mnist.EXTRACTOR_FEATURES)
    assert color_mnist.fid_classifier().output_shape == (None, 70)
    assert 0 <= info["test_accuracy"] <= 1 and info["num_train"] == NUM_TRAIN
    np.testing.assert_array_equal(color_mnist.joint_labels({"digit": np.array([9]), "color": np.array([6])}), [69])

    config = TrainSettings(fid_samples=10, extractor_epochs=1)
    scorer = color_mnist.fid_scorer_for(config, train, test, tmp_path)
    assert isinstance(scorer, FIDScorer) and scorer.samples == 10
    assert (tmp_path / "fid_extractor.keras").is_file()
    saved = config.replace(fid_extractor=str(tmp_path / "fid_extractor.keras"))
    reloaded = color_mnist.fid_scorer_for(saved, train, test, tmp_path / "b")
    assert "loaded from" in reloaded.description and not (tmp_path / "b").exists()
    assert color_mnist.fid_scorer_for(config.replace(fid=False), train, test, tmp_path) is None
    with pytest.raises(ValueError, match="either `inception_weights` or `fid_extractor`"):
        config.replace(fid_extractor="a", inception_weights="b")


def test_train_settings_check_themselves():
    with pytest.raises(ValueError, match="`pretrained` is only for model='avae_ss'"):
        TrainSettings.from_dict({"model": "vae", "pretrained": "vae.keras"})
    with pytest.raises(ValueError, match="`arch` must be one of"):
        TrainSettings.from_dict({"arch": "resnet"})
    with pytest.raises(ValueError, match="Unknown settings"):
        TrainSettings.from_dict({"rows": ["VAE"]})
    tiny = TrainSettings.from_dict({"scale": "tiny", "model": "se"}).resolved()
    assert (tiny.mlp_hidden_units, tiny.latent_dim, tiny.train_attack_steps) == (32, 8, 1)


def test_avae_ss_trains_its_vae_first(fake_mnist, tmp_path):
    out = tmp_path / "ss"
    metrics = color_mnist.train(
        {"model": "avae_ss", "scale": "tiny", "data": str(fake_mnist), "out": str(out), "verbose": 0,
         "fid": False, "figures": False, "epsilons": [0.0], "jit_compile": False}
    )
    assert type(keras.models.load_model(out / "model.keras")) is keras_avae.AVAESelfSupervised
    assert type(keras.models.load_model(out / "vae" / "model.keras")) is keras_avae.VAE
    assert metrics["time_factor"] > 0
    assert metrics["train_steps"] == json.loads((out / "vae" / "metrics.json").read_text())["train_steps"] == 3
