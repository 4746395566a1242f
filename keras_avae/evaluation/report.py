"""Tables and JSON of robustness results: the one place that writes them.

Markdown in the layouts of the paper (Table 1: one row per model, a column per
task and radius; Tables 2 and 3: one row per task, a column per model and
radius), with extra columns (time, MSE, FID, shift ratio, ...) given as
`Column`s, and a `checks` column when the results carry checks. JSON of one
evaluation holds the accuracies, the checks and the per-example records;
`merge_records` combines the records of several runs into their per-example
worst case.

Example:
    print(to_markdown(results, model_name="AVAE"))
    document = json.loads(to_json(results, model_name="AVAE", config=evaluator.get_config()))
"""

import dataclasses
import json
import numbers


@dataclasses.dataclass(frozen=True)
class Column:
    """An extra column of a table: its header and how to read and format a row's value.

    Attributes:
        header: the column's title.
        value: row dict -> value or None ("-").
        spec: format spec of the value.
        prefix: text before the value (e.g. "×").
    """

    header: str
    value: object
    spec: str = ".1f"
    prefix: str = ""

    def cell(self, row):
        return format_value(self.value(row), self.spec, self.prefix)


def format_value(value, spec, prefix=""):
    """`value` formatted with `spec` (and `prefix`), or "-" when it is None."""
    return "-" if value is None else f"{prefix}{value:{spec}}"


def checks_cell(checks):
    """"ok", "flagged: <names>" or "-" for a list of check records (dicts with `name`, `passed`)."""
    if not checks:
        return "-"
    failed = list(dict.fromkeys(check["name"] for check in checks if not check["passed"]))
    return "flagged: " + ", ".join(failed) if failed else "ok"


def accuracy_table(rows, columns=()):
    """Markdown in the layout of Table 1: accuracy in %, one column per task and radius, then `columns`.

    Args:
        rows: list of dicts with `label` and `accuracy` (`accuracy[task][epsilon]`,
            radii as floats or strings), and optionally `checks` (check records),
            read by a last "Checks" column when any row has them.
        columns: extra `Column`s after the accuracies.

    Returns:
        The table as a string, e.g.

            | Model | digit ε=0 | digit ε=0.1 | color ε=0 | color ε=0.1 |
            |:--|--:|--:|--:|--:|
            | AVAE | 97.3 | 88.1 | 100.0 | 99.8 |
    """
    accuracies = {row["label"]: _float_radii(check_results(row["accuracy"] or {}, allow_empty=True)) for row in rows}
    keys = []
    for row in accuracies.values():
        for task, by_radius in row.items():
            keys += [(task, epsilon) for epsilon in by_radius if (task, epsilon) not in keys]
    tasks = list(dict.fromkeys(task for task, _ in keys))
    keys = [(task, epsilon) for task in tasks for epsilon in sorted(e for t, e in keys if t == task)]
    columns = list(columns)
    if any(row.get("checks") for row in rows):
        columns.append(Column("Checks", lambda row: checks_cell(row.get("checks")), "s"))
    lines = [
        "| Model | " + " | ".join([f"{task} ε={epsilon:g}" for task, epsilon in keys] + [c.header for c in columns]) + " |",
        "|:--|" + "--:|" * (len(keys) + len(columns)),
    ]
    for row in rows:
        row_accuracy = accuracies[row["label"]]
        cells = [
            f"{100 * row_accuracy[task][epsilon]:.1f}" if epsilon in row_accuracy.get(task, {}) else "-"
            for task, epsilon in keys
        ]
        lines.append(f"| {row['label']} | " + " | ".join(cells + [column.cell(row) for column in columns]) + " |")
    return "\n".join(lines) + "\n"


def task_table(rows, tasks, epsilons, summaries=()):
    """Markdown in the layout of Tables 2 and 3: one row per task, a column per model and radius.

    Args:
        rows: list of dicts with `label` and `accuracy` (radii as strings).
        tasks: the task rows, in order.
        epsilons: the radii of each model's columns.
        summaries: `Column`s shown as extra rows (e.g. Time, MSE), one value per model.
    """
    epsilons = [f"{float(epsilon):g}" for epsilon in epsilons]
    header = "| Task | " + " | ".join(f"{row['label']} ε={epsilon}" for row in rows for epsilon in epsilons) + " |"
    lines = [header, "|:--|" + "--:|" * (len(rows) * len(epsilons))]
    for task in tasks:
        cells = []
        for row in rows:
            by_radius = (row.get("accuracy") or {}).get(task, {})
            cells += [f"{100 * by_radius[e]:.1f}" if e in by_radius else "-" for e in epsilons]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    padding = [""] * (len(epsilons) - 1)
    for column in summaries:
        cells = []
        for row in rows:
            cells += [column.cell(row)] + padding
        lines.append(f"| {column.header} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(results, model_name=None):
    """One model's `results[task][epsilon]` (or a dict model name -> results) as Table 1's layout.

    `RobustnessResults` add a "Checks" column, and the failed checks' sentences below the table.
    """
    rows = [result_row(name, row) for name, row in _rows(results, model_name).items()]
    problems = [f"- {row['label']}: {problem}" for row in rows for problem in row.get("problems", [])]
    table = accuracy_table(rows)
    return table + ("\nFailed checks:\n\n" + "\n".join(problems) + "\n" if problems else "")


def result_row(label, results):
    """A table row (`label`, `accuracy`, and `checks`/`problems` when `results` carry them)."""
    row = {"label": label, "accuracy": check_results(results)}
    if hasattr(results, "checks"):
        row["checks"] = [check.record() for check in results.checks]
        row["problems"] = list(results.problems)
    return row


def beyond_pgd(document, task, epsilon):
    """Points of accuracy that the attacks after PGD took at radius string `epsilon`, in a
    `to_document` dict (None when it has no records for them)."""
    records = ((document or {}).get("records") or {}).get(task, {}).get(epsilon)
    if not records:
        return None
    broken = (document.get("broken_by") or {}).get(task, {}).get(epsilon, {})
    later = sum(count for attack, count in broken.items() if attack not in ("pgd", "clean"))
    return 100.0 * later / len(records)


def accuracy_to_json(results):
    """`results[task][epsilon]` with radii as strings (`f"{epsilon:g}"`)."""
    return {
        task: {f"{float(epsilon):g}": float(accuracy) for epsilon, accuracy in accuracies.items()}
        for task, accuracies in check_results(results).items()
    }


def accuracy_from_json(accuracy):
    """`results[task][epsilon]` with float radii, from `accuracy_to_json`'s layout."""
    return _float_radii(accuracy)


def to_document(results, model_name=None, config=None):
    """One evaluation as a JSON-ready dict: `accuracy`, and `checks`, `flagged`, `problems`,
    `broken_by` and `records` when `results` are `RobustnessResults`; `model`, `config` if given."""
    document = {}
    if model_name is not None:
        document["model"] = model_name
    document["accuracy"] = accuracy_to_json(results)
    if hasattr(results, "records"):
        document["flagged"] = results.flagged
        document["problems"] = list(results.problems)
        document["checks"] = [check.record() for check in results.checks]
        document["broken_by"] = {
            task: {f"{float(e):g}": counts for e, counts in by_radius.items()} for task, by_radius in results.broken_by.items()
        }
        document["records"] = {
            task: {f"{float(e):g}": records for e, records in by_radius.items()} for task, by_radius in results.records.items()
        }
    if config is not None:
        document["config"] = config
    return document


def to_json(results, model_name=None, config=None, indent=2):
    """`to_document` as a JSON string; `results_from_json` reads the accuracies back."""
    return json.dumps(to_document(results, model_name, config), indent=indent)


def results_from_json(text):
    """`results[task][epsilon]` (float radii) from a `to_json` string."""
    return accuracy_from_json(json.loads(text)["accuracy"])


def merge_records(documents):
    """The per-example worst case of several evaluations of one model on the same test examples.

    Args:
        documents: `to_document` dicts (or their JSON strings) with `records`.

    Returns:
        `(accuracy, records)`: `accuracy[task][radius]` of the merged
        records, and `records[task][radius]` (radius a string), each example broken if any
        document broke it (the first such record kept).
    """
    documents = [json.loads(d) if isinstance(d, str) else d for d in documents]
    if not documents or any("records" not in d for d in documents):
        raise ValueError("`merge_records` needs documents written by `to_json` from RobustnessResults (with records).")
    merged = {}
    for document in documents:
        for task, by_radius in document["records"].items():
            for epsilon, records in by_radius.items():
                current = merged.setdefault(task, {}).setdefault(epsilon, list(records))
                if len(current) != len(records):
                    raise ValueError(
                        f"Records of {task!r} at epsilon={epsilon} differ in length ({len(current)} vs "
                        f"{len(records)}): merge evaluations of the same test examples only."
                    )
                merged[task][epsilon] = [old if old is not None else new for old, new in zip(current, records)]
    accuracy = {
        task: {e: sum(r is None for r in records) / len(records) for e, records in by_radius.items()}
        for task, by_radius in merged.items()
    }
    return accuracy, merged


def check_results(results, allow_empty=False):
    """Checks `results[task][epsilon] -> accuracy`; returns it."""
    if not isinstance(results, dict) or (not results and not allow_empty) or not all(
        isinstance(accuracies, dict) and all(isinstance(a, numbers.Real) for a in accuracies.values())
        for accuracies in results.values()
    ):
        raise ValueError(f"`results` must be a dict task -> {{epsilon: accuracy}}. Received: {results!r:.80}")
    return results


def _float_radii(results):
    return {task: {float(e): float(a) for e, a in accuracies.items()} for task, accuracies in results.items()}


def _rows(results, model_name):
    if not isinstance(results, dict) or not results:
        raise ValueError(f"`results` must be a non-empty dict. Received: {results!r:.80}")
    first = next(iter(results.values()))
    nested = isinstance(first, dict) and first and isinstance(next(iter(first.values())), dict)
    if nested:
        if model_name is not None:
            raise ValueError("`model_name` names a single model's results; these are per model already.")
        return dict(results)
    return {model_name if model_name is not None else "model": results}
