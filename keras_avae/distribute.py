"""Training and evaluating on many devices and many workers, with `tf.distribute`.

The one place that says how this library scales out (the `--distribute` flag of
every command goes through it):

    distribute="none"          one device (TensorFlow's default strategy)
    distribute="mirrored"      every GPU of this machine (`tf.distribute.MirroredStrategy`)
    distribute="multi-worker"  every device of several processes or machines
                               (`tf.distribute.MultiWorkerMirroredStrategy`), the cluster read
                               from `TF_CONFIG` (cluster="tf-config") or from Slurm
                               (cluster="slurm", `SlurmClusterResolver`)

What is synchronised: the models' variables (mirrored, the same on every replica), the
gradients (summed across all replicas each step, the loss scaled by the global batch) and the
logged metrics (averaged across replicas). Each worker reads its own shard of every global
batch (`tf.distribute`'s data auto-sharding). What only the chief (worker 0) does: write the
run directory. Every other worker runs the same program and writes into a temporary folder that
is removed at the end (`run_directory`); it restores a backup from the chief's folder.

Without the CLI:

    from keras_avae import distribute
    strategy = distribute.make_strategy("multi-worker")      # first thing in the program
    with strategy.scope():
        model = keras_avae.AVAE(encoder, decoder)
        model.compile(optimizer="adam")
    model.fit(x, batch_size=global_batch)                     # each worker runs the same code

Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` (tensorflow#72388, keras#20585);
`reducible_logs` is this library's fix, applied by the models' `_update_trackers`.
"""

import contextlib
import os
import shutil
import socket
import tempfile
import time

import tensorflow as tf

STRATEGIES = ("none", "mirrored", "multi-worker")
"""The values of `distribute`."""

CLUSTERS = ("tf-config", "slurm")
"""How a multi-worker job finds its workers: the `TF_CONFIG` environment variable or Slurm's."""

DEFAULT_TIMEOUT = 120.0
"""Seconds a worker waits at start-up for the other workers before it fails, naming them."""

TIMEOUT_ENV_VAR = "KERAS_AVAE_WORKER_TIMEOUT"
"""Overrides `DEFAULT_TIMEOUT` (seconds)."""

SLURM_PORT = 8888
SLURM_PORT_ENV_VAR = "KERAS_AVAE_SLURM_PORT"
"""The first port of the workers of a Slurm job (`SlurmClusterResolver`'s `port_base`; tasks on one
node take the next ones)."""

_STRATEGIES = {}
"""The strategies made in this process, by `(distribute, cluster)`: a multi-worker strategy can
be made once per process only (TensorFlow configures its collectives at start-up)."""

_CURRENT = []
"""The multi-worker strategy of this process, once made (at most one)."""

_CHIEF_FOLDERS = {}
"""A non-chief worker's temporary run directory -> the chief's (`run_directory`)."""


def check_distribute(value, name="distribute"):
    if value not in STRATEGIES:
        raise ValueError(f"`{name}` must be one of {STRATEGIES}. Received: {name}={value!r}")
    return value


def check_cluster(value, name="cluster"):
    if value not in CLUSTERS:
        raise ValueError(f"`{name}` must be one of {CLUSTERS}. Received: {name}={value!r}")
    return value


def cluster_resolver(cluster="tf-config"):
    """The `tf.distribute.cluster_resolver` of a multi-worker job, checked to name a cluster.

    Raises:
        ValueError: `TF_CONFIG` is unset or names no workers (cluster="tf-config"), or this
            process does not run under Slurm (cluster="slurm").
    """
    check_cluster(cluster)
    if cluster == "slurm":
        if "SLURM_PROCID" not in os.environ or "SLURM_STEP_NODELIST" not in os.environ:
            raise ValueError(
                "cluster='slurm' reads the job from Slurm's environment (SLURM_PROCID, SLURM_STEP_NODELIST): "
                "start each worker with `srun`."
            )
        port = int(os.environ.get(SLURM_PORT_ENV_VAR, SLURM_PORT))
        if "CUDA_VISIBLE_DEVICES" in os.environ or shutil.which("nvidia-smi"):
            return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port)
        # A CPU node: the resolver counts GPUs with `nvidia-smi` and makes one task per GPU, so
        # without GPUs it fails or lists no task. One pretend "GPU" per task, not exported.
        from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver as slurm

        tasks = max(slurm.expand_tasks_per_node(os.environ.get("SLURM_STEP_TASKS_PER_NODE", "1")))
        return tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port, gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False
        )
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if not resolver.cluster_spec().jobs or resolver.task_type is None:
        raise ValueError(
            "distribute='multi-worker' with cluster='tf-config' needs the TF_CONFIG environment variable: "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}.'
        )
    return resolver


def worker_addresses(resolver):
    """The `host:port` of every task of the cluster, in order (chief first)."""
    spec = resolver.cluster_spec().as_dict()
    jobs = [job for job in ("chief", "worker") if job in spec] + sorted(set(spec) - {"chief", "worker"})
    addresses = []
    for job in jobs:
        tasks = spec[job]
        addresses += list(tasks.values()) if isinstance(tasks, dict) else list(tasks)
    return addresses


def _own_address(resolver):
    tasks = resolver.cluster_spec().as_dict()[resolver.task_type]
    return tasks[resolver.task_id] if isinstance(tasks, list) else tasks[resolver.task_id]


def _split(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _reachable(address, timeout=1.0):
    try:
        with socket.create_connection(_split(address), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_workers(resolver, timeout=None):
    """Waits until every other worker of the cluster accepts connections on its address.

    TensorFlow's start-up waits for the cluster without a bound (a worker that never comes
    makes the others hang), so before the strategy is made each worker listens on its own
    address and connects to every other one, until all answer or `timeout` seconds pass. Its
    own listener is closed before TensorFlow's server takes the port.

    Raises:
        ConnectionError: naming the addresses that did not answer within `timeout`.
    """
    timeout = _timeout(timeout)
    own = _own_address(resolver)
    others = [address for address in worker_addresses(resolver) if address != own]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            listener.bind(("", _split(own)[1]))
            listener.listen(16)
        except OSError as error:
            raise ConnectionError(f"This worker cannot listen on its address {own}: {error}") from None
        deadline = time.monotonic() + timeout
        waiting = list(others)
        while waiting:
            waiting = [address for address in waiting if not _reachable(address)]
            if waiting and time.monotonic() > deadline:
                raise ConnectionError(
                    f"Cannot reach the worker(s) {', '.join(waiting)} within {timeout:g} s (this worker: {own}); "
                    f"is every worker of the cluster started, with the same cluster? (timeout: ${TIMEOUT_ENV_VAR})"
                )
            if waiting:
                time.sleep(0.2)
    finally:
        listener.close()


def _timeout(timeout):
    if timeout is None:
        timeout = float(os.environ.get(TIMEOUT_ENV_VAR, DEFAULT_TIMEOUT))
    return float(timeout)


def make_strategy(distribute="none", cluster="tf-config", timeout=None):
    """The `tf.distribute.Strategy` of `distribute`, made once per process and reused.

    A multi-worker strategy must be made before TensorFlow runs anything else in the
    process. Each worker first waits for the others (`wait_for_workers`, bounded by `timeout`).

    Args:
        distribute: one of `STRATEGIES`.
        cluster: for "multi-worker", one of `CLUSTERS`.
        timeout: seconds to wait for the other workers (default `$KERAS_AVAE_WORKER_TIMEOUT`,
            else `DEFAULT_TIMEOUT`).
    """
    check_distribute(distribute)
    key = (distribute, check_cluster(cluster) if distribute == "multi-worker" else None)
    if key in _STRATEGIES:
        return _STRATEGIES[key]
    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        made = [other for other in _STRATEGIES if other[0] == "multi-worker"]
        if made:
            raise ValueError(f"This process already runs a multi-worker strategy (cluster={made[0][1]!r}).")
        resolver = cluster_resolver(cluster)
        if len(worker_addresses(resolver)) > 1:
            wait_for_workers(resolver, timeout)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        _CURRENT.append(strategy)
    _STRATEGIES[key] = strategy
    return strategy


def strategy_of(settings):
    """The strategy of a settings object with `distribute` and `cluster` fields (none if it has none)."""
    return make_strategy(getattr(settings, "distribute", "none"), getattr(settings, "cluster", "tf-config"))


def current_strategy():
    """The multi-worker strategy this process made (`make_strategy`), else the strategy in scope."""
    return _CURRENT[0] if _CURRENT else tf.distribute.get_strategy()


def is_multi_worker(strategy=None):
    """Whether `strategy` (default: `current_strategy()`) spans several workers."""
    strategy = strategy or current_strategy()
    extended = strategy.extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def is_chief(strategy=None):
    """Whether this process writes the outputs: always on one worker; on several, worker 0 (or the chief).

    `strategy` defaults to `current_strategy()`."""
    strategy = strategy or current_strategy()
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def worker_index(strategy=None):
    """This worker's place among the workers (0 on the chief), and the number of workers."""
    strategy = strategy or current_strategy()
    if not is_multi_worker(strategy):
        return 0, 1
    extended = strategy.extended
    return int(extended._id_in_cluster), int(extended._num_workers)


@contextlib.contextmanager
def run_directory(out, strategy=None):
    """The folder this worker writes a run into: `out` on the chief, else a temporary folder.

    The temporary folder is removed when the block ends. A backup in it is restored from the
    chief's folder (`chief_path`), so `--resume` works on every worker when the chief's run
    directory is on a file system all workers see.

    Example:
        with distribute.run_directory(config.out) as out:
            train_and_write(config.replace(out=os.fspath(out)))
    """
    if is_chief(strategy):
        yield out
        return
    index, _ = worker_index(strategy)
    folder = tempfile.mkdtemp(prefix=f"keras_avae_worker{index}_")
    local = os.path.join(folder, os.path.basename(os.path.normpath(os.fspath(out))) or "run")
    _CHIEF_FOLDERS[local] = os.path.abspath(os.fspath(out))
    try:
        yield type(out)(local) if not isinstance(out, str) else local
    finally:
        _CHIEF_FOLDERS.pop(local, None)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def command(settings):
    """The set-up of a command: makes the strategy of `settings` (its `distribute` and `cluster`)
    before TensorFlow runs anything, and yields `settings` with `out` replaced by the folder this
    worker writes (`run_directory`: `out` on the chief, a temporary folder elsewhere)."""
    strategy = strategy_of(settings)
    with run_directory(settings.out, strategy) as out:
        yield settings.replace(out=os.fspath(out))


def chief_path(path):
    """The chief's counterpart of `path` written by this worker (`path` itself on the chief)."""
    path = os.path.abspath(os.fspath(path))
    for local, chief in _CHIEF_FOLDERS.items():
        if path == local or path.startswith(local + os.sep):
            return chief + path[len(local):]
    return path


# ------------------------------------------------------------ the Keras 3 fix


def reducible_logs(logs):
    """The logs a `train_step` / `test_step` returns, in a form Keras 3 can reduce across workers.

    Keras 3's TensorFlow trainer (`keras/src/backend/tensorflow/trainer.py`,
    `reduce_per_replica`) averages each logged value across the workers of a
    `MultiWorkerMirroredStrategy` with `strategy.reduce("MEAN", value, axis=0)`, which fails on
    the scalars every step returns ("Invalid reduction dimension 0 for input with 0
    dimensions": tensorflow#72388, keras#20585, open in Keras 3.15). Under that strategy each
    scalar is returned as a vector of length 1 instead: the reduction over axis 0 and across
    replicas gives the scalar mean, the value a single worker logs. Elsewhere `logs` are
    returned unchanged. Remove this when Keras reduces scalars itself (the test
    `test_keras_still_needs_the_fix` says when).
    """
    if not _reduces_along_axis_0():
        return logs
    return {name: tf.reshape(value, (1,)) if value.shape.rank == 0 else value for name, value in logs.items()}


def _reduces_along_axis_0():
    if not tf.distribute.has_strategy():
        return False
    strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and is_multi_worker(strategy)


# ------------------------------------------------------------------ local jobs


def free_port():
    """A TCP port on localhost that is free now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def local_tf_configs(num_workers):
    """The `TF_CONFIG` values (JSON strings) of `num_workers` workers on this machine, on free ports.

    Example:
        for index, tf_config in enumerate(distribute.local_tf_configs(2)):
            subprocess.Popen(["keras-avae", "train", "--distribute", "multi-worker"],
                             env={**os.environ, "TF_CONFIG": tf_config})
    """
    import json

    workers = [f"localhost:{free_port()}" for _ in range(int(num_workers))]
    return [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        for index in range(len(workers))
    ]
