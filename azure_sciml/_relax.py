"""Azure's curvature descent: a limited-memory BFGS that spends one loss evaluation per step.

Basin-hopping relaxes each proposal with a quasi-Newton method; cluster codes (GMIN's "sloppy"
L-BFGS quenches, Wales & Doye 1997) do it without a line search: each step evaluates the loss and
gradient once at ``x_prev + t d``; a step that raised the loss is halved (back to ``x_prev``,
``t ← t / 2``), one that lowered it is kept, adds its pair ``(s, y)`` to the memory and gives the
next direction ``d = -H g`` (the two-loop recursion of :mod:`azure_sciml._quasi_newton`, with
``H_0 = (s'y / y'y) I``). So a descent keeps Azure's one-evaluation-per-step contract and the
controller judges it like an Adam descent.

The first step of a descent (no memory yet) has the length of Adam's first step, ``lr`` per
coordinate; every step is capped at the proposal's own length (``sigma · lr · K`` per coordinate).
The parameters are handled as one flat vector, so this is for small models (Azure uses it up to
:data:`MAX_PARAMS` exploring parameters, on one device and dtype).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from azure_sciml._quasi_newton import two_loop

MAX_PARAMS = 100_000  # exploring parameters up to which Azure's descents use curvature
MEMORY = 10  # (s, y) pairs kept
MAX_HALVINGS = 20  # halvings of one step before the memory is dropped (steepest descent again)


def allowed(descent: str, param_groups: list[dict], params: list[Tensor]) -> bool:
    """``descent="auto"``: quasi-Newton descents for the exploring ``params`` of a small model
    whose exploring groups have no weight decay (its gradient term is not in the loss)."""
    exploring = [g for g in param_groups if g["sigma"] > 0]
    return (
        descent == "auto" and all(g["weight_decay"] == 0 for g in exploring)
        and can_relax(params)
    )


def step_lengths(param_groups: list[dict], interval: int) -> tuple[float, float]:
    """The length of a first step (Adam's: ``lr`` per coordinate) and the cap on every step (a
    proposal's typical length: ``sigma · lr · K`` per coordinate), over the exploring groups."""
    first = longest = 0.0
    for g in param_groups:
        if g["sigma"] > 0:
            n = sum(p.numel() for p in g["params"] if p.requires_grad)
            first += float(g["lr"]) ** 2 * n
            longest += (g["sigma"] * float(g["lr"])) ** 2 * n  # K outside the root, as the
    return math.sqrt(first), interval * math.sqrt(longest)  # runs in docs/ were made


def can_relax(params: list[Tensor]) -> bool:
    """One device, one real floating dtype, at most :data:`MAX_PARAMS` elements."""
    if not params or sum(p.numel() for p in params) > MAX_PARAMS:
        return False
    first = params[0]
    return all(
        p.device == first.device and p.dtype == first.dtype and p.dtype.is_floating_point
        for p in params
    )


class Relaxation:
    """The state of one descent: the last kept point with its loss and gradient, the step taken
    from it, and the memory of ``(s, y)`` pairs. Plain tensors and numbers (``state_dict``)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A new descent (after a proposal): nothing kept."""
        self.x: Tensor | None = None  # last kept point
        self.g: Tensor | None = None  # its gradient
        self.f = math.inf  # its loss
        self.d: Tensor | None = None  # the step from x that is being tried
        self.halvings = 0
        self.backtrack = False  # the point just seen raised the loss: halve the step
        self.s: list[Tensor] = []
        self.y: list[Tensor] = []
        self.ys: list[float] = []  # y's of each pair
        self.gamma = 1.0  # H_0's scale: s'y / y'y of the last pair

    def observe(self, params: list[Tensor], loss: float) -> float:
        """The loss at the parameters (their ``.grad`` filled in). A rise sends the parameters
        back to the last kept point and returns that point's loss (the current point's, for the
        controller); otherwise the point is kept and the memory learns the step."""
        if loss > self.f:
            _assign(params, self.x)
            self.backtrack = True
            return self.f
        x, g = _flat(params), _flat([_grad(p) for p in params])
        if self.x is not None:
            s, y = x - self.x, g - self.g
            ys, yy = float(y.dot(s)), float(y.dot(y))
            if yy > 0 and ys > 1e-10 * float(s.dot(s)) ** 0.5 * yy**0.5:  # y'y: 0 in float16
                self.s, self.y = [*self.s, s][-MEMORY:], [*self.y, y][-MEMORY:]
                self.ys, self.gamma = [*self.ys, ys][-MEMORY:], ys / yy
        self.x, self.g, self.f, self.backtrack = x, g, loss, False
        return loss

    def update(self, params: list[Tensor], first: float, longest: float) -> None:
        """Move the parameters to the next trial point: the kept point plus half the last step
        after a rise, else plus a new quasi-Newton step. ``first``: the length of a step without
        memory; ``longest``: the cap on any step's length."""
        if self.backtrack and self.halvings < MAX_HALVINGS:
            self.halvings += 1
            self.d.mul_(0.5)
        else:
            if self.backtrack:  # the direction does not descend: forget the curvature, and
                self.s, self.y, self.ys = [], [], []  # go on from the length reached
                first = float(self.d.norm())
            self.halvings = 0
            self.d = self._direction(first)
            length = float(self.d.norm())
            if length > longest:
                self.d.mul_(longest / length)
        _assign(params, self.x + self.d)

    def back_to_kept(self, params: list[Tensor]) -> None:
        """Leave the parameters at the last kept point, not at a trial point not yet evaluated
        (the end of a run)."""
        if self.x is not None:
            _assign(params, self.x)
            self.backtrack, self.d = True, torch.zeros_like(self.x)

    def _direction(self, first: float) -> Tensor:
        if self.s:
            d = -two_loop(self.s, self.y, self.g, self.gamma, self.ys)
            if float(d.dot(self.g)) < 0:
                return d
            self.s, self.y, self.ys = [], [], []
        norm = float(self.g.norm())
        return -self.g * (first / norm) if norm > 0 else torch.zeros_like(self.g)

    def state_dict(self) -> dict[str, Any]:
        keys = ("x", "g", "f", "d", "halvings", "backtrack", "s", "y")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        for k, v in state.items():
            setattr(self, k, list(v) if k in ("s", "y") else v)
        self.ys = [float(y.dot(s)) for s, y in zip(self.s, self.y, strict=True)]
        self.gamma = self.ys[-1] / float(self.y[-1].dot(self.y[-1])) if self.y else 1.0


def _flat(tensors: list[Tensor]) -> Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _grad(p: Tensor) -> Tensor:
    return p.grad if p.grad is not None else torch.zeros_like(p)


def _assign(params: list[Tensor], flat: Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(flat[offset : offset + n].view_as(p))
        offset += n
