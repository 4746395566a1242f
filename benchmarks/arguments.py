"""Argument types the benchmark scripts share: counts and comma-separated choices."""

import argparse

NONE = "none"
"""The value of a list of choices that asks for none of them, where a script allows it."""


def positive_int(text):
    """An integer >= 1, for counts of steps, repeats, images."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def names(allowed, allow_none=False):
    """A type for a comma-separated subset of `allowed`, in the order given; with `allow_none`,
    `"none"` is the empty tuple."""

    def parse(text):
        if allow_none and text.strip() == NONE:
            return ()
        chosen = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in chosen if name not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {text!r}")
        return chosen

    return parse
