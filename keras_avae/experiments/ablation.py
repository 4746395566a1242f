"""The ablation study of the paper's open choices: which of them decides the AVAE's robustness.

The paper fixes the AVAE by eq. (13) and Algorithm 1, but leaves choices open
that its released code, its derivation and its algorithms settle differently
(`keras_avae.models`): how z is drawn (`posterior_sampling`), where the
coupling is evaluated (`coupling`), whether the delusion is the decoder mean
or a sample of p_theta(x~|z) (`delusion`), whether the extra encoder passes
move BatchNorm's statistics (`extra_pass_statistics`), and in which mode the
smooth encoder's attack sees the encoder (`attack_mode`).

Each row of the study changes one choice from a reference, on one budget
and one evaluation protocol, per architecture:

    VAE                                    eq. (2)
    AVAE (Alg. 1)                          std, factorised, mean delusion, statistics updated
    AVAE posterior=variance                z = mu + eps sigma^2, the released code
    AVAE coupling=joint                    coupling at the generating z (eq. 10's derivation)
    AVAE delusion=sample                   x~ ~ p_theta(x~|z) (eq. 10)
    AVAE statistics=keep                   the delusion's pass keeps BatchNorm's statistics
    AVAE-SS (Alg. 4)                       from the VAE, factorised coupling, mean delusions
    AVAE-SS coupling=joint                 ... at the generating z
    AVAE-SS coupling=joint delusion=sample
    SE_0.1                                 attack in inference mode, statistics updated
    SE_0.1 attack=training                 the attack sees the encoder as its bound does
    SE_0.1 statistics=keep                 the adversarial pass keeps BatchNorm's statistics

Every row names all its choices explicitly, so the study does not change when
a model's defaults do. The MLP has no BatchNorm, so there the last rows of
each group repeat their reference exactly (a control).

The table reports robust accuracy of linear probes on f^mu at each radius
(default 0, 0.05, 0.1, 0.2), the shift ratio and the median class-centroid
distance of `keras_avae.evaluation.representation_sensitivity` at the smallest
nonzero radius (first task), the reconstruction MSE (both readings of the
paper's column: per pixel in 0..255 units, and the per-image Gaussian
negative log-likelihood at v), and the time factor.

Outputs, under `out` (default `runs/ablation_<scale>`): `ablation.md`,
`ablation.json`, `figures/<arch>_accuracy_vs_epsilon_<task>.png`, and one run
directory per row, `<arch>/<row>/`.

Example:
    document = reproduce({"scale": "small", "arch": ["conv"]})
    print(document["markdown"])
"""

from keras_avae.evaluation import report
from keras_avae.evaluation.report import Column
from keras_avae.experiments import rows as rows_lib
from keras_avae.experiments import summaries
from keras_avae.experiments.settings import AblationSettings

PAPER_AVAE = {"posterior_sampling": "std", "coupling": "factorised", "delusion": "mean", "extra_pass_statistics": "update"}
"""Algorithm 1 as printed: the reference every AVAE row changes one choice of."""

PAPER_SE = {"posterior_sampling": "std", "attack_mode": "inference", "extra_pass_statistics": "update"}
"""Algorithm 2 as this library implements it by default: the reference of the SE rows."""

SE_EPSILON = 0.1
"""The smooth encoder's training radius in the study (Table 1's SE_0.1)."""


def _row(label, model, reference, pretrained=None, **changes):
    row = {"label": label, "model": model, **reference, **changes}
    if pretrained is not None:
        row["pretrained"] = pretrained
    return row


ROWS = (
    _row("VAE", "vae", {"posterior_sampling": "std"}),
    _row("AVAE (Alg. 1)", "avae", PAPER_AVAE),
    _row("AVAE posterior=variance", "avae", PAPER_AVAE, posterior_sampling="variance"),
    _row("AVAE coupling=joint", "avae", PAPER_AVAE, coupling="joint"),
    _row("AVAE delusion=sample", "avae", PAPER_AVAE, delusion="sample"),
    _row("AVAE statistics=keep", "avae", PAPER_AVAE, extra_pass_statistics="keep"),
    _row("AVAE-SS (Alg. 4)", "avae_ss", PAPER_AVAE, pretrained="VAE"),
    _row("AVAE-SS coupling=joint", "avae_ss", PAPER_AVAE, pretrained="VAE", coupling="joint"),
    _row(
        "AVAE-SS coupling=joint delusion=sample", "avae_ss", PAPER_AVAE, pretrained="VAE",
        coupling="joint", delusion="sample",
    ),
    _row("SE_0.1", "se", PAPER_SE, se_epsilon=SE_EPSILON),
    _row("SE_0.1 attack=training", "se", PAPER_SE, se_epsilon=SE_EPSILON, attack_mode="training"),
    _row("SE_0.1 statistics=keep", "se", PAPER_SE, se_epsilon=SE_EPSILON, extra_pass_statistics="keep"),
)
"""The rows of the study, in order; AVAE-SS rows post-train the VAE row."""

ROW_LABELS = tuple(row["label"] for row in ROWS)

def reproduce(overrides=None):
    """Runs the ablation study on ColorMNIST; writes its table, figures and a run directory per row.

    Args:
        overrides: a dict of settings (fields of `settings.AblationSettings`, which has no open
            choices: the rows fix them; radii 0, 0.05, 0.1, 0.2 and no FID by default), or an
            `AblationSettings`.

    Returns:
        A dict: `architectures` (arch -> list of row summaries with `label`,
        `choices`, `accuracy[task][radius]`, `sensitivity`, `test_reconstruction_mse`,
        ...), `markdown`, `figures`, `scale`, `config`, `out` and `seconds`.
    """
    settings = AblationSettings.from_dict(overrides)
    rows = rows_lib.select_rows(ROWS, settings.rows)
    settings = settings.replace(rows=tuple(row["label"] for row in rows))
    return rows_lib.reproduce_rows(settings, rows, markdown, study="The paper's open choices (keras_avae ablation)")


def ablation_table(rows):
    """Markdown: robust accuracy per task and radius, shift ratio, centroid distance, MSE (both readings), time.

    The shift ratio and centroid distance are those of `summaries.shift_ratio_column`'s radius and task.
    """
    epsilon, task = summaries.shift_ratio_column(rows)
    columns = [
        Column(f"shift ratio ε={epsilon} ({task})", lambda row: summaries.sensitivity_value(row, "shift_ratio", epsilon, task), ".2f"),
        Column(f"centroid distance ({task})", lambda row: summaries.sensitivity_value(row, "centroid_distance", epsilon, task), ".2f"),
        Column("MSE (0..255 px)", lambda row: row.get("test_reconstruction_mse")),
        Column("MSE (NLL, v)", lambda row: row.get("test_reconstruction_nll")),
        Column("Time", lambda row: row.get("time_factor"), ".2f", "×"),
    ]
    return report.accuracy_table([summaries.table_row(row) for row in rows], columns)


def markdown(document):
    """ablation.md: per architecture the results and the choices of each row, then the settings."""
    scale = document["scale"]
    lines = [
        f"# The paper's open choices on ColorMNIST, scale `{scale['name']}`",
        "",
        "Each row changes one choice from its reference (AVAE: Algorithm 1 as printed; SE: Algorithm 2 with "
        "an inference-mode attack). Adversarial test accuracy (%) of linear probes on f^mu at L-inf radius ε. "
        "Shift ratio: how far PGD moves f^mu within the ball over the median distance between class "
        "centroids of f^mu (near 1 or above: no linear probe can be robust). MSE: per pixel in 0..255 units, "
        "and the per-image Gaussian negative log-likelihood at the model's v (the two readings of the "
        "paper's column). Time: seconds per training step relative to the VAE's, measured in this run.",
        "",
    ]
    for arch, rows in document["architectures"].items():
        lines += [
            f"## {rows_lib.ARCHITECTURE_NAMES.get(arch, arch)}",
            "",
            ablation_table(rows).rstrip("\n"),
            "",
            "Choices of each row:",
            "",
            summaries.choices_table(rows).rstrip("\n"),
            "",
            document["settings"][arch],
            "",
        ]
    lines += [f"Scale `{scale['name']}`: {scale['description']}", ""]
    return "\n".join(lines)
