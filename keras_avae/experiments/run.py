"""One run of the evaluation protocol of Cemgil et al. (2020), Section 4, on any data set.

`run_one` builds a model by name (`registry`), trains it while timing its
steps (`train_model`), saves it, evaluates it (`evaluate_model`:
reconstruction MSE, linear probes, adversarial accuracy with
`AdversarialEvaluator`, FID) and writes its run directory (`run_directory`).
A run's settings are a `settings.RunConfig`; the data-set modules
(`color_mnist`, `celeba`) supply the data, the networks and the FID extractor.
"""

import json
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_avae import distribute, files
from keras_avae.evaluation import probes as probes_lib
from keras_avae.evaluation import reconstruction_errors, report, representation_sensitivity, robustness
from keras_avae.experiments import registry
from keras_avae.experiments.run_directory import log_evaluation, run_figures, write_run, _finite
from keras_avae.experiments.scale import steps_per_epoch
from keras_avae.experiments.settings import EVALUATION_SETTINGS
from keras_avae.experiments.step_timer import StepTimer
from keras_avae.models import AVAESelfSupervised

IGNORED_ON_RESUME = ("verbose", "out", "distribute", "cluster")
"""Settings that do not change what a run computes (how much it prints; where its folder is, which may
have been moved; on how many devices or workers it runs): a finished run is reused, and an interrupted
one resumed, whatever they were."""

BACKUP_FOLDER = "backup"
"""The folder of a run directory holding the training state after each epoch (`files.AtomicBackupAndRestore`),
from which `--resume` continues an interrupted run; deleted once the run's files are written."""

SETTINGS_RECORD = "config.json"
"""The file in a run's backup folder holding the settings the run began with (`record_settings`), which
a resumed run must share (`check_resumable`)."""

STEP_TIMES = "step_times.json"
"""The file in a run's backup folder recording each trained epoch's step times (`StepTimer`), so that a
resumed run reports the training of every process."""

EVAL_BATCH_SIZE = 256
"""Test images per `model.evaluate` batch."""


def train_model(
    model, x=None, *, epochs, batch_size, num_train=None, log_dir=None, callbacks=(), verbose=1, backup_dir=None,
    before_backup=(), step_times=None,
):
    """Fits `model`, timing its steps; logs to TensorBoard when `log_dir` is given.

    `AVAESelfSupervised` takes no data: it runs `epochs` epochs of
    `ceil(num_train / batch_size)` steps, as many steps as a model trained on
    `num_train` images.

    Args:
        model: a compiled keras_avae model.
        x: training images (array) or a batched `tf.data.Dataset`; None for `AVAESelfSupervised`.
        epochs: training epochs.
        batch_size: images per step (ignored for a dataset, which is batched).
        num_train: training set size (for `AVAESelfSupervised`'s steps per epoch).
        log_dir: TensorBoard folder, or None.
        callbacks: further callbacks, run after the backup of each epoch and before TensorBoard (so it
            sees their logs).
        verbose: `fit`'s verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
        backup_dir: if set, the training state (weights, optimizer, seed generators, epoch)
            is backed up there after every epoch (`files.AtomicBackupAndRestore`), and a backup
            found there is restored first, so an interrupted `fit` continues from its last
            completed epoch. The folder is kept when training completes: the caller deletes it
            once the trained model is saved (`run_one`), so a kill in between loses nothing.
            The step times of every epoch are recorded there too (`STEP_TIMES`), so the returned
            timings cover the epochs of every process; the terms only those run by this call.
        step_times: the file recording each epoch's step times (`StepTimer`'s record) instead of
            `backup_dir / STEP_TIMES`, for a caller that keeps them after the backup is deleted.
        before_backup: callbacks run before the backup of each epoch (e.g. a checkpoint that must
            exist for every epoch the backup records).

    Returns:
        Dict with `train_seconds` (wall clock of the epochs' steps, without the saves and
        evaluations at their ends), `seconds_per_step` (median step, `StepTimer`), `train_steps` and `train_terms`
        (the last epoch's logs).
    """
    if step_times is None and backup_dir is not None:
        step_times = Path(backup_dir) / STEP_TIMES
    timer = StepTimer(record=step_times)
    backup = [files.AtomicBackupAndRestore(backup_dir, delete_checkpoint=False)] if backup_dir is not None else []
    all_callbacks = [timer] + list(before_backup) + backup + list(callbacks)
    if log_dir is not None:
        all_callbacks.append(
            keras.callbacks.TensorBoard(log_dir=os.fspath(log_dir), write_graph=False, profile_batch=0)
        )
    if isinstance(model, AVAESelfSupervised):
        if num_train is None:
            raise ValueError("`num_train` sets AVAESelfSupervised's steps per epoch; it is required.")
        history = model.fit(
            epochs=epochs,
            steps_per_epoch=steps_per_epoch(num_train, batch_size),
            batch_size=batch_size,
            callbacks=all_callbacks,
            verbose=verbose,
        )
    elif isinstance(x, tf.data.Dataset):  # batched, and shuffled by its maker
        history = model.fit(x, epochs=epochs, shuffle=False, callbacks=all_callbacks, verbose=verbose)
    else:
        history = model.fit(x, epochs=epochs, batch_size=batch_size, callbacks=all_callbacks, verbose=verbose)
    terms = {
        name: float(values[-1])
        for name, values in history.history.items()
        if values and isinstance(values[-1], (int, float, np.number)) and math.isfinite(values[-1])
    }
    return {
        "train_seconds": timer.seconds,
        "seconds_per_step": timer.seconds_per_step,
        "train_steps": timer.steps,
        "train_terms": terms,
    }


def make_evaluator(train_data, test_data, *, attack_size=None, epochs_between=None, seed=0, **settings):
    """An `evaluation.AdversarialEvaluator` with probes fitted on `train_data`, attacking the first `attack_size` test images.

    Args:
        train_data, test_data: `(x, labels)` pairs.
        attack_size: test images attacked (default: all).
        epochs_between: if set, the Keras callback version that also evaluates
            every that many epochs during `fit` (`keras_avae.callbacks`).
        seed: seed of the probes and the attacks.
        **settings: the evaluator's arguments (`epsilons`, `attack_steps`,
            `restarts`, `losses`, `attacks`, `square_queries`, `checks`,
            `check_size`, `batch_size`); None keeps its default.
    """
    x_test, labels = test_data
    count = len(x_test) if attack_size is None else min(int(attack_size), len(x_test))
    attacked = (x_test[:count], {task: task_labels[:count] for task, task_labels in labels.items()})
    settings = {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items() if value is not None}
    if epochs_between:
        from keras_avae.callbacks import RobustnessEvaluator as Callback  # the training-time schedule

        return Callback(train_data, attacked, every_n_epochs=epochs_between, verbose=0, seed=seed, **settings)
    return robustness.AdversarialEvaluator(train_data, attacked, seed=seed, **settings)


def evaluate_model(model, test_data, evaluator, *, robust=True, fid_scorer=None):
    """Protocol steps ii and iii and the decoder's quality, for one trained model.

    - test terms of the model's objective (`model.evaluate`);
    - reconstruction error of g(f^mu(x)): `keras_avae.evaluation.reconstruction_mse`
      on Table 1's scale (per-pixel squared error in 0..255 units) and as the
      per-image sum of squared errors in [0, 1] units;
    - linear probes on f^mu, fitted by `evaluator` on its training data, and
      their clean accuracy on all of `test_data`;
    - adversarial accuracy of those probes (`evaluator.evaluate_with_probes`)
      on the evaluator's attacked test images, with its checks and
      per-example records (`report.to_document`), and how far an attack of each
      nonzero radius can move f^mu against the class centroids' distances
      (`keras_avae.evaluation.representation_sensitivity`), when `robust`;
    - FID of the model's samples (`fid_scorer`), when given.

    Returns:
        Dict with `test_terms`, `test_reconstruction_mse`,
        `test_reconstruction_sse`, `test_reconstruction_nll` (the per-image
        Gaussian negative log-likelihood, the other reading of the paper's
        column; None for a Bernoulli model), `probe_accuracy` (task -> accuracy),
        `accuracy` (task -> radius string -> robust accuracy, or None),
        `robustness` (`report.to_document` of the results: checks, flagged,
        problems, broken_by, records; or None), `sensitivity` (radius string
        -> `representation_sensitivity` result, or None), `fid` (or None),
        `evaluation_seconds`.
    """
    x_test, _ = test_data
    start = time.perf_counter()
    test_terms = model.evaluate(x_test, batch_size=EVAL_BATCH_SIZE, return_dict=True, verbose=0)
    scales = ("paper", "sum", "nll") if model.likelihood == "gaussian" else ("paper", "sum")
    errors = reconstruction_errors(model, x_test, scales)
    probes = evaluator.train_probes(model)
    metrics = {
        "test_terms": {name: float(value) for name, value in test_terms.items()},
        "test_reconstruction_mse": errors["paper"],
        "test_reconstruction_sse": errors["sum"],
        "test_reconstruction_nll": errors.get("nll"),
        "probe_accuracy": probes_lib.evaluate_probes(model, probes, test_data),
        "accuracy": None,
        "robustness": None,
        "sensitivity": None,
        "fid": None,
    }
    if robust:
        results = attack(evaluator, model, probes)
        metrics["accuracy"] = report.accuracy_to_json(results)
        metrics["robustness"] = report.to_document(results)
        x_attacked, attacked_labels = evaluator.test_data
        metrics["sensitivity"] = {
            f"{epsilon:g}": representation_sensitivity(
                model, x_attacked, epsilon, labels=attacked_labels, steps=evaluator.attack_steps,
                seed=evaluator.seed,
            )
            for epsilon in evaluator.epsilons
            if epsilon > 0
        }
    if fid_scorer is not None:
        metrics["fid"] = fid_scorer(model)
    metrics["evaluation_seconds"] = time.perf_counter() - start
    return metrics


def attack(evaluator, encoder, probes):
    """`evaluator.evaluate_with_probes`, or on several workers its sharded form (each attacks its
    share of the test images: `keras_avae.evaluation.sharded`)."""
    if distribute.is_multi_worker():
        from keras_avae.evaluation import sharded

        return sharded.evaluate_with_probes(evaluator, encoder, probes)
    return evaluator.evaluate_with_probes(encoder, probes)


def actual_sizes(config, data):
    """A copy of the `RunConfig` `config` whose `train_size`, `test_size` and `attack_size` are the numbers
    of images `data` holds (a request larger than the data set is cut to it), so config.json records what ran."""
    num_test = int(len(data["test_data"][0]))
    changes = {}
    if config.train_size is not None:
        changes["train_size"] = int(data["num_train"])
    if config.test_size is not None:
        changes["test_size"] = num_test
    if config.attack_size is not None:
        changes["attack_size"] = min(config.attack_size, num_test)
    return config.replace(**changes)


def run_one(
    config, data, networks, *, fid_scorer=None, pretrained=None, label=None, reference=None, backup_dir=None
):
    """Builds, trains, saves and evaluates one model; writes its run directory.

    Args:
        config: the run's settings, a `settings.RunConfig` with its budget
            filled (`Budget.filled`); `config.out` is the run directory.
        data: dict with `train_inputs` (array or batched `tf.data.Dataset`),
            `probe_data` and `test_data` (`(x, labels)` pairs), `num_train`
            and `source` (where the data came from, for config.json).
        networks: `networks(config, input_shape) -> (encoder, decoder)`.
        fid_scorer: a `FIDScorer`, or None to skip FID.
        pretrained: the trained model `avae_ss` starts from.
        label: the model's name in tables (default from `DISPLAY_NAMES`).
        reference: metrics of the VAE the time factor is relative to, or None.
        backup_dir: back up the training state there after every epoch and resume
            from a backup found there (`train_model`). The settings are recorded there
            first (`record_settings`; a backup of other settings is refused), and the
            folder is deleted only after model.keras, config.json and metrics.json are
            written: a run killed at any instant can be resumed.

    Returns:
        `(model, metrics)`; `metrics` is also written to metrics.json. Its
        `config` records the sizes that ran (`actual_sizes`).
    """
    config = actual_sizes(config, data)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    name = registry.check_model_name(config.model)
    label = label or registry.DISPLAY_NAMES[name]
    keras.utils.set_random_seed(config.seed)
    x_test, _ = data["test_data"]
    with distribute.strategy_of(config).scope():  # the model's variables on every replica
        model = registry.model_from_config(config, networks, tuple(x_test.shape[1:]), pretrained)
        registry.compile_model(model, config.learning_rate, config.jit_compile)
    if backup_dir is not None:
        record_settings(backup_dir, config)
    evaluator = make_evaluator(
        data["probe_data"],
        data["test_data"],
        epochs_between=config.robustness_every_n_epochs,
        seed=config.seed,
        **config.evaluator_settings(),
    )
    callbacks = [evaluator] if config.robustness_every_n_epochs else []
    training = train_model(
        model,
        None if name == "avae_ss" else data["train_inputs"],
        epochs=config.epochs,
        batch_size=config.batch_size,
        num_train=data["num_train"],
        log_dir=out / "logs",
        callbacks=callbacks,
        verbose=config.verbose,
        backup_dir=backup_dir,
    )
    files.save_model(model, out / "model.keras")
    if config.verbose:
        attacks = (
            f", attacks ({', '.join(evaluator.attacks)}) on {len(evaluator.test_data[0])} test images "
            f"({config.attack_steps} steps x {config.restarts} PGD restart(s) x {len(evaluator.losses)} "
            f"losses x {len(evaluator.tasks)} tasks)"
            if config.robustness else ""
        )
        print(f"Evaluating {label}: MSE, linear probes{attacks}" + (", FID" if fid_scorer else "") + " ...", flush=True)
    evaluation = evaluate_model(model, data["test_data"], evaluator, robust=config.robustness, fid_scorer=fid_scorer)
    if config.verbose:
        print(f"Evaluated {label} in {evaluation['evaluation_seconds']:.1f} s", flush=True)
    metrics = {
        "model": name,
        "label": label,
        "arch": config.arch,
        "config": config.record(),
        "data_path": data.get("source"),
        "out": os.fspath(out),
        "num_train": int(data["num_train"]),
        "num_test": int(len(x_test)),
        "num_attacked": int(len(evaluator.test_data[0])),
        "choices": registry.model_choices(model),
        **training,
        "time_factor": time_factor(training, reference),
        **evaluation,
        "fid_extractor": fid_scorer.get_config() if fid_scorer is not None else None,
    }
    if config.robustness_every_n_epochs:
        metrics["robustness_history"] = [
            {"epoch": entry["epoch"] + 1, "accuracy": report.accuracy_to_json(entry["results"]), "seconds": entry["seconds"]}
            for entry in evaluator.history
        ]
    if config.figures:
        references = [(reference_label(reference), pretrained)] if name == "avae_ss" and pretrained is not None else []
        metrics["figures"] = run_figures(out / "figures", model, label, x_test, metrics["accuracy"], references)
    write_run(out, config.record(), metrics, data.get("source"))
    log_evaluation(out / "logs", metrics, step=config.epochs)
    if backup_dir is not None:  # only now: the run is complete on disk
        shutil.rmtree(backup_dir, ignore_errors=True)
    return model, metrics


def reference_label(reference):
    return reference["label"] if reference else "pretrained"


def time_factor(training, reference):
    """Seconds per training step relative to `reference`'s (Tables 1-3's "Time"), or None."""
    if not reference or not reference.get("seconds_per_step") or not training.get("seconds_per_step"):
        return None
    return training["seconds_per_step"] / reference["seconds_per_step"]


def load_finished(config):
    """`(model, metrics, stale)` of the finished run in `config.out` if it ran with the same settings, or None.

    `stale`: the run matches in everything but `EVALUATION_SETTINGS` (e.g. it was evaluated before
    the attack ensemble), so its model is reused and its evaluation is run again. A setting that a
    finished run's config.json lacks (written by an older version) counts as its default.
    """
    out = Path(distribute.chief_path(config.out))  # a finished run is read from the chief's folder
    if not (out / "metrics.json").is_file() or not (out / "model.keras").is_file():
        return None
    metrics = json.loads((out / "metrics.json").read_text())
    differ = set(changed_settings(metrics.get("config", {}), config))
    if differ - set(EVALUATION_SETTINGS):
        return None
    return files.load_model(out / "model.keras"), metrics, bool(differ)


def _as_json(value):
    return json.loads(json.dumps(_finite(value)))


def changed_settings(stored, config):
    """The settings of `config` that differ from `stored`, a run's recorded settings: name -> (recorded, now).

    Both sides are compared as config.json holds them (tuples as lists). A setting that `stored`
    lacks (recorded by an older version) counts as its default; `IGNORED_ON_RESUME` are left out.

    Example:
        changed_settings({"rho": 0.975, ...}, config.replace(rho=0.5))  # {"rho": (0.975, 0.5)}
    """
    wanted = _as_json(config.record())
    defaults = _as_json(type(config)().record())
    changed = {}
    for key, value in wanted.items():
        if key in IGNORED_ON_RESUME:
            continue
        recorded = stored.get(key, defaults.get(key))
        if recorded != value:
            changed[key] = (recorded, value)
    return changed


def check_resumable(backup_dir, config):
    """Raises unless the interrupted run backed up in `backup_dir` began with `config`'s settings.

    A backup without a settings record (made by an older version), or no backup, passes.

    Raises:
        ValueError: naming each changed setting with the value the run began with and the new one.
    """
    path = Path(backup_dir) / SETTINGS_RECORD
    if path.is_file():
        refuse_changed_settings(json.loads(path.read_text()), config, Path(backup_dir).parent)


def refuse_changed_settings(stored, config, folder):
    """Raises unless `config` has the settings `stored` recorded when the run in `folder` began.

    Raises:
        ValueError: naming each changed setting with the value the run began with and the new one.
    """
    changed = changed_settings(stored, config)
    if changed:
        listing = ", ".join(f"{key} {json.dumps(old)} -> {json.dumps(new)}" for key, (old, new) in sorted(changed.items()))
        raise ValueError(
            f"The interrupted run in {folder} began with other settings; resuming would mix "
            f"them. Changed: {listing}. Resume with the settings it began with, or pass --overwrite to start again."
        )


def record_settings(backup_dir, config):
    """Records `config`'s settings in `backup_dir` as the run starts; on a resume, checks them (`check_resumable`)."""
    check_resumable(backup_dir, config)
    path = Path(backup_dir) / SETTINGS_RECORD
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_json(path, _as_json(config.record()))


def discard_backup(folder):
    """Deletes the backup of an interrupted run in `folder` (`--overwrite`: it starts again); only the
    chief deletes, since every worker restores the chief's backup."""
    if distribute.is_chief():
        shutil.rmtree(Path(folder) / BACKUP_FOLDER, ignore_errors=True)


def reevaluate(model, metrics, config, data, fid_scorer=None):
    """A finished run's `metrics` with its evaluation run again under `config`'s settings; rewrites the run."""
    evaluator = make_evaluator(
        data["probe_data"], data["test_data"], seed=config.seed, **config.evaluator_settings()
    )
    if not model.compiled:
        model.compile()
    metrics = {
        **metrics,
        **evaluate_model(model, data["test_data"], evaluator, robust=config.robustness, fid_scorer=fid_scorer),
        "config": config.record(),
        "num_attacked": int(len(evaluator.test_data[0])),
        "previous_accuracy": metrics.get("accuracy"),
    }
    write_run(config.out, config.record(), metrics, data.get("source"))
    return metrics
