"""The one argument check of the problem constructors: a ``ValueError`` that names the argument
and echoes the value, ``NAME must be WHAT, got VALUE`` (``steps must be a positive integer, got
0``). :func:`check` takes any condition; the others are its common cases."""

from __future__ import annotations

import math


def check(ok: bool, name: str, value: object, must_be: str) -> None:
    """Raise ``ValueError("{name} must be {must_be}, got {value!r}")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {must_be}, got {value!r}")


def is_real(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_choice(name: str, value: object, choices: list[str]) -> None:
    check(value in choices, name, value, f"one of {choices}")


def check_positive_int(name: str, value: object, minimum: int = 1) -> None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    check(whole and value >= minimum, name, value, kind)


def check_positive_float(name: str, value: object) -> None:
    check(is_real(value) and value > 0, name, value, "a positive finite number")


def check_real(name: str, value: object, low: float, high: float, closed_low: bool = False) -> None:
    """A finite number in ``(low, high)`` (``[low, high)`` with ``closed_low``)."""
    above = is_real(value) and (value >= low if closed_low else value > low)
    interval = f"{'[' if closed_low else '('}{low:g}, {high:g})"
    check(above and value < high, name, value, f"a number in {interval}")
