"""Tests for setup.py: ranges for users, the exact lock (requirements.txt) for CI, read without installing."""

import ast
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _install_requires():
    """setup.py's `INSTALL_REQUIRES`, read from its source (setup.py runs `setup()` when imported)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    (value,) = [
        node.value for node in tree.body
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ["INSTALL_REQUIRES"]
    ]
    return [Requirement(text) for text in ast.literal_eval(value)]


def _lock():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-r"))]


def test_install_requires_has_ranges_not_pins():
    requirements = _install_requires()
    assert requirements
    for requirement in requirements:
        operators = {spec.operator for spec in requirement.specifier}
        assert not operators & {"==", "===", "~="}, f"{requirement} pins a version; setup.py takes ranges"
        assert ">=" in operators, f"{requirement} has no lower bound"


def test_every_locked_package_has_a_range_whose_lower_bound_is_the_tested_version():
    ranges = {canonicalize_name(requirement.name): requirement for requirement in _install_requires()}
    for locked in _lock():
        name = canonicalize_name(locked.name)
        assert name in ranges, f"{locked} is in requirements.txt but not in setup.py's INSTALL_REQUIRES"
        lower = {Version(spec.version) for spec in ranges[name].specifier if spec.operator == ">="}
        tested = {Version(spec.version) for spec in locked.specifier if spec.operator in ("==", ">=")}
        assert lower == tested, f"setup.py's {ranges[name]} does not start at the tested {locked}"
        assert all(ranges[name].specifier.contains(version) for version in tested), f"{ranges[name]} excludes {locked}"
        assert ranges[name].extras == locked.extras, f"{ranges[name]} and {locked} ask for different extras"


def test_requirements_dev_installs_the_lock():
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text().splitlines()
