"""keras_avae.distribute: strategies, the chief's run directory, and multi-worker training.

The multi-worker tests start two worker processes on this machine (TF_CONFIG on free localhost
ports, one thread each, each bounded in time) running tests/distribute_worker.py, and compare
them with the same script run as one process.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_avae import distribute

WORKER = Path(__file__).resolve().parent / "distribute_worker.py"
REPOSITORY = WORKER.parents[1]
WORKER_TIMEOUT = 300
"""Seconds a worker process may run before it is killed (the test then fails)."""


def _environment(tf_config=None, **extra):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    env.update(extra)
    return env


def run_workers(args, num_workers=2, timeout=WORKER_TIMEOUT, **extra):
    """Runs `python tests/distribute_worker.py *args` as `num_workers` workers (0: one plain
    process); returns their `CompletedProcess`es. Every process is killed after `timeout` s."""
    configs = distribute.local_tf_configs(num_workers) if num_workers else [None]
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *[arg.format(index=index) for arg in args]],
            env=_environment(config, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index, config in enumerate(configs)
    ]
    return _communicate(processes, timeout)


def _check(done):
    for process in done:
        assert process.returncode == 0, process.stderr[-3000:]


# ------------------------------------------------------------------ in process


def test_settings_are_checked():
    with pytest.raises(ValueError, match="`distribute` must be one of"):
        distribute.make_strategy("horovod")
    with pytest.raises(ValueError, match="`cluster` must be one of"):
        distribute.make_strategy("multi-worker", cluster="kubernetes")


def test_none_is_the_default_strategy_and_writes_in_place(tmp_path):
    strategy = distribute.make_strategy("none")
    assert strategy is tf.distribute.get_strategy()
    assert distribute.is_chief(strategy) and distribute.worker_index(strategy) == (0, 1)
    with distribute.run_directory(tmp_path / "run") as out:
        assert out == tmp_path / "run"
    logs = {"loss": tf.constant(1.0)}
    assert distribute.reducible_logs(logs) is logs


def test_multi_worker_needs_a_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        distribute.cluster_resolver("tf-config")
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    with pytest.raises(ValueError, match="start each worker with `srun`"):
        distribute.cluster_resolver("slurm")


def test_slurm_cluster(monkeypatch):
    for name, value in {
        "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "node[1-2]",
        "SLURM_STEP_TASKS_PER_NODE": "1(x2)", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "node[1-2]",
    }.items():
        monkeypatch.setenv(name, value)
    resolver = distribute.cluster_resolver("slurm")
    assert distribute.worker_addresses(resolver) == ["node1:8888", "node2:8888"]
    assert resolver.task_type == "worker" and resolver.task_id == 1


def test_an_unreachable_worker_is_named_within_the_timeout(monkeypatch):
    own, other = (json.loads(config) for config in distribute.local_tf_configs(2))
    monkeypatch.setenv("TF_CONFIG", json.dumps(own))
    resolver = distribute.cluster_resolver()
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"Cannot reach the worker\\(s\\) {other['cluster']['worker'][1]} within 1 s"):
        distribute.wait_for_workers(resolver, timeout=1)
    assert time.monotonic() - start < 10


def test_non_chief_writes_to_a_temporary_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(distribute, "is_chief", lambda strategy=None: False)
    monkeypatch.setattr(distribute, "worker_index", lambda strategy=None: (1, 2))
    chief = tmp_path / "run"
    with distribute.run_directory(chief) as out:
        assert out != chief and out.name == "run" and not str(out).startswith(str(tmp_path))
        (out / "backup").mkdir(parents=True)
        assert distribute.chief_path(out / "backup") == str(chief / "backup")
        folder = out
    assert not folder.exists() and not chief.exists()


# ------------------------------------------------------------------ two workers


@pytest.mark.large
def test_two_workers_train_like_one_process(tmp_path):
    """VAE, AVAE and SE: two workers (one replica each) reach the weights, logs and test terms of
    one process with the same global batch."""
    _check(run_workers(["train", str(tmp_path / "worker{index}.npz")]))
    _check(run_workers(["train", str(tmp_path / "single.npz")], num_workers=0))
    single = np.load(tmp_path / "single.npz")
    workers = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    assert [int(w["worker"]) for w in workers] == [0, 1] and [bool(w["chief"]) for w in workers] == [True, False]
    assert int(workers[0]["workers"]) == 2 and int(single["workers"]) == 1
    for name in ("VAE", "AVAE", "SE"):
        keys = [key for key in single.files if key.startswith(name + "/")]
        assert any("/history/" in key for key in keys) and any("/evaluate/" in key for key in keys)
        initial_moved = max(np.abs(single[key]).max() for key in keys if "/weight" in key)
        assert initial_moved > 0
        for worker in workers:
            for key in keys:
                np.testing.assert_allclose(worker[key], single[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.large
def test_keras_still_needs_the_fix(tmp_path):
    """Without `reducible_logs`, Keras 3's `fit` fails under two workers (tensorflow#72388).

    When this test fails, Keras reduces scalar logs itself: drop `reducible_logs`."""
    done = run_workers(["no-fix", str(tmp_path / "worker{index}.npz")])
    _check(done)
    for index in range(2):
        error = str(np.load(tmp_path / f"worker{index}.npz")["error"])
        assert "Invalid reduction dimension 0 for input with 0 dimensions" in error, error[-2000:]


# ------------------------------------------------------------ the CLI on two workers

TRAIN = ["train", "--model", "vae", "--scale", "tiny", "--epochs", "4", "--no-fid", "--no-figures", "--no-robustness",
         "--verbose", "0", "--no-jit-compile"]

_STALL_WORKER_1_AFTER_FIRST_EPOCH = """
import json, os, sys, time
import keras
from keras_avae.experiments import run

class Stall(keras.callbacks.Callback):  # after the chief's backup of epoch 1, worker 1 stops answering
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(600)

if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
    train_model = run.train_model
    run.train_model = lambda *args, callbacks=(), **kwargs: train_model(*args, callbacks=[*callbacks, Stall()], **kwargs)
from keras_avae.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start_cli(argv, tmp_path, num_workers=2, code=None):
    """`keras-avae *argv --distribute multi-worker` as `num_workers` local workers (0: one plain
    process), each with its own TMPDIR under `tmp_path`; returns the processes."""
    configs = distribute.local_tf_configs(num_workers) if num_workers else [None]
    processes = []
    for index, config in enumerate(configs):
        temporary = tmp_path / f"tmp{index}"
        temporary.mkdir(exist_ok=True)
        command = ["-c", code] if code else ["-m", "keras_avae.cli"]
        extra = ["--distribute", "multi-worker"] if num_workers else []
        processes.append(subprocess.Popen(
            [sys.executable, *command, *argv, *extra], env=_environment(config, TMPDIR=str(temporary)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    return processes


def finish(processes, timeout=WORKER_TIMEOUT):
    """Waits for `processes` (killing them after `timeout` s); returns their return codes and stderr."""
    return [(process.returncode, process.stderr) for process in _communicate(processes, timeout)]


def _communicate(processes, timeout):
    """Each process's `CompletedProcess`, all of them killed once `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    done = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return done


def _weights(path):
    from keras_avae import files

    return [np.asarray(weight) for weight in files.load_model(path).weights]


def _same_weights(one, two):
    first, second = _weights(one), _weights(two)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.large
def test_cli_on_two_workers_writes_on_the_chief_and_resumes_after_a_kill(tmp_path, write_fake_mnist):
    """`keras-avae train --distribute multi-worker` on two local workers: worker 0 writes the run
    directory, worker 1 only a temporary folder that is removed.
    Then worker 1 is killed after epoch 1: worker 0 fails within a bounded time instead of hanging,
    and the job restarted with --resume ends with the uninterrupted result."""
    data = write_fake_mnist(tmp_path / "mnist.npz", 80, 40)
    argv = [*TRAIN, "--data", str(data)]
    whole, killed = tmp_path / "whole", tmp_path / "killed"

    for code, stderr in finish(start_cli([*argv, "--out", str(whole)], tmp_path)):
        assert code == 0, stderr[-3000:]
    assert {"model.keras", "config.json", "metrics.json", "summary.md", "logs"} <= {p.name for p in whole.iterdir()}
    assert not (whole / "backup").exists() and not (whole / ".lock").exists()
    assert not list((tmp_path / "tmp1").iterdir()), "worker 1 left its temporary run directory"
    config = json.loads((whole / "config.json").read_text())
    assert config["distribute"] == "multi-worker"
    # (Not compared with one process: the models' noise is drawn per replica, so two replicas
    # draw other noise than one; test_two_workers_train_like_one_process removes the noise.)

    processes = start_cli([*argv, "--out", str(killed)], tmp_path, code=_STALL_WORKER_1_AFTER_FIRST_EPOCH)
    metadata = killed / "backup" / "training_metadata.json"
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        while not metadata.is_file():
            assert all(p.poll() is None for p in processes), [p.stderr.read()[-2000:] for p in processes]
            assert time.monotonic() < deadline, "no backup"
            time.sleep(0.2)
        time.sleep(0.5)
        processes[1].kill()
        processes[1].wait()
        killed_at = time.monotonic()
        code, stderr = finish(processes[:1], timeout=180)[0]
        waited = time.monotonic() - killed_at
    finally:
        finish(processes, timeout=1)
    assert json.loads(metadata.read_text())["epoch"] == 1
    assert code == 1 and waited < 170, f"worker 0 after worker 1 died: code {code}, {waited:.0f} s, {stderr[-2000:]}"
    assert stderr.strip().splitlines()[-1].startswith("keras-avae: error: "), stderr[-2000:]  # one line, no traceback
    for code, stderr in finish(start_cli([*argv, "--out", str(killed), "--resume"], tmp_path)):
        assert code == 0, stderr[-3000:]
    assert not (killed / "backup").exists()
    _same_weights(killed / "model.keras", whole / "model.keras")
    metrics = json.loads((killed / "metrics.json").read_text())
    # 64 images, global batch 16: 4 steps in each of the 4 epochs, the first recorded by the killed run.
    assert metrics["train_steps"] == 16


def test_every_command_has_the_flags():
    from keras_avae import cli, constants

    assert constants.DISTRIBUTE_STRATEGIES == distribute.STRATEGIES and constants.CLUSTERS == distribute.CLUSTERS
    parser = cli.build_parser()
    trained = [name for name, spec in cli.EXPERIMENTS.items() if "distribute" in spec[0].field_names()]
    assert set(cli.EXPERIMENTS) - set(trained) == {"compare-curves"}  # reads finished curves, runs no model
    for argv in (["train"], ["evaluate", "model.keras"], *[["reproduce", name] for name in trained]):
        args = parser.parse_args([*argv, "--distribute", "multi-worker", "--cluster", "slurm"])
        settings = args.settings_class.from_dict(cli.settings(args))
        assert (settings.distribute, settings.cluster) == ("multi-worker", "slurm"), argv
        assert args.settings_class.__dataclass_fields__["distribute"].default == "none"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--distribute", "horovod"])


@pytest.mark.large
def test_two_workers_split_the_attacked_images_into_one_result(tmp_path):
    """Each worker attacks its own chunks of the test images; both return the records, accuracies
    and checks of one process."""
    _check(run_workers(["evaluate", str(tmp_path / "worker{index}.npz")]))
    _check(run_workers(["evaluate", str(tmp_path / "single.npz")], num_workers=0))
    single = np.load(tmp_path / "single.npz")
    workers = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    assert list(workers[0]["attacked"]) == [*range(0, 6), *range(12, 18)]  # chunks 0 and 2 of 6 images
    assert list(workers[1]["attacked"]) == [*range(6, 12), *range(18, 20)]
    assert list(single["attacked"]) == list(range(20))
    for worker in workers:
        np.testing.assert_array_equal(worker["accuracy"], single["accuracy"])
        assert str(worker["records"]) == str(single["records"])
        assert str(worker["checks"]) == str(single["checks"])
    assert json.loads(str(single["checks"])), "the checks ran"


_MIRRORED_TRAIN = """
import json, sys
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_avae import cli, distribute
from keras_avae.experiments import registry

devices = [device.name for device in tf.config.list_logical_devices("CPU")]
distribute._STRATEGIES[("mirrored", None)] = tf.distribute.MirroredStrategy(devices)  # no GPUs here
replicas = []
compile_model = registry.compile_model

def recording(model, *args, **kwargs):
    replicas.append(model.distribute_strategy.num_replicas_in_sync)
    return compile_model(model, *args, **kwargs)

registry.compile_model = recording
status = cli.main(sys.argv[2:])
print(json.dumps({"status": status, "replicas": replicas}), file=open(sys.argv[1], "w"))
"""


@pytest.mark.large
def test_train_mirrored_builds_the_model_on_every_replica(tmp_path, write_fake_mnist):
    """`keras-avae train --distribute mirrored`: the model is built and trained under the
    MirroredStrategy (over two logical CPUs, in a process of its own: two MirroredStrategy objects
    on the same devices in one process share collective keys, which breaks the other tests)."""
    data = write_fake_mnist(tmp_path / "mnist.npz", 80, 40)
    out, report = tmp_path / "run", tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_TRAIN, str(report), *TRAIN, "--epochs", "1", "--data", str(data),
         "--out", str(out), "--distribute", "mirrored"],
        env=_environment(), capture_output=True, text=True, timeout=WORKER_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(report.read_text()) == {"status": 0, "replicas": [2]}
    assert json.loads((out / "config.json").read_text())["distribute"] == "mirrored"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_steps"] == 4 and np.isfinite(metrics["train_terms"]["loss"])


def test_cli_worker_alone_fails_naming_the_missing_worker(tmp_path):
    """One worker of two started: `keras-avae` stops with one error line naming the other's address."""
    own, other = distribute.local_tf_configs(2)
    missing = json.loads(other)["cluster"]["worker"][1]
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "keras_avae.cli", *TRAIN, "--out", str(tmp_path / "run"), "--distribute", "multi-worker"],
        env=_environment(own, **{distribute.TIMEOUT_ENV_VAR: "3"}), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"keras-avae: error: Cannot reach the worker(s) {missing} within 3 s" in result.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "run").exists()


def test_a_lost_worker_is_a_fault_not_a_bug():
    import tensorflow as tf

    from keras_avae import cli

    assert cli.is_worker_failure(tf.errors.UnavailableError(None, None, "Task /job:worker/replica:0/task:1 unreachable"))
    assert cli.is_worker_failure(tf.errors.DeadlineExceededError(None, None, "timed out"))
    assert not cli.is_worker_failure(tf.errors.InvalidArgumentError(None, None, "a bug"))
    assert not cli.is_worker_failure(RuntimeError("UnavailableError"))
