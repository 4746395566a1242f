"""Table 1 of Cemgil et al. (2020): seven models on ColorMNIST, robust accuracy, time, MSE and FID.

For each architecture (MLP and convnet, Appendix F) the seven rows of Table 1
are trained and evaluated in order, each with `protocol.run_one`:

    VAE           eq. (2)
    SE_0.1        smooth encoder trained against PGD of radius 0.1 (rho_SE = 0.95)
    SE_0.2        ... of radius 0.2
    AVAE          eq. (13), rho = 0.975
    SE_0.1-AVAE   eq. (35), rho = 0.975, rho_SE = 0.95, radius 0.1
    SE_0.2-AVAE   ... radius 0.2
    AVAE-SS       eq. (34): the trained VAE post-trained without data, rho = 0.975

Every row is scored on the same data: digit and colour accuracy of linear
probes on f^mu at epsilon 0, 0.1 and 0.2 (`RobustnessEvaluator`), the time
factor (median wall-clock seconds per training step relative to the VAE's,
measured in this run by `StepTimer`), the reconstruction MSE
(`keras_avae.evaluation.reconstruction_mse`, per pixel in 0..255 units and as
the per-image Gaussian negative log-likelihood) and the
FID of 1 sample per test image against the test images (the extractor is
stated in the output: by default a ColorMNIST classifier trained here, see
`color_mnist`).

Outputs, under `out` (default `runs/table1_<scale>`): `table1.md` and
`table1.json` (both architectures, with the paper's numbers for reference),
`figures/<arch>_accuracy_vs_epsilon_<task>.png` (Figure 5, right) and
`figures/<arch>_encode_decode_chains.png` (Figure 1), the FID extractor, and
one run directory per row, `<arch>/<row>/` (model.keras, config.json,
metrics.json, summary.md, logs/).

Example:
    document = reproduce({"scale": "small", "arch": ["mlp", "conv"]})
    print(document["markdown"])
"""

import os
import time
from pathlib import Path

from keras_avae import figures, files
from keras_avae.experiments import color_mnist, protocol
from keras_avae.experiments.progress import Progress
from keras_avae.experiments.scale import TABLE1_SCALES

ROWS = (
    {"label": "VAE", "model": "vae"},
    {"label": "SE_0.1", "model": "se", "se_epsilon": 0.1},
    {"label": "SE_0.2", "model": "se", "se_epsilon": 0.2},
    {"label": "AVAE", "model": "avae"},
    {"label": "SE_0.1-AVAE", "model": "seavae", "se_epsilon": 0.1},
    {"label": "SE_0.2-AVAE", "model": "seavae", "se_epsilon": 0.2},
    {"label": "AVAE-SS", "model": "avae_ss", "pretrained": "VAE"},
)
"""The rows of Table 1, in its order; settings not given here come from the run's settings."""

ROW_LABELS = tuple(row["label"] for row in ROWS)

ARCHITECTURE_NAMES = {"mlp": "MLP", "conv": "Convnet"}


def _paper_row(label, digit, color, time_factor, mse, fid):
    epsilons = ("0", "0.1", "0.2")
    return {
        "label": label,
        "accuracy": {
            "digit": {e: value / 100 for e, value in zip(epsilons, digit)},
            "color": {e: value / 100 for e, value in zip(epsilons, color)},
        },
        "time_factor": time_factor,
        # The paper's one MSE column, shown under both of its readings.
        "test_reconstruction_mse": mse,
        "test_reconstruction_nll": mse,
        "fid": fid,
    }


PAPER = (
    _paper_row("VAE", (93.8, 5.8, 0.0), (100.0, 19.9, 2.0), 1.0, 1369.2, 12.44),
    _paper_row("SE_0.1", (94.3, 89.6, 1.8), (100.0, 100.0, 21.8), 4.0, 1372.5, 13.01),
    _paper_row("SE_0.2", (95.7, 92.6, 87.3), (100.0, 99.9, 99.9), 4.0, 1374.9, 11.72),
    _paper_row("AVAE", (97.3, 88.1, 54.8), (100.0, 99.8, 87.7), 1.5, 1371.9, 15.46),
    _paper_row("SE_0.1-AVAE", (97.4, 93.6, 24.5), (100.0, 100.0, 60.0), 4.7, 1373.3, 13.90),
    _paper_row("SE_0.2-AVAE", (97.6, 94.2, 79.8), (100.0, 100.0, 83.2), 4.7, 1374.3, 13.89),
    _paper_row("AVAE-SS", (94.1, 72.8, 20.8), (100.0, 99.6, 56.8), 1.5, 1379.3, 12.44),
)
"""Table 1 as printed (ConvNet; accuracies as fractions; FID with InceptionV3)."""

_RUN_KEYS = [key for key in protocol.RUN_DEFAULTS if key not in ("model", "arch", "robustness")]

DEFAULTS = {
    **{key: protocol.RUN_DEFAULTS[key] for key in _RUN_KEYS},
    "scale": "small",
    "arch": ["mlp", "conv"],
    "data": None,
    "rows": list(ROW_LABELS),
    "resume": False,
    "overwrite": False,
}
"""Settings of `reproduce` (see `protocol.RUN_DEFAULTS`), plus:

- arch: architectures, a list (or comma-separated string) of "mlp", "conv".
- data: path of a local mnist.npz. out: default `runs/table1_<scale>`.
- rows: the rows to run (labels of `ROWS`); AVAE-SS brings in VAE.
- resume: load rows already finished with the same settings instead of rerunning them.
- overwrite: run rows whose run directory already holds a finished run again (without it, or
  resume, such a row is an error).
- figures: the table's figures (the rows draw none).
"""


def parse_list(value, choices, name):
    """`value` (a list or a comma-separated string) as a list of items from `choices`."""
    items = [item.strip() for item in value.split(",")] if isinstance(value, str) else list(value)
    items = [item for item in items if item != ""]
    unknown = [item for item in items if item not in choices]
    if not items or unknown:
        raise ValueError(f"`{name}` must list items from {tuple(choices)}. Received: {name}={value!r}")
    return list(dict.fromkeys(items))


def select_rows(labels):
    """The rows named by `labels`, in Table 1's order, with VAE added when AVAE-SS needs it."""
    labels = set(parse_list(labels, ROW_LABELS, "rows"))
    if "AVAE-SS" in labels:
        labels.add("VAE")
    return [row for row in ROWS if row["label"] in labels]


def row_summary(metrics):
    """The numbers of one row that the table reports, for table1.json."""
    keys = (
        "label", "model", "arch", "accuracy", "probe_accuracy", "time_factor", "seconds_per_step",
        "train_seconds", "train_steps", "test_reconstruction_mse", "test_reconstruction_sse",
        "test_reconstruction_nll", "fid", "sensitivity", "choices", "out",
    )
    summary = {key: metrics.get(key) for key in keys}
    smooth = metrics["model"] in ("se", "seavae")
    summary["se_epsilon"] = metrics["config"]["se_epsilon"] if smooth else None
    summary["train_attack_steps"] = metrics["config"]["train_attack_steps"] if smooth else None
    return summary


def reproduce(overrides=None):
    """Runs Table 1 on ColorMNIST and writes the table, its figures and a run directory per row.

    Args:
        overrides: dict of settings (keys of `DEFAULTS`); None values keep the defaults.

    Returns:
        A dict: `architectures` (arch -> list of row summaries, each with
        `label`, `accuracy[task][radius]`, `time_factor`,
        `test_reconstruction_mse`, `fid`, ...), `markdown` (the text of
        table1.md), `paper`, `scale`, `config`, `fid_extractor`, `figures`,
        `out` and `seconds`.
    """
    return reproduce_rows(
        overrides, DEFAULTS, TABLE1_SCALES, select_rows, _RUN_KEYS, "table1", markdown,
        table="Table 1 (Cemgil et al., 2020)", paper=list(PAPER),
    )


def reproduce_rows(overrides, defaults, scales, select, run_keys, stem, render, **fields):
    """The run of a table of rows on ColorMNIST: settings, rows, runs, summaries, figures, files.

    Args:
        overrides: the caller's settings; `defaults`: every setting (with
            `scale`, `arch`, `rows`, `out`); `scales`: its presets.
        select: labels -> the rows to run (e.g. `select_rows`); each row's
            entry of the table's JSON is its `row_summary`.
        run_keys: the settings passed on to each run.
        stem: file names `<stem>.md` / `<stem>.json` and the default out
            folder `runs/<stem>_<scale>`.
        render: document -> markdown.
        **fields: further entries of the document (e.g. `paper`).

    Returns:
        The document `protocol.write_document` wrote.
    """
    start = time.perf_counter()
    config, scale = protocol.resolve_config(defaults, overrides, scales)
    config["arch"] = parse_list(config["arch"], color_mnist.ARCHITECTURES, "arch")
    rows = select(config["rows"])
    config["rows"] = [row["label"] for row in rows]
    out = Path(config["out"] or os.path.join("runs", f"{stem}_{scale.name}"))
    config["out"] = os.fspath(out)
    with files.locked(out):
        runs, test_data, document = run_architectures(config, scale, rows, out, run_keys)
        tables, figure_paths = {}, {}
        for arch, (models, results) in runs.items():
            tables[arch] = [row_summary(results[row["label"]]) for row in rows]
            if config["figures"]:
                figure_paths[arch] = table_figures(out / "figures", arch, models, results, test_data[0])
        document.update(architectures=tables, figures=figure_paths, **fields, seconds=time.perf_counter() - start)
        return protocol.write_document(out, stem, document, render)


def run_architectures(config, scale, rows, out, run_keys):
    """Runs `rows` for each architecture of `config["arch"]` on one ColorMNIST split.

    Loads the data and the FID scorer once, fills each architecture's run
    settings (the `run_keys` of `config`) from `scale`, and runs the rows with
    `protocol.run_rows` into `out/<arch>`, with one progress bar for all.

    Returns:
        `(runs, test_data, document)`: `runs[arch]` is `run_rows`' `(models,
        results)`; `document` holds the keys every reproduction writes
        (`dataset`, `scale`, `config`, `data_path`, `fid_extractor`,
        `settings`, `out`, `environment`).
    """
    sizes = protocol.fill_from_scale(config, scale, config["arch"][0])
    data_path = color_mnist.resolve_data_path(config["data"])
    train_data, test_data = color_mnist.load_data(data_path, sizes["train_size"], sizes["test_size"])
    data = color_mnist.experiment_data(train_data, test_data, data_path)
    fid_scorer = color_mnist.fid_scorer_for(sizes, train_data, test_data, out)
    progress = Progress(len(config["arch"]) * len(rows), verbose=config["verbose"])
    runs, settings = {}, {}
    for arch in config["arch"]:
        base = {key: config[key] for key in run_keys}
        base = protocol.fill_from_scale({**base, "arch": arch, "robustness": True, "figures": False}, scale, arch)
        runs[arch] = protocol.run_rows(
            rows, base, data, color_mnist.networks, out / arch,
            fid_scorer=fid_scorer, progress=progress, prefix=f"{arch}: ", resume=config["resume"],
            overwrite=config.get("overwrite", False),
        )
        settings[arch] = protocol.describe_settings(runs[arch][1][rows[0]["label"]])
    progress.close()
    document = {
        "dataset": "ColorMNIST",
        "scale": scale.to_dict(),
        "config": config,
        "data_path": data_path,
        "fid_extractor": fid_scorer.get_config() if fid_scorer is not None else None,
        "settings": settings,
        "out": os.fspath(out),
        "environment": protocol.environment(),
    }
    return runs, test_data, document


def table_figures(folder, arch, models, results, x_test):
    """Accuracy against epsilon per task (Figure 5, right) and the encode-decode chains (Figure 1)."""
    labels = list(results)
    accuracy = {label: results[label]["accuracy"] for label in labels}
    paths = {}
    for task in next(iter(accuracy.values())):
        paths[f"accuracy_vs_epsilon_{task}"] = figures.accuracy_vs_epsilon(
            accuracy, task, Path(folder) / f"{arch}_accuracy_vs_epsilon_{protocol.slug(task)}.png"
        )
    paths["encode_decode_chains"] = figures.encode_decode_chains(
        [models[label] for label in labels],
        x_test[: protocol.CHAIN_IMAGES],
        path=Path(folder) / f"{arch}_encode_decode_chains.png",
        titles=labels,
    )
    return paths


def markdown(document):
    """table1.md: one table per architecture, the settings, and the paper's table."""
    scale = document["scale"]
    lines = [
        f"# Table 1 (Cemgil et al., 2020) on ColorMNIST, scale `{scale['name']}`",
        "",
        "Adversarial test accuracy (%) of linear probes on the representation f^mu for the digit and "
        "colour tasks at L-inf attack radius ε (pixels in [0, 1]; ε=0 is the clean accuracy). "
        "Time: median wall-clock seconds per training step relative to the VAE's, measured in this run. "
        "MSE: test reconstruction error of g(f^mu(x)) under the two readings of the paper's column "
        "(keras_avae.evaluation.reconstruction_mse): per pixel in 0..255 units, and the per-image Gaussian "
        "negative log-likelihood at v = 0.5, whose floor D/2 log(2 pi v) is 1346.2 for 28x28x3 "
        "(the paper's one column is shown under both). FID: decoder samples against test images.",
        "",
    ]
    if document["fid_extractor"]:
        fid = document["fid_extractor"]
        lines += [
            f"FID extractor: {fid['extractor']}; {fid['generated_images']} samples vs "
            f"{fid['real_images']} test images. These FIDs compare the rows with each other, not with "
            "the paper's InceptionV3 FIDs.",
            "",
        ]
    lines += protocol.architecture_sections(document, ARCHITECTURE_NAMES)
    lines += [
        "## The paper's Table 1 (ConvNet), for reference",
        "",
        protocol.results_table(document["paper"]).rstrip("\n"),
        "",
        f"Scale `{scale['name']}`: {scale['description']}",
        "",
    ]
    return "\n".join(lines)
