"""Typed fields of the experiments' settings: each field knows its kind, its help and its flag.

A setting is declared once, as a field of a frozen dataclass (`scale.Budget`,
`settings.RunConfig`, ...) made with `setting(default, help, kind)`. Its
`Kind` says how the value is read from the command line (`parse`, text ->
value) and how any value is checked (`check`, value -> canonical value, a
`ValueError` naming the setting otherwise, from `keras_avae.validation`). The
dataclasses run every field's check when they are made (`Settings`), and
`keras_avae.cli` builds each flag, its type, its default and its `--help` text
from the same fields, so a setting is validated where it is defined.

This module is light (no TensorFlow): `keras-avae --help` imports it.

Example:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Example(Settings):
        epochs: int = setting(3, "training epochs", POSITIVE_INT)

    Example(epochs=0)       # ValueError: `epochs` must be an integer >= 1. Received: epochs=0
"""

import dataclasses
import math
import os
from collections.abc import Callable

from keras_avae import validation


@dataclasses.dataclass(frozen=True)
class Kind:
    """How the values of one kind of setting are read and checked.

    Args:
        check: `(value, name) -> value`: the canonical value (a Python int,
            float, str, bool or a tuple of them), or a `ValueError` that names
            the setting, what it expects and what it received.
        parse: `text -> value` for the command line (before `check`); a
            `ValueError` there is reported as the flag's error.
        metavar: the flag's placeholder in `--help`.
        expects: what a value must be, in words (for the flag's error).
        action: `"switch"` (a flag without a value: `--resume`), `"toggle"`
            (`--fid/--no-fid`) or None (a flag with a value).
        choices: the values a flag offers in `--help`, if few.
    """

    check: Callable
    parse: Callable = str
    metavar: str | None = None
    expects: str = "a valid value"
    action: str | None = None
    choices: tuple | None = None


def _items(value):
    """A comma-separated string or a sequence as a list of its non-empty items."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() if isinstance(item, str) else item for item in items if not (isinstance(item, str) and not item.strip())]


def _number_text(convert):
    def parse(text):
        try:
            return convert(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None

    return parse


def integer(minimum):
    """An integer >= `minimum`."""
    return Kind(
        check=lambda value, name: validation.check_integer(value, name, minimum=minimum),
        parse=_number_text(int),
        metavar="N",
        expects=f"an integer >= {minimum}",
    )


POSITIVE_INT = integer(1)
NON_NEGATIVE_INT = integer(0)

POSITIVE = Kind(check=validation.check_positive, parse=_number_text(float), metavar="X", expects="a finite number > 0")
NON_NEGATIVE = Kind(
    check=validation.check_non_negative, parse=_number_text(float), metavar="X", expects="a finite number >= 0"
)
RHO = Kind(check=validation.check_rho, parse=_number_text(float), metavar="RHO", expects="a number in (-1, 1)")

BOOL = Kind(check=validation.check_bool, action="toggle", expects="True or False")
SWITCH = Kind(check=validation.check_bool, action="switch", expects="True or False")


def _check_path(value, name):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"`{name}` must be a path (a non-empty str or os.PathLike). Received: {name}={value!r}")
    return os.fspath(value)


PATH = Kind(check=_check_path, metavar="PATH", expects="a path")


def _check_paths(value, name):
    items = _items(value) if isinstance(value, (str, list, tuple)) else None
    if not items:
        raise ValueError(f"`{name}` must be one or more paths, comma-separated. Received: {name}={value!r}")
    return tuple(dict.fromkeys(_check_path(item, name) for item in items))


PATHS = Kind(check=_check_paths, metavar="DIR1,DIR2,...", expects="comma-separated paths")


def _check_text(value, name):
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{name}` must be a non-empty str. Received: {name}={value!r}")
    return value


TEXT = Kind(check=_check_text, metavar="TEXT", expects="a non-empty text")


def one_of(values, metavar=None):
    """One of `values` (strings, or ints for `--verbose`)."""
    def check(value, name):
        if value not in values or isinstance(value, bool):
            raise ValueError(f"`{name}` must be one of {tuple(values)}. Received: {name}={value!r}")
        return value

    parse = int if all(isinstance(value, int) for value in values) else str
    return Kind(check=check, parse=parse, metavar=metavar, expects=f"one of {', '.join(map(str, values))}",
                choices=tuple(values))


def names(values, what, extra=(), metavar="A1,A2"):
    """Distinct names from `values`, as a list or a comma-separated string; `extra` are single
    names that stand alone (e.g. the ensemble "standard")."""
    def check(value, name):
        if isinstance(value, str) and value in extra:
            return value
        items = _items(value) if isinstance(value, (str, list, tuple)) else None
        if not items or any(not isinstance(item, str) or item not in values for item in items):
            alone = f", or one of {', '.join(extra)}" if extra else ""
            raise ValueError(
                f"`{name}` must list {what} from {', '.join(values)}{alone}. Received: {name}={value!r}"
            )
        return tuple(dict.fromkeys(items))

    return Kind(check=check, metavar=metavar, expects=f"comma-separated {what} from {', '.join(values)}")


def _check_radii(value, name):
    items = _items(value) if isinstance(value, (str, list, tuple)) else None
    try:
        radii = tuple(float(item) for item in items) if items else ()
    except (TypeError, ValueError):
        radii = ()
    if not radii or any(isinstance(item, bool) for item in items) or any(
        not math.isfinite(radius) or radius < 0 for radius in radii
    ):
        raise ValueError(f"`{name}` must be finite numbers >= 0 (L-inf radii). Received: {name}={value!r}")
    return radii


RADII = Kind(check=_check_radii, metavar="E1,E2,...", expects="comma-separated finite numbers >= 0")


def _sorted_numbers(value, name, convert, expects):
    """The distinct items of a list or comma-separated string, each through `convert(item, name)`,
    sorted; a ValueError saying `expects` if there are none or one fails."""
    items = _items(value) if isinstance(value, (str, list, tuple)) else None
    try:
        numbers = sorted({convert(item, name) for item in items}) if items else []
    except (TypeError, ValueError):
        numbers = []
    if not numbers:
        raise ValueError(f"`{name}` must be {expects}. Received: {name}={value!r}")
    return tuple(numbers)


def _check_rhos(value, name):
    return _sorted_numbers(value, name, lambda item, name: validation.check_rho(float(item), name), "numbers in (-1, 1)")


RHOS = Kind(check=_check_rhos, metavar="R1,R2,...", expects="comma-separated numbers in (-1, 1)")


def _parse_pair(text):
    items = _items(text)
    if len(items) != 2:
        raise ValueError(f"not two numbers LOW,HIGH: {text!r}")
    return tuple(float(item) for item in items)


DATA_RANGE = Kind(
    check=lambda value, name: validation.check_data_range(value),
    parse=_parse_pair,
    metavar="LOW,HIGH",
    expects="two finite numbers LOW,HIGH with LOW < HIGH",
)


def _check_epochs(value, name):
    """Epochs: an integer >= 1, or (a scale's) dict architecture -> integer >= 1."""
    if isinstance(value, dict):
        return {arch: validation.check_integer(epochs, f"{name}[{arch!r}]", minimum=1) for arch, epochs in value.items()}
    return validation.check_integer(value, name, minimum=1)


EPOCHS = dataclasses.replace(POSITIVE_INT, check=_check_epochs)


def _check_epoch_list(value, name):
    """Distinct epochs, integers >= 1, sorted."""
    return _sorted_numbers(
        value, name, lambda item, name: validation.check_integer(int(item) if isinstance(item, str) else item, name, minimum=1),
        "integers >= 1 (epochs)",
    )


EPOCH_LIST = Kind(check=_check_epoch_list, metavar="E1,E2,...", expects="comma-separated integers >= 1")


def setting(default, help, kind, *, group="run", flag=True, positional=False):
    """A dataclass field of a settings class.

    Args:
        default: the value when the setting is left out (None: unset, e.g.
            filled from the scale).
        help: what it is, for `--help` (the default is appended by the CLI).
        kind: its `Kind`.
        group: the `--help` section of its flag.
        flag: whether the command line has a flag for it.
        positional: the flag is a positional argument (`keras-avae evaluate MODEL`).
    """
    metadata = {"help": help, "kind": kind, "group": group, "flag": flag, "positional": positional}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def like(cls, name, default, **changes):
    """A field like the field `name` of the settings class `cls` (its help, kind, group, flag),
    with another `default`, and `changes` to those (e.g. `help=`)."""
    return setting(default, **{**cls.__dataclass_fields__[name].metadata, **changes})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Base of the settings classes: every field checked by its kind when the instance is made."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            kind = field.metadata.get("kind")
            value = getattr(self, field.name)
            if kind is not None and value is not None:
                object.__setattr__(self, field.name, kind.check(value, field.name))

    @classmethod
    def field_names(cls):
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values=None, **extra):
        """An instance from a dict of settings; None values keep the defaults; unknown keys are refused.

        `values` may also be an instance of `cls` (returned as it is, updated with `extra`).
        """
        if isinstance(values, cls):
            return dataclasses.replace(values, **extra) if extra else values
        values = {**dict(values or {}), **extra}
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"Unknown settings {unknown}; the known ones are {sorted(cls.field_names())}.")
        return cls(**{key: value for key, value in values.items() if value is not None})

    def replace(self, **changes):
        """A copy with `changes` (checked like the constructor's arguments)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The settings as a JSON-friendly dict (tuples become lists)."""
        return {key: _json(value) for key, value in dataclasses.asdict(self).items()}

    def pick(self, names):
        """The settings named by `names`, as a dict."""
        return {name: getattr(self, name) for name in names}


def _json(value):
    if isinstance(value, tuple):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
