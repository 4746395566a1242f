"""A griffe extension for the API pages: a docstring's `Example:` section is Python code.

The package's docstrings write their examples as plain indented code under `Example:` (STYLE.md),
not as `>>>` sessions; griffe would render them as Markdown (and read `results["digit"][0.1]` as a
link). This wraps each such section's body in a fenced `python` block.
"""

import re

import griffe

EXAMPLE_HEADER = re.compile(r"^(?P<indent>[ \t]*)Examples?:[ \t]*$")


def _indent(line):
    return len(line) - len(line.lstrip())


def fence_examples(text):
    """`text` with the body of each `Example:`/`Examples:` section (not a `>>>` session) fenced."""
    lines = text.splitlines()
    out = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        header = EXAMPLE_HEADER.match(line)
        if not header:
            continue
        base = len(header["indent"])
        end = index
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
            end += 1
        while end > index and not lines[end - 1].strip():
            end -= 1
        body = lines[index:end]
        if not body or any(item.lstrip().startswith(">>>") for item in body):
            continue
        margin = min(_indent(item) for item in body if item.strip())
        fence = " " * margin + "```python"
        out.extend([fence, *body, " " * margin + "```"])
        index = end
    return "\n".join(out)


class ExamplesAsCode(griffe.Extension):
    """Fences the `Example:` sections of every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_examples(obj.docstring.value)
