"""Azure's annealing buffers, per parameter in the optimizer's ``state``: ``anchor`` (where the
next proposal starts), ``best`` (the best point judged, with its Adam moments and step count) and
``sa_dir`` (the proposals' correlated direction). What the controller's decisions do to the
tensors: save, restore, restart Adam for a new descent, propose, end the phase."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from azure_sciml._noise import Noise

MOMENTS = ("exp_avg", "exp_avg_sq")
SA_BUFFERS = ("anchor", "best", "best_step", "best_exp_avg", "best_exp_avg_sq", "sa_dir")


def save(state: dict, params: list[Tensor], name: str) -> None:
    """Copy each parameter into ``state[p][name]``; ``best`` keeps its Adam moments too, so
    the refinement after the phase resumes Adam where that point's descent was."""
    for p in params:
        p_state = state[p]
        pairs = [(name, p)]
        if name == "best" and "step" in p_state:
            pairs += [("best_step", p_state["step"])]
            pairs += [(f"best_{k}", p_state[k]) for k in MOMENTS]
        for key, src in pairs:
            if key in p_state:
                p_state[key].copy_(src)
            else:
                p_state[key] = src.detach().clone()


def restore(state: dict, params: list[Tensor], name: str) -> None:
    params = [p for p in params if name in state[p]]
    if params:
        torch._foreach_copy_(params, [state[p][name] for p in params])


def restart(state: dict, params: list[Tensor]) -> None:
    """A fresh Adam for a new descent: moments and step count zeroed (float16: the first
    moment only, as its restarted second moment would underflow)."""
    for p in params:
        p_state = state[p]
        if "step" not in p_state:
            continue
        p_state["exp_avg"].zero_()
        if p.dtype != torch.float16:
            p_state["step"].zero_()
            p_state["exp_avg_sq"].zero_()


def propose(
    state: dict,
    param_groups: list[dict],
    noise: Noise,
    interval: int,
    factor: float,
    momentum: float,
) -> None:
    """Move each group with ``sigma > 0`` by a proposal of ``sigma · lr · interval · factor`` per
    coordinate (correlated over proposals by ``momentum``) and restart its Adam."""
    for group in param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        size = group["sigma"] * float(group["lr"]) * interval * factor
        if size == 0.0 or not params:
            continue
        real = [_real(p) for p in params]
        dirs = [_real(_direction(state, p)) for p in params] if momentum else None
        noise.add(real, size, momentum, dirs)
        restart(state, params)


def end_phase(state: dict, params: list[Tensor], restore_best: bool) -> None:
    """The end of the annealing phase: back to the best point with its Adam moments if asked;
    the buffers freed."""
    if restore_best:
        restore(state, params, "best")
        for p in params:
            p_state = state[p]
            if "best_step" in p_state:
                p_state["step"].copy_(p_state["best_step"])
                for k in MOMENTS:
                    p_state[k].copy_(p_state[f"best_{k}"])
    for p in params:
        for name in SA_BUFFERS:
            state[p].pop(name, None)


@contextmanager
def at_best(state: dict, params: list[Tensor], active: bool) -> Iterator[None]:
    """Inside the block (if ``active``) the parameters that have a ``best`` buffer hold it; on
    exit their own values come back."""
    params = [p for p in params if "best" in state[p]]
    if not params or not active:
        yield
        return
    with torch.no_grad():
        current = [p.detach().clone() for p in params]
        torch._foreach_copy_(params, [state[p]["best"] for p in params])
    try:
        yield
    finally:
        with torch.no_grad():
            torch._foreach_copy_(params, current)


def _direction(state: dict, p: Tensor) -> Tensor:
    p_state = state[p]
    if "sa_dir" not in p_state:
        p_state["sa_dir"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return p_state["sa_dir"]


def _real(t: Tensor) -> Tensor:
    """Complex tensors as real views (``torch.optim.Adam``'s treatment: |g|² per component)."""
    return torch.view_as_real(t) if torch.is_complex(t) else t
