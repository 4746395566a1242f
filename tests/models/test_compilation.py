"""Tests for keras_avae/models/compilation.py: the default `steps_per_execution` and what stays per epoch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_avae
from keras_avae.callbacks import RobustnessEvaluator
from keras_avae.files import AtomicBackupAndRestore
from keras_avae.models.compilation import DEFAULT_STEPS_PER_EXECUTION

N = DEFAULT_STEPS_PER_EXECUTION
BATCH = 4


def _model(make_networks, model_class=keras_avae.VAE, **compile_kwargs):
    keras.utils.set_random_seed(0)
    model = model_class(*make_networks(), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **{"jit_compile": False, **compile_kwargs})
    return model


def _data(batches):
    return np.random.default_rng(0).random((batches * BATCH, 6, 6, 1), dtype=np.float32)


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batch_ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends.append(batch)


def test_the_default_runs_several_steps_per_execution(make_networks):
    assert N > 1
    assert _model(make_networks).steps_per_execution == N


@pytest.mark.parametrize("value", [1, 3])
def test_an_explicit_value_is_kept(make_networks, value):
    model = _model(make_networks, steps_per_execution=value)
    assert model.steps_per_execution == value
    counter = BatchCounter()
    model.fit(_data(7), batch_size=BATCH, epochs=1, verbose=0, callbacks=[counter])
    assert counter.batch_ends == list(range(value - 1, 7 + value - 1, value))


@pytest.mark.parametrize("batches", [7, 10, 23])
@pytest.mark.parametrize("model_class", [keras_avae.VAE, keras_avae.AVAE])
def test_every_step_of_every_epoch_runs(make_networks, model_class, batches):
    """An epoch whose step count is not a multiple of N ends with a shorter execution."""
    model = _model(make_networks, model_class)
    counter = BatchCounter()
    history = model.fit(_data(batches), batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[counter])
    assert int(model.optimizer.iterations) == 2 * batches
    assert all(len(values) == 2 for values in history.history.values())
    assert len(counter.batch_ends) == 2 * -(-batches // N)  # per-batch callbacks: once per execution


@pytest.mark.parametrize("steps_per_epoch", [7, 20, 23])
def test_steps_per_epoch_on_data_that_repeats_is_kept(make_networks, steps_per_epoch):
    """Keras would run a whole execution past `steps_per_epoch` on a repeating dataset; the default does not."""
    model = _model(make_networks)
    data = tf.data.Dataset.from_tensor_slices(_data(3)).repeat().batch(BATCH)
    model.fit(data, steps_per_epoch=steps_per_epoch, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * steps_per_epoch
    # Back to the full default for data that ends by itself.
    model.fit(_data(3), batch_size=BATCH, epochs=1, verbose=0)
    assert model.steps_per_execution == N and int(model.optimizer.iterations) == 2 * steps_per_epoch + 3


@pytest.mark.parametrize("steps_per_epoch", [7, 20])
def test_self_supervised_fit_counts_its_steps(make_networks, steps_per_epoch):
    vae = _model(make_networks)
    vae.fit(_data(2), batch_size=BATCH, epochs=1, verbose=0)
    ss = keras_avae.AVAESelfSupervised.from_pretrained(vae, rho=0.9, seed=0)
    ss.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    history = ss.fit(epochs=2, steps_per_epoch=steps_per_epoch, batch_size=BATCH, verbose=0)
    assert int(ss.optimizer.iterations) == 2 * steps_per_epoch
    assert all(len(values) == 2 for values in history.history.values())
    assert set(ss.evaluate(steps=3, batch_size=BATCH, verbose=0, return_dict=True))


def test_the_progress_bar_completes(make_networks, capsys):
    model = _model(make_networks)
    history = model.fit(_data(23), batch_size=BATCH, epochs=2, verbose=1)
    assert len(history.history["loss"]) == 2
    out = capsys.readouterr().out
    assert out.count("Epoch 2/2") == 1 and "23/23" in out


def test_backup_and_restore_resumes_at_the_epoch(make_networks, tmp_path):
    """Killed after epoch 1 of 3, a resumed fit runs epochs 2 and 3 only and ends as an uninterrupted fit."""

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("killed")

    x = _data(13)
    reference = _model(make_networks)
    reference.fit(x, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)

    model = _model(make_networks)
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="killed"):
        model.fit(x, batch_size=BATCH, epochs=3, shuffle=False, verbose=0,
                  callbacks=[AtomicBackupAndRestore(backup), Kill()])
    resumed = _model(make_networks)
    history = resumed.fit(x, batch_size=BATCH, epochs=3, shuffle=False, verbose=0,
                          callbacks=[AtomicBackupAndRestore(backup)])
    assert history.epoch == [2]
    assert int(resumed.optimizer.iterations) == 3 * 13
    for got, want in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_robustness_evaluator_still_runs_per_epoch(make_networks):
    rng = np.random.default_rng(0)
    x = rng.random((64, 6, 6, 1), dtype=np.float32)
    labels = {"bright": (x.reshape(64, -1).mean(axis=1) > 0.5).astype(np.int64)}
    train, test = (x[:48], {"bright": labels["bright"][:48]}), (x[48:], {"bright": labels["bright"][48:]})
    evaluator = RobustnessEvaluator(
        train, test, epsilons=(0.0,), every_n_epochs=1, attack_steps=1, restarts=1, attacks="pgd",
        checks=False, verbose=0, probe_kwargs={"epochs": 1},
    )
    model = _model(make_networks)
    history = model.fit(x[:48], batch_size=BATCH, epochs=3, verbose=0, callbacks=[evaluator]).history
    assert [entry["epoch"] for entry in evaluator.history] == [0, 1, 2]
    assert len(history["robust_bright_eps0"]) == 3


def test_compile_config_round_trips(make_networks, tmp_path):
    default = _model(make_networks)
    explicit = _model(make_networks, steps_per_execution=3)
    assert default.get_compile_config()["steps_per_execution"] is None  # the request: the default
    assert explicit.get_compile_config()["steps_per_execution"] == 3
    for name, model in (("default", default), ("explicit", explicit)):
        model.fit(_data(2), batch_size=BATCH, epochs=1, verbose=0)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.steps_per_execution == model.steps_per_execution
        assert loaded.get_compile_config()["steps_per_execution"] == model.get_compile_config()["steps_per_execution"]
    # A default model whose value was lowered for one fit is saved as the default.
    default.fit(tf.data.Dataset.from_tensor_slices(_data(1)).repeat().batch(BATCH), steps_per_epoch=7, verbose=0)
    assert default.steps_per_execution == 1
    default.save(tmp_path / "lowered.keras")
    assert keras.saving.load_model(tmp_path / "lowered.keras").steps_per_execution == N


def test_one_step_per_execution_by_default_under_a_strategy(make_networks):
    """Keras 3.15's multi-step loop fails under MirroredStrategy (TF 2.21), so a model made under a strategy runs one step.

    A one-device strategy stands for all: a MirroredStrategy `fit` here makes the later
    MirroredStrategy tests of the same process (tests/test_distributed.py) fail, with or without this change.
    """
    device = tf.config.list_logical_devices("CPU")[0].name
    with tf.distribute.OneDeviceStrategy(device).scope():
        model = keras_avae.VAE(*make_networks(), seed=0)
        model.compile(optimizer="adam")
    assert model.steps_per_execution == 1
    model.fit(_data(7), batch_size=BATCH, epochs=1, verbose=0)
    assert model.steps_per_execution == 1 and int(model.optimizer.iterations.numpy()) == 7
    assert model.get_compile_config()["steps_per_execution"] is None
