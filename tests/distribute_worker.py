"""One worker of the multi-worker tests (tests/test_distribute.py), run as its own process.

    python tests/distribute_worker.py JOB OUT_FILE      (TF_CONFIG in the environment, or none)

JOB "train": VAE, AVAE and SE each trained one epoch (32 images, global batch 16) on the
existing MirroredStrategy test's construction (tests/test_distributed.py: posterior noise far
below float32 resolution, the decoder mean as delusion), from the same initial weights;
writes weights and history to OUT_FILE (an .npz). JOB "no-fix": the same VAE with
`distribute.reducible_logs` disabled; writes the error. JOB "evaluate": the sharded attack ensemble on an untrained tiny VAE. Each process limits itself to one thread.
"""

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)

import keras_avae  # noqa: E402
from keras_avae import distribute  # noqa: E402
from tiny_networks import IMAGE_SHAPE, tiny_networks  # noqa: E402  (this folder: the script's own)

LOG_VAR_BIAS = -40.0  # posterior std exp(-20): below float32 resolution; -60 overflows SE's coupling
GLOBAL_BATCH = 16
NUM_IMAGES = 2 * GLOBAL_BATCH

MODELS = {
    "VAE": lambda: keras_avae.VAE(*networks(), seed=0),
    "AVAE": lambda: keras_avae.AVAE(*networks(), delusion="mean", seed=0),
    "SE": lambda: keras_avae.SmoothEncoder(*networks(), epsilon=0.1, train_attack_steps=2, seed=0),
}


def networks():
    keras.utils.set_random_seed(0)  # the same initial weights in every process
    return tiny_networks(LOG_VAR_BIAS)


def images():
    return np.random.default_rng(0).random((NUM_IMAGES,) + IMAGE_SHAPE, dtype=np.float32)


def train(strategy, names):
    x = images()
    results = {}
    for name in names:
        with strategy.scope():
            model = MODELS[name]()
            model(x[:1])
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        history = model.fit(x, epochs=1, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0).history
        for index, weight in enumerate(model.get_weights()):
            results[f"{name}/weight{index}"] = weight
        for key, values in history.items():
            results[f"{name}/history/{key}"] = np.asarray(values, dtype=np.float64)
        evaluated = model.evaluate(x, batch_size=GLOBAL_BATCH, return_dict=True, verbose=0)
        for key, value in evaluated.items():
            results[f"{name}/evaluate/{key}"] = np.asarray(value, dtype=np.float64)
    return results


def main(job, out_file):
    distributed = "TF_CONFIG" in os.environ
    strategy = distribute.make_strategy("multi-worker" if distributed else "none")
    index, count = distribute.worker_index(strategy)
    results = {"worker": np.asarray(index), "workers": np.asarray(count), "chief": np.asarray(distribute.is_chief(strategy))}
    if job == "train":
        results.update(train(strategy, sys.argv[3].split(",") if len(sys.argv) > 3 else list(MODELS)))
    elif job == "evaluate":
        results.update(evaluate(strategy))
    elif job == "no-fix":
        distribute.reducible_logs = lambda logs: logs
        try:
            train(strategy, ["VAE"])
            results["error"] = np.asarray("")
        except Exception:  # noqa: BLE001 - the test reads the error
            results["error"] = np.asarray(traceback.format_exc())
    else:
        raise ValueError(f"Unknown job {job!r}")
    np.savez(out_file, **results)



def evaluate(strategy):
    """The sharded attack ensemble (keras_avae.evaluation.sharded) on an untrained tiny VAE."""
    import warnings

    from keras_avae.evaluation import RobustnessEvaluator, sharded

    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((48,) + IMAGE_SHAPE, dtype=np.float32), rng.random((20,) + IMAGE_SHAPE, dtype=np.float32)
    labels = lambda n: {"a": rng.integers(0, 3, n)}  # noqa: E731
    with strategy.scope():  # a model trained on the workers: its variables mirrored across them
        model = MODELS["VAE"]()
        model(x_train[:1])
    evaluator = RobustnessEvaluator(
        (x_train, labels(48)), (x_test, labels(20)), epsilons=(0.0, 0.05, 0.3), attack_steps=3, restarts=2,
        attacks=("pgd", "square"), square_queries=5, check_size=8, batch_size=6, probe_kwargs={"epochs": 2},
    )
    probes = evaluator.train_probes(model)
    own = sharded.attack_shard(evaluator, model, probes, *distribute.worker_index(strategy), chunk_size=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = sharded.evaluate_with_probes(evaluator, model, probes, strategy=strategy, chunk_size=6)
    return {
        "attacked": np.asarray(sorted(i for i, _ in own["records"]["a"]["0.3"])),
        "accuracy": np.asarray([results["a"][e] for e in (0.0, 0.05, 0.3)]),
        "records": np.asarray(json.dumps({f"{e!r}": r for e, r in results.records["a"].items()}, sort_keys=True)),
        "checks": np.asarray(json.dumps([[c.name, c.passed] for c in results.checks])),
    }


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
