"""Figure 5 (left) of Cemgil et al. (2020): adversarial accuracy of the AVAE against rho.

One AVAE is trained per coupling strength rho and architecture, each with
`protocol.run_one`, and scored like the rows of Table 1 (linear probes on
f^mu, PGD at each radius, MSE, FID). The paper's analysis predicts higher
robust accuracy as rho approaches 1.

Outputs, under `out` (default `runs/rho_sweep_<scale>`): `rho_sweep.md` and
`rho_sweep.json`, `figures/<arch>_accuracy_vs_rho_<task>.png` (one line per
radius), and a run directory per model, `<arch>/AVAE_rho_<rho>/`.

Example:
    document = reproduce({"scale": "small", "rhos": [0.5, 0.9, 0.975], "arch": ["mlp"]})
"""

import os
import time
from pathlib import Path

from keras_avae import figures, files
from keras_avae.experiments import color_mnist, protocol
from keras_avae.experiments.scale import TABLE1_SCALES
from keras_avae.experiments.table1 import (
    ARCHITECTURE_NAMES,
    parse_list,
    run_architectures,
)
from keras_avae.validation import check_rho

DEFAULT_RHOS = (0.5, 0.8, 0.9, 0.95, 0.975, 0.99)
"""Coupling strengths of the sweep (the paper does not list Figure 5's; 0.975 is Table 1's)."""

_RUN_KEYS = [key for key in protocol.RUN_DEFAULTS if key not in ("model", "arch", "rho", "robustness")]

DEFAULTS = {
    **{key: protocol.RUN_DEFAULTS[key] for key in _RUN_KEYS},
    "scale": "small",
    "arch": ["mlp", "conv"],
    "data": None,
    "rhos": list(DEFAULT_RHOS),
    "resume": False,
    "overwrite": False,
}
"""Settings of `reproduce`: those of `table1.DEFAULTS` (same scales), with `rhos`
(a list, or a comma-separated string, of values in (-1, 1)) instead of `rows`."""


def parse_rhos(value):
    """`value` (a list or a comma-separated string) as a sorted list of distinct rho in (-1, 1)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        rhos = sorted({check_rho(float(item)) for item in items if str(item).strip()})
    except ValueError:
        raise ValueError(f"`rhos` must be numbers in (-1, 1). Received: rhos={value!r}") from None
    if not rhos:
        raise ValueError(f"`rhos` must be numbers in (-1, 1). Received: rhos={value!r}")
    return rhos


def row_label(rho):
    return f"AVAE rho={rho:g}"


def reproduce(overrides=None):
    """Trains and evaluates one AVAE per rho and architecture; writes the sweep's table and figure.

    Returns:
        A dict: `architectures` (arch -> list of row summaries with `rho`,
        `accuracy[task][radius]`, `test_reconstruction_mse`, `fid`, ...),
        `markdown`, `figures`, `scale`, `config`, `out` and `seconds`.
    """
    start = time.perf_counter()
    config, scale = protocol.resolve_config(DEFAULTS, overrides, TABLE1_SCALES)
    config["arch"] = parse_list(config["arch"], color_mnist.ARCHITECTURES, "arch")
    config["rhos"] = parse_rhos(config["rhos"])
    out = Path(config["out"] or os.path.join("runs", f"rho_sweep_{scale.name}"))
    config["out"] = os.fspath(out)
    rows = [{"label": row_label(rho), "model": "avae", "rho": rho} for rho in config["rhos"]]
    with files.locked(out):
        return _sweep(config, rows, scale, out, start)


def _sweep(config, rows, scale, out, start):
    runs, _, document = run_architectures(config, scale, rows, out, _RUN_KEYS)
    tables, figure_paths = {}, {}
    for arch, (_, results) in runs.items():
        tables[arch] = [
            {
                "rho": rho,
                "label": row_label(rho),
                **{key: results[row_label(rho)].get(key) for key in (
                    "accuracy", "probe_accuracy", "seconds_per_step", "train_seconds",
                    "test_reconstruction_mse", "test_reconstruction_nll", "fid", "sensitivity", "choices", "out",
                )},
            }
            for rho in config["rhos"]
        ]
        if config["figures"]:
            figure_paths[arch] = sweep_figures(out / "figures", arch, tables[arch], config["epsilons"])
    document.update(
        figure="Figure 5, left (Cemgil et al., 2020)",
        architectures=tables,
        figures=figure_paths,
        seconds=time.perf_counter() - start,
    )
    return protocol.write_document(out, "rho_sweep", document, markdown)


def sweep_figures(folder, arch, rows, epsilons):
    """`figures.accuracy_vs_rho` per task, one line per radius."""
    results_by_rho = {row["rho"]: row["accuracy"] for row in rows}
    paths = {}
    for task in rows[0]["accuracy"]:
        paths[f"accuracy_vs_rho_{task}"] = figures.accuracy_vs_rho(
            results_by_rho, task, list(epsilons), Path(folder) / f"{arch}_accuracy_vs_rho_{protocol.slug(task)}.png"
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
    lines += protocol.architecture_sections(document, ARCHITECTURE_NAMES)
    lines += [f"Scale `{document['scale']['name']}`: {document['scale']['description']}", ""]
    return "\n".join(lines)
