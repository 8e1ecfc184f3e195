"""What Azure refuses and what it warns about: its arguments (a ``ValueError`` naming the argument
and its value, in torch's wording: ``Invalid lr value: -1 (>= 0 and finite)``), and a call it
cannot fully honour (a warning, once per optimizer)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from torch import Tensor

from azure_sciml._anneal import Settings


def check_arguments(
    T0, sa_steps, sa_momentum, sa_interval, sa_patience, seed, total_steps, settings
) -> None:
    """The optimizer-wide arguments (the per-group ones: :func:`check_group`)."""
    check_real("T0", T0, lambda v: 0 <= v < math.inf, ">= 0 and finite")
    check_real("sa_momentum", sa_momentum, lambda v: 0 <= v < 1, "in [0, 1)")
    check_int("sa_interval", sa_interval, 1)
    check_int("sa_patience", sa_patience, 0)
    if sa_steps is not None:
        check_int("sa_steps", sa_steps, 0)
    if total_steps is not None:
        check_int("total_steps", total_steps, 1)
    if seed is not None:
        check_int("seed", seed, None)
    if settings is not None and not isinstance(settings, Settings):
        raise ValueError(f"Invalid settings value: {settings!r} (an _anneal.Settings)")


def check_descent(descent: Any) -> None:
    if descent not in ("auto", "adam"):
        raise ValueError(f"Invalid descent value: {descent!r} ('auto' or 'adam')")


def check_group(group: dict) -> None:
    """``ValueError`` naming the bad hyperparameter and its value."""
    lr = group["lr"]
    if isinstance(lr, Tensor):
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        lr = float(lr)
    check_real("lr", lr, lambda v: 0 <= v < math.inf, ">= 0 and finite")
    check_real("eps", group["eps"], lambda v: 0 <= v < math.inf, ">= 0 and finite")
    check_real("weight_decay", group["weight_decay"], lambda v: 0 <= v < math.inf, ">= 0")
    check_real("sigma", group["sigma"], lambda v: 0 <= v < math.inf, ">= 0 and finite")
    for i, beta in enumerate(group["betas"]):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta!r}")
    if group["fused"] is not None and not isinstance(group["fused"], bool):
        raise ValueError(f"Invalid fused value: {group['fused']!r} (True, False or None)")


def check_betas(betas: Any) -> tuple[float, float]:
    """Two floats (or two 1-element Tensors, as Adam takes them), returned as floats."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"Invalid betas value: {betas!r} (a pair (beta1, beta2))")
    tensors = [isinstance(b, Tensor) for b in betas]
    if any(tensors) and not all(tensors):
        raise ValueError("betas must be either both floats or both Tensors")
    out = []
    for i, beta in enumerate(betas):
        if isinstance(beta, Tensor):
            if beta.numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element")
            beta = float(beta)
        check_real(f"betas[{i}]", beta, lambda v: v == v, "a real number")
        out.append(float(beta))
    return out[0], out[1]


def check_real(name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is a real number (no bool) that is ok."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
        raise ValueError(f"Invalid {name} value: {value!r} ({allowed})")


def check_int(name: str, value: Any, low: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        bound = "an integer" if low is None else f"an integer >= {low}"
        raise ValueError(f"Invalid {name} value: {value!r} ({bound})")


# The warnings, once per optimizer; ``stacklevel`` counts the frames up from ``Azure.step``.


def warn_unjudged() -> None:
    warnings.warn(
        "Azure.step() got neither a closure nor a loss, so it cannot judge a proposal: it "
        "steps as Adam. To anneal, call step(closure) or, after loss.backward(), "
        "step(loss=loss); sa_steps=0 silences this warning.",
        UserWarning,
        stacklevel=4,
    )


def warn_default_length(sa_steps: int) -> None:
    warnings.warn(
        f"Azure got no run length (total_steps, sa_steps or set_run_length): it anneals for"
        f" the first {sa_steps} steps. Pass total_steps=N, the run's number of steps.",
        UserWarning,
        stacklevel=3,
    )


def warn_nonfinite(value: float, step: int) -> None:
    warnings.warn(
        f"Azure: loss {value} at step {step} rejected "
        "(non-finite): no update, parameters kept at the last accepted point. Further "
        "rejections are counted in stats() without warning.",
        RuntimeWarning,
        stacklevel=3,
    )
