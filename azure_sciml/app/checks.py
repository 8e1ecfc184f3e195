"""The app's config checks, all in one place: every value is checked before anything trains.

Two schemas, both OmegaConf structured configs (dataclasses): :class:`RunKeys` for the top-level
run keys, and one made from the constructor's type annotations for each ``_target_`` (problem,
optimizer, scheduler), so a problem or optimizer of your own is typed by its signature and nothing
here lists every knob of Azure. On top of the types: floats are finite (unless the argument's own
default is not), fixed-length tuples have their length, run keys their ranges (field metadata).
Ranges of constructor arguments stay with the constructors (``ValueError`` naming the argument).

The checks run on each job's config in :func:`azure_sciml.app.plan.make_plan`, not at
composition: a bad value in one job of a sweep fails that job (a ``failed`` record with the
reason), not the whole sweep before its report. A :class:`ConfigError` carries where the error is
(``key``, ``value``) apart from why (``reason``); its message is ``key=value: reason``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, ValidationError
from torch import Tensor

DTYPES = ("float32", "float64", "bfloat16", "float16")
GROUPS = ("problem", "optimizer", "scheduler")  # nodes typed by their ``_target_``'s signature
# checked where they are built (refine: azure_sciml.app.plan.refined, its optimizer as above)
OTHER_GROUPS = ("refine",)
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
NO_VALUE = object()  # a ConfigError about a key that has none (a missing ``_target_``)


class ConfigError(ValueError):
    """A config value that cannot work: ``key`` (dotted, e.g. ``optimizer.lr``), ``value`` (as
    resolved; an interpolation that does not resolve as written) and ``reason``. The message is
    one line, ``key=value: reason``."""

    def __init__(self, key: str, value: Any, reason: str):
        self.key, self.value, self.reason = key, value, reason
        shown = "" if value is NO_VALUE else f"={value!r}"
        if isinstance(value, str) and value.startswith("${"):
            shown = f"={value}"  # an interpolation as written
        super().__init__(f"{key}{shown}: {reason}")


@dataclass
class RunKeys:
    """The run keys of ``config.yaml`` (see there for what each does)."""

    seed: int = 0
    device: str = "cpu"
    threads: int = field(default=1, metadata={"ge": 0, "hint": "0: torch's default"})
    dtype: str = field(default="float32", metadata={"choices": DTYPES})
    clip_grad_norm: Optional[float] = field(default=None, metadata={"gt": 0})  # noqa: UP045
    progress: bool = True
    save_plot: bool = True
    checkpoint_every: int = field(default=500, metadata={"ge": 0, "hint": "0: no checkpoints"})
    resume: bool = True
    targets: list[Any] = field(default_factory=list)


def check_run_keys(cfg: Mapping[str, Any]) -> RunKeys:
    """Types and ranges of the top-level keys, as a :class:`RunKeys`; a key that is neither a run
    key nor a group is refused (a typo would otherwise be ignored)."""
    fields = {f.name: f for f in dataclasses.fields(RunKeys)}
    unknown = [key for key in cfg if key not in fields and key not in GROUPS + OTHER_GROUPS]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            key, cfg[key], f"not a run key (run keys: {', '.join(fields)}; problem and"
            f" optimizer arguments are problem.{key} and optimizer.{key})"
        )
    hints = typing.get_type_hints(RunKeys)
    check_types(cfg, hints, {k: f.default for k, f in fields.items()}, prefix="")
    for name, f in fields.items():
        check_range(name, cfg.get(name), f.metadata)
    check_device(cfg.get("device", RunKeys.device))
    return RunKeys(**{k: v for k, v in cfg.items() if k in fields})


def check_range(key: str, value: Any, rules: Mapping[str, Any]) -> None:
    if value is None:
        return
    choices, ge, gt = rules.get("choices"), rules.get("ge"), rules.get("gt")
    hint = f" ({rules['hint']})" if "hint" in rules else ""
    if choices is not None and value not in choices:
        raise ConfigError(key, value, f"must be one of {', '.join(choices)}")
    if ge is not None and value < ge:
        raise ConfigError(key, value, f"must be >= {ge}{hint}")
    if gt is not None and value <= gt:
        raise ConfigError(key, value, f"must be > {gt}{hint}")


def check_device(name: str) -> None:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError("device", name, str(err)) from err
    available = {
        "cuda": torch.cuda.is_available,
        "mps": torch.backends.mps.is_available,
    }.get(device.type, lambda: True)
    if not available():
        raise ConfigError("device", name, f"{device.type} is not available on this machine")


def check_steps(steps: Any) -> None:
    """A problem's budget, whichever way it was set (config or class attribute)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError("problem.steps", steps, "must be a positive number of loss evaluations")


# ---------------------------------------------------------------- plain values of a node


def unresolved(node: DictConfig, key: str) -> Any:
    """The value as written in the config, interpolations unresolved."""
    return OmegaConf.to_container(node, resolve=False).get(key)


def resolved_node(node: DictConfig, prefix: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The node's values as plain data, interpolations resolved; one that does not resolve is a
    :class:`ConfigError` naming its key (``${problem.lr}`` with a hint where to set it)."""
    values = {}
    for key in node:
        if key in skip:
            continue
        try:
            value = node[key]
            is_node = OmegaConf.is_config(value)
            values[key] = OmegaConf.to_container(value, resolve=True) if is_node else value
        except InterpolationResolutionError as err:
            hint = " (set problem.lr or optimizer.lr)" if key == "lr" else ""
            raw = unresolved(node, key)
            raise ConfigError(f"{prefix}{key}", raw, one_line(err) + hint) from err
    return values


def one_line(err: BaseException) -> str:
    """An error message on one line (OmegaConf and Hydra add lines of context)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(line for line in lines if not line.startswith(("full_key:", "object_type")))


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
                f"{group}.{key}", value, f"not an argument of {target_name(target)}"
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
            raise ConfigError(f"{prefix}{key}", value, f"must be {describe(hint)}") from err
        length = tuple_length(hint)
        if length is not None and len(value) != length:
            raise ConfigError(
                f"{prefix}{key}", value, f"must have {length} entries, it has {len(value)}"
            )
        default = defaults.get(key)
        if not_finite(value) and not not_finite(default):
            raise ConfigError(f"{prefix}{key}", value, "must be finite")


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
