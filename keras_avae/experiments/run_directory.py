"""The files of a run directory and of a table's folder: JSON, markdown, figures, TensorBoard scalars.

    model.keras     the trained model (`keras.models.load_model`)
    config.json     every setting of the run (`settings.RunConfig.record`), the data path, the versions
    metrics.json    training time and terms, test terms, MSE, probe and robust accuracy, FID
    summary.md      the results as a table in the layout of Table 1 (`summaries.run_summary`)
    figures/        reconstructions, samples, encode-decode chains, accuracy vs epsilon
    logs/           TensorBoard: `train/` per epoch (keras.callbacks.TensorBoard), `evaluation/`

Every file is replaced atomically (`keras_avae.files`).
"""

import math
import os
import platform
import re
import sys
from pathlib import Path

import keras
import tensorflow as tf

import keras_avae
from keras_avae import figures, files
from keras_avae.evaluation import robustness
from keras_avae.experiments.summaries import run_summary

GRID_IMAGES = 36
"""Images in the reconstruction and sample grids."""

CHAIN_IMAGES = 4
"""Start images of the encode-decode chains (Figure 1)."""


def slug(text):
    """`text` as a file name: letters, digits, `.`, `_` and `-`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "run"


def environment():
    """Versions and devices of this run, for config.json."""
    return {
        "keras_avae": keras_avae.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "command": " ".join(sys.argv),
    }


def write_json(path, document):
    """Writes `document` as indented JSON (NaN as null) to `path`, making folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_json(path, _finite(document))
    return path


def _finite(value):
    """`value` with NaN and infinities replaced by None, so the JSON is standard."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return os.fspath(value)
    return value


def write_document(out, stem, document, render):
    """Adds `render(document)` as its markdown, writes `<stem>.md` and `<stem>.json`, prints it.

    Returns:
        `document`, with its "markdown" entry.
    """
    document["markdown"] = render(document)
    files.write_text(out / f"{stem}.md", document["markdown"])
    write_json(out / f"{stem}.json", document)
    print("\n" + document["markdown"])
    print(f"Wrote {out / (stem + '.md')}, {out / (stem + '.json')} and {out / 'figures'}/")
    return document


def write_run(out, config, metrics, source=None):
    """config.json (`config`, a dict: the run's settings as run), metrics.json and summary.md of one run."""
    out = Path(out)
    write_json(out / "config.json", {**config, "data_path": source, "environment": environment()})
    write_json(out / "metrics.json", metrics)
    files.write_text(out / "summary.md", run_summary(metrics))


def log_evaluation(log_dir, metrics, step):
    """Writes the evaluation's numbers as TensorBoard scalars under `log_dir/evaluation`."""
    scalars = {
        "reconstruction_mse": metrics.get("test_reconstruction_mse"),
        "fid": metrics.get("fid"),
        "seconds_per_step": metrics.get("seconds_per_step"),
        "time_factor": metrics.get("time_factor"),
    }
    for task, accuracy in (metrics.get("probe_accuracy") or {}).items():
        scalars[f"probe_accuracy_{slug(task)}"] = accuracy
    for task, accuracies in (metrics.get("accuracy") or {}).items():
        for epsilon, accuracy in accuracies.items():
            scalars[robustness.log_key(slug(task), float(epsilon))] = accuracy
    writer = tf.summary.create_file_writer(os.fspath(Path(log_dir) / "evaluation"))
    with writer.as_default():
        for name, value in scalars.items():
            if value is not None and math.isfinite(value):
                tf.summary.scalar(name, value, step=int(step))
    writer.close()


def run_figures(folder, model, label, x_test, accuracy=None, references=(), accuracy_figures=True):
    """The figures of one run; returns dict figure name -> path.

    reconstructions.png (x next to g(f^mu(x))), samples.png (g(z), z ~ N(0, I)),
    encode_decode_chains.png (Figure 1; with `references`, a list of
    `(label, model)` drawn above the model), and accuracy_vs_epsilon_<task>.png.
    """
    folder = Path(folder)
    paths = {
        "reconstructions": figures.reconstruction_grid(model, x_test[:GRID_IMAGES], folder / "reconstructions.png"),
        "samples": figures.sample_grid(model, GRID_IMAGES, folder / "samples.png"),
    }
    chain_models = [ref_model for _, ref_model in references] + [model]
    titles = [ref_label for ref_label, _ in references] + [label]
    paths["encode_decode_chains"] = figures.encode_decode_chains(
        chain_models, x_test[:CHAIN_IMAGES], path=folder / "encode_decode_chains.png", titles=titles
    )
    if accuracy and accuracy_figures:
        for task in accuracy:
            paths[f"accuracy_vs_epsilon_{task}"] = figures.accuracy_vs_epsilon(
                {label: accuracy}, task, folder / f"accuracy_vs_epsilon_{slug(task)}.png"
            )
    return paths
