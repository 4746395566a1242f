"""The checks every robustness evaluation runs on itself (Carlini et al., 2019; AutoAttack's `checks.py`).

Each function judges numbers the evaluator measured and returns a `Check`:
its name, whether it passed, and a sentence that says what was found. A
failed check marks the evaluation as flagged: its accuracies may be too high.

- `monotone`: accuracy measured at each radius on its own (the evaluator: one
  run of its first attack on a subset) must not rise with epsilon (a larger ball holds
  every smaller one).
- `black_box`: the gradient-free Square attack runs only on the examples every
  white-box attack left robust; if it breaks more than a tolerance of all the
  examples attacked, the gradients are likely masked (those examples count as
  broken either way).
- `more_effort`: on a subset, doubling the steps and the restarts must not
  lower accuracy by more than a tolerance (else the attack has not converged).
- `huge_epsilon`: a ball spanning the whole data range must bring accuracy to
  chance (the majority-class rate).
- `in_ball`: every candidate lies in the ball and the data range.
"""

import dataclasses

DEFAULT_TOLERANCE = 0.02
"""Slack, in accuracy (fraction of the examples checked), of every check."""


@dataclasses.dataclass(frozen=True)
class Check:
    """The verdict of one check: `name`, `passed`, `detail` (a sentence), `task`."""

    name: str
    passed: bool
    detail: str
    task: str = None

    def record(self):
        """This check as a JSON-ready dict."""
        return dataclasses.asdict(self)


def monotone(accuracy, task, tolerance=DEFAULT_TOLERANCE):
    """Accuracy measured at each radius independently, `{epsilon: accuracy}`, must not rise with epsilon."""
    radii = sorted(accuracy)
    rises = [
        f"{accuracy[larger]:.3f} at epsilon={larger:g} > {accuracy[smaller]:.3f} at {smaller:g}"
        for smaller, larger in zip(radii, radii[1:])
        if accuracy[larger] > accuracy[smaller] + tolerance
    ]
    if rises:
        return Check("monotone", False, "accuracy rose with epsilon: " + "; ".join(rises) + " (the attack at the larger radius is too weak)", task)
    return Check("monotone", True, "accuracy never rises with epsilon", task)


def black_box(broken_by_black_box, survived_white_box, total, epsilon, task, tolerance=DEFAULT_TOLERANCE):
    """The black-box attack broke `broken_by_black_box` of the `survived_white_box` examples that every
    white-box attack left robust, out of `total` attacked; more than `tolerance` of `total` flags it."""
    fraction = broken_by_black_box / total if total else 0.0
    found = (
        f"epsilon={epsilon:g}: the gradient-free Square attack broke {broken_by_black_box} of the "
        f"{survived_white_box} examples every white-box attack left robust ({100 * fraction:.1f}% of {total})"
    )
    if fraction > tolerance:
        return Check("black_box", False, found + ": likely gradient masking; they count as broken", task)
    return Check("black_box", True, found, task)


def more_effort(before, after, checked, epsilon, task, tolerance=DEFAULT_TOLERANCE):
    """Accuracy on `checked` examples fell from `before` to `after` with twice the steps and restarts."""
    if before - after > tolerance:
        return Check(
            "more_effort",
            False,
            f"epsilon={epsilon:g}: twice the steps and restarts lowered accuracy on {checked} examples from "
            f"{before:.3f} to {after:.3f}: the attack has not converged (raise attack_steps or restarts); "
            "the examples it broke count as broken",
            task,
        )
    return Check(
        "more_effort",
        True,
        f"epsilon={epsilon:g}: twice the steps and restarts: {before:.3f} -> {after:.3f} on {checked} examples",
        task,
    )


def huge_epsilon(accuracy, chance, epsilon, task, tolerance=DEFAULT_TOLERANCE):
    """Accuracy at a radius spanning the data range must be at most chance + tolerance."""
    if accuracy > chance + tolerance:
        return Check(
            "huge_epsilon",
            False,
            f"epsilon={epsilon:g} spans the data range, yet accuracy is {accuracy:.3f} > chance {chance:.3f}: "
            "the attack cannot move the classifier at all (masked or broken gradients)",
            task,
        )
    return Check("huge_epsilon", True, f"epsilon={epsilon:g}: accuracy {accuracy:.3f}, chance {chance:.3f}", task)


def in_ball(violations, task):
    """No attack returned a candidate outside the ball or the data range (`violations`: the sentences)."""
    if violations:
        return Check("in_ball", False, "; ".join(violations), task)
    return Check("in_ball", True, "every candidate lies in the ball and the data range", task)
