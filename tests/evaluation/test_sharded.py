"""keras_avae.evaluation.sharded: the attacked images split into shards give one result.

Two workers are played here in one process (each attacks its own chunks, the merge is the
same); tests/test_distribute.py runs it on two real workers."""

import warnings

import numpy as np
import pytest

import keras_avae
from keras_avae.evaluation import RobustnessEvaluator, sharded

NUM_TEST = 20
CHUNK = 6


@pytest.fixture(scope="module")
def setting():
    from conftest import tiny_networks

    rng = np.random.default_rng(0)
    model = keras_avae.VAE(*tiny_networks(), seed=0)
    x_train = rng.random((48, 6, 6, 1), dtype=np.float32)
    x_test = rng.random((NUM_TEST, 6, 6, 1), dtype=np.float32)
    model(x_train[:1])
    labels = lambda n: {"a": rng.integers(0, 3, n), "b": rng.integers(0, 2, n)}  # noqa: E731
    evaluator = RobustnessEvaluator(
        (x_train, labels(48)), (x_test, labels(NUM_TEST)), epsilons=(0.0, 0.05, 0.3), attack_steps=3, restarts=2,
        attacks=("pgd", "square"), square_queries=5, check_size=8, batch_size=CHUNK, probe_kwargs={"epochs": 2},
    )
    return model, evaluator, evaluator.train_probes(model)


@pytest.fixture(scope="module")
def one_process(setting):
    return _results(setting, 1)


def _results(setting, count):
    model, evaluator, probes = setting
    shards = [sharded.attack_shard(evaluator, model, probes, index, count, CHUNK) for index in range(count)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return shards, sharded.merge(evaluator, shards, model, probes)


def test_chunks_cover_the_examples_once():
    assert sharded.chunks(20, 6) == [(0, 6), (6, 12), (12, 18), (18, 20)]


def test_shards_merge_into_the_one_process_result(setting, one_process):
    _, one = one_process
    shards, many = _results(setting, 3)  # 4 chunks: worker 0 attacks chunks 0 and 3
    attacked = sorted(i for shard in shards for i, _ in shard["records"]["a"]["0.3"])
    assert attacked == list(range(NUM_TEST)), "each example attacked by exactly one worker"
    assert all(len(shard["records"]["a"]["0.3"]) < NUM_TEST for shard in shards)
    assert dict(many) == dict(one)
    assert many.records == one.records
    assert many.broken_by == one.broken_by
    assert [(c.name, c.passed, c.task) for c in many.checks] == [(c.name, c.passed, c.task) for c in one.checks]
    assert {c.task for c in one.checks} == {"a", "b"} and len(one.checks) == len(many.checks)
    assert one["a"][0.3] <= one["a"][0.05] <= one["a"][0.0]
    broken = sum(r is not None for r in one.records["a"][0.3]) + sum(r is not None for r in one.records["b"][0.3])
    assert broken > 0


def test_one_worker_through_the_strategy_gives_the_merged_result(setting, one_process):
    model, evaluator, probes = setting
    _, one = one_process
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = sharded.evaluate_with_probes(evaluator, model, probes, chunk_size=CHUNK)
    assert results.records == one.records and dict(results) == dict(one)
