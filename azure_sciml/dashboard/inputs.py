"""What the page accepts as typed: whole numbers in a range, and settings ``key=value`` read by
Hydra's own override parser (the app's grammar), refused unless they are plain values: no
interpolation (``${oc.env:...}`` would read the server's environment), no sweep, no ``+``/``~``,
no ``_``-key such as ``_target_``. Whether a key and value suit the config is the app's check
(:func:`azure_sciml.dashboard.planner.plan`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SHAPE = "use a number, a word or a [list]"


class InputError(ValueError):
    """A value typed into the page that cannot work; the message says which and why."""


def whole(value: Any, what: str, low: int, high: int) -> int:
    """``value`` (typed text or a number) as a whole number from ``low`` to ``high``."""
    if isinstance(value, str):
        value = value.strip()
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"{what}: {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{what}: {value!r} is not a number")
    if value != int(value) or not low <= value <= high:
        raise InputError(f"{what}: {value!r} must be a whole number from {low} to {high}")
    return int(value)


def parse_settings(text: str, optimizers: Sequence[str]) -> dict[str, list[str]]:
    """``"azure: T0=0.5 sigma=2"`` lines into ``{"azure": ["T0=0.5", "sigma=2"]}`` (checked)."""
    settings: dict[str, list[str]] = {name: [] for name in optimizers}
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon:
            raise InputError(
                f"hyperparameters line {number} {line!r}: write 'optimizer: key=value ...'"
            )
        if name not in settings:
            raise InputError(
                f"hyperparameters line {number}: {name!r} is not one of the chosen optimizers "
                f"({', '.join(optimizers)})"
            )
        settings[name] += parse_pairs(rest, f"{name} hyperparameters")
    return settings


def parse_pairs(text: str, what: str) -> list[str]:
    """``"a=1 b=[1, 2]"`` into ``["a=1", "b=[1,2]"]``, each read by Hydra's override parser."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    pairs = []
    for piece in split_words(text or ""):
        try:
            override = parser.parse_override(piece)
        except Exception:  # Hydra's parse errors name grammar tokens, not what to write
            raise InputError(f"{what}: cannot read {piece!r} (write key=value)") from None
        key = override.key_or_group
        if override.type.name != "CHANGE" or override.package is not None:
            raise InputError(f"{what}: {piece!r}: write key=value (no +, ~ or @)")
        if not key.isidentifier() or key.startswith("_"):
            raise InputError(f"{what}: {key!r} is not a setting name")
        if override.is_sweep_override() or _interpolates(override.value()):
            raise InputError(f"{what}: {piece!r}: {SHAPE}")
        pairs.append(f"{key}={override.get_value_element_as_str()}")
    return pairs


def split_words(text: str) -> list[str]:
    """``text`` split at the spaces outside brackets and quotes (``b=[1, 2]`` is one word)."""
    words, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char.isspace() and depth <= 0:
            words, current = (words + [current] if current else words), ""
            continue
        current += char
    return words + [current] if current else words


def _interpolates(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, list | tuple):
        return any(map(_interpolates, value))
    if isinstance(value, dict):
        return any(map(_interpolates, [*value, *value.values()]))
    return False
