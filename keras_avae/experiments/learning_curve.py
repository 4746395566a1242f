"""Figure 5 (middle) of Cemgil et al. (2020): robust accuracy of one model against its training steps.

`reproduce` trains one model on ColorMNIST to its budget (`--scale`, `--epochs`),
saves a checkpoint after each of `checkpoint_epochs` and after the last epoch,
and evaluates each checkpoint read back from its file (so the model in training
is never touched): clean and adversarial accuracy of linear probes on f^mu
under the curve's lighter attack (`curve_attacks`, `curve_attack_steps`,
`curve_restarts`), reconstruction MSE and the shift ratio
(`keras_avae.evaluation.representation_sensitivity`). The last checkpoint is
evaluated again with the run's full evaluation (`attacks`, `attack_steps`,
`restarts`: the paper's protocol at `--scale paper` or `medium`).

Evaluation runs alongside training, at the end of each checkpoint's epoch and
after that epoch's backup, so an interruption loses at most the epoch in
progress. `--resume` first evaluates the checkpoints an interruption left
unevaluated, then continues training from the backup, then evaluates the rest;
it refuses settings that differ from the run's config.json.

Outputs, under `out`:

    config.json                 the settings (written when the run starts) and the versions
    checkpoints/epoch_NNNN.keras    the model after each checkpoint epoch
    points/epoch_NNNN.json      one evaluation per checkpoint (curve attack); points/final.json (full)
    step_times.json             each trained epoch's steps and seconds (`StepTimer`, across resumed processes)
    learning_curve.json / .md   the curve, the final evaluation and the paper's Table 1 row
    figures/                    learning_curve_<task>.png and learning_curve_quality.png
    logs/                       TensorBoard: training terms per epoch, each point at its step

Example:
    document = reproduce({"model": "avae", "arch": "conv", "scale": "paper", "attack_size": 1000})
"""

import json
import math
import shutil
from pathlib import Path

import keras

from keras_avae import distribute, figures, files
from keras_avae.experiments import color_mnist, registry, run, run_directory, scale, table1
from keras_avae.experiments.settings import LearningCurveSettings

CHECKPOINTS = "checkpoints"
POINTS = "points"
STEP_TIMES = run.STEP_TIMES
LEGACY_TRAIN_SECONDS = "train_seconds.json"
"""Each epoch's wall-clock seconds, keyed by epochs done, as curves of earlier versions recorded them
(before `STEP_TIMES`); still read, so such a curve keeps its training time."""
STEM = "learning_curve"
FINAL = "final"
EPOCH_PREFIX = "epoch_"
"""The names in a learning curve's folder."""

TREND_TOLERANCE = 2.0
"""Percentage points: a change of robust accuracy between the last two checkpoints smaller than this
counts as saturated, a larger one as rising or falling."""

PAPER_SCALE = scale.TRAIN_SCALES["paper"]
PAPER_STEPS = PAPER_SCALE.epochs_for("conv") * scale.steps_per_epoch(PAPER_SCALE.train_size, PAPER_SCALE.batch_size)
"""The training steps of our `paper` scale (100 epochs of 60,000 images in batches of 64), where the
figures mark the paper's Table 1 values (the paper states neither its epochs nor its batch size)."""

POINT_KEYS = (
    "accuracy", "probe_accuracy", "test_reconstruction_mse", "test_reconstruction_nll", "test_terms",
    "evaluation_seconds",
)
"""The numbers of `run.evaluate_model` that a point keeps (the per-example records stay out)."""


def checkpoint_path(out, epoch):
    return Path(out) / CHECKPOINTS / f"{point_name(epoch)}.keras"


def point_path(out, name):
    return Path(out) / POINTS / f"{name}.json"


def point_name(epoch):
    return f"{EPOCH_PREFIX}{epoch:04d}"


def reproduce(overrides=None):
    """Trains one model, evaluates its checkpoints and writes the learning curve.

    Args:
        overrides: a dict of settings (fields of `settings.LearningCurveSettings`; None values keep
            the defaults, and the budget's the scale's values), or a `LearningCurveSettings`.

    Returns:
        The document written to learning_curve.json: `label`, `model`, `arch`, `config`,
        `steps_per_epoch`, `points` (one per checkpoint: `epoch`, `steps`, `attack`, `accuracy`,
        `probe_accuracy`, MSE, `shift_ratio`, ...), `final` (the last checkpoint under the full
        evaluation, with its checks), `paper` (Table 1's row, or None), `paper_steps`, `trend`,
        `train_seconds`, `figures` and `markdown`.
    """
    config = LearningCurveSettings.from_dict(overrides).resolved()
    with distribute.command(config) as config, files.locked(config.out):  # worker 0 writes config.out
        return _reproduce(config, Path(config.out))


def _shared(path):
    """The chief's copy of `path`: every worker decides what is done from the chief's folder, so all
    train and evaluate the same epochs (the chief's `path` itself on the chief or one process)."""
    return Path(distribute.chief_path(path))


def _reproduce(config, out):
    _prepare_folder(config, out)
    data_path = color_mnist.resolve_data_path(config.data)
    train_data, test_data = color_mnist.load_data(data_path, config.train_size, config.test_size)
    data = color_mnist.experiment_data(train_data, test_data, data_path)
    config = run.actual_sizes(config, data)
    per_epoch = scale.steps_per_epoch(data["num_train"], config.batch_size)
    epochs = config.curve_epochs()
    label = label_of(config)
    for epoch in epochs:  # checkpoints an interruption left unevaluated
        if _shared(checkpoint_path(out, epoch)).is_file():
            evaluate_point(config, data, out, epoch, per_epoch)
    if not _shared(checkpoint_path(out, config.epochs)).is_file():
        _train(config, data, out, epochs, per_epoch)
    evaluate_point(config, data, out, config.epochs, per_epoch, final=True)
    shutil.rmtree(out / run.BACKUP_FOLDER, ignore_errors=True)  # the last checkpoint holds the trained model
    document = curve_document(config, out, epochs, per_epoch, label)
    document["markdown"] = markdown(document)
    if config.figures:
        document["figures"] = draw(document, out / "figures")
    run_directory.write_json(out / f"{STEM}.json", document)
    files.write_text(out / f"{STEM}.md", document["markdown"])
    print(document["markdown"])
    return document


def label_of(config):
    """The model's name in Table 1 (`SE_0.1` for a smooth encoder trained at radius 0.1)."""
    name = registry.DISPLAY_NAMES[config.model]
    if config.model in ("se", "seavae"):
        name = f"SE_{config.se_epsilon:g}" + ("-AVAE" if config.model == "seavae" else "")
    return name


def _prepare_folder(config, out):
    """Refuses an existing curve unless `resume` (with the same settings) or `overwrite`; writes config.json."""
    stored = _shared(out / "config.json")
    if config.overwrite:
        for name in (CHECKPOINTS, POINTS, run.BACKUP_FOLDER):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in (STEP_TIMES, LEGACY_TRAIN_SECONDS, f"{STEM}.json", f"{STEM}.md", "config.json"):
            (out / name).unlink(missing_ok=True)
    elif stored.is_file():
        if not config.resume:
            raise FileExistsError(
                f"{out} already holds a learning curve (config.json); pass --resume to continue it or --overwrite "
                "to start again."
            )
        run.refuse_changed_settings(json.loads(stored.read_text())["settings"], config, out)
        return
    run_directory.write_json(out / "config.json", {"settings": config.record(), "environment": run_directory.environment()})


class _EpochCheckpoints(keras.callbacks.Callback):
    """Saves the model to `checkpoints/` after each epoch of `epochs`.

    Runs before the backup of the same epoch, so a checkpoint epoch that the backup records is
    always saved (an interruption between the two trains that epoch again and saves it again).
    """

    def __init__(self, out, epochs):
        super().__init__()
        self.out = Path(out)
        self.epochs = set(epochs)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done in self.epochs:
            path = checkpoint_path(self.out, done)
            path.parent.mkdir(parents=True, exist_ok=True)
            files.save_model(self.model, path)


class _EvaluateCheckpoints(keras.callbacks.Callback):
    """Evaluates the checkpoint of each epoch of `epochs` once the epoch is backed up."""

    def __init__(self, evaluate, epochs):
        super().__init__()
        self.evaluate = evaluate
        self.epochs = set(epochs)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            self.evaluate(epoch + 1)


def _train(config, data, out, epochs, per_epoch):
    keras.utils.set_random_seed(config.seed)
    with distribute.strategy_of(config).scope():  # the model's variables on every replica
        model = registry.model_from_config(config, color_mnist.networks, tuple(data["test_data"][0].shape[1:]))
        registry.compile_model(model, config.learning_rate, config.jit_compile)
    if config.verbose:
        print(
            f"Training {label_of(config)} / {config.arch}: {config.epochs} epochs of {per_epoch} steps; "
            f"checkpoints after epochs {', '.join(map(str, epochs))}", flush=True,
        )
    run.train_model(
        model,
        data["train_inputs"],
        epochs=config.epochs,
        batch_size=config.batch_size,
        log_dir=out / "logs",
        before_backup=[_EpochCheckpoints(out, epochs)],
        callbacks=[_EvaluateCheckpoints(lambda epoch: evaluate_point(config, data, out, epoch, per_epoch), epochs)],
        verbose=config.verbose,
        backup_dir=out / run.BACKUP_FOLDER,
        step_times=out / STEP_TIMES,  # kept with the curve: the backup is deleted once it is trained
    )


def evaluate_point(config, data, out, epoch, per_epoch, final=False):
    """Evaluates the checkpoint of `epoch` (the curve's attack, or the full evaluation if `final`) and
    writes its point, unless it is written already. Returns the point."""
    path = point_path(out, FINAL if final else point_name(epoch))
    done = _read_json(_shared(path))
    if done is not None:
        return done
    settings = config.evaluator_settings() if final else config.curve_evaluator_settings()
    checkpoint = checkpoint_path(out, epoch)  # this worker's own, else (resumed) the chief's
    model = files.load_model(checkpoint if checkpoint.is_file() else _shared(checkpoint))
    evaluator = run.make_evaluator(data["probe_data"], data["test_data"], seed=config.seed, **settings)
    if config.verbose:
        print(
            f"\nEvaluating the checkpoint of epoch {epoch} ({epoch * per_epoch} steps): "
            f"{', '.join(evaluator.attacks)}, {settings['attack_steps']} steps x {settings['restarts']} starts",
            flush=True,
        )
    metrics = run.evaluate_model(model, data["test_data"], evaluator)
    point = {
        "epoch": epoch,
        "steps": epoch * per_epoch,
        "attack": {key: settings[key] for key in ("attacks", "attack_steps", "restarts", "losses")},
        "num_attacked": int(len(evaluator.test_data[0])),
        **{key: metrics[key] for key in POINT_KEYS},
        "shift_ratio": {radius: value.get("shift_ratio") for radius, value in (metrics["sensitivity"] or {}).items()},
        "checks": metrics["robustness"]["checks"],
        "problems": metrics["robustness"]["problems"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    run_directory.write_json(path, point)
    run_directory.log_evaluation(out / "logs" / (FINAL if final else "curve"), metrics, step=point["steps"])
    return point


def _read_json(path):
    return json.loads(path.read_text()) if path.is_file() else None


def curve_document(config, out, epochs, per_epoch, label):
    """The learning curve from the points on disk."""
    points = [_read_json(point_path(out, point_name(epoch))) for epoch in epochs]
    points = [point for point in points if point is not None]
    final = _read_json(point_path(out, FINAL))
    seconds = epoch_seconds(out)
    return {
        "label": label,
        "model": config.model,
        "arch": config.arch,
        "config": config.record(),
        "steps_per_epoch": per_epoch,
        "points": points,
        "final": final,
        "paper": paper_row(config.arch, label),
        "paper_steps": PAPER_STEPS,
        "trend": trend(points),
        "train_seconds": sum(value for index, value in seconds.items() if index < config.epochs),
        "out": str(out),
    }


def epoch_seconds(out):
    """`{epoch index: wall-clock seconds}` of the curve's trained epochs: its step-time record
    (`STEP_TIMES`), over what an earlier version recorded (`LEGACY_TRAIN_SECONDS`)."""
    legacy = _read_json(out / LEGACY_TRAIN_SECONDS) or {}
    seconds = {int(done) - 1: float(value) for done, value in legacy.items()}
    record = _read_json(out / STEP_TIMES) or {}
    seconds.update({int(index): float(entry["seconds"]) for index, entry in record.items()})
    return seconds


def paper_row(arch, label):
    """The paper's Table 1 row of the model named `label` (its conv rows), or None."""
    return next((row for row in table1.PAPER if row["label"] == label), None) if arch == "conv" else None


def read_curve(out):
    """The curve in `out` as far as it has come: its learning_curve.json once the run has finished,
    otherwise `label`, `arch`, `points`, `final` and `paper` from the checkpoints evaluated so far and
    the run's config.json (so a curve still training can be read without touching it)."""
    out = Path(out)
    finished = _read_json(out / f"{STEM}.json")
    if finished is not None:
        return finished
    stored = _read_json(out / "config.json")
    if stored is None:
        raise FileNotFoundError(
            f"{out} holds no learning curve (no config.json): run `keras-avae reproduce learning-curve --out {out}` first."
        )
    config = LearningCurveSettings.from_dict(stored["settings"])
    label = label_of(config)
    return {
        "label": label,
        "arch": config.arch,
        "points": [_read_json(path) for path in sorted((out / POINTS).glob(f"{EPOCH_PREFIX}*.json"))],
        "final": _read_json(point_path(out, FINAL)),
        "paper": paper_row(config.arch, label),
    }


def trend(points):
    """Per task and nonzero radius, how robust accuracy moved between the last two points (in percentage
    points) and whether it is `rising`, `saturated` or `falling` (`TREND_TOLERANCE`)."""
    if len(points) < 2:
        return {}
    before, last = points[-2]["accuracy"], points[-1]["accuracy"]
    result = {}
    for task, accuracies in last.items():
        for radius, value in accuracies.items():
            if float(radius) == 0 or value is None or before.get(task, {}).get(radius) is None:
                continue
            change = 100 * (value - before[task][radius])
            verdict = "rising" if change > TREND_TOLERANCE else "falling" if change < -TREND_TOLERANCE else "saturated"
            result.setdefault(task, {})[radius] = {"change": change, "verdict": verdict}
    return result


def _percent(value):
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{100 * value:.1f}"


def markdown(document):
    """The curve as a markdown table: one row per checkpoint, the final evaluation, the paper's row."""
    rows = list(document["points"]) + ([document["final"]] if document["final"] else [])
    if not rows:
        return f"# Learning curve: {document['label']} / {document['arch']}\n\nNo checkpoint evaluated yet.\n"
    tasks = list(rows[0]["accuracy"])
    radii = list(rows[0]["accuracy"][tasks[0]])
    header = ["epoch", "steps", "attack"] + [f"{task} {radius}" for task in tasks for radius in radii]
    header += ["MSE", "NLL"] + [f"shift ratio {task} {radius}" for task in tasks for radius in radii if float(radius) > 0]
    lines = [
        f"# Learning curve: {document['label']} / {document['arch']}",
        "",
        f"{document['steps_per_epoch']} steps per epoch; robust accuracy in % of the linear probes on f^mu "
        f"({rows[0]['num_attacked']} test images attacked); MSE per pixel in 0..255 units; training took "
        f"{document['train_seconds'] / 60:.1f} min of wall clock.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [str(row["epoch"]), str(row["steps"]), figures.attack_label(row["attack"])]
        cells += [_percent(row["accuracy"][task].get(radius)) for task in tasks for radius in radii]
        cells += [f"{row['test_reconstruction_mse']:.1f}", _number(row.get("test_reconstruction_nll"))]
        cells += [
            _number((row["shift_ratio"].get(radius) or {}).get(task), 2)
            for task in tasks for radius in radii if float(radius) > 0
        ]
        lines.append("| " + " | ".join(cells) + " |")
    paper = document.get("paper")
    if paper:
        cells = ["paper", f"~{document['paper_steps']}", "Table 1"]
        cells += [_percent(paper["accuracy"].get(task, {}).get(f"{float(radius):g}")) for task in tasks for radius in radii]
        # The paper's one MSE column, under both of its readings (as table1.PAPER holds it).
        cells += [f"{paper['test_reconstruction_mse']:.1f}", f"{paper['test_reconstruction_nll']:.1f}"]
        cells += ["-" for task in tasks for radius in radii if float(radius) > 0]
        lines.append("| " + " | ".join(cells) + " |")
    if document["trend"]:
        lines += ["", "Between the last two checkpoints (curve attack): " + "; ".join(
            f"{task} at {radius}: {entry['change']:+.1f} points, {entry['verdict']}"
            for task, entries in document["trend"].items() for radius, entry in entries.items()
        ) + "."]
    for row in rows:
        if row.get("problems"):
            lines += ["", f"Checks FAILED at epoch {row['epoch']} ({figures.attack_label(row['attack'])}): "
                      + "; ".join(row["problems"])]
    if document["final"] and not document["final"].get("problems"):
        lines += ["", "Every check of the final evaluation passed."]
    return "\n".join(lines) + "\n"


def _number(value, digits=1):
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def draw(document, folder):
    """The figures of the curve: one per task (robust accuracy against steps, one line per radius) and
    one of clean accuracy, MSE and shift ratio against steps."""
    points, final, paper = document["points"], document["final"], document["paper"]
    if not points:
        return {}
    paths = {}
    for task in points[0]["accuracy"]:
        paths[f"learning_curve_{task}"] = figures.learning_curve(
            points, task, folder / f"learning_curve_{task}.png", final=final, paper=paper,
            paper_steps=document["paper_steps"], title=f"{document['label']} / {document['arch']}: {task}",
        )
    paths["learning_curve_quality"] = figures.learning_curve_quality(
        points, folder / "learning_curve_quality.png", title=f"{document['label']} / {document['arch']}"
    )
    return paths
