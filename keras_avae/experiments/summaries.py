"""The markdown of runs and tables: Table 1's layout, the choices of each row, how a run was measured.

Built on `keras_avae.evaluation.report` (the accuracy tables); these add the
experiments' columns (time factor, both readings of the MSE, FID, shift ratio,
what the ensemble broke beyond PGD) and sentences.
"""

from keras_avae.evaluation import report, robustness
from keras_avae.evaluation.report import Column
from keras_avae.experiments.settings import CHOICE_NAMES


def results_table(rows):
    """A Markdown table in the layout of Table 1: robust accuracy in %, then Time, MSE and FID.

    `report.accuracy_table` with the columns Time (seconds per training step
    relative to the VAE's), the two readings of the paper's MSE column
    (`test_reconstruction_mse`, per pixel in 0..255 units, and
    `test_reconstruction_nll`, the per-image Gaussian negative
    log-likelihood), FID, and, when rows carry `sensitivity`
    (`evaluate_model`), the shift ratio of the first task at the smallest
    attacked radius; a Checks column when rows carry checks.

    Args:
        rows: list of metrics dicts (`run_one`'s) with `label` and `accuracy`.
    """
    columns = [
        Column("Time", lambda row: row.get("time_factor"), ".1f", "×"),
        Column("MSE (0..255 px)", lambda row: row.get("test_reconstruction_mse")),
        Column("MSE (NLL)", lambda row: row.get("test_reconstruction_nll")),
        Column("FID", lambda row: row.get("fid"), ".2f"),
    ]
    ratio_column = shift_ratio_column(rows)
    if ratio_column:
        epsilon, task = ratio_column
        columns.append(
            Column(f"shift ratio ε={epsilon} ({task})", lambda row: sensitivity_value(row, "shift_ratio", *ratio_column), ".2f")
        )
    beyond = beyond_pgd_column(rows)
    if beyond:
        columns.append(beyond)
    return report.accuracy_table([table_row(row) for row in rows], columns)


def beyond_pgd_column(rows):
    """The `Column` of what the ensemble's later attacks (APGD, Square) broke beyond PGD, in points
    of accuracy per task at the smallest attacked radius; None when no row has records."""
    documents = [row.get("robustness") for row in rows if (row.get("robustness") or {}).get("records")]
    if not documents:
        return None
    tasks = list(documents[0]["records"])
    epsilon = min((e for e in documents[0]["records"][tasks[0]] if float(e) > 0), key=float, default=None)
    if epsilon is None:
        return None

    def cell(row):
        values = [report.beyond_pgd(row.get("robustness"), task, epsilon) for task in tasks]
        return None if None in values else " / ".join(f"{value:.1f}" for value in values)

    return Column(f"beyond PGD ε={epsilon} ({' / '.join(tasks)})", cell, "s")


def table_row(metrics):
    """A metrics dict as a `report.accuracy_table` row: its checks read from `robustness`."""
    return {**metrics, "checks": (metrics.get("robustness") or {}).get("checks")}


def sensitivity_value(row, key, epsilon, task):
    """`key` ("shift_ratio", "centroid_distance") of `row`'s sensitivity at radius string `epsilon` for `task`."""
    return (row.get("sensitivity") or {}).get(epsilon, {}).get(key, {}).get(task)


def shift_ratio_column(rows):
    """`(radius string, task)` of the shift ratio the tables show (the first task at the smallest
    attacked radius), or None if no row has one."""
    for row in rows:
        sensitivity = row.get("sensitivity")
        if sensitivity:
            epsilon = min(sensitivity, key=float)
            ratios = sensitivity[epsilon].get("shift_ratio")
            if ratios:
                return epsilon, next(iter(ratios))
    return None


def describe_settings(metrics):
    """One paragraph on how a run's numbers were measured."""
    config = metrics["config"]
    parts = []
    if "epochs" in config:
        parts.append(
            f"{metrics['num_train']} training images, {config['epochs']} epoch(s) of batch "
            f"{config['batch_size']}, Adam {config['learning_rate']:g}"
        )
    parts += [
        f"linear probes on f^mu of {metrics['num_train']} training images; "
        f"L-inf attacks ({attack_names(config.get('attacks'))}) on {metrics['num_attacked']} test images, "
        f"{config['attack_steps']} steps, PGD {config['restarts']} start(s) x losses {', '.join(config['losses'])}"
        + (f", Square {config['square_queries']} queries" if "square" in attack_names(config.get("attacks")) else ""),
        f"MSE: per-pixel squared error of g(f^mu(x)) in 0..255 units and per-image Gaussian negative "
        f"log-likelihood at the model's v, on {metrics['num_test']} test images",
    ]
    if metrics.get("fid_extractor"):
        fid = metrics["fid_extractor"]
        parts.append(
            f"FID: {fid['generated_images']} samples vs {fid['real_images']} test images, "
            f"features of {fid['extractor']}"
        )
    return "; ".join(parts) + "."


def attack_names(attacks):
    """The attack names of a run's `attacks` setting, comma-separated (runs before the ensemble: "pgd")."""
    return ", ".join(robustness.check_attacks(attacks or "pgd"))


def sensitivity_sentence(sensitivity):
    """One sentence on how far attacks move f^mu, from `evaluate_model`'s `sensitivity`."""
    parts = []
    for epsilon, result in sensitivity.items():
        ratios = ", ".join(f"{task} {ratio:.2f}" for task, ratio in result.get("shift_ratio", {}).items())
        parts.append(
            f"at ε={epsilon} it moves ||Δf^mu|| by {result['shift']:.2f} (random corner "
            f"{result['random_shift']:.2f}); over the median class-centroid distance: {ratios}"
        )
    return "Representation sensitivity (PGD on ||f^mu(x~) - f^mu(x)||): " + "; ".join(parts) + "."


def run_summary(metrics):
    """summary.md of one run."""
    lines = [f"# {metrics['label']} ({metrics.get('arch')})", ""]
    if metrics.get("accuracy"):
        lines += ["Adversarial test accuracy (%):", "", results_table([metrics]).rstrip("\n"), ""]
    lines.append(
        "Clean linear-probe accuracy on all test images: "
        + ", ".join(f"{task} {100 * value:.1f}%" for task, value in metrics["probe_accuracy"].items())
        + "."
    )
    nll = metrics.get("test_reconstruction_nll")
    if metrics.get("test_reconstruction_mse") is not None:  # a bare encoder has no decoder
        lines.append(
            f"Reconstruction error, the two readings of Table 1's MSE: per pixel in 0..255 units "
            f"{metrics['test_reconstruction_mse']:.1f}"
            + (f"; per-image Gaussian negative log-likelihood {nll:.1f}" if nll is not None else "")
            + f"; per-image sum of squared errors in [0, 1] units: {metrics['test_reconstruction_sse']:.2f}."
        )
    problems = (metrics.get("robustness") or {}).get("problems")
    if problems:
        lines += ["", "Failed checks of the evaluation (its accuracies may be too high):", ""]
        lines += [f"- {problem}" for problem in problems]
        lines.append("")
    if metrics.get("choices"):
        lines.append("Choices: " + ", ".join(f"{name}={value}" for name, value in metrics["choices"].items()) + ".")
    if metrics.get("sensitivity"):
        lines.append(sensitivity_sentence(metrics["sensitivity"]))
    if metrics.get("fid") is not None:
        lines.append(f"FID: {metrics['fid']:.2f}.")
    seconds = metrics.get("seconds_per_step")
    if seconds is not None:
        lines.append(
            f"Training: {metrics['train_steps']} steps in {metrics['train_seconds']:.1f} s, "
            f"median {1000 * seconds:.1f} ms per step."
        )
    lines += ["", describe_settings(metrics), ""]
    return "\n".join(lines)


def architecture_sections(document, names):
    """Markdown lines: per architecture, a heading, its results table, the rows' choices and its settings."""
    lines = []
    for arch, rows in document["architectures"].items():
        lines += [f"## {names.get(arch, arch)}", "", results_table(rows).rstrip("\n"), ""]
        if any(row.get("choices") for row in rows):
            lines += ["Choices of each row:", "", choices_table(rows).rstrip("\n"), ""]
        lines += [document["settings"][arch], ""]
    return lines


def choices_table(rows):
    """Markdown: the open choices (`settings.CHOICE_NAMES`) each row's model was built with; "-" where it has none."""
    names = list(CHOICE_NAMES)
    lines = ["| Model | " + " | ".join(names) + " |", "|:--|" + "--|" * len(names)]
    for row in rows:
        choices = row.get("choices") or {}
        lines.append(f"| {row['label']} | " + " | ".join(choices.get(name, "-") for name in names) + " |")
    return "\n".join(lines) + "\n"
