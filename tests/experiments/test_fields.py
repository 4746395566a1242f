"""Tests for keras_avae/experiments/fields.py: each kind of setting parses, checks and refuses as it says;
a settings class checks every field when made."""

import dataclasses
import math

import pytest

from keras_avae.experiments import fields
from keras_avae.experiments.fields import Settings, like, setting


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        (fields.POSITIVE_INT, 3, 3),
        (fields.NON_NEGATIVE_INT, 0, 0),
        (fields.POSITIVE, 0.5, 0.5),
        (fields.RHO, -0.5, -0.5),
        (fields.BOOL, False, False),
        (fields.PATH, "runs/a", "runs/a"),
        (fields.TEXT, "x", "x"),
        (fields.RADII, "0, 0.1,0.2", (0.0, 0.1, 0.2)),
        (fields.RADII, [0, 0.1], (0.0, 0.1)),
        (fields.RHOS, "0.9,0.5,0.9", (0.5, 0.9)),  # sorted, deduplicated
        (fields.DATA_RANGE, (-1, 1), (-1.0, 1.0)),
        (fields.EPOCHS, {"mlp": 2, "conv": 1}, {"mlp": 2, "conv": 1}),
        (fields.one_of(("a", "b")), "b", "b"),
        (fields.names(("x", "y", "z"), "attacks", extra=("all",)), "z,x,z", ("z", "x")),
        (fields.names(("x", "y"), "attacks", extra=("all",)), "all", "all"),
    ],
)
def test_each_kind_returns_the_canonical_value(kind, value, expected):
    assert kind.check(value, "s") == expected


@pytest.mark.parametrize(
    "kind, value, message",
    [
        (fields.POSITIVE_INT, 0, r"`s` must be an integer >= 1\. Received: s=0"),
        (fields.NON_NEGATIVE_INT, -1, r"`s` must be an integer >= 0"),
        (fields.POSITIVE, 0.0, r"`s`"),
        (fields.RHO, 1.0, r"`s`"),
        (fields.PATH, "", r"`s` must be a path \(a non-empty str or os\.PathLike\)\. Received: s=''"),
        (fields.TEXT, 3, r"`s` must be a non-empty str\. Received: s=3"),
        (fields.RADII, "0.1,-1", r"`s` must be finite numbers >= 0 \(L-inf radii\)\. Received: s='0.1,-1'"),
        (fields.RADII, [True], r"`s` must be finite numbers >= 0"),
        (fields.RADII, "0,nan", r"`s` must be finite numbers >= 0"),
        (fields.RHOS, "0.5,1", r"`s` must be numbers in \(-1, 1\)\. Received: s='0.5,1'"),
        (fields.EPOCHS, {"mlp": 0}, r"`s\['mlp'\]` must be an integer >= 1"),
        (fields.one_of((0, 1, 2)), True, r"`s` must be one of \(0, 1, 2\)\. Received: s=True"),
        (fields.names(("x", "y"), "attacks"), "x,w", r"`s` must list attacks from x, y\. Received: s='x,w'"),
        (fields.names(("x",), "attacks", extra=("all",)), "", r"`s` must list attacks from x, or one of all"),
    ],
)
def test_each_kind_refuses_naming_the_setting(kind, value, message):
    with pytest.raises(ValueError, match=message):
        kind.check(value, "s")


def test_parse_reads_the_command_line():
    assert fields.POSITIVE_INT.parse("4") == 4
    assert fields.POSITIVE.parse("1e-3") == 0.001
    assert fields.DATA_RANGE.parse("-1,1") == (-1.0, 1.0)
    assert fields.one_of((0, 1, 2)).parse("2") == 2 and fields.one_of(("a",)).parse("a") == "a"
    with pytest.raises(ValueError, match=r"not a number: 'four'"):
        fields.POSITIVE_INT.parse("four")
    with pytest.raises(ValueError, match=r"not two numbers LOW,HIGH: '1'"):
        fields.DATA_RANGE.parse("1")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Example(Settings):
    epochs: int = setting(3, "training epochs", fields.POSITIVE_INT)
    radii: tuple = setting((0.0, 0.1), "radii", fields.RADII, group="attack")
    out: str | None = setting(None, "output", fields.PATH, flag=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Longer(Example):
    epochs: int = like(Example, "epochs", 10, help="more epochs")


def test_a_settings_class_checks_every_field_when_made():
    assert Example(radii="0.2,0").radii == (0.2, 0.0)
    with pytest.raises(ValueError, match=r"`epochs` must be an integer >= 1\. Received: epochs=0"):
        Example(epochs=0)
    with pytest.raises(ValueError, match=r"`epochs` must be an integer >= 1"):
        Example().replace(epochs=-2)
    assert Example(out=None).out is None  # unset: not checked


def test_from_dict_to_dict_and_pick():
    example = Example.from_dict({"epochs": 4, "out": None})
    assert example == Example(epochs=4)
    assert Example.from_dict(example) is example and Example.from_dict(example, epochs=5).epochs == 5
    assert example.to_dict() == {"epochs": 4, "radii": [0.0, 0.1], "out": None}
    assert Example.from_dict(example.to_dict()) == example  # config.json round trip
    assert example.pick(("epochs",)) == {"epochs": 4}
    with pytest.raises(ValueError, match=r"Unknown settings \['epoch'\]; the known ones are \['epochs', 'out', 'radii'\]"):
        Example.from_dict({"epoch": 4})


def test_like_copies_a_field_with_another_default():
    field = Longer.__dataclass_fields__["epochs"]
    assert Longer().epochs == 10 and field.metadata["help"] == "more epochs"
    assert field.metadata["kind"] is fields.POSITIVE_INT and field.metadata["group"] == "run"
    assert Example.__dataclass_fields__["radii"].metadata["group"] == "attack"
    assert Example.__dataclass_fields__["out"].metadata["flag"] is False


def test_a_mutable_default_is_not_shared():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class WithDict(Settings):
        epochs: dict = setting({"mlp": 1}, "epochs", fields.EPOCHS)

    first, second = WithDict(), WithDict()
    first.epochs["mlp"] = 5
    assert second.epochs == {"mlp": 1}



def test_to_dict_makes_json():
    assert fields._json(float("inf")) is None and fields._json((1, (2,))) == [1, [2]]
    assert fields._json({"a": (math.nan,)}) == {"a": [None]}
