"""Tables 2 and 3 of Cemgil et al. (2020): robustness of six models on the 17 CelebA tasks.

Rows (Table 3): VAE, AVAE (rho = 0.975), SE^5 and SE^20 (smooth encoders
trained against PGD of radius 0.1 with 5 and 20 steps, rho_SE = 0.95),
SE^5-AVAE, and AVAE-SS (the VAE post-trained without data). Each is trained
on 64x64 CelebA with the convnet of Appendix F (`architectures.celeba`),
streamed by `keras_avae.datasets.celeba_dataset`, and scored by
`run.run_one`: linear probes on f^mu for each binary attribute, their
accuracy at epsilon 0 and 0.1 under PGD (20 steps x 10 restarts at the paper
scale), the time factor, reconstruction MSE and FID.

FID uses InceptionV3 (pool3): pass `inception_weights`, a local weights file,
or leave it None to let Keras download the ImageNet weights; `fid` False skips
FID. Both data and extractor are checked before any training starts.

CelebA must be prepared as a tensorflow-datasets data directory (see
`keras_avae.datasets.celeba`); without it this fails at once with the
loader's `FileNotFoundError`, which says how to prepare it. This is meant for
a GPU: the paper scale trains six convnets on 162,770 images.

Outputs, under `out` (default `runs/celeba_<scale>`): `table2.md` (the six
tasks of Table 2, without the VAE), `table3.md` (all tasks and models),
`celeba.json`, `figures/encode_decode_chains.png`, and a run directory per row.

Example:
    document = reproduce({"scale": "small", "data_dir": "~/tensorflow_datasets",
                          "inception_weights": "inception_v3_notop.h5"})
"""

import os
import time
from pathlib import Path

from keras_avae import architectures, distribute, figures, files
from keras_avae.datasets.celeba import (
    CELEBA_DIR_ENV_VAR,
    celeba,
    celeba_dataset,
)
from keras_avae.evaluation import report
from keras_avae.evaluation.report import Column
from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments import run_directory, summaries
from keras_avae.experiments.fid_scorer import FIDScorer
from keras_avae.experiments.progress import Progress
from keras_avae.experiments.settings import CelebASettings, run_config

ROWS = (
    {"label": "VAE", "model": "vae"},
    {"label": "AVAE", "model": "avae"},
    {"label": "SE^5", "model": "se", "train_attack_steps": 5},
    {"label": "SE^20", "model": "se", "train_attack_steps": 20},
    {"label": "SE^5-AVAE", "model": "seavae", "train_attack_steps": 5},
    {"label": "AVAE-SS", "model": "avae_ss", "pretrained": "VAE"},
)
"""The models of Table 3, in its order (SE^L: L PGD steps per training step, Appendix F)."""

ROW_LABELS = tuple(row["label"] for row in ROWS)

TABLE2_TASKS = ("Bald", "Mustache", "Necklace", "Eyeglasses", "Smiling", "Lipstick")
"""The tasks of Table 2, in its order."""

TABLE2_MODELS = ("AVAE", "SE^5", "SE^20", "SE^5-AVAE", "AVAE-SS")
"""The models of Table 2 (the VAE's near-zero robust accuracies are left to Table 3)."""

EPSILONS = (0.0, 0.1)
"""The radii of Tables 2 and 3."""

# Table 3 as printed, per task: (clean, eps=0.1) accuracy in % for VAE, AVAE,
# SE^5, SE^20, SE^5-AVAE, AVAE-SS.
_PAPER_TABLE3 = {
    "Bald": (97.9, 2.1, 97.8, 83.9, 97.9, 71.0, 97.4, 86.5, 97.8, 87.0, 97.8, 70.0),
    "Mustache": (94.9, 0.7, 94.8, 89.8, 95.0, 69.5, 95.7, 84.4, 96.3, 92.3, 95.2, 74.0),
    "Eyeglasses": (95.4, 0.0, 94.9, 71.7, 95.9, 20.3, 95.7, 33.0, 95.3, 67.5, 94.3, 56.8),
    "Necklace": (87.7, 0.7, 88.2, 76.7, 88.0, 56.0, 88.0, 78.9, 86.1, 80.3, 87.9, 59.9),
    "Smiling": (87.7, 0.4, 78.5, 3.0, 86.9, 3.1, 85.7, 1.1, 77.9, 6.3, 81.6, 1.0),
    "Lipstick": (84.5, 0.0, 80.4, 6.5, 84.5, 2.0, 80.3, 0.6, 80.7, 11.2, 80.3, 0.9),
    "Bangs": (90.3, 0.2, 89.7, 36.0, 90.8, 19.3, 89.6, 27.0, 89.6, 45.9, 89.6, 22.2),
    "Black Hair": (83.5, 0.0, 82.5, 31.7, 83.4, 23.0, 81.4, 31.4, 79.5, 33.3, 83.3, 26.2),
    "Blond Hair": (91.5, 0.2, 91.1, 46.4, 92.5, 35.9, 90.7, 53.5, 92.4, 55.8, 90.6, 37.6),
    "Brown Hair": (78.4, 1.0, 77.8, 35.9, 77.9, 24.1, 80.5, 41.5, 82.9, 46.0, 78.2, 19.3),
    "Gender": (87.6, 0.0, 82.6, 5.4, 87.8, 1.5, 81.6, 0.7, 82.1, 10.7, 82.1, 0.7),
    "Beard": (85.8, 0.0, 83.8, 39.2, 85.4, 18.3, 85.3, 24.3, 86.0, 50.1, 84.4, 16.3),
    "Straight Hair": (79.6, 2.3, 79.2, 72.2, 79.6, 64.8, 78.7, 77.3, 78.8, 74.9, 79.2, 64.8),
    "Wavy Hair": (75.8, 0.1, 75.8, 17.8, 76.1, 10.0, 72.8, 10.2, 72.7, 22.1, 75.5, 9.3),
    "Earrings": (81.3, 0.1, 81.0, 60.9, 81.0, 26.8, 81.3, 55.3, 79.5, 64.1, 81.2, 24.7),
    "Hat": (96.5, 0.2, 96.6, 75.2, 96.9, 55.3, 96.4, 77.3, 97.3, 82.7, 96.0, 65.5),
    "Necktie": (92.6, 0.2, 92.5, 61.9, 92.7, 41.0, 92.7, 51.7, 93.0, 72.5, 92.6, 39.8),
}
_PAPER_TIME_MSE_FID = {
    "VAE": (1.0, 7203.9, 99.86),
    "AVAE": (2.2, 7276.6, 97.92),
    "SE^5": (3.1, 7208.8, 98.00),
    "SE^20": (7.8, None, None),
    "SE^5-AVAE": (4.3, 7269.2, 109.4),
    "AVAE-SS": (2.2, 7347.3, 99.86),
}

PAPER = tuple(
    {
        "label": label,
        "accuracy": {
            task: {"0": values[2 * index] / 100, "0.1": values[2 * index + 1] / 100}
            for task, values in _PAPER_TABLE3.items()
        },
        "time_factor": _PAPER_TIME_MSE_FID[label][0],
        "test_reconstruction_mse": _PAPER_TIME_MSE_FID[label][1],
        # The paper's one MSE column, shown under both of its readings.
        "test_reconstruction_nll": _PAPER_TIME_MSE_FID[label][1],
        "fid": _PAPER_TIME_MSE_FID[label][2],
    }
    for index, label in enumerate(ROW_LABELS)
)
"""Table 3 as printed (accuracies as fractions); SE^20's numbers are those the paper cites from [5]."""


def load_data(config):
    """The `run.run_one` data of CelebA (`config`: the `CelebASettings`, budget filled); raises the loader's FileNotFoundError when it is absent."""
    image_size = config.image_size
    train_inputs = celeba_dataset(
        "train",
        data_dir=config.data_dir,
        image_size=image_size,
        limit=config.train_size,
        attributes=(),
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
    )
    attributes = tuple(config.attributes)
    probe_data = celeba("train", config.data_dir, image_size, config.probe_train_size, attributes)
    test_data = celeba("test", config.data_dir, image_size, config.test_size, attributes)
    # Batches of one, only to count the examples (tfds knows the split sizes; nothing is read).
    examples = celeba_dataset(
        "train",
        data_dir=config.data_dir,
        image_size=image_size,
        limit=config.train_size,
        attributes=(),
        batch_size=1,
    )
    num_train = int(examples.cardinality())
    if num_train < 0:  # unknown: the AVAE-SS steps and reports use the probes' count instead
        num_train = len(probe_data[0])
    return {
        "train_inputs": train_inputs,
        "probe_data": probe_data,
        "test_data": test_data,
        "num_train": num_train,
        "source": config.data_dir or os.environ.get(CELEBA_DIR_ENV_VAR) or "tfds default data_dir",
    }


def networks(config, input_shape):
    """The CelebA convnet of Appendix F, in `config.dtype_policy`."""
    return architectures.celeba(latent_dim=config.latent_dim, input_shape=input_shape, dtype=config.dtype_policy)


def fid_scorer_for(config, test_data):
    """InceptionV3 FID (local `inception_weights`, else the ImageNet download), a saved extractor, or None."""
    if not config.fid:
        return None
    real = test_data[0][: config.fid_samples]
    if config.fid_extractor:
        extractor = files.load_model(config.fid_extractor)
        description = f"{extractor.name} loaded from {config.fid_extractor}"
        return FIDScorer(real, feature_extractor=extractor, description=description, seed=config.seed)
    weights = config.inception_weights
    source = os.fspath(weights) if weights else "imagenet"
    return FIDScorer(real, weights=weights, description=f"InceptionV3 pool3 (weights {source})", seed=config.seed)


def rows_for(settings):
    """The selected rows, with the SE rows' training steps capped by `train_attack_steps` when set."""
    rows = []
    for row in rows_lib.select_rows(ROWS, settings.rows):
        row = dict(row)
        if "train_attack_steps" in row and settings.train_attack_steps is not None:
            row["train_attack_steps"] = min(row["train_attack_steps"], settings.train_attack_steps)
        rows.append(row)
    return rows


def reproduce(overrides=None):
    """Runs Tables 2 and 3 on CelebA; writes the tables, a figure and a run directory per row.

    Args:
        overrides: a dict of settings (fields of `settings.CelebASettings`: those of Table 1 with
            `data_dir`, `attributes`, `probe_train_size` and `image_size`; `train_attack_steps`,
            when set (or set by the scale), caps the SE rows' own 5 and 20), or a `CelebASettings`.

    Raises:
        FileNotFoundError: CelebA is not prepared in the data directory (the
            loader's message says how to prepare it).

    Returns:
        A dict: `rows` (row summaries with `accuracy[task][radius]`,
        `time_factor`, `test_reconstruction_mse`, `fid`), `table2`, `table3`
        (Markdown), `paper`, `scale`, `config`, `out` and `seconds`.
    """
    start = time.perf_counter()
    settings = CelebASettings.from_dict(overrides)
    settings = settings.filled(settings.preset, "celeba")
    rows = rows_for(settings)
    settings = settings.replace(rows=tuple(row["label"] for row in rows), out=settings.output_folder())
    with distribute.command(settings) as settings, files.locked(settings.out):  # worker 0 writes out
        base = run_config(settings, arch="celeba", robustness=True, figures=False)
        return _reproduce(settings, rows, base, Path(settings.out), start)


def _reproduce(settings, rows, base, out, start):
    data = load_data(settings)  # fails here, before anything is trained, when CelebA is absent
    fid_scorer = fid_scorer_for(settings, data["test_data"])
    progress = Progress(len(rows), verbose=settings.verbose)
    models, results = rows_lib.run_rows(
        rows, base, data, networks, out, fid_scorer=fid_scorer, progress=progress, resume=settings.resume,
        overwrite=settings.overwrite,
    )
    progress.close()
    summaries_ = [
        {
            **{key: results[row["label"]].get(key) for key in (
                "label", "model", "accuracy", "probe_accuracy", "time_factor", "seconds_per_step",
                "train_seconds", "test_reconstruction_mse", "test_reconstruction_nll", "fid", "choices", "out",
            )},
            "train_attack_steps": row.get("train_attack_steps"),
        }
        for row in rows
    ]
    figure_paths = {}
    if settings.figures:
        figure_paths["encode_decode_chains"] = figures.encode_decode_chains(
            [models[row["label"]] for row in rows],
            data["test_data"][0][: run_directory.CHAIN_IMAGES],
            path=out / "figures" / "encode_decode_chains.png",
            titles=[row["label"] for row in rows],
        )
    tasks = list(settings.attributes)
    table2_rows = [row for row in summaries_ if row["label"] in TABLE2_MODELS]
    table2_tasks = [task for task in TABLE2_TASKS if task in tasks]
    document = {
        "tables": "Tables 2 and 3 (Cemgil et al., 2020)",
        "dataset": "CelebA",
        "scale": settings.preset.to_dict(),
        "config": settings.to_dict(),
        "data_path": data["source"],
        "fid_extractor": fid_scorer.get_config() if fid_scorer is not None else None,
        "rows": summaries_,
        "settings": summaries.describe_settings(results[rows[0]["label"]]),
        "paper": list(PAPER),
        "figures": figure_paths,
        "out": os.fspath(out),
        "seconds": time.perf_counter() - start,
        "environment": run_directory.environment(),
    }
    document["table3"] = markdown(document, summaries_, tasks, "Table 3: all tasks and models")
    document["table2"] = ""
    if table2_rows and table2_tasks:
        document["table2"] = markdown(document, table2_rows, table2_tasks, "Table 2: six tasks, without the VAE")
    files.write_text(out / "table3.md", document["table3"])
    files.write_text(out / "table2.md", document["table2"])
    run_directory.write_json(out / "celeba.json", document)
    print("\n" + document["table2"] + "\n" + document["table3"])
    print(f"Wrote {out / 'table2.md'}, {out / 'table3.md'} and {out / 'celeba.json'}")
    return document


SUMMARY_ROWS = (
    Column("Time", lambda row: row.get("time_factor"), ".1f", "×"),
    Column("MSE (0..255 px)", lambda row: row.get("test_reconstruction_mse")),
    Column("MSE (NLL)", lambda row: row.get("test_reconstruction_nll")),
    Column("FID", lambda row: row.get("fid"), ".2f"),
)
"""The rows under the tasks of Tables 2 and 3, one value per model."""


def task_table(rows, tasks, epsilons):
    """Markdown in the layout of Tables 2 and 3 (`report.task_table`), then Time, MSE and FID rows."""
    return report.task_table(rows, tasks, epsilons, SUMMARY_ROWS)


def markdown(document, rows, tasks, title):
    """One of the tables, with the paper's for reference."""
    paper = [row for row in document["paper"] if row["label"] in {r["label"] for r in rows}]
    fid = document["fid_extractor"]
    lines = [
        f"# {title} (Cemgil et al., 2020), CelebA, scale `{document['scale']['name']}`",
        "",
        "Adversarial test accuracy (%) of linear probes on f^mu per binary attribute at L-inf radius ε "
        "(pixels in [0, 1]; ε=0 is the clean accuracy). Time: seconds per training step relative to the "
        "VAE's. MSE: per pixel in 0..255 units, and the per-image Gaussian negative log-likelihood at "
        "v = 0.5 (floor 7033.2 for 64x64x3), the two readings of the paper's column."
        + (
            f" FID: {fid['generated_images']} samples vs {fid['real_images']} test images, {fid['extractor']}."
            if fid
            else ""
        ),
        "",
        task_table(rows, tasks, document["config"]["epsilons"]).rstrip("\n"),
        "",
        document["settings"],
        "",
        "The paper's numbers:",
        "",
        task_table(paper, tasks, EPSILONS).rstrip("\n"),
        "",
    ]
    return "\n".join(lines)
