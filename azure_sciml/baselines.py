"""Baselines users would pick instead of Azure, as torch optimizers that :func:`azure_sciml.fit`
charges per evaluation like any other.

:class:`BasinHopping` is scipy's real ``scipy.optimize.basinhopping`` (Wales & Doye 1997: perturb,
relax with L-BFGS-B, Metropolis test on the relaxed energies), the method cluster users reach for.
This module imports scipy, so ``import azure_sciml`` does not import it.

Precision: scipy works in float64, and its L-BFGS-B line search stalls on float32 energies (the
relaxations stop early, far from the minimum: on Rastrigin-20 at 3k evaluations basin-hopping
ends near 115 in float32 and near 9 in float64, docs/algorithm.md "Fair baselines"). So
:class:`BasinHopping` evaluates in float64 whatever the parameters' dtype: they are held in
float64 during its run and written back in their own dtype at the end.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import scipy.optimize
import torch
from torch import Tensor


class _PrecisionRefused(Exception):
    """The loss raised at the first evaluation with the parameters held in float64."""


class _BudgetSpent(Exception):
    """Raised inside scipy's objective when the budget of evaluations is spent."""


class BasinHopping(torch.optim.Optimizer):
    """``scipy.optimize.basinhopping`` with an L-BFGS-B local search, run on the parameters.

    One ``step(closure)`` runs basin-hopping from the current parameters until ``total_steps``
    closure calls (energy and gradient evaluations, every call of the local search counted) are
    spent, then leaves the parameters at the lowest-energy point evaluated: basin-hopping's answer.
    The closure must return the loss with gradients computed (as :func:`~azure_sciml.fit`'s does).

    Pseudo-code (scipy's algorithm; the budget is ours)::

        x = L-BFGS-B(x0)
        repeat until total_steps evaluations:
            x' = L-BFGS-B(x + uniform(-stepsize, stepsize))      # every evaluation counted
            accept x' with probability min(1, exp(-(E(x') - E(x)) / T))
            every `interval` hops: stepsize *= or /= stepwise_factor towards target_accept_rate
        parameters = lowest-energy point evaluated

    Args:
        params: the parameters (all of them are hopped; any floating dtype).
        total_steps: the budget in closure calls; a run is one step, so ``fit(steps=...)`` must
            give the same number.
        T: temperature of the Metropolis test on relaxed energies (0.8: the anchors' LJ setting).
        stepsize: half-width of the uniform random displacement of every coordinate.
        interval, target_accept_rate, stepwise_factor: scipy's step-size adaptation.
        gtol, maxiter: L-BFGS-B's gradient tolerance and iteration cap per relaxation.
        seed: seed of scipy's generator; ``None`` draws one from torch's global RNG (which
            :func:`~azure_sciml.fit` seeds with the run's seed).
        lr: not used (basin-hopping takes no gradient steps); kept in the parameter group so that
            configs giving every optimizer the problem's lr, and LR schedulers, apply unchanged.
        float64: evaluate with the parameters held in float64 during the run (default ``True``:
            the precision scipy's L-BFGS-B needs); ``False`` evaluates in their own dtype. The
            loss is float64 where it is a function of the parameters alone (clusters, test
            functions); a model with float32 data or buffers is float64 only if built so
            (``fit(dtype=torch.float64)``), as torch's type promotion decides the rest. A loss
            that refuses float64 parameters at the first evaluation (e.g. a float32 ``Linear``:
            "mat1 and mat2 must have the same dtype") is evaluated in its own dtype, with a
            warning; that refused evaluation is not counted (the loss never returned).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        total_steps: int,
        T: float = 0.8,
        stepsize: float = 0.4,
        interval: int = 50,
        target_accept_rate: float = 0.5,
        stepwise_factor: float = 0.9,
        gtol: float = 1e-5,
        maxiter: int = 15000,
        seed: int | None = None,
        lr: float = 0.0,
        float64: bool = True,
    ):
        _check_int("total_steps", total_steps)
        _check_int("interval", interval)
        _check_int("maxiter", maxiter)
        for name, value, ok in [
            ("T", T, lambda v: v > 0),
            ("stepsize", stepsize, lambda v: v > 0),
            ("target_accept_rate", target_accept_rate, lambda v: 0 < v < 1),
            ("stepwise_factor", stepwise_factor, lambda v: 0 < v < 1),
            ("gtol", gtol, lambda v: v >= 0),
        ]:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not ok(value):
                raise ValueError(f"Invalid {name} value: {value!r}")
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()))
        defaults = dict(T=float(T), stepsize=float(stepsize), lr=lr)
        super().__init__(params, defaults)
        self.total_steps, self.seed = total_steps, int(seed)
        self.interval, self.target_accept_rate = interval, float(target_accept_rate)
        self.stepwise_factor, self.gtol, self.maxiter = float(stepwise_factor), gtol, maxiter
        if not isinstance(float64, bool):
            raise ValueError(f"Invalid float64 value: {float64!r} (True or False)")
        self.float64 = float64
        self.n_evals = 0

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        if closure is None:
            raise ValueError("BasinHopping.step needs a closure returning the loss with gradients")
        if self.n_evals >= self.total_steps:
            raise RuntimeError(
                f"BasinHopping: the budget of total_steps={self.total_steps} evaluations is spent"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        if self.float64:
            try:
                with _held_in(params, torch.float64):
                    return self._run(params, closure, trial=True)
            except _PrecisionRefused as refused:
                warnings.warn(
                    "BasinHopping: the loss refused float64 parameters "
                    f"({refused.__cause__}); evaluating in their own dtype. Build the model in "
                    "float64 (fit(dtype=torch.float64)) for the precision scipy's L-BFGS-B needs.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.float64 = False
        return self._run(params, closure)

    def _run(
        self, params: list[Tensor], closure: Callable[[], Tensor], trial: bool = False
    ) -> Tensor | None:
        objective = _Objective(params, closure, self.total_steps - self.n_evals, trial)
        group = self.param_groups[0]
        try:
            scipy.optimize.basinhopping(
                objective,
                objective.x0(),
                niter=self.total_steps,  # never reached: the budget stops the run
                T=group["T"],
                stepsize=group["stepsize"],
                minimizer_kwargs={
                    "method": "L-BFGS-B",
                    "jac": True,
                    "options": {"gtol": self.gtol, "maxiter": self.maxiter},
                },
                interval=self.interval,
                target_accept_rate=self.target_accept_rate,
                stepwise_factor=self.stepwise_factor,
                rng=np.random.default_rng(self.seed),
            )
        except _BudgetSpent:
            pass
        finally:
            self.n_evals += objective.calls
        objective.restore_best()
        return None if objective.best_loss is None else torch.tensor(objective.best_loss)

    def state_dict(self):
        sd = super().state_dict()
        sd["basinhopping"] = {"n_evals": self.n_evals, "seed": self.seed}
        return sd

    def load_state_dict(self, state_dict) -> None:
        saved = state_dict.get("basinhopping")
        if saved is None:
            raise ValueError("not a BasinHopping state_dict: it has no 'basinhopping' entry")
        state_dict = {k: v for k, v in state_dict.items() if k != "basinhopping"}
        super().load_state_dict(state_dict)
        self.n_evals, self.seed = saved["n_evals"], saved["seed"]


@contextmanager
def _held_in(params: list[Tensor], dtype: torch.dtype | None) -> Iterator[None]:
    """Floating parameters converted to ``dtype`` (their gradients dropped) for the block, then
    back to their own dtype (``None``: left as they are)."""
    own = [p.dtype for p in params]
    convert = [dtype is not None and p.is_floating_point() and p.dtype != dtype for p in params]
    for p, c in zip(params, convert, strict=True):
        if c:
            p.data, p.grad = p.data.to(dtype), None
    try:
        yield
    finally:
        for p, c, d in zip(params, convert, own, strict=True):
            if c:
                p.data, p.grad = p.data.to(d), None


class _Objective:
    """scipy's ``fun(x) -> (energy, gradient)`` over the torch parameters, through the closure;
    counts calls, refuses those past the budget, remembers the lowest energy evaluated."""

    def __init__(
        self, params: list[Tensor], closure: Callable[[], Tensor], budget: int, trial: bool
    ):
        self.params, self.closure, self.budget = params, closure, budget
        self.trial = trial  # a first evaluation that raises RuntimeError: _PrecisionRefused
        self.calls = 0
        self.best_loss: float | None = None
        self.best_x: np.ndarray | None = None

    def x0(self) -> np.ndarray:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).double().cpu().numpy()

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.calls >= self.budget:
            raise _BudgetSpent
        self._set(x)
        self.calls += 1
        try:
            with torch.enable_grad():
                loss = float(self.closure().detach())
        except FloatingPointError:  # fit's closure refuses a NaN/Inf: an infinitely bad point
            return math.inf, np.zeros_like(x)
        except RuntimeError as err:
            if not (self.trial and self.calls == 1):
                raise
            self.calls = 0  # the loss never returned: not an evaluation (fit counts none)
            raise _PrecisionRefused from err
        if self.best_loss is None or loss < self.best_loss:
            self.best_loss, self.best_x = loss, x.copy()
        return loss, self._gradient()

    def restore_best(self) -> None:
        if self.best_x is not None:
            self._set(self.best_x)

    def _set(self, x: np.ndarray) -> None:
        flat = torch.from_numpy(np.asarray(x, dtype=np.float64))
        offset = 0
        with torch.no_grad():
            for p in self.params:
                n = p.numel()
                p.copy_(flat[offset : offset + n].view_as(p))
                offset += n

    def _gradient(self) -> np.ndarray:
        grads = [
            torch.zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1)
            for p in self.params
        ]
        return torch.cat(grads).double().cpu().numpy()


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {name} value: {value!r} (a positive integer)")
