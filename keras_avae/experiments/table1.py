"""Table 1 of Cemgil et al. (2020): seven models on ColorMNIST, robust accuracy, time, MSE and FID.

For each architecture (MLP and convnet, Appendix F) the seven rows of Table 1
are trained and evaluated in order, each with `run.run_one`:

    VAE           eq. (2)
    SE_0.1        smooth encoder trained against PGD of radius 0.1 (rho_SE = 0.95)
    SE_0.2        ... of radius 0.2
    AVAE          eq. (13), rho = 0.975
    SE_0.1-AVAE   eq. (35), rho = 0.975, rho_SE = 0.95, radius 0.1
    SE_0.2-AVAE   ... radius 0.2
    AVAE-SS       eq. (34): the trained VAE post-trained without data, rho = 0.975

Every row is scored on the same data: digit and colour accuracy of linear
probes on f^mu at epsilon 0, 0.1 and 0.2 (`AdversarialEvaluator`), the time
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

from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments import summaries, verdicts
from keras_avae.experiments.verdicts import Claim, Comparison
from keras_avae.experiments.settings import Table1Settings

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

PAPER_ARCH = "conv"
"""The architecture of the paper's Table 1: the one our rows are compared with it in."""

_ROBUST_CELLS = (("digit", "0.1"), ("digit", "0.2"), ("color", "0.1"), ("color", "0.2"))


def _above(above, below, cells):
    return tuple(Comparison(above, below, cell) for cell in cells)


CLAIMS = (
    Claim(
        "The AVAE raises the clean accuracy and the robustness over the VAE (section 5: \"AVAE increases the "
        "nominal accuracy and achieves high adversarial robustness\")",
        _above("AVAE", "VAE", (("digit", "0"), *_ROBUST_CELLS)),
    ),
    Claim(
        "SE-AVAE is above SE at ε = 0.1 (digit; section 5: \"both objectives can be combined to provide improved "
        "adversarial accuracy\")",
        _above("SE_0.1-AVAE", "SE_0.1", [("digit", "0.1")]) + _above("SE_0.2-AVAE", "SE_0.2", [("digit", "0.1")]),
    ),
    Claim(
        "SE-AVAE is above the AVAE at ε = 0.1 (digit)",
        _above("SE_0.1-AVAE", "AVAE", [("digit", "0.1")]) + _above("SE_0.2-AVAE", "AVAE", [("digit", "0.1")]),
    ),
    Claim(
        "AVAE-SS is more robust than the VAE it post-trains (section 5: \"significantly improve the robustness\")",
        _above("AVAE-SS", "VAE", _ROBUST_CELLS),
    ),
    Claim(
        "AVAE-SS is less robust than the AVAE (section 5: \"not competitive in terms of the final adversarial "
        "accuracy\")",
        _above("AVAE", "AVAE-SS", [("digit", "0.1"), ("digit", "0.2")]),
    ),
    Claim(
        "A training step of SE costs more than one of the AVAE (section 5: \"almost 2.7 times\")",
        _above("SE_0.1", "AVAE", ["time_factor"]) + _above("SE_0.2", "AVAE", ["time_factor"]),
    ),
)
"""The claims section 5 makes from Table 1, as comparisons of its cells (`verdicts.Claim`)."""

def reproduce(overrides=None):
    """Runs Table 1 on ColorMNIST and writes the table, its figures and a run directory per row.

    Args:
        overrides: a dict of settings (fields of `settings.Table1Settings`; None values keep the
            defaults), or a `Table1Settings`.

    Returns:
        A dict: `architectures` (arch -> list of row summaries, each with
        `label`, `accuracy[task][radius]`, `time_factor`,
        `test_reconstruction_mse`, `fid`, ...), `markdown` (the text of
        table1.md), `paper`, `scale`, `config`, `fid_extractor`, `figures`,
        `out` and `seconds`.
    """
    settings = Table1Settings.from_dict(overrides)
    rows = rows_lib.select_rows(ROWS, settings.rows)
    settings = settings.replace(rows=tuple(row["label"] for row in rows))
    return rows_lib.reproduce_rows(settings, rows, markdown, table="Table 1 (Cemgil et al., 2020)", paper=list(PAPER))


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
    lines += summaries.architecture_sections(document, rows_lib.ARCHITECTURE_NAMES)
    lines += against_the_paper(document)
    lines += [
        "## The paper's Table 1 (ConvNet), for reference",
        "",
        summaries.results_table(document["paper"]).rstrip("\n"),
        "",
        f"Scale `{scale['name']}`: {scale['description']}",
        "",
    ]
    return "\n".join(lines)


def against_the_paper(document):
    """Markdown lines: the convnet's rows against the paper's, a verdict per row, and `CLAIMS`;
    none when the table has no convnet rows (the paper's Table 1 is the convnet's)."""
    ours = document["architectures"].get(PAPER_ARCH)
    if not ours:
        return []
    comparison = verdicts.compare(ours, document["paper"], CLAIMS)
    return [
        f"## Against the paper ({rows_lib.ARCHITECTURE_NAMES[PAPER_ARCH]})",
        "",
        f"Accuracy (%) as ours (paper's). A row reproduces when every cell is within "
        f"{100 * verdicts.TOLERANCE:g} points of the paper's; it reproduces the ordering when, wherever the paper "
        f"puts it {100 * verdicts.TOLERANCE:g} points or more above or below another row, ours does too. "
        "Then the claims section 5 draws from the table, tested on our numbers.",
        "",
        verdicts.markdown(comparison, ours, document["paper"]).rstrip("\n"),
        "",
    ]
