"""The attack ensemble on many workers: the attacked test images split into shards, one result.

Every test example is attacked on its own, so `RobustnessEvaluator`'s step iii splits well: the
attacked images are cut into chunks of `chunk_size` consecutive examples (default: the
evaluator's `batch_size`), worker w of n attacks chunks w, w + n, w + 2n, ..., and the workers
exchange their per-example records with one `tf.distribute` all-gather. The merged records, in
the order of the test images, give the accuracies; the checks then run once on the merged result
(on every worker alike, so that each holds the same result; only the chief writes it).

The random starts do not depend on the split: chunk c is attacked with seed
`evaluator.seed + CHUNK_SEED_STRIDE * c`, whichever worker attacks it, so one process (`count=1`)
and any number of workers give the same records. They differ from
`RobustnessEvaluator.evaluate_with_probes`' own, which draws its random starts for all the
examples at once: the same protocol on other random draws.

Example:
    probes = evaluator.train_probes(model)
    results = sharded.evaluate_with_probes(evaluator, model, probes)   # under --distribute multi-worker
"""

import collections
import copy
import json
import warnings

import numpy as np
import tensorflow as tf

from keras_avae import distribute
from keras_avae.evaluation import checks as checks_lib
from keras_avae.evaluation import encoders, engine
from keras_avae.evaluation import probes as probes_lib
from keras_avae.evaluation import robustness

CHUNK_SEED_STRIDE = 100003
"""Seed distance of two chunks: more than the runs an ensemble draws seeds for (`engine.run_ensemble`
uses `seed + 1 ...`), so the chunks' random starts never share a seed."""


def chunks(num_examples, chunk_size):
    """The chunks of `range(num_examples)`: a list of `(start, stop)`."""
    return [(start, min(start + chunk_size, num_examples)) for start in range(0, num_examples, chunk_size)]


def attack_shard(evaluator, encoder, probes, index=0, count=1, chunk_size=None):
    """Step iii on the chunks of worker `index` of `count`, without the checks.

    Returns:
        A JSON-friendly dict: `records[task][epsilon]` as `[example index, record]` pairs of the
        examples attacked here, `violations[task]` (sentences), `seconds[task][attack]`.
    """
    encoder = local_encoder(encoder)
    x, labels = evaluator.test_data
    chunk_size = int(chunk_size or evaluator.batch_size)
    mine = list(enumerate(chunks(len(x), chunk_size)))[index::count]
    shard = {"worker": index, "records": {}, "violations": {}, "seconds": {}}
    for task, probe in probes.items():
        classifier = evaluator.classifier(encoder, probe, task)
        records = {f"{epsilon!r}": [] for epsilon in radii(evaluator)}
        violations, seconds = [], collections.Counter()
        for number, (start, stop) in mine:
            chunk_x, chunk_y = x[start:stop], labels[task][start:stop]
            clean_wrong, _ = engine.judge(tf.constant(classifier.predict(chunk_x)), tf.constant(chunk_y))
            clean = ~clean_wrong.numpy()
            carried = [None if ok else {"attack": "clean"} for ok in clean]
            records["0.0"] += [[start + i, record] for i, record in enumerate(carried)]
            for epsilon in (e for e in evaluator.epsilons if e > 0):
                still_robust = np.array([record is None for record in carried])
                outcome = evaluator.ensemble(
                    classifier, chunk_x, chunk_y, epsilon, clean=clean, only=still_robust,
                    seed=evaluator.seed + CHUNK_SEED_STRIDE * number,
                )
                carried = [
                    old if old is not None else None if new is None else {**new, "epsilon": epsilon}
                    for old, new in zip(carried, outcome.records)
                ]
                records[f"{epsilon!r}"] += [[start + i, record] for i, record in enumerate(carried)]
                violations.extend(outcome.violations)
                seconds.update(outcome.seconds)
        shard["records"][task] = records
        shard["violations"][task] = violations
        shard["seconds"][task] = dict(seconds)
    return _plain(shard)


def radii(evaluator):
    """0 (the clean verdicts, always recorded) and the evaluator's nonzero radii, increasing."""
    return [0.0] + [epsilon for epsilon in evaluator.epsilons if epsilon > 0]


def _plain(document):
    """`document` through JSON (NumPy numbers become Python's), as every worker receives it."""
    return json.loads(json.dumps(document, default=lambda value: value.item() if hasattr(value, "item") else str(value)))


def merge(evaluator, shards, encoder, probes):
    """The `RobustnessResults` of the shards of all workers, with the checks run once on the merged records."""
    encoder = local_encoder(encoder)
    x, labels = evaluator.test_data
    results = robustness.RobustnessResults({})
    for task, probe in probes.items():
        records = {}
        for epsilon in radii(evaluator):
            merged = [None] * len(x)
            seen = np.zeros(len(x), bool)
            for shard in shards:
                for example, record in shard["records"][task][f"{epsilon!r}"]:
                    merged[example], seen[example] = record, True
            if not seen.all():
                raise ValueError(f"The shards miss {int((~seen).sum())} examples of task {task!r} at epsilon={epsilon:g}.")
            records[epsilon] = merged
        violations = [sentence for shard in shards for sentence in shard["violations"][task]]
        seconds = collections.Counter()
        for shard in shards:
            seconds.update(shard["seconds"][task])
        task_checks = []
        if evaluator.checks:
            task_checks = _checks(evaluator, evaluator.classifier(encoder, probe, task), x, labels[task], records, violations, task)
        results[task] = {epsilon: float(np.mean([r is None for r in by_example])) for epsilon, by_example in records.items()}
        results.records[task] = records
        results.broken_by[task] = {
            epsilon: dict(collections.Counter(r["attack"] for r in by_example if r is not None))
            for epsilon, by_example in records.items()
        }
        results.seconds[task] = dict(seconds)
        results.checks.extend(task_checks)
    return results


def _checks(evaluator, classifier, x, y, records, violations, task):
    """`RobustnessEvaluator`'s checks on merged records; examples the `more_effort` check breaks at a
    radius are marked broken there and at every larger radius, as the evaluation itself does."""
    clean = np.array([record is None for record in records[0.0]])
    found = [evaluator.check_monotone(classifier, x, y, clean, task)]
    radii = [epsilon for epsilon in evaluator.epsilons if epsilon > 0]
    for position, epsilon in enumerate(radii):
        robust = np.array([record is None for record in records[epsilon]])
        outcome = engine.Outcome(robust, list(records[epsilon]), None)
        found.extend(evaluator.check_effort_and_black_box(classifier, x, y, epsilon, outcome, task))
        for later in radii[position:]:
            records[later] = [
                record if record is not None or outcome.records[i] is None else outcome.records[i]
                for i, record in enumerate(records[later])
            ]
    found.append(checks_lib.in_ball(violations, task))
    found.append(evaluator.check_huge_epsilon(classifier, x, y, task))
    return found


class LocalEncoder:
    """`encoder` attacked on this worker's devices alone.

    The attack engine runs PGD under the encoder's `distribute_strategy`; under a
    multi-worker strategy that would split each chunk's batches across the workers again (and
    wait for them), while here each worker attacks chunks of its own.
    """

    def __init__(self, encoder):
        self.encoder = encoder
        self.data_range = encoder.data_range
        strategy = encoder.distribute_strategy
        self.distribute_strategy = _DEFAULT if distribute.is_multi_worker(strategy) else strategy

    def encode_mean(self, x):
        return self.encoder.encode_mean(x)


_DEFAULT = tf.distribute.get_strategy()  # at import, outside any scope: the default strategy


def local_encoder(encoder):
    """`encoder` as a `LocalEncoder` (an encoder that is one already is returned as it is)."""
    return encoder if isinstance(encoder, LocalEncoder) else LocalEncoder(encoders.as_encoder(encoder))


def all_gather(document, strategy=None):
    """The JSON-friendly `document` of every worker, in worker order (one all-gather of its bytes)."""
    strategy = strategy or distribute.current_strategy()
    index, count = distribute.worker_index(strategy)
    if count == 1:
        return [document]
    payload = np.frombuffer(json.dumps({"worker": index, "document": _plain(document)}).encode("utf-8"), np.uint8)
    lengths = strategy.gather(tf.constant([len(payload)], tf.int64), axis=0).numpy()
    longest = int(lengths.max())
    padded = np.zeros(longest, np.int32)  # the collectives take no uint8
    padded[: len(payload)] = payload
    gathered = strategy.gather(tf.constant(padded), axis=0).numpy().reshape(len(lengths), longest)
    by_worker = {}
    for length, row in zip(lengths, gathered):  # a worker with several local replicas appears once per replica
        item = json.loads(row[: int(length)].astype(np.uint8).tobytes().decode("utf-8"))
        by_worker[item["worker"]] = item["document"]
    return [by_worker[worker] for worker in sorted(by_worker)]


def evaluate_with_probes(evaluator, encoder, probes, data_range=None, strategy=None, chunk_size=None):
    """`evaluator.evaluate_with_probes` with the attacked images split across the workers of
    `strategy` (default: `distribute.current_strategy()`); every worker returns the merged result.

    Args:
        evaluator: a `RobustnessEvaluator`.
        encoder, probes, data_range: as for `RobustnessEvaluator.evaluate_with_probes`.
        strategy: a `tf.distribute` strategy; one worker attacks everything.
        chunk_size: examples per chunk (default `evaluator.batch_size`); the result depends on it
            and the seed, not on the number of workers.

    Returns:
        `RobustnessResults`.
    """
    encoder = local_encoder(encoders.as_encoder(encoder, data_range))
    if not isinstance(probes, dict) or not probes:
        raise ValueError(f"`probes` must be a non-empty dict task name -> probe. Received: {probes!r:.80}")
    probes_lib.check_tasks_present(probes, evaluator.test_data[1], "test_data")
    strategy = strategy or distribute.current_strategy()
    index, count = distribute.worker_index(strategy)
    shard = attack_shard(evaluator, encoder, probes, index, count, chunk_size)
    shards = all_gather(shard, strategy)
    results = merge(copy.copy(evaluator), shards, encoder, probes)
    for problem in results.problems:
        warnings.warn(problem, robustness.RobustnessSanityWarning, stacklevel=2)
    return results
