"""One training loop for every optimizer: same seed, same data, same budget, ground-truth scores.

A *problem* is any object with ``steps``, ``build``, ``loss`` and ``evaluate`` (:class:`Problem`).
:func:`fit` seeds torch, builds the problem, wraps the loss in a counting closure and calls
``optimizer.step(closure)`` until the budget of loss evaluations is spent. Every closure call is one
loss evaluation and one gradient evaluation, whoever makes it (the loop, Azure's Metropolis test or
L-BFGS's line search), so an optimizer that evaluates more per step is charged for it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


@runtime_checkable
class Problem(Protocol):
    """What :func:`fit` needs from a problem.

    ``build`` creates data and model from torch's global RNG (which :func:`fit` seeds), so one seed
    gives every optimizer the same initial parameters and data. ``evaluate`` scores a model against
    ground truth and returns plain floats; lower is better for ``metric`` (the headline metric).
    Optional: ``plot(model, path)`` saves a picture of the solution.
    """

    steps: int
    metric: str

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module: ...

    def loss(self, model: nn.Module) -> Tensor: ...

    def evaluate(self, model: nn.Module) -> dict[str, float]: ...


class NonFiniteLoss(FloatingPointError):
    """Raised inside the closure so a NaN/Inf loss or gradient never reaches the weights."""


@dataclass
class FitResult:
    metrics: dict[str, float]
    best_metrics: dict[str, float]
    final_loss: float
    best_loss: float
    n_loss_evals: int
    n_grad_evals: int
    n_steps: int
    wall_time_s: float
    status: str = "ok"
    history: list[tuple[int, float]] = field(default_factory=list)
    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    message: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields (no model, no optimizer)."""
        skip = {"model", "optimizer"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


class _Counter:
    """Counting closure: every call is a loss and a gradient evaluation; tracks the best iterate."""

    def __init__(self, problem: Problem, model: nn.Module, clip_grad_norm: float | None):
        self.problem, self.model, self.clip = problem, model, clip_grad_norm
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.n_loss = self.n_grad = 0
        self.history: list[tuple[int, float]] = []
        self.best_loss = math.inf
        self.best_params: list[Tensor] | None = None
        self.last_loss = math.nan

    def __call__(self) -> Tensor:
        for p in self.params:
            p.grad = None
        loss = self.problem.loss(self.model)
        self.n_loss += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(f"loss is {value} at loss evaluation {self.n_loss}")
        if value < self.best_loss:
            self.best_loss = value
            self.best_params = [p.detach().clone() for p in self.params]
        loss.backward()
        self.n_grad += 1
        self._check_grads()
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        self.history.append((self.n_loss, value))
        self.last_loss = value
        return loss

    def _check_grads(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads and not torch.stack(torch._foreach_norm(grads)).isfinite().all():
            raise NonFiniteLoss(f"non-finite gradient at gradient evaluation {self.n_grad}")


def fit(
    problem: Problem,
    optimizer: OptimizerFactory,
    *,
    seed: int = 0,
    steps: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    clip_grad_norm: float | None = None,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    on_nonfinite: str = "stop",
    progress: bool = False,
    log_every: int = 0,
) -> FitResult:
    """Train ``problem`` with ``optimizer`` (a factory ``params -> Optimizer``, e.g. ``Azure`` or
    ``functools.partial(torch.optim.Adam, lr=1e-3)``) for ``steps`` loss evaluations.

    ``clip_grad_norm`` clips every optimizer's gradients the same way, inside the closure.
    ``on_nonfinite``: ``"stop"`` ends the run as ``status="diverged"`` at the first NaN/Inf loss or
    gradient; ``"skip"`` drops that step and goes on. Either way the weights never see it.
    """
    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
    budget = problem.steps if steps is None else steps
    if budget < 1:
        raise ValueError(f"steps must be a positive number of loss evaluations, got {budget}")
    device = torch.device(device)
    torch.manual_seed(seed)
    model = problem.build(device, dtype)
    counter = _Counter(problem, model, clip_grad_norm)
    opt = optimizer(counter.params)
    sched = scheduler(opt) if scheduler is not None else None
    status, message, n_steps = "ok", "", 0
    bar = _progress_bar(budget, progress)
    start = time.perf_counter()
    while counter.n_loss < budget:
        before = counter.n_loss
        try:
            opt.step(counter)
        except NonFiniteLoss as err:
            message = f"step {n_steps}: {err}"
            log.warning("%s (%s)", message, on_nonfinite)
            if on_nonfinite == "stop":
                status = "diverged"
                break
        n_steps += 1
        if sched is not None:
            sched.step()
        _report(bar, counter, before, n_steps, log_every)
    wall = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return _result(problem, model, opt, counter, n_steps, wall, status, message)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="eval", dynamic_ncols=True, leave=False)


def _report(bar, counter: _Counter, before: int, n_steps: int, log_every: int) -> None:
    if bar is not None:
        bar.update(counter.n_loss - before)
        bar.set_postfix(loss=f"{counter.last_loss:.3e}", refresh=False)
    if log_every and n_steps % log_every == 0:
        log.info("step %d  evals %d  loss %.4e", n_steps, counter.n_loss, counter.last_loss)


def _result(problem, model, opt, counter, n_steps, wall, status, message) -> FitResult:
    with torch.no_grad():
        metrics = problem.evaluate(model)
        best_metrics = metrics
        if counter.best_params is not None:
            last = [p.detach().clone() for p in counter.params]
            torch._foreach_copy_(counter.params, counter.best_params)
            best_metrics = problem.evaluate(model)
            torch._foreach_copy_(counter.params, last)
    return FitResult(
        metrics=metrics,
        best_metrics=best_metrics,
        final_loss=counter.last_loss,
        best_loss=counter.best_loss,
        n_loss_evals=counter.n_loss,
        n_grad_evals=counter.n_grad,
        n_steps=n_steps,
        wall_time_s=wall,
        status=status,
        history=counter.history,
        model=model,
        optimizer=opt,
        message=message,
    )
