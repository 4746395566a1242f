"""Tests for keras_avae/callbacks/self_consistency.py: self-consistency logged during `fit`."""

import csv
import math
import re

import keras
import matplotlib.image
import numpy as np
import pytest

import keras_avae
from keras_avae.callbacks.self_consistency import SelfConsistencyCallback
from keras_avae.evaluation.self_consistency import self_consistency

SETTINGS = {"n": 16, "steps": 2, "seed": 4}


@pytest.fixture
def tiny_vae(make_networks):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model.compile(optimizer="adam", jit_compile=False)  # an XLA compile costs more than these fits
    return model


def test_fit_writes_every_key_to_history(tiny_vae, images):
    callback = SelfConsistencyCallback(**SETTINGS)
    history = tiny_vae.fit(images, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    assert callback.log_keys[:2] == ["sc_z_error", "sc_z_error_active"]
    # Names CSVLogger columns and TensorBoard tags take as they are.
    assert all(re.fullmatch(r"sc_[a-z0-9_]+", key) for key in callback.log_keys)
    for key in callback.log_keys:
        assert len(history.history[key]) == 2, key
        assert all(np.isfinite(history.history[key])), key
    assert [entry["epoch"] for entry in callback.history] == [0, 1]
    # The last epoch's logs are the metric of the trained model, with the same settings.
    final = self_consistency(tiny_vae, **SETTINGS)
    for key, value in final.items():
        assert history.history["sc_" + key][-1] == pytest.approx(value, rel=1e-6), key


def test_figure_dir_writes_the_chains_of_each_evaluation(tiny_vae, images, tmp_path):
    callback = SelfConsistencyCallback(**SETTINGS, x=images, figure_dir=tmp_path / "figures")
    tiny_vae.fit(images, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    paths = [entry["figure"] for entry in callback.history]
    assert [p.endswith(f"chains_epoch_{e:03d}.png") for p, e in zip(paths, (1, 2))] == [True, True]
    for path in paths:
        pixels = matplotlib.image.imread(path)
        assert pixels.std() > 0


def test_figure_dir_needs_real_images():
    with pytest.raises(ValueError, match="`figure_dir` needs `x`"):
        SelfConsistencyCallback(figure_dir="figures")


def test_every_n_epochs_and_the_last_epoch(tiny_vae, images):
    callback = SelfConsistencyCallback(every_n_epochs=2, **SETTINGS)
    history = tiny_vae.fit(images, epochs=3, batch_size=16, verbose=0, callbacks=[callback])
    assert [entry["epoch"] for entry in callback.history] == [1, 2]
    values = history.history["sc_z_error"]  # NaN in the epoch not evaluated (fill_missing_epochs's default)
    assert len(values) == 3 and np.isnan(values[0]) and not np.isnan(values[1:]).any()


def test_fill_missing_epochs_keeps_csv_columns(tiny_vae, images, tmp_path):
    path = tmp_path / "log.csv"
    callback = SelfConsistencyCallback(every_n_epochs=2, **SETTINGS)  # fill_missing_epochs=True by default
    tiny_vae.fit(
        images, epochs=2, batch_size=16, verbose=0, callbacks=[callback, keras.callbacks.CSVLogger(str(path))]
    )
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert set(callback.log_keys) <= set(rows[0])
    assert math.isnan(float(rows[0]["sc_z_error"]))
    assert np.isfinite(float(rows[1]["sc_z_error"]))


def test_uses_real_data_for_active_dimensions(tiny_vae, images):
    callback = SelfConsistencyCallback(x=images, active_threshold=0.0, **SETTINGS)
    tiny_vae.fit(images, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    expected = self_consistency(tiny_vae, x=images, active_threshold=0.0, **SETTINGS)
    assert callback.history[-1]["results"]["active_dims"] == expected["active_dims"]
    assert callback.get_config()["num_x"] == len(images)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 1}, "`n` must be an integer >= 2"),
        ({"steps": 0}, "`steps` must be an integer >= 1"),
        ({"every_n_epochs": 0}, "`every_n_epochs` must be an integer >= 1"),
        ({"active_threshold": -1.0}, "`active_threshold` must be a finite number >= 0"),
        ({"x": np.zeros((1, 6, 6, 1))}, "`x` must hold at least 2 examples"),
        ({"x": np.full((4, 6, 6, 1), np.nan)}, "Bad `x`: inputs contain 144 NaN"),
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
        ({"seed": 1.5}, "`seed` must be an int"),
        ({"fill_missing_epochs": 1}, "`fill_missing_epochs` must be True or False"),
        ({"verbose": 2}, "`verbose` must be 0 or 1"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SelfConsistencyCallback(**kwargs)
