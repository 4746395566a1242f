"""Tables of runs: the rows of Table 1, the ablation study, the rho sweep and CelebA's tables.

A row is a dict with a `label`, a `model` and the run settings it changes
(e.g. `se_epsilon`, `rho`, an open choice), and optionally `pretrained`, the
label of an earlier row that `avae_ss` post-trains. `run_rows` runs a list of
rows with `run.run_one`, each into `out/<slug(label)>` with its training
state backed up after every epoch, so that `resume` reuses finished rows and
continues an interrupted one from its last epoch; `reproduce_rows` is a whole
ColorMNIST table: its settings, the data, one FID scorer, the rows per
architecture, their summaries, figures and files.

The table modules (`table1`, `ablation`, `rho_sweep`, `celeba`) define their
rows and their markdown and share this module; none imports another.
"""

import os
import time
from pathlib import Path

from keras_avae import distribute, figures, files
from keras_avae.experiments import color_mnist, run, run_directory, summaries
from keras_avae.experiments.progress import Progress
from keras_avae.experiments.settings import run_config

ARCHITECTURE_NAMES = {"mlp": "MLP", "conv": "Convnet", "celeba": "CelebA convnet"}
"""How the tables name the architectures."""

SUMMARY_KEYS = (
    "label", "model", "arch", "accuracy", "probe_accuracy", "time_factor", "seconds_per_step", "train_seconds",
    "train_steps", "test_reconstruction_mse", "test_reconstruction_sse", "test_reconstruction_nll", "fid",
    "sensitivity", "choices", "out",
)
"""The numbers of one row that a table's JSON reports (`row_summary`)."""


def select_rows(rows, labels):
    """The rows of `rows` named by `labels`, in the table's order, with every row that a selected
    row post-trains (`pretrained`) added."""
    labels = set(labels)
    labels |= {row["pretrained"] for row in rows if row["label"] in labels and row.get("pretrained")}
    return [row for row in rows if row["label"] in labels]


def row_summary(metrics):
    """A row's entry in the table's JSON: `SUMMARY_KEYS`, and the SE rows' training attack."""
    summary = {key: metrics.get(key) for key in SUMMARY_KEYS}
    smooth = metrics["model"] in ("se", "seavae")
    summary["se_epsilon"] = metrics["config"]["se_epsilon"] if smooth else None
    summary["train_attack_steps"] = metrics["config"]["train_attack_steps"] if smooth else None
    return summary


def run_rows(rows, base, data, networks, out, *, fid_scorer=None, progress=None, prefix="", resume=False, overwrite=False):
    """Runs `rows` in order with `run.run_one`; returns `(models, metrics)` keyed by row label.

    Args:
        rows: the rows (see the module docstring).
        base: the `settings.RunConfig` every row starts from, its budget filled.
        data, networks, fid_scorer: as for `run.run_one`.
        out: the folder of the rows' run directories.
        progress: a `Progress`, advanced once per row; prefix: its stage's prefix.
        resume: a row whose run directory holds a finished run with the same
            settings is loaded instead of run again; if only its
            `EVALUATION_SETTINGS` differ, the loaded model is evaluated again. A
            row interrupted while training or evaluating continues from the
            backup of its last epoch (`run.BACKUP_FOLDER`; other settings than it
            began with are refused).
        overwrite: run finished and interrupted rows again from the start.
            Without it or `resume`, a row whose run directory already holds a
            finished run (its metrics.json) or an interrupted one (its backup)
            is an error, raised before anything runs.

    The time factor of each row is relative to the row labelled "VAE", when that row runs first.
    """
    check_row_folders(rows, out, resume=resume, overwrite=overwrite)
    models, results = {}, {}
    for row in rows:
        changes = {key: value for key, value in row.items() if key not in ("label", "pretrained")}
        label, pretrained_label = row["label"], row.get("pretrained")
        config = run.actual_sizes(base.replace(**changes, out=os.fspath(Path(out) / run_directory.slug(label))), data)
        if progress is not None:
            progress.start(f"{prefix}{label}")
        loaded = run.load_finished(config) if resume else None
        if loaded is not None:
            models[label], results[label], stale = loaded
            if stale:
                results[label] = run.reevaluate(models[label], results[label], config, data, fid_scorer)
            if config.verbose:
                print(f"Resumed {label} from {config.out}" + (", evaluated again" if stale else ""))
        else:
            if pretrained_label is not None and pretrained_label not in models:
                raise ValueError(f"Row {label!r} post-trains row {pretrained_label!r}, which has not run.")
            models[label], results[label] = run.run_one(
                config, data, networks, fid_scorer=fid_scorer, pretrained=models.get(pretrained_label),
                label=label, reference=results.get("VAE"), backup_dir=Path(config.out) / run.BACKUP_FOLDER,
            )
        if label == "VAE" and results[label].get("time_factor") is None:
            results[label]["time_factor"] = 1.0
            run_directory.write_json(Path(config.out) / "metrics.json", results[label])
        if progress is not None:
            progress.done()
    return models, results


def check_row_folders(rows, out, *, resume, overwrite):
    """Refuses rows that already ran in `out` unless `resume` or `overwrite`; with `overwrite`, deletes
    the interrupted rows' backups, so that they start again.

    Raises:
        FileExistsError: naming the finished and the interrupted rows, and the flags to pass.
    """
    folders = {row["label"]: Path(distribute.chief_path(out)) / run_directory.slug(row["label"]) for row in rows}
    if overwrite:
        for folder in folders.values():
            run.discard_backup(folder)
        return
    if resume:
        return
    finished = [label for label, folder in folders.items() if (folder / "metrics.json").is_file()]
    interrupted = [label for label, folder in folders.items() if (folder / run.BACKUP_FOLDER).is_dir()]
    found = [f"finished runs of {', '.join(finished)}"] * bool(finished)
    found += [f"interrupted runs of {', '.join(interrupted)} ({run.BACKUP_FOLDER}/)"] * bool(interrupted)
    if found:
        raise FileExistsError(
            f"{out} already holds {' and '.join(found)}; pass --resume to reuse and continue them "
            "or --overwrite to run them again."
        )


def reproduce_rows(settings, rows, render, summarize=row_summary, draw=None, **fields):
    """A table of rows on ColorMNIST: the rows per architecture, their summaries, figures and files.

    Args:
        settings: the table's settings (`settings.Table1Settings`, ...), with `arch`.
        rows: the rows to run.
        render: document -> markdown.
        summarize: a row's metrics -> its entry in the table's JSON.
        draw: `draw(folder, arch, models, results, table, x_test) -> {name: path}`, the
            figures of one architecture (default `table_figures`), when `settings.figures`.
        **fields: further entries of the document (e.g. `paper`).

    Returns:
        The document `run_directory.write_document` wrote to `<STEM>.md` / `<STEM>.json`.
    """
    start = time.perf_counter()
    settings = settings.replace(out=settings.output_folder())
    with distribute.command(settings) as settings, files.locked(settings.out):  # worker 0 writes out
        out = Path(settings.out)
        runs, test_data, document = run_architectures(settings, rows, out)
        tables, figure_paths = {}, {}
        for arch, (models, results) in runs.items():
            tables[arch] = [summarize(results[row["label"]]) for row in rows]
            if settings.figures:
                figure_paths[arch] = (draw or table_figures)(out / "figures", arch, models, results, tables[arch], test_data[0])
        document.update(architectures=tables, figures=figure_paths, **fields, seconds=time.perf_counter() - start)
        return run_directory.write_document(out, settings.STEM, document, render)


def run_architectures(settings, rows, out):
    """Runs `rows` for each architecture of `settings.arch` on one ColorMNIST split.

    Loads the data and the FID scorer once, fills each architecture's run
    settings from the scale, and runs the rows with `run_rows` into
    `out/<arch>`, with one progress bar for all.

    Returns:
        `(runs, test_data, document)`: `runs[arch]` is `run_rows`' `(models,
        results)`; `document` holds the keys every reproduction writes
        (`dataset`, `scale`, `config`, `data_path`, `fid_extractor`,
        `settings`, `out`, `environment`).
    """
    sizes = settings.filled(settings.preset, settings.arch[0])
    data_path = color_mnist.resolve_data_path(settings.data)
    train_data, test_data = color_mnist.load_data(data_path, sizes.train_size, sizes.test_size)
    data = color_mnist.experiment_data(train_data, test_data, data_path)
    fid_scorer = color_mnist.fid_scorer_for(sizes, train_data, test_data, out)
    progress = Progress(len(settings.arch) * len(rows), verbose=settings.verbose)
    runs, descriptions = {}, {}
    for arch in settings.arch:
        base = run_config(settings.filled(settings.preset, arch), arch=arch, robustness=True, figures=False)
        runs[arch] = run_rows(
            rows, base, data, color_mnist.networks, out / arch, fid_scorer=fid_scorer, progress=progress,
            prefix=f"{arch}: ", resume=settings.resume, overwrite=settings.overwrite,
        )
        descriptions[arch] = summaries.describe_settings(runs[arch][1][rows[0]["label"]])
    progress.close()
    document = {
        "dataset": "ColorMNIST",
        "scale": settings.preset.to_dict(),
        "config": settings.to_dict(),
        "data_path": data_path,
        "fid_extractor": fid_scorer.get_config() if fid_scorer is not None else None,
        "settings": descriptions,
        "out": os.fspath(out),
        "environment": run_directory.environment(),
    }
    return runs, test_data, document


def table_figures(folder, arch, models, results, table, x_test):
    """Accuracy against epsilon per task (Figure 5, right) and the encode-decode chains (Figure 1)."""
    labels = list(results)
    accuracy = {label: results[label]["accuracy"] for label in labels}
    paths = {}
    for task in next(iter(accuracy.values())):
        paths[f"accuracy_vs_epsilon_{task}"] = figures.accuracy_vs_epsilon(
            accuracy, task, Path(folder) / f"{arch}_accuracy_vs_epsilon_{run_directory.slug(task)}.png"
        )
    paths["encode_decode_chains"] = figures.encode_decode_chains(
        [models[label] for label in labels],
        x_test[: run_directory.CHAIN_IMAGES],
        path=Path(folder) / f"{arch}_encode_decode_chains.png",
        titles=labels,
    )
    return paths
