"""What :func:`azure_sciml.fit` takes and gives: the :class:`Problem` protocol, :class:`LossProblem`
(a user's own loss as a problem), the optimizer factory, the :class:`Progress` its callback gets,
:class:`NonFiniteLoss` and the :class:`FitResult`. Imported from :mod:`azure_sciml.train`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


@runtime_checkable
class Problem(Protocol):
    """What :func:`fit` needs from a problem.

    ``build`` creates data and model from torch's global RNG (which :func:`fit` seeds), so one seed
    gives every optimizer the same initial parameters and data. ``evaluate`` scores a model against
    ground truth and returns plain floats; lower is better for ``metric`` (the headline metric).
    ``lr`` is the learning rate the problem recommends (every optimizer config reads
    ``${problem.lr}``). Optional: ``plot(model, path)`` saves a picture of the solution;
    ``param_groups(model)`` returns the optimizer's parameter groups (a list of dicts with
    ``params`` and per-group options, e.g. ``{"params": [...], "sigma": 0.0}`` to keep Azure's
    proposals off some parameters), or ``None`` for one group of every parameter; :func:`fit`
    uses it when present.
    """

    steps: int
    metric: str
    lr: float

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module: ...

    def loss(self, model: nn.Module) -> Tensor: ...

    def evaluate(self, model: nn.Module) -> dict[str, float]: ...


@dataclass
class LossProblem:
    """A user's own loss as a problem: ``model()`` builds the module, ``loss(model)`` scores it.

    ``evaluate(model)`` (optional) returns ground-truth metrics; without it the metric is the loss.
    """

    model: Callable[[], nn.Module]
    loss_fn: Callable[[nn.Module], Tensor]
    evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None
    steps: int = 1000
    metric: str = "loss"
    lr: float = 1e-3

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module:
        return self.model().to(device=device, dtype=dtype)

    def loss(self, model: nn.Module) -> Tensor:
        return self.loss_fn(model)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if self.evaluate_fn is not None:
            return self.evaluate_fn(model)
        with torch.enable_grad():
            return {"loss": float(self.loss_fn(model).detach())}


@dataclass(frozen=True)
class Progress:
    """What :func:`fit` tells its ``callback``: evaluations spent of the budget, steps taken, the
    last and the best loss so far, seconds since the start (a resumed run's included)."""

    n_loss_evals: int
    budget: int
    n_steps: int
    loss: float
    best_loss: float
    elapsed_s: float


Callback = Callable[[Progress], bool | None]


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
