"""Classic rugged test functions (Rastrigin, Ackley, Schwefel, Levy) as problems for ``fit``.

The model is the point itself (:class:`Point`: one ``nn.Parameter`` ``x`` of shape ``(dim,)``),
drawn uniformly from the function's standard domain with torch's global RNG, so :func:`fit`'s seed
fixes the start. The loss is ``f(x)``. Every function has global minimum value 0:

* ``rastrigin``: ``10 d + sum(x_i^2 - 10 cos(2 pi x_i))`` on ``[-5.12, 5.12]^d``, minimiser 0.
* ``ackley``: ``-20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e`` on
  ``[-32.768, 32.768]^d``, minimiser 0.
* ``schwefel``: ``418.9829 d - sum(x_i sin(sqrt|x_i|)) + sum(max(|x_i| - 500, 0)^2)`` on
  ``[-500, 500]^d``, minimiser ``420.9687...`` in every coordinate.
* ``levy``: ``sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2 (1 + 10 sin^2(pi w_i + 1))
  + (w_d - 1)^2 (1 + sin^2(2 pi w_d))`` with ``w_i = 1 + (x_i - 1) / 4``, on ``[-10, 10]^d``,
  minimiser 1.

References: Rastrigin (1974), Ackley (1987), Schwefel (1981), Levy & Montalvo (1985), in the forms
of Surjanovic & Bingham's Virtual Library of Simulation Experiments (sfu.ca/~ssurjano). Schwefel is
shifted by the exact per-coordinate minimum value (418.98288727...) so its minimum is 0, and, being
unbounded below outside its box, gets a quadratic penalty beyond ``|x_i| > 500`` (zero inside the
box; with it ``f >= 0`` everywhere), so an optimizer cannot score by leaving the domain.

Metrics: ``value`` (``f`` at the point, headline, lower is better) and ``distance`` (Euclidean
distance to the global minimiser).

Defaults: ``dim=20``, ``steps=3000`` loss evaluations. ``lr`` defaults to 1% of the domain's
half-width for Rastrigin, Ackley and Levy (0.05, 0.33, 0.1: Adam moves every coordinate by about
``lr`` a step, so a run can cross the domain a few times) and 2.0 for Schwefel, whose basins are
tens of units wide. Plain Adam ends in the local minimum nearest its start on all four.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import check_choice, check_positive_float, check_positive_int

SCHWEFEL_ARGMIN = 420.9687463599820
SCHWEFEL_SHIFT = 418.9828872724338  # = SCHWEFEL_ARGMIN * sin(sqrt(SCHWEFEL_ARGMIN))


def rastrigin(x: Tensor) -> Tensor:
    return 10.0 * x.shape[-1] + (x.square() - 10.0 * torch.cos(2.0 * math.pi * x)).sum(-1)


def ackley(x: Tensor) -> Tensor:
    # clamp: sqrt has an infinite derivative at 0; 1e-30 changes f(0) by ~1e-15
    rms = x.square().mean(-1).clamp_min(1e-30).sqrt()
    cos = torch.cos(2.0 * math.pi * x).mean(-1)
    return -20.0 * torch.exp(-0.2 * rms) - torch.exp(cos) + 20.0 + math.e


def schwefel(x: Tensor) -> Tensor:
    root = x.abs().clamp_min(1e-30).sqrt()
    outside = (x.abs() - 500.0).clamp_min(0.0).square()
    return (SCHWEFEL_SHIFT - x * torch.sin(root) + outside).sum(-1)


def levy(x: Tensor) -> Tensor:
    w = 1.0 + (x - 1.0) / 4.0
    first = torch.sin(math.pi * w[..., 0]).square()
    mid = (w[..., :-1] - 1.0).square() * (
        1.0 + 10.0 * torch.sin(math.pi * w[..., :-1] + 1.0).square()
    )
    last = (w[..., -1] - 1.0).square() * (1.0 + torch.sin(2.0 * math.pi * w[..., -1]).square())
    return first + mid.sum(-1) + last


@dataclass(frozen=True)
class Spec:
    function: object
    half_width: float
    argmin: float
    lr: float


FUNCTIONS: dict[str, Spec] = {
    "rastrigin": Spec(rastrigin, 5.12, 0.0, 0.05),
    "ackley": Spec(ackley, 32.768, 0.0, 0.33),
    "schwefel": Spec(schwefel, 500.0, SCHWEFEL_ARGMIN, 2.0),
    "levy": Spec(levy, 10.0, 1.0, 0.1),
}


class Point(nn.Module):
    """The optimization variable: one point ``x`` of shape ``(dim,)``."""

    def __init__(self, x: Tensor):
        super().__init__()
        self.x = nn.Parameter(x)

    def forward(self) -> Tensor:
        return self.x


class RuggedFunction:
    """Minimise a classic multimodal function in ``dim`` dimensions (see module docstring)."""

    metric = "value"

    def __init__(
        self,
        name: str = "rastrigin",
        *,
        dim: int = 20,
        steps: int = 3000,
        lr: float | None = None,
    ):
        check_choice("name", name, sorted(FUNCTIONS))
        check_positive_int("dim", dim, minimum=2)
        check_positive_int("steps", steps)
        spec = FUNCTIONS[name]
        lr = spec.lr if lr is None else lr
        check_positive_float("lr", lr)
        self.name, self.dim, self.steps, self.lr = name, dim, steps, float(lr)
        self.spec = spec

    def __repr__(self) -> str:
        args = f"name={self.name!r}, dim={self.dim}, steps={self.steps}, lr={self.lr}"
        return f"{type(self).__name__}({args})"

    def function(self, x: Tensor) -> Tensor:
        """``f`` on the last axis of ``x`` (batched)."""
        return self.spec.function(x)

    def minimiser(self, device=None, dtype=torch.float64) -> Tensor:
        return torch.full((self.dim,), self.spec.argmin, device=device, dtype=dtype)

    def build(self, device: torch.device, dtype: torch.dtype) -> Point:
        h = self.spec.half_width
        x = (torch.rand(self.dim, dtype=dtype) * (2.0 * h) - h).to(device)
        return Point(x)

    def loss(self, model: Point) -> Tensor:
        return self.function(model())

    @torch.no_grad()
    def evaluate(self, model: Point) -> dict[str, float]:
        x = model().detach().to(torch.float64)
        return {
            "value": float(self.function(x)),
            "distance": float(torch.linalg.vector_norm(x - self.minimiser(x.device))),
        }

    @torch.no_grad()
    def plot(self, model: Point, path) -> None:
        """``path``: the figure file, ``f`` along each coordinate axis through the minimiser
        (one curve: every coordinate sees the same slice) with the final point's coordinates on
        it; a coordinate on the curve's lowest dip is in the global basin."""
        from matplotlib.figure import Figure

        x = model().detach().to(torch.float64).cpu()
        h = self.spec.half_width
        t = torch.linspace(-h, h, 2001, dtype=torch.float64)
        line = self.minimiser().repeat(len(t), 1)
        line[:, 0] = t
        fig = Figure(figsize=(6.4, 3.6))  # no pyplot: no global backend or figure registry
        ax = fig.add_subplot()
        ax.plot(t.numpy(), self.function(line).numpy(), color="0.5", lw=1,
                label="f along one axis through the minimiser")  # fmt: skip
        at = self.minimiser().repeat(self.dim, 1)
        at[range(self.dim), range(self.dim)] = x
        ax.scatter(x.numpy(), self.function(at).numpy(), color="C1", zorder=3, s=18,
                   label="final x_i (others at the minimiser)")  # fmt: skip
        ax.axvline(self.spec.argmin, color="k", lw=0.8, ls=":")
        value = self.evaluate(model)["value"]
        ax.set(xlabel="x_i", ylabel="f", title=f"{self.name} d={self.dim}: f = {value:.4g}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)


class Rastrigin(RuggedFunction):
    def __init__(self, *, dim: int = 20, steps: int = 3000, lr: float | None = None):
        super().__init__("rastrigin", dim=dim, steps=steps, lr=lr)


class Ackley(RuggedFunction):
    def __init__(self, *, dim: int = 20, steps: int = 3000, lr: float | None = None):
        super().__init__("ackley", dim=dim, steps=steps, lr=lr)


class Schwefel(RuggedFunction):
    def __init__(self, *, dim: int = 20, steps: int = 3000, lr: float | None = None):
        super().__init__("schwefel", dim=dim, steps=steps, lr=lr)


class Levy(RuggedFunction):
    def __init__(self, *, dim: int = 20, steps: int = 3000, lr: float | None = None):
        super().__init__("levy", dim=dim, steps=steps, lr=lr)
