"""Typed configs of the app: every value is checked against a type before anything trains.

Two schemas, both OmegaConf structured configs (dataclasses): :class:`RunKeys` for the top-level
run keys, and one made from the constructor's type annotations for each ``_target_`` (problem,
optimizer, scheduler), so a problem or optimizer of your own is typed by its signature and nothing
here lists every knob of Azure. On top of the types: floats are finite (unless the argument's own
default is not), fixed-length tuples have their length, run keys their ranges (field metadata).
Ranges of constructor arguments stay with the constructors (``ValueError`` naming the argument).

The schemas are applied to each job's resolved config in :func:`azure_sciml.app.setup`, not at
composition: a bad value in one job of a sweep fails that job (a ``failed`` record with the
reason), not the whole sweep before its report. Only the app imports this module (it needs
OmegaConf); :class:`ConfigError` messages start with ``key=value``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ValidationError
from torch import Tensor

DTYPES = ("float32", "float64", "bfloat16", "float16")
GROUPS = ("problem", "optimizer", "scheduler")  # nodes typed by their ``_target_``'s signature
# checked where they are built (refine: azure_sciml.app.refined, its optimizer typed as above)
OTHER_GROUPS = ("refine",)
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with ``key=value``."""


@dataclass
class RunKeys:
    """The run keys of ``config.yaml`` (see there for what each does)."""

    seed: int = 0
    device: str = "cpu"
    dtype: str = field(default="float32", metadata={"choices": DTYPES})
    clip_grad_norm: Optional[float] = field(default=None, metadata={"gt": 0})  # noqa: UP045
    progress: bool = True
    save_plot: bool = True
    checkpoint_every: int = field(default=500, metadata={"ge": 0, "hint": "0: no checkpoints"})
    resume: bool = True
    targets: list[Any] = field(default_factory=list)


def check_run_keys(cfg: Mapping[str, Any]) -> None:
    """Types and ranges of the top-level keys; a key that is neither a run key nor a group is
    refused (a typo would otherwise be ignored)."""
    fields = {f.name: f for f in dataclasses.fields(RunKeys)}
    unknown = [key for key in cfg if key not in fields and key not in GROUPS + OTHER_GROUPS]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{key}={cfg[key]!r}: not a run key (run keys: {', '.join(fields)}; problem and"
            f" optimizer arguments are problem.{key} and optimizer.{key})"
        )
    hints = typing.get_type_hints(RunKeys)
    check_types(cfg, hints, {k: f.default for k, f in fields.items()}, prefix="")
    for name, f in fields.items():
        check_range(name, cfg.get(name), f.metadata)


def check_range(key: str, value: Any, rules: Mapping[str, Any]) -> None:
    if value is None:
        return
    choices, ge, gt = rules.get("choices"), rules.get("ge"), rules.get("gt")
    hint = f" ({rules['hint']})" if "hint" in rules else ""
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}={value!r}: must be one of {', '.join(choices)}")
    if ge is not None and value < ge:
        raise ConfigError(f"{key}={value!r}: must be >= {ge}{hint}")
    if gt is not None and value <= gt:
        raise ConfigError(f"{key}={value!r}: must be > {gt}{hint}")


# ---------------------------------------------------------------- constructor arguments


def check_arguments(
    target: Callable, values: Mapping[str, Any], group: str, hint: str = ""
) -> None:
    """Check ``values`` (a node's keys, resolved) against ``target``'s signature: types from its
    annotations, unknown keys unless it takes ``**kwargs`` (``hint`` follows that message);
    :class:`ConfigError` names ``group.key=value``."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: the constructor judges
        return
    params = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key, value in values.items():
        if key not in params and not takes_kwargs:
            raise ConfigError(
                f"{group}.{key}={value!r}: not an argument of {target_name(target)}"
                f" (its arguments: {', '.join(k for k in params if k != 'params')}){hint}"
            )
    defaults = {k: p.default for k, p in params.items() if p.default is not p.empty}
    check_types(values, annotations(target), defaults, prefix=f"{group}.")


def annotations(target: Callable) -> dict[str, Any]:
    """The resolved annotations of a class's ``__init__`` or a function; {} if they cannot be
    resolved (the constructor is then the only judge)."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # a name only imported under TYPE_CHECKING, and the like: one at a time
        pass
    namespace = getattr(inspect.unwrap(function), "__globals__", {})
    hints = {}
    for name, hint in getattr(function, "__annotations__", {}).items():
        try:
            hints[name] = eval(hint, namespace) if isinstance(hint, str) else hint  # noqa: S307
        except Exception:
            continue
    return hints


def target_name(target: Callable) -> str:
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"


def check_types(
    values: Mapping[str, Any], hints: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str
) -> None:
    """Each value in ``values`` whose key has a type hint is validated by OmegaConf against that
    type (with OmegaConf's conversions: ``'3'`` is an int, ``'nan'`` a float, ``true`` no int);
    floats must be finite unless the default is not, tuples must have their length."""
    for key, value in values.items():
        if key not in hints or key in HYDRA_KEYS:
            continue
        hint = hints[key]
        schema = dataclasses.make_dataclass("Arg", [(key, schema_type(hint), MISSING)])
        try:
            OmegaConf.merge(OmegaConf.structured(schema), {key: value})
        except ValidationError as err:
            raise ConfigError(f"{prefix}{key}={value!r}: must be {describe(hint)}") from err
        length = tuple_length(hint)
        if length is not None and len(value) != length:
            raise ConfigError(
                f"{prefix}{key}={value!r}: must have {length} entries, it has {len(value)}"
            )
        default = defaults.get(key)
        if not_finite(value) and not not_finite(default):
            raise ConfigError(f"{prefix}{key}={value!r}: must be finite")


def not_finite(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(not_finite(v) for v in value)
    return isinstance(value, float) and not math.isfinite(value)


def schema_type(hint: Any) -> Any:
    """The OmegaConf type for an annotation: ``float | Tensor`` is float, ``int | float`` float,
    ``X | None`` Optional, tuples and sequences lists; what OmegaConf cannot express is Any."""
    if hint in (int, float, bool, str):
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None) and a is not Tensor]
        if members and set(members) <= {int, float}:
            base = float if float in members else int
        elif len(members) == 1:
            base = schema_type(members[0])
        else:
            return Any
        return Optional[base] if type(None) in args and base is not Any else base  # noqa: UP045
    if origin in (tuple, list):
        elements = {schema_type(a) for a in args if a is not Ellipsis}
        return list[elements.pop()] if len(elements) == 1 else list[Any]
    return Any


def tuple_length(hint: Any) -> int | None:
    """The length a ``tuple[X, Y]`` annotation (possibly optional) demands; None otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        lengths = {tuple_length(a) for a in args if a is not type(None)}
        return lengths.pop() if len(lengths) == 1 else None
    if origin is tuple and args and Ellipsis not in args:
        return len(args)
    return None


WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
PLURALS = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def describe(hint: Any) -> str:
    """An annotation in words: ``float | None`` is 'a number or null'."""
    kind = schema_type(hint)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Union:
        return " or ".join(describe(a) if a is not type(None) else "null" for a in args)
    if origin is list:
        length = tuple_length(hint)
        count = f"{length} " if length is not None else ""
        return f"a list of {count}{PLURALS.get(args[0], 'values')}"
    return WORDS.get(kind, f"a {getattr(kind, '__name__', kind)}")
