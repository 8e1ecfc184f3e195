"""BFGS and its self-scaled variants as a ``torch.optim.Optimizer`` with a torch-style closure.

The quasi-Newton finisher of the PINN recipe: Adam, then full-batch BFGS in float64 (Urbán,
Stefanou & Pons, "Unveiling the optimization process of physics informed neural networks: how
accurate and competitive can PINNs be?", J. Comput. Phys. (2025) 113656,
doi:10.1016/j.jcp.2024.113656; Kiyani, Shukla, Urbán, Darbon & Karniadakis, "Optimizing the
optimizer for physics-informed neural networks and Kolmogorov-Arnold networks", Comput. Methods
Appl. Mech. Engrg. 446 (2025) 118308). It is driven as :class:`torch.optim.LBFGS` is: ``step``
takes a closure that zeroes the gradients, evaluates the loss, calls ``backward`` and returns the
loss, and runs up to ``max_iter`` iterations; :class:`azure_sciml.Chain` counts every closure call.

The dense inverse-Hessian approximation ``H`` (``n x n``, ``H_0 = I``) is updated after each step
by the self-scaled Broyden family: ``update="bfgs"`` (the BFGS update, scipy's
``minimize(method="BFGS")``), ``"ssbfgs"`` (Al-Baali's self-scaled BFGS) or ``"ssbroyden"`` (the
self-scaled Broyden update of Urbán et al. and Kiyani et al.); :mod:`azure_sciml._quasi_newton`
gives the formulas. An update is skipped where ``y's <= 0`` (the curvature condition fails,
possible only after the fallback's Armijo step).

Line search: torch's strong-Wolfe search (``torch.optim.lbfgs._strong_wolfe``, the one
``LBFGS(line_search_fn="strong_wolfe")`` uses; c1 = 1e-4, c2 = 0.9, at most 25 evaluations), first
trial step ``lr`` (``lr * min(1, 1/|g|_1)`` while ``H`` is the unscaled identity, as LBFGS starts).
Where it returns no lower loss (Rathore et al., ICML 2024, saw L-BFGS stop so with a gradient
norm still ~1e-3), ``H`` is reset to the scaled identity ``(s'y / y'y) I`` of the last pair and
the search retried along ``-H g``; where that fails too, a backtracking Armijo search (halving,
at most 25 evaluations); where that fails, the step ends at its last point with ``stop =
"line_search"``.

float64 first: the curvature pairs of a PINN's loss near its minimum (loss ~1e-10, steps ~1e-6)
are round-off in float32, and float32 quasi-Newton runs stall there (Xu et al., NeurIPS 2025,
"FP64 is all you need"; the chains experiment: heat seed 0, float32 rel_l2 1.2e-3, float64
4.0e-4). Policy: a ``UserWarning`` at the first ``step()`` on parameters of a lower precision (the
optimizer still runs: Rosenbrock-sized problems converge in float32 too; not at construction, where
the app dry-runs configs on a float32 tensor).

Size: ``H`` takes ``8 n^2`` bytes and an iteration ``O(n^2)``: measured on this project's 2-core
AMD EPYC box (one thread, float64, one matvec + three rank-1 updates): n = 1000 5 ms, 2000 36 ms,
4000 110 ms (122 MiB), 8000 362 ms (488 MiB); the heat PINN has n = 921, the spiral ODE 252.
Above ``max_dense`` (5000: ~0.2 s and 190 MiB per iteration) the optimizer keeps the last
``history`` pairs instead and takes its direction by the L-BFGS two-loop recursion with the scaled
identity (s'y / y'y) as the initial matrix (Nocedal & Wright, Numerical Optimization, Alg. 7.4):
plain L-BFGS, whatever ``update`` says (a warning says so).

``stats()`` counts iterations, evaluations, resets, skipped updates and why steps ended: ``stop``
is the last reason (``"max_iter"``, ``"max_eval"``, ``"gradient_tolerance"``,
``"change_tolerance"``, ``"line_search"``, ``"budget"`` where the closure refused an evaluation
past the chain's budget, or the exception's class name), ``stops_*`` count each. An exception from
the closure (e.g. :class:`~azure_sciml.chain.BudgetSpent` in a line search) leaves the parameters
at the last accepted iterate and ``H`` matching it, then propagates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim.lbfgs import _strong_wolfe

from azure_sciml._quasi_newton import inverse_update, two_loop
from azure_sciml.chain import BudgetSpent

UPDATES = ("bfgs", "ssbfgs", "ssbroyden")
STOPS = ("max_iter", "max_eval", "gradient_tolerance", "change_tolerance", "line_search", "budget")
MAX_DENSE = 5000  # parameters; measured above (module docstring)
MAX_LS = 25  # evaluations per line search
C1, C2 = 1e-4, 0.9  # Wolfe constants (scipy's and torch's)
LS_TOLERANCE = 1e-14  # the strong-Wolfe search stops shrinking a bracket narrower than this


class LineSearchFailed(Exception):
    """No step along the direction lowered the loss (internal: the fallback's signal)."""


class BFGS(torch.optim.Optimizer):
    """Dense BFGS / SSBFGS / SSBroyden with a strong-Wolfe line search (module docstring).

    Args:
        params: the parameters (one group, as for LBFGS).
        lr: first trial step of each line search (1: the quasi-Newton step).
        max_iter: iterations per ``step()``.
        max_eval: closure calls per ``step()`` (default ``max_iter * 5 // 4``, LBFGS's).
        tolerance_grad: a step ends when the gradient's largest entry is at most this.
        tolerance_change: a step ends when the largest entry of an accepted step, or the loss
            change, is at most this (0: never on change; a chain restarts a stalled finisher).
        update: ``"bfgs"``, ``"ssbfgs"`` or ``"ssbroyden"``.
        history: curvature pairs kept by the limited-memory form (above ``max_dense``).
        max_dense: largest parameter count for the dense ``H``.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-9,
        tolerance_change: float = 0.0,
        update: str = "bfgs",
        history: int = 100,
        max_dense: int = MAX_DENSE,
    ):
        max_eval = max_iter * 5 // 4 if max_eval is None and _is_int(max_iter) else max_eval
        _check_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change, update, history,
                    max_dense)
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, update=update, history=history,
                        max_dense=max_dense)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                f"BFGS takes one parameter group, got {len(self.param_groups)} (as LBFGS)"
            )
        self._params = self.param_groups[0]["params"]
        self.n_params = sum(p.numel() for p in self._params)
        self.dense = self.n_params <= max_dense
        _warn_about_size(self.n_params, max_dense, update, self.dense)
        self._stats = _fresh_stats()
        self._precision_checked = False  # at the first step: configs are dry-run on float32

    # -- the step ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError("BFGS.step needs a closure that re-evaluates the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        self._evals_this_step = 0
        if not self._precision_checked:
            _warn_about_precision(self._params)
            self._precision_checked = True
        try:
            loss = self._evaluate(closure)
            reason = self._iterate(closure, group, float(loss.detach()))
        except BudgetSpent:
            self._record("budget")
            raise
        except Exception as err:
            self._record(type(err).__name__)
            raise
        self._record(reason)
        return loss

    def _iterate(self, closure, group: dict, loss: float) -> str:
        state = self._state()
        g = self._flat_grad()
        x = self._flat_params()
        if g.abs().max() <= group["tolerance_grad"]:
            return "gradient_tolerance"
        for _ in range(group["max_iter"]):
            try:
                t, d, new_loss, g_new = self._search(closure, group, state, x, loss, g)
            except LineSearchFailed:
                return "line_search"
            x_new = x + t * d
            self._set_params(x_new)
            self._remember(state, group, x_new - x, g_new - g, g, t)
            state["n_iter"] += 1
            self._stats["iterations"] += 1
            change = abs(new_loss - loss)
            x, g, loss = x_new, g_new, new_loss
            if g.abs().max() <= group["tolerance_grad"]:
                return "gradient_tolerance"
            if (t * d).abs().max() <= group["tolerance_change"] or change <= group[
                "tolerance_change"
            ]:
                return "change_tolerance"
            if self._evals_this_step >= group["max_eval"]:
                return "max_eval"
        return "max_iter"

    def _search(self, closure, group, state, x, loss, g):
        """A step length along the quasi-Newton direction, with the fallbacks."""
        d = self._direction(state, g)
        gtd = float(g.dot(d))
        if not gtd < 0:  # not a descent direction (round-off in H): restart from the identity
            self._reset(state)
            d = self._direction(state, g)
            gtd = float(g.dot(d))
        t0 = group["lr"] * (min(1.0, 1.0 / float(g.abs().sum())) if state["unscaled"] else 1.0)
        found = self._wolfe(closure, x, t0, d, loss, g, gtd)
        if found is None and not state["identity"]:
            self._reset(state)
            d = self._direction(state, g)
            gtd = float(g.dot(d))
            found = self._wolfe(closure, x, group["lr"], d, loss, g, gtd)
        if found is None:
            found = self._armijo(closure, x, group["lr"], d, loss, gtd)
        if found is None:
            self._stats["line_search_failures"] += 1
            raise LineSearchFailed
        t, new_loss, g_new = found
        return t, d, new_loss, g_new

    def _wolfe(self, closure, x, t, d, loss, g, gtd):
        obj = self._directional(closure)
        new_loss, g_new, t, _ = _strong_wolfe(
            obj, x, t, d, loss, g, gtd, c1=C1, c2=C2, tolerance_change=LS_TOLERANCE, max_ls=MAX_LS
        )
        if not (t > 0 and new_loss < loss):
            return None
        return t, float(new_loss), g_new

    def _armijo(self, closure, x, t, d, loss, gtd):
        obj = self._directional(closure)
        for _ in range(MAX_LS):
            new_loss, g_new = obj(x, t, d)
            if new_loss <= loss + C1 * t * gtd and new_loss < loss:
                self._stats["armijo_steps"] += 1
                return t, new_loss, g_new
            t *= 0.5
        return None

    def _directional(self, closure):
        """``(x, t, d) -> (loss, grad)`` at ``x + t d``; the parameters go back to ``x`` after each
        evaluation, also when the closure raises."""

        def evaluate(x: Tensor, t: float, d: Tensor) -> tuple[float, Tensor]:
            self._set_params(x + t * d)
            try:
                loss = float(self._evaluate(closure).detach())
                return loss, self._flat_grad()
            finally:
                self._set_params(x)

        return evaluate

    def _evaluate(self, closure) -> Tensor:
        loss = closure()  # counted once it returns: a refused call is no evaluation
        self._evals_this_step += 1
        self._stats["evaluations"] += 1
        return loss

    # -- the inverse-Hessian approximation ----------------------------------------------------
    def _state(self) -> dict:
        state = self.state[self._params[0]]
        if "n_iter" not in state:  # fresh, or cleared by a chain's restart
            state["n_iter"] = 0
            state["identity"] = state["unscaled"] = True
            if self.dense:
                p = self._params[0]
                state["H"] = torch.eye(self.n_params, dtype=p.dtype, device=p.device)
            else:
                state["s"], state["y"] = [], []
            state["gamma"] = 1.0
        return state

    def _direction(self, state: dict, g: Tensor) -> Tensor:
        if self.dense:
            return -(state["H"] @ g)
        return -two_loop(state["s"], state["y"], g, state["gamma"])

    def _reset(self, state: dict) -> None:
        """H = (s'y / y'y) I of the last pair (I before any pair)."""
        self._stats["resets"] += 1
        state["identity"] = True
        state["unscaled"] = state["gamma"] == 1.0
        if self.dense:
            state["H"].zero_().diagonal().fill_(state["gamma"])
        else:
            state["s"].clear()
            state["y"].clear()

    def _remember(self, state, group, s: Tensor, y: Tensor, g: Tensor, t: float) -> None:
        ys = float(y.dot(s))
        if not ys > 0:
            self._stats["skipped_updates"] += 1
            return
        state["gamma"] = ys / float(y.dot(y))
        state["identity"] = state["unscaled"] = False
        if self.dense:
            inverse_update(state["H"], s, y, g, t, group["update"])
            return
        if len(state["s"]) == group["history"]:
            state["s"].pop(0)
            state["y"].pop(0)
        state["s"].append(s)
        state["y"].append(y)

    # -- parameters as one vector ----------------------------------------------------------
    def _flat_params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _flat_grad(self) -> Tensor:
        return torch.cat([
            torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if p.grad is None
            else p.grad.reshape(-1)
            for p in self._params
        ])

    def _set_params(self, flat: Tensor) -> None:
        offset = 0
        for p in self._params:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()

    # -- bookkeeping -----------------------------------------------------------------------
    def _record(self, reason: str) -> None:
        self._stats["stop"] = reason
        key = f"stops_{reason}" if reason in STOPS else "stops_error"
        self._stats[key] += 1

    def stats(self) -> dict[str, Any]:
        """Counters and why the last step ended (``stop``; module docstring)."""
        return {"update": self.param_groups[0]["update"], "dense": self.dense, **self._stats}

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["bfgs_stats"] = dict(self._stats)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        stats = state_dict.pop("bfgs_stats", None)
        super().load_state_dict(state_dict)
        self._stats = _fresh_stats() if stats is None else {**_fresh_stats(), **stats}


def _fresh_stats() -> dict[str, Any]:
    counters = ("iterations", "evaluations", "resets", "skipped_updates", "line_search_failures",
                "armijo_steps")
    return {"stop": None, **dict.fromkeys(counters, 0),
            **{f"stops_{r}": 0 for r in (*STOPS, "error")}}


def _warn_about_precision(params) -> None:
    low = sorted({str(p.dtype) for p in params if p.dtype != torch.float64})
    if low:
        warnings.warn(
            f"BFGS on {', '.join(low)} parameters: its curvature pairs are round-off near a "
            "PINN's minimum and it may stall; train in float64 (dtype=float64)",
            UserWarning,
            stacklevel=4,
        )


def _warn_about_size(n_params: int, max_dense: int, update: str, dense: bool) -> None:
    if not dense and update != "bfgs":
        warnings.warn(
            f"BFGS: {n_params} parameters > max_dense={max_dense}: the limited-memory form is "
            f"plain L-BFGS, update={update!r} applies to the dense form only",
            UserWarning,
            stacklevel=3,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change, update, history,
                max_dense) -> None:
    checks = (
        ("lr", lr, _is_real(lr) and lr > 0, "a positive finite number"),
        ("max_iter", max_iter, _is_int(max_iter) and max_iter >= 1, "a positive integer"),
        ("max_eval", max_eval, _is_int(max_eval) and max_eval >= 1, "a positive integer"),
        ("tolerance_grad", tolerance_grad, _is_real(tolerance_grad) and tolerance_grad >= 0,
         "a finite number >= 0"),
        ("tolerance_change", tolerance_change, _is_real(tolerance_change)
         and tolerance_change >= 0, "a finite number >= 0"),
        ("update", update, update in UPDATES, f"one of {list(UPDATES)}"),
        ("history", history, _is_int(history) and history >= 1, "a positive integer"),
        ("max_dense", max_dense, _is_int(max_dense) and max_dense >= 1, "a positive integer"),
    )
    for name, value, ok, must_be in checks:
        if not ok:
            raise ValueError(f"Invalid {name} value: {value!r} (must be {must_be})")
