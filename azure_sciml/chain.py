"""Optimizer chains: one optimizer for the first part of a run, another for the rest.

The recipe PINN and neural-ODE users train with is Adam, then L-BFGS (DeepXDE's examples;
Rathore et al., ICML 2024; DiffEqFlux's docs). :class:`Chain` is that recipe as one
``torch.optim.Optimizer``, so :func:`azure_sciml.fit` and any closure loop drive it as they drive
Adam::

    from functools import partial
    make = partial(
        Chain,
        first=partial(torch.optim.Adam, lr=1e-3),
        then=partial(torch.optim.LBFGS, lr=1.0, line_search_fn="strong_wolfe"),
        at=0.8,
    )
    result = azure_sciml.fit(problem, make, steps=10_000)   # fit hands the chain its length

Budget: the chain counts every call of the closure (a line search's calls included), the unit
:func:`~azure_sciml.fit` budgets in. It hands over at the first step that starts with at least
``round(at * total_steps)`` calls made, and in the last phase it never calls the closure more than
``total_steps`` times in all: a step that would go beyond is cut short at the best point that step
evaluated (L-BFGS's history is dropped then, as it no longer matches that point).

Pseudo-code of ``step(closure)``::

    opt = first if n_evals < switch_at else then     # n_evals: closure calls so far
    if opt is then and handover is None: handover = n_evals
    run opt.step(counted closure)                     # counted: n_evals += 1, refused past budget
    on refusal or a NaN/Inf error inside a multi-evaluation step:
        restore the step's best evaluated point, clear opt's state
    if a searching optimizer's step found no lower loss than its start:
        back to its start, clear opt's state (a restart)

Run length (:mod:`azure_sciml.run_length`): the chain's is ``total_steps`` or, without it, what
the driver hands over with ``set_run_length`` (``fit`` does, with its budget); the chain hands
each phase its share (``Azure`` as ``first`` anneals over 90% of the first phase). A learning-rate
scheduler attached to the chain schedules the first optimizer (``param_groups`` are the first's);
the refining optimizer keeps its own lr. ``stats()`` records the hand-over, each phase's own
``stats()`` where it has one, and the refining optimizer's scalar counters as ``then.NAME``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from azure_sciml.run_length import hand_over_run_length

OptimizerFactory = Callable[..., torch.optim.Optimizer]
PHASES = ("first", "then")


class BudgetSpent(RuntimeError):
    """Raised by the chain's counting closure when a step asks for an evaluation past the budget."""


class Chain(torch.optim.Optimizer):
    """``first`` for ``round(at * total_steps)`` closure calls, then ``then`` up to ``total_steps``.

    Args:
        params: parameters or parameter groups, handed to both factories.
        first, then: factories ``params -> Optimizer`` (e.g. ``functools.partial``).
        at: fraction of the budget after which ``then`` takes over, in [0, 1].
        total_steps: the run's budget in closure calls (loss evaluations); the chain never calls
            the closure more often. ``None``: the length :meth:`set_run_length` hands over
            (``fit`` does); without one, no cap, and ``at`` must be 0 or 1 (no budget to take a
            fraction of) when the first step comes.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        first: OptimizerFactory,
        then: OptimizerFactory,
        at: float = 0.8,
        total_steps: int | None = None,
    ):
        _check_args(first, then, at, total_steps)
        params = list(params)
        self.at = float(at)
        self.total_steps: int | None = None
        self.switch_at = _switch_point(at, None)
        self.first, self.then = first(params), then(params)
        if total_steps is not None:
            self.set_run_length(total_steps)
        super().__init__(params, {})
        self.param_groups = self.first.param_groups  # a scheduler schedules the first phase
        self.n_evals = 0
        self.evals = {"first": 0, "then": 0}
        self.handover: int | None = None
        self.n_cut = self.n_restarts = 0
        # whether a phase's steps may evaluate more than once (then a step keeps its start point)
        self._may_search = {"first": True, "then": True}

    def set_run_length(self, total_steps: int) -> None:
        """The run-length protocol: the chain's budget, unless it has one (``total_steps`` given,
        or a length handed over before); each phase gets its share."""
        if self.total_steps is not None:
            return
        _check_total_steps(total_steps)
        self.total_steps = total_steps
        self.switch_at = _switch_point(self.at, total_steps)
        shares = ((self.first, self.switch_at), (self.then, total_steps - self.switch_at))
        for phase, length in shares:
            if length >= 1:
                hand_over_run_length(phase, length)

    @property
    def phase(self) -> str:
        return "first" if self.n_evals < self.switch_at else "then"

    @property
    def active(self) -> torch.optim.Optimizer:
        return self.first if self.phase == "first" else self.then

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        if closure is None:
            raise ValueError("Chain.step needs a closure: it counts the loss evaluations")
        if self.total_steps is None and self.at not in (0, 1):
            raise ValueError(
                f"Invalid at value: {self.at!r} without total_steps (only 0 or 1): give"
                " total_steps or hand the run length over with set_run_length (fit does)"
            )
        if self.total_steps is not None and self.n_evals >= self.total_steps:
            raise BudgetSpent(
                f"Chain: the budget of total_steps={self.total_steps} loss evaluations is spent"
            )
        phase = self.phase
        if phase == "then" and self.handover is None:
            self.handover = self.n_evals
        tracker = _StepTracker(self, phase, closure, keep_start=self._may_search[phase])
        try:
            loss = self.active.step(tracker)
        except BudgetSpent:
            self.n_cut += tracker.restore_best()
            return tracker.first_loss
        except FloatingPointError:
            tracker.restore_best()
            raise
        finally:
            self._may_search[phase] = tracker.calls > 1
        if tracker.stalled():  # e.g. float32 L-BFGS with a direction it cannot search
            tracker.restore_best()
            self.active.state.clear()
            self.n_restarts += 1
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.active.zero_grad(set_to_none=set_to_none)

    def stats(self) -> dict[str, Any]:
        """Hand-over and evaluation counts, with each phase's own ``stats()`` where it has one."""
        out: dict[str, Any] = {
            "phase": self.phase,
            "switch_at": self.switch_at,
            "handover_eval": self.handover,
            "n_loss_evals": self.n_evals,
            "evals_first": self.evals["first"],
            "evals_then": self.evals["then"],
            "steps_cut_at_budget": self.n_cut,
            "restarts": self.n_restarts,
            "first": type(self.first).__name__,
            "then": type(self.then).__name__,
        }
        for name in PHASES:
            stats = getattr(getattr(self, name), "stats", None)
            if callable(stats):
                out[f"{name}_stats"] = stats()
        # the finisher's counters at the top level, where the report reads counters (e.g.
        # then.stops_line_search: why azure_sciml.BFGS stopped)
        for key, value in out.get("then_stats", {}).items():
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                out[f"then.{key}"] = value
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "chain": {
                "n_evals": self.n_evals,
                "evals": dict(self.evals),
                "handover": self.handover,
                "n_cut": self.n_cut,
                "n_restarts": self.n_restarts,
                "may_search": dict(self._may_search),
                "switch_at": self.switch_at,
                "total_steps": self.total_steps,
            },
            "first": self.first.state_dict(),
            "then": self.then.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "chain" not in state_dict:
            raise ValueError("not a Chain state_dict: it has no 'chain' entry")
        saved = state_dict["chain"]
        for key in ("switch_at", "total_steps"):
            if saved[key] != getattr(self, key):
                raise ValueError(
                    f"Chain state_dict has {key}={saved[key]!r}, this chain {getattr(self, key)!r}"
                )
        self.first.load_state_dict(state_dict["first"])
        self.then.load_state_dict(state_dict["then"])
        self.n_evals, self.handover = saved["n_evals"], saved["handover"]
        self.n_cut, self.n_restarts = saved["n_cut"], saved["n_restarts"]
        self.evals = dict(saved["evals"])
        self._may_search = dict(saved["may_search"])
        self.param_groups = self.first.param_groups


class _StepTracker:
    """The counting closure of one step: refuses calls past the budget and keeps the step's best
    evaluated point, so that a step cut short ends there. The step's start point is copied only
    where the phase's steps evaluate more than once (not once per Adam step)."""

    def __init__(self, chain: Chain, phase: str, closure: Callable[[], Tensor], keep_start: bool):
        self.chain, self.phase, self.closure = chain, phase, closure
        self.params = [p for g in chain.active.param_groups for p in g["params"]]
        self.keep_start = keep_start
        self.calls = 0
        self.first_loss: Tensor | None = None
        self.best_loss = math.inf
        self.best: list[Tensor] | None = None

    def __call__(self) -> Tensor:
        chain = self.chain
        if chain.total_steps is not None and chain.n_evals >= chain.total_steps:
            raise BudgetSpent(f"the budget of {chain.total_steps} loss evaluations is spent")
        self.calls += 1
        chain.n_evals += 1
        chain.evals[self.phase] += 1
        loss = self.closure()
        value = float(loss.detach())
        if self.calls == 1:
            self.first_loss = loss.detach()
        if value < self.best_loss and (self.calls > 1 or self.keep_start):
            self.best_loss = value
            self.best = [p.detach().clone() for p in self.params]
        return loss

    def stalled(self) -> bool:
        """A step of a searching optimizer that evaluated no lower loss than where it started, or
        evaluated once and did not move (torch's float32 L-BFGS does so, step after step, once
        its line search cannot descend along its direction)."""
        if not self.keep_start or self.best is None:
            return False
        if self.calls == 1:  # one evaluation: stalled if it did not move
            return all(torch.equal(p, b) for p, b in zip(self.params, self.best, strict=True))
        return not self.best_loss < float(self.first_loss)

    def restore_best(self) -> bool:
        """Back to the step's best evaluated point, the optimizer's state dropped (its history
        belongs to another point); False where nothing moved."""
        if self.calls <= 1 or self.best is None:
            return False  # the optimizer never got past its first evaluation
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.best)
        self.chain.active.state.clear()
        return True


def _switch_point(at: float, total_steps: int | None) -> int:
    if total_steps is None:
        return 0 if at == 0 else math.inf  # type: ignore[return-value]
    return round(at * total_steps)


def _check_args(first, then, at, total_steps) -> None:
    for name, factory in (("first", first), ("then", then)):
        if not callable(factory):
            raise ValueError(f"Invalid {name} value: {factory!r} (a factory params -> Optimizer)")
    number = isinstance(at, int | float) and not isinstance(at, bool)
    if not number or not 0 <= at <= 1:
        raise ValueError(f"Invalid at value: {at!r} (a fraction of the budget in [0, 1])")
    if total_steps is not None:
        _check_total_steps(total_steps)


def _check_total_steps(total_steps) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"Invalid total_steps value: {total_steps!r} (a positive integer or None)")
