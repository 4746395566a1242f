"""A reproduced table against the paper's: a verdict per row and whether the paper's claims hold.

Accuracies are fractions, keyed like a row's `accuracy[task][epsilon]`
(`run.run_one`'s metrics and `table1.PAPER`). A row

- *reproduces* when every accuracy cell the paper prints for it is within
  `TOLERANCE` (5 points) of the paper's;
- else *reproduces the ordering* when, in every cell where the paper puts it
  at least `TOLERANCE` above or below another row of the table, ours orders
  the two rows the same way (rows the paper puts closer than that may come
  in either order: the paper's own run-to-run spread is not known);
- else *does not reproduce*; the verdict names the cells and pairs that fail.

A claim is a sentence of the paper with the comparisons that make it true
(`Claim`): row A above row B in a cell, or in a metric such as the time factor.
It holds when every comparison does in our numbers; `compare` also checks it
on the paper's own numbers, so a claim that misreads the table shows.

Example:
    comparison = compare(ours_rows, table1.PAPER, table1.CLAIMS)
    comparison["rows"][0]["verdict"]   # "reproduces", "reproduces the ordering" or "does not reproduce"
"""

import dataclasses

TOLERANCE = 0.05
"""How far (a fraction: 5 points of accuracy) a cell may be from the paper's and still reproduce it."""

_ROUNDING = 1e-9
"""Slack for fractions read from printed percentages (97.3 / 100 is not exactly 0.973)."""

REPRODUCES = "reproduces"
ORDERING = "reproduces the ordering"
DOES_NOT = "does not reproduce"
NOT_EVALUATED = "not evaluated"
"""The verdicts, best first; NOT_EVALUATED when our row lacks one of the paper's cells."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Row `above` beats row `below` in `cell`: an accuracy `(task, epsilon)`, or a metric name."""

    above: str
    below: str
    cell: tuple | str

    def values(self, rows):
        """(value of `above`, value of `below`) in `rows` (label -> row); None where missing."""
        return tuple(cell_value(rows.get(label), self.cell) for label in (self.above, self.below))

    def holds(self, rows):
        """True or False; None when a value is missing."""
        first, second = self.values(rows)
        return None if first is None or second is None else first > second


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim of the paper, true when every one of its `comparisons` holds."""

    statement: str
    comparisons: tuple

    def holds(self, rows):
        """True, False, or None when a row or cell it compares is missing."""
        results = [comparison.holds(rows) for comparison in self.comparisons]
        return None if None in results else all(results)


def cell_value(row, cell):
    """`row`'s accuracy at `cell` = (task, epsilon) or its metric `cell`; None where it has none."""
    if row is None:
        return None
    if isinstance(cell, str):
        return row.get(cell)
    task, epsilon = cell
    return ((row.get("accuracy") or {}).get(task) or {}).get(epsilon)


def accuracy_cells(row):
    """The (task, epsilon) cells of a row's accuracy, in its order."""
    return [(task, epsilon) for task, by_radius in row["accuracy"].items() for epsilon in by_radius]


def row_verdict(label, ours, paper):
    """The verdict of row `label`: a dict with `verdict` and `failures` (sentences).

    Args:
        label: the row.
        ours, paper: label -> row (accuracy fractions), ours and the paper's.
    """
    cells = accuracy_cells(paper[label])
    missing = [cell for cell in cells if cell_value(ours.get(label), cell) is None]
    if missing:
        return {"verdict": NOT_EVALUATED, "failures": [f"no {_cell_name(cell)}" for cell in missing]}
    far = [
        f"{_cell_name(cell)} {_points(cell_value(ours[label], cell))} (paper {_points(cell_value(paper[label], cell))})"
        for cell in cells
        if abs(cell_value(ours[label], cell) - cell_value(paper[label], cell)) > TOLERANCE + _ROUNDING
    ]
    if not far:
        return {"verdict": REPRODUCES, "failures": []}
    disordered = []
    for other in paper:
        if other == label or other not in ours:
            continue
        for cell in cells:
            gap = cell_value(paper[label], cell) - cell_value(paper[other], cell)
            theirs = cell_value(ours[other], cell)
            if abs(gap) < TOLERANCE - _ROUNDING or theirs is None:
                continue  # the paper does not separate the two rows here, or we lack the other's cell
            if (cell_value(ours[label], cell) - theirs) * gap <= 0:
                side = "above" if gap > 0 else "below"
                disordered.append(f"{_cell_name(cell)} not {side} {other} (paper: {_points(abs(gap))} points {side})")
    return {"verdict": DOES_NOT if disordered else ORDERING, "failures": far + disordered}


def compare(ours, paper, claims=()):
    """Our rows against the paper's: a verdict per row the paper has, and each claim.

    Args:
        ours, paper: lists of rows (dicts with `label` and `accuracy`, fractions).
        claims: `Claim`s.

    Returns:
        A dict: `rows`, a list of {`label`, `verdict`, `failures`} in our order;
        `claims`, a list of {`statement`, `holds` (ours), `holds_in_paper`, `values`
        (per comparison: its text, ours and the paper's values)}.
    """
    ours_rows = {row["label"]: row for row in ours}
    paper_rows = {row["label"]: row for row in paper}
    verdicts = [
        {"label": label, **row_verdict(label, ours_rows, paper_rows)} for label in ours_rows if label in paper_rows
    ]
    claim_results = [
        {
            "statement": claim.statement,
            "holds": claim.holds(ours_rows),
            "holds_in_paper": claim.holds(paper_rows),
            "values": [
                {"comparison": _comparison_name(comparison), "cell": comparison.cell, "ours": comparison.values(ours_rows),
                 "paper": comparison.values(paper_rows)}
                for comparison in claim.comparisons
            ],
        }
        for claim in claims
    ]
    return {"rows": verdicts, "claims": claim_results}


def markdown(comparison, ours, paper):
    """Markdown: each row's cells as "ours (paper)" with its verdict, then the claims."""
    paper_rows = {row["label"]: row for row in paper}
    verdicts = {entry["label"]: entry for entry in comparison["rows"]}
    cells = accuracy_cells(paper[0])
    lines = [
        "| Model | " + " | ".join(_cell_name(cell) for cell in cells) + " | verdict |",
        "|:--|" + "--:|" * len(cells) + ":--|",
    ]
    for row in ours:
        if row["label"] not in verdicts:
            continue
        entry = verdicts[row["label"]]
        values = [
            f"{_points(cell_value(row, cell))} ({_points(cell_value(paper_rows[row['label']], cell))})" for cell in cells
        ]
        verdict = entry["verdict"] + (": " + "; ".join(entry["failures"]) if entry["verdict"] == DOES_NOT else "")
        lines.append(f"| {row['label']} | " + " | ".join(values) + f" | {verdict} |")
    lines.append("")
    for claim in comparison["claims"]:
        holds = {True: "holds", False: "does not hold", None: "not evaluated"}[claim["holds"]]
        values = "; ".join(
            f"{value['comparison']}: {_pair(value['cell'], value['ours'])} (paper {_pair(value['cell'], value['paper'])})"
            for value in claim["values"]
        )
        lines.append(f"- {claim['statement']}: **{holds}** ({values}).")
    return "\n".join(lines) + "\n"


def _cell_name(cell):
    if isinstance(cell, str):
        return cell
    task, epsilon = cell
    return f"{task} ε={epsilon}"


def _comparison_name(comparison):
    return f"{comparison.above} > {comparison.below} at {_cell_name(comparison.cell)}"


def _points(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _pair(cell, values):
    """Two values of `cell`: accuracies in points, metrics (the time factor) as they are."""
    if isinstance(cell, str):
        return " vs ".join("-" if value is None else f"{value:.2f}" for value in values)
    return " vs ".join(_points(value) for value in values)
