"""Tests for the documentation: the site builds with `mkdocs build --strict` (a broken reference or
docstring fails it), and every `keras-avae ...` command shown in README.md and docs/*.md parses:
each line of a fenced code block, and each inline `keras-avae ...` span that is not a template
(`MODEL`, `{vae,avae}`, `...`)."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from keras_avae import cli

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")

FENCE = re.compile(r"^\s*(```|~~~)")
COMMAND = re.compile(r"^\s*(?:\$\s+)?keras-avae\s")
INLINE_COMMAND = re.compile(r"`(keras-avae\s[^`]+)`")
PLACEHOLDER = re.compile(r"\.\.\.|[{}<>\[\]|]|^[A-Z]+(\.\w+)?$|_[A-Z]$")
"""A token of a command template: `...`, `{a,b}`, `<x>`, `[--flag]`, `a|b`, `MODEL`, `MODEL.keras`, `runs/x_V`."""


def shown_commands(text):
    """The `keras-avae ...` lines of the fenced code blocks of a Markdown `text`, with a trailing
    `# comment` removed and backslash continuations joined: `[(line number, command)]`."""
    commands, inside, pending = [], False, None
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            inside, pending = not inside, None
            continue
        if not inside:
            continue
        if pending is not None:
            start, joined = pending
            joined += " " + line.strip()
        elif COMMAND.match(line):
            start, joined = number, line.strip().removeprefix("$").strip()
        else:
            continue
        if joined.endswith("\\"):
            pending = (start, joined[:-1].rstrip())
            continue
        pending = None
        commands.append((start, shlex.split(joined, comments=True)))
    return commands


def shown_inline_commands(text):
    """The inline `keras-avae ...` code spans of `text` that are not templates: `[(line number, argv)]`."""
    commands = []
    for match in INLINE_COMMAND.finditer(text):
        argv = shlex.split(match.group(1))
        if not any(PLACEHOLDER.search(token) for token in argv):
            commands.append((text.count("\n", 0, match.start()) + 1, argv))
    return commands


def _all_commands():
    for path in DOCUMENTS:
        text = path.read_text()
        for number, argv in shown_commands(text):
            yield pytest.param(argv, id=f"{path.relative_to(REPO)}:{number}")
        for number, argv in shown_inline_commands(text):
            yield pytest.param(argv, id=f"{path.relative_to(REPO)}:{number}:inline")


def test_shown_commands_are_found_with_comments_and_continuations():
    text = (
        "keras-avae train --model vae      # outside a code block: ignored\n"
        "```bash\n"
        "keras-avae train --model avae --arch mlp   # a comment\n"
        "python examples/discrete_1d.py\n"
        "$ keras-avae evaluate run/model.keras \\\n"
        "      --epsilons 0,0.1\n"
        "```\n"
    )
    assert shown_commands(text) == [
        (3, ["keras-avae", "train", "--model", "avae", "--arch", "mlp"]),
        (5, ["keras-avae", "evaluate", "run/model.keras", "--epsilons", "0,0.1"]),
    ]


def test_inline_templates_are_left_out():
    text = (
        "Run `keras-avae evaluate runs/a/model.keras\n--epsilons 0,0.1` or `keras-avae train --model {vae,avae}`,\n"
        "`keras-avae evaluate MODEL --attack-size 500`, `keras-avae reproduce ... --resume`, `pip install .`"
    )
    assert shown_inline_commands(text) == [(1, ["keras-avae", "evaluate", "runs/a/model.keras", "--epsilons", "0,0.1"])]


def test_the_readme_and_the_docs_show_commands():
    commands = list(_all_commands())
    assert len(commands) >= 10
    assert any("README.md" in command.id for command in commands)


@pytest.mark.parametrize("argv", _all_commands())
def test_every_shown_command_parses(argv, capsys):
    try:
        cli.build_parser().parse_args(argv[1:])
    except SystemExit as exit_info:
        if exit_info.code == 0:  # --help, --version
            return
        pytest.fail(f"`{shlex.join(argv)}` does not parse: {capsys.readouterr().err.strip()}")


def test_mkdocs_build_strict(tmp_path):
    missing = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the docs tools are not installed ({', '.join(missing)}): pip install -r requirements-dev.txt")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "models" / "index.html").is_file()


def test_example_sections_become_python_code():
    if importlib.util.find_spec("griffe") is None:
        pytest.skip("griffe (mkdocstrings' parser) is not installed: pip install -r requirements-dev.txt")
    spec = importlib.util.spec_from_file_location("examples_as_code", REPO / "docs" / "extensions" / "examples_as_code.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    text = "Summary.\n\nExample:\n    r = f(x)\n    r[\"digit\"][0.1]\n\nReturns:\n    A dict."
    assert extension.fence_examples(text) == (
        "Summary.\n\nExample:\n    ```python\n    r = f(x)\n    r[\"digit\"][0.1]\n    ```\n\nReturns:\n    A dict."
    )
    session = "Examples:\n    >>> f(1)\n    2"
    assert extension.fence_examples(session) == session
