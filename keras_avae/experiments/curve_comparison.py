"""Figure 5 (middle) of Cemgil et al. (2020): several models' learning curves side by side.

`reproduce` reads the learning curves that `keras-avae reproduce learning-curve`
wrote (each folder's learning_curve.json) and, for each task and each radius
of `epsilons` (the paper's figure: 0.1), draws every model's robust accuracy
against its training steps on one plot: a line through its checkpoints (the
curve's lighter attack), a large marker at its last checkpoint under the full
evaluation, and a star at the paper's Table 1 value at the paper's budget. It
trains and evaluates nothing, and reads a curve still running as far as it has
come (the checkpoints evaluated so far).

Outputs, under `out`:

    curve_comparison.md / .json     one table per task and radius: the models' accuracy at each step
    figures/curves_<task>_eps<radius>.png

Example:
    reproduce({"curves": ["runs/curve_avae", "runs/curve_vae"], "out": "runs/figure5_middle"})
"""

import json
import math
from pathlib import Path

from keras_avae import figures
from keras_avae.experiments import learning_curve, run_directory
from keras_avae.experiments.settings import CurveComparisonSettings

STEM = "curve_comparison"
"""The name of the comparison's markdown and JSON files."""


def reproduce(overrides=None):
    """Reads the learning curves in `curves` and writes their comparison to `out`.

    Args:
        overrides: a dict of settings (fields of `settings.CurveComparisonSettings`), or one.

    Returns:
        The document written to curve_comparison.json: `epsilons`, `curves` (one per folder:
        `name`, `folder`, `label`, `arch`, `points`, `final`, `paper`), `paper_steps`,
        `figures` and `markdown`.
    """
    config = CurveComparisonSettings.from_dict(overrides)
    curves = named([read_curve(folder) for folder in config.curves])
    for curve in curves:
        for radius in config.epsilons:
            _check_radius(curve, radius)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "epsilons": list(config.epsilons),
        "curves": curves,
        "paper_steps": learning_curve.PAPER_STEPS,
    }
    if config.figures:
        document["figures"] = draw(document, out / "figures")
    return run_directory.write_document(out, STEM, document, markdown)


def read_curve(folder):
    """The learning curve in `folder` as far as it has come (`learning_curve.read_curve`), with `folder`;
    an error naming the folder if none of its checkpoints is evaluated yet."""
    try:
        document = learning_curve.read_curve(folder)
    except json.JSONDecodeError as error:
        raise ValueError(f"The learning curve in {folder} has a file that is not valid JSON ({error}).") from None
    if not document.get("points"):
        raise ValueError(f"The learning curve in {folder} has no evaluated checkpoint yet.")
    return {"folder": str(folder), **{key: document.get(key) for key in ("label", "arch", "points", "final", "paper")}}


def named(curves):
    """`curves`, each with its `name` in the figures and tables: "<label> / <arch>", followed by the
    folder's name where two curves would share it."""
    counts = {}
    for curve in curves:
        base = f"{curve['label']} / {curve['arch']}"
        counts[base] = counts.get(base, 0) + 1
    for curve in curves:
        base = f"{curve['label']} / {curve['arch']}"
        curve["name"] = base if counts[base] == 1 else f"{base} ({Path(curve['folder']).name})"
    return curves


def _check_radius(curve, radius):
    """A ValueError naming the curve if one of its evaluations has no accuracy at `radius`."""
    for point in curve["points"] + ([curve["final"]] if curve["final"] else []):
        for task, accuracies in point["accuracy"].items():
            if accuracy_at(accuracies, radius) is None:
                raise ValueError(
                    f"The learning curve in {curve['folder']} was not evaluated at epsilon={radius:g} ({task}, "
                    f"epoch {point['epoch']}); its radii are {sorted(float(key) for key in accuracies)}."
                )


def accuracy_at(accuracies, radius):
    """The accuracy in `{radius (str): accuracy}` at `radius`, matched up to float rounding; None if absent."""
    for key, value in accuracies.items():
        if math.isclose(float(key), radius, rel_tol=1e-9, abs_tol=1e-12):
            return value
    return None


def tasks_of(document):
    """The tasks of the first curve's first checkpoint (every curve of ColorMNIST has the same)."""
    return list(document["curves"][0]["points"][0]["accuracy"])


def markdown(document):
    """One table per task and radius: a row per model, a column per training step any model was
    evaluated at (the curve's attack), its last checkpoint under the full evaluation and the paper."""
    lines = ["# Learning curves side by side (Figure 5, middle)", ""]
    lines += [
        "Robust accuracy in % of the linear probes on f^mu. The step columns use each curve's lighter attack "
        f"(named per row); 'last, full' is the last checkpoint under the full evaluation; the paper's Table 1 "
        f"value is placed at ~{document['paper_steps']} steps (our `paper` scale).",
    ]
    steps = sorted({int(point["steps"]) for curve in document["curves"] for point in curve["points"]})
    header = ["model", "attack", *map(str, steps), "last, full", "paper"]
    for task in tasks_of(document):
        for radius in document["epsilons"]:
            lines += ["", f"## {task}, epsilon {radius:g}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for curve in document["curves"]:
                by_steps = {int(point["steps"]): accuracy_at(point["accuracy"][task], radius) for point in curve["points"]}
                final = curve["final"]
                paper = curve["paper"]
                cells = [curve["name"], figures.attack_label(curve["points"][0]["attack"])]
                cells += [_percent(by_steps.get(step)) for step in steps]
                cells.append(_percent(accuracy_at(final["accuracy"][task], radius)) + f" ({final['steps']} steps)" if final else "-")
                cells.append(_percent(accuracy_at(paper["accuracy"].get(task, {}), radius)) if paper else "-")
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f}"


def draw(document, folder):
    """One figure per task and radius (`figures.learning_curves`)."""
    paths = {}
    for task in tasks_of(document):
        for radius in document["epsilons"]:
            name = f"curves_{task}_eps{radius:g}"
            paths[name] = figures.learning_curves(
                document["curves"], task, radius, Path(folder) / f"{name}.png", paper_steps=document["paper_steps"],
                title=f"{task}: robust accuracy at $\\epsilon$ = {radius:g}",
            )
    return paths
