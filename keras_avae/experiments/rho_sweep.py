"""Figure 5 (left) of Cemgil et al. (2020): adversarial accuracy of the AVAE against rho.

One AVAE is trained per coupling strength rho and architecture, each with
`run.run_one`, and scored like the rows of Table 1 (linear probes on
f^mu, PGD at each radius, MSE, FID). The paper's analysis predicts higher
robust accuracy as rho approaches 1.

Outputs, under `out` (default `runs/rho_sweep_<scale>`): `rho_sweep.md` and
`rho_sweep.json`, `figures/<arch>_accuracy_vs_rho_<task>.png` (one line per
radius), and a run directory per model, `<arch>/AVAE_rho_<rho>/`.

Example:
    document = reproduce({"scale": "small", "rhos": [0.5, 0.9, 0.975], "arch": ["mlp"]})
"""

from pathlib import Path

from keras_avae import figures
from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments import run_directory, summaries
from keras_avae.experiments.settings import RhoSweepSettings

SWEEP_KEYS = (
    "accuracy", "probe_accuracy", "seconds_per_step", "train_seconds", "test_reconstruction_mse",
    "test_reconstruction_nll", "fid", "sensitivity", "choices", "out",
)
"""The numbers of one rho that rho_sweep.json reports."""


def row_label(rho):
    return f"AVAE rho={rho:g}"


def row_summary(metrics):
    """One rho's entry in rho_sweep.json."""
    return {"rho": metrics["config"]["rho"], "label": metrics["label"], **{key: metrics.get(key) for key in SWEEP_KEYS}}


def reproduce(overrides=None):
    """Trains and evaluates one AVAE per rho and architecture; writes the sweep's table and figure.

    Args:
        overrides: a dict of settings (fields of `settings.RhoSweepSettings`: those of Table 1,
            same scales, with `rhos`, a list or a comma-separated string of values in (-1, 1),
            instead of the rows), or a `RhoSweepSettings`.

    Returns:
        A dict: `architectures` (arch -> list of row summaries with `rho`,
        `accuracy[task][radius]`, `test_reconstruction_mse`, `fid`, ...),
        `markdown`, `figures`, `scale`, `config`, `out` and `seconds`.
    """
    settings = RhoSweepSettings.from_dict(overrides)
    rows = [{"label": row_label(rho), "model": "avae", "rho": rho} for rho in settings.rhos]

    def draw(folder, arch, models, results, table, x_test):
        return sweep_figures(folder, arch, table, settings.epsilons)

    return rows_lib.reproduce_rows(
        settings, rows, markdown, summarize=row_summary, draw=draw, figure="Figure 5, left (Cemgil et al., 2020)"
    )


def sweep_figures(folder, arch, rows, epsilons):
    """`figures.accuracy_vs_rho` per task, one line per radius."""
    results_by_rho = {row["rho"]: row["accuracy"] for row in rows}
    paths = {}
    for task in rows[0]["accuracy"]:
        paths[f"accuracy_vs_rho_{task}"] = figures.accuracy_vs_rho(
            results_by_rho, task, list(epsilons), Path(folder) / f"{arch}_accuracy_vs_rho_{run_directory.slug(task)}.png"
        )
    return paths


def markdown(document):
    """rho_sweep.md: one table per architecture (rows: rho), and the settings."""
    lines = [
        "# Adversarial accuracy of the AVAE against rho (Figure 5, left), ColorMNIST, "
        f"scale `{document['scale']['name']}`",
        "",
        "Adversarial test accuracy (%) of linear probes on f^mu at L-inf radius ε; MSE per pixel in 0..255 "
        "units and per-image Gaussian negative log-likelihood; FID of decoder samples against test images"
        + (f" (extractor: {document['fid_extractor']['extractor']})" if document["fid_extractor"] else "")
        + ".",
        "",
    ]
    lines += summaries.architecture_sections(document, rows_lib.ARCHITECTURE_NAMES)
    lines += [f"Scale `{document['scale']['name']}`: {document['scale']['description']}", ""]
    return "\n".join(lines)
