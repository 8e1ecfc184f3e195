"""Classic 2-D test functions with known global minima, whose picture is the optimizer's path.

The model is the point itself (:class:`Point`: one ``nn.Parameter`` ``x`` of shape ``(2,)``),
drawn uniformly from the function's domain with torch's global RNG (so :func:`fit`'s seed fixes the
start and every optimizer starts at the same point), or fixed by ``start=[x, y]``. The loss is
``f(x)``. The problem records every point it evaluates (:meth:`TwoDFunction.path`, kept through a
checkpoint), and ``plot`` draws that path on the contour of ``f``.

* ``himmelblau``: ``(x^2 + y - 11)^2 + (x + y^2 - 7)^2`` on ``[-5, 5]^2``; four global minima of
  value 0, at ``(3, 2)``, ``(-2.8051, 3.1313)``, ``(-3.7793, -3.2832)``, ``(3.5844, -1.8481)``.
* ``ackley_n2``: ``-200 exp(-0.02 sqrt(x^2 + y^2))`` on ``[-32, 32]^2``; minimum -200 at the origin
  (unimodal: the seed's "Ackley N2 (10D)" was another function, see below).
* ``adjiman``: ``cos(x) sin(y) - x / (y^2 + 1)``, bounded to ``[-1, 2] x [-1, 1]``; minimum
  -2.02181 at ``(2, 0.10578)`` on the box's edge; local minima at ``(0.636, -1)`` (-0.995) and
  ``(-1, 1)`` (0.955). Outside the box the loss is ``f`` at the nearest point of the box plus
  ``10 x`` the L1 distance to it: an exact penalty (10 exceeds ``|grad f|`` anywhere in the box),
  so the box's minimum is the loss's global minimum and an optimizer cannot score by leaving.
* ``brent``: ``(x + 10)^2 + (y + 10)^2 + exp(-x^2 - y^2)`` on ``[-10, 10]^2``; minimum
  ``exp(-200) ~ 0`` at ``(-10, -10)``.
* ``rosenbrock``: ``(1 - x)^2 + 100 (y - x^2)^2`` on ``[-2, 2] x [-1, 3]``; minimum 0 at ``(1, 1)``
  at the end of a long curved valley.

Forms, domains and minima as in Jamil & Yang, "A literature survey of benchmark functions for
global optimization problems" (2013): Himmelblau (no. 65), Ackley N.2 (no. 4), Adjiman (no. 5),
Brent (no. 24), Rosenbrock (no. 105). The seed's "Ackley N2 (10D)" benchmark is, in its source, the
classic Ackley function in 10 dimensions under that label; that one is
``azure_sciml.problems.rugged`` with ``dim=10`` (config ``ackley_10d``).

Metrics: ``gap`` (``f - f*`` at the final point, headline, >= 0, lower is better), ``value``
(``f``), ``distance`` (to the nearest global minimiser) and ``success`` (1 when ``distance`` is
below ``tol``, default 0.01).

Defaults: ``steps=500`` loss evaluations (the seed's comparison). ``lr`` is 1% of the domain's
half-width (0.05 for Himmelblau, as the seed used; 0.32 for Ackley N.2; 0.1 for Brent) except
Adjiman (0.01, a box 3 wide) and Rosenbrock (0.05: at 0.02 Adam ends most runs halfway along the
valley after 500 evaluations). At a constant lr Adam hovers within a fraction of ``lr`` of a
cone's tip or a bounded edge (measured median distance after 500 evaluations: 0.03 at lr 0.32 on
Ackley N.2, 0.004 at lr 0.01 on Adjiman), so ``gap`` there is set by the lr, not by the basin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from azure_sciml.problems._checks import (
    check,
    check_choice,
    check_positive_float,
    check_positive_int,
    is_real,
)
from azure_sciml.problems.rugged import Point

ADJIMAN_Y = 0.10578346945171689  # root of cos(2) cos(y) + 4 y / (y^2 + 1)^2 = 0
PENALTY = 10.0  # L1 weight outside a bounded function's box


def himmelblau(x: Tensor) -> Tensor:
    a, b = x[..., 0], x[..., 1]
    return (a.square() + b - 11.0).square() + (a + b.square() - 7.0).square()


def ackley_n2(x: Tensor) -> Tensor:
    # clamp: sqrt has an infinite derivative at 0; 1e-30 changes f(0) by ~1e-15
    r = x.square().sum(-1).clamp_min(1e-30).sqrt()
    return -200.0 * torch.exp(-0.02 * r)


def adjiman(x: Tensor) -> Tensor:
    a, b = x[..., 0], x[..., 1]
    return torch.cos(a) * torch.sin(b) - a / (b.square() + 1.0)


def brent(x: Tensor) -> Tensor:
    a, b = x[..., 0], x[..., 1]
    return (a + 10.0).square() + (b + 10.0).square() + torch.exp(-a.square() - b.square())


def rosenbrock(x: Tensor) -> Tensor:
    a, b = x[..., 0], x[..., 1]
    return (1.0 - a).square() + 100.0 * (b - a.square()).square()


@dataclass(frozen=True)
class Spec:
    function: Callable[[Tensor], Tensor]
    box: tuple[tuple[float, float], tuple[float, float]]  # start domain and plot window
    minimisers: tuple[tuple[float, float], ...]
    minimum: float
    lr: float
    bounded: bool = False  # True: the box is a constraint (penalty outside)
    label: str = ""


FUNCTIONS: dict[str, Spec] = {
    "himmelblau": Spec(
        himmelblau, ((-5.0, 5.0), (-5.0, 5.0)),
        ((3.0, 2.0), (-2.805118086952745, 3.131312518250573),
         (-3.779310253377747, -3.283185991286170), (3.584428340330492, -1.848126526964404)),
        0.0, 0.05, label="Himmelblau",
    ),
    "ackley_n2": Spec(
        ackley_n2, ((-32.0, 32.0), (-32.0, 32.0)), ((0.0, 0.0),), -200.0, 0.32,
        label="Ackley N.2",
    ),
    "adjiman": Spec(
        adjiman, ((-1.0, 2.0), (-1.0, 1.0)), ((2.0, ADJIMAN_Y),), -2.021806783359787, 0.01,
        bounded=True, label="Adjiman",
    ),
    "brent": Spec(
        brent, ((-10.0, 10.0), (-10.0, 10.0)), ((-10.0, -10.0),), math.exp(-200.0), 0.1,
        label="Brent",
    ),
    "rosenbrock": Spec(
        rosenbrock, ((-2.0, 2.0), (-1.0, 3.0)), ((1.0, 1.0),), 0.0, 0.05, label="Rosenbrock",
    ),
}  # fmt: skip


class TwoDFunction:
    """Minimise a classic 2-D function (see the module docstring); records the evaluated path."""

    metric = "gap"

    def __init__(
        self,
        name: str = "himmelblau",
        *,
        steps: int = 500,
        lr: float | None = None,
        start: Sequence[float] | None = None,
        tol: float = 0.01,
    ):
        check_choice("name", name, sorted(FUNCTIONS))
        check_positive_int("steps", steps)
        spec = FUNCTIONS[name]
        lr = spec.lr if lr is None else lr
        check_positive_float("lr", lr)
        check_positive_float("tol", tol)
        if start is not None:
            start = _check_start(start)
        self.name, self.steps, self.lr, self.start, self.tol = name, steps, float(lr), start, tol
        self.spec = spec
        self._path: list[tuple[float, float]] = []

    def __repr__(self) -> str:
        args = f"name={self.name!r}, steps={self.steps}, lr={self.lr}, start={self.start}"
        return f"{type(self).__name__}({args})"

    @property
    def label(self) -> str:
        return self.spec.label

    def function(self, x: Tensor) -> Tensor:
        """The loss surface on the last axis of ``x`` (batched), penalty included if bounded."""
        if not self.spec.bounded:
            return self.spec.function(x)
        (xlo, xhi), (ylo, yhi) = self.spec.box
        lo = torch.tensor([xlo, ylo], dtype=x.dtype, device=x.device)
        hi = torch.tensor([xhi, yhi], dtype=x.dtype, device=x.device)
        inside = torch.maximum(torch.minimum(x, hi), lo)
        return self.spec.function(inside) + PENALTY * (x - inside).abs().sum(-1)

    def minimisers(self, dtype=torch.float64) -> Tensor:
        return torch.tensor(self.spec.minimisers, dtype=dtype)

    def build(self, device: torch.device, dtype: torch.dtype) -> Point:
        self._path = []
        if self.start is not None:
            return Point(torch.tensor(self.start, dtype=dtype, device=device))
        (xlo, xhi), (ylo, yhi) = self.spec.box
        u = torch.rand(2, dtype=dtype)
        lo = torch.tensor([xlo, ylo], dtype=dtype)
        width = torch.tensor([xhi - xlo, yhi - ylo], dtype=dtype)
        return Point((lo + u * width).to(device))

    def loss(self, model: Point) -> Tensor:
        x = model()
        self._path.append(tuple(x.detach().double().tolist()))
        return self.function(x)

    def path(self) -> Tensor:
        """Every point evaluated since :meth:`build`, in order, shape ``(n, 2)`` (float64)."""
        return torch.tensor(list(self._path), dtype=torch.float64).reshape(-1, 2)

    def state_dict(self) -> dict:
        return {"path": list(self._path)}

    def load_state_dict(self, state: Mapping) -> None:
        self._path = [tuple(p) for p in state["path"]]

    @torch.no_grad()
    def evaluate(self, model: Point) -> dict[str, float]:
        x = model().detach().to(torch.float64).cpu()
        value = float(self.function(x))
        distance = float(torch.linalg.vector_norm(self.minimisers() - x, dim=-1).min())
        return {
            "gap": max(value - self.spec.minimum, 0.0),
            "value": value,
            "distance": distance,
            "success": float(distance < self.tol),
        }

    def plot(self, model: Point, path) -> None:
        """``path``: the figure file, this run's evaluated points on the contour of ``f``."""
        end = model().detach().double().cpu().tolist()
        figure = self.figure({"path": self.path()}, ends={"path": end}, legend=False)
        figure.savefig(path, dpi=110)

    def figure(self, paths: Mapping[str, Tensor], ends: Mapping[str, Sequence[float]] = None,
               legend: bool = True):
        """A matplotlib ``Figure`` (no pyplot): the contour of ``f`` and each named path on it;
        ``ends`` marks final points (default: each path's last point)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.2, 4.6))
        ax = fig.add_subplot()
        self.draw(ax, paths, ends or {}, legend)
        fig.tight_layout()
        return fig

    def draw(self, ax, paths: Mapping[str, Tensor], ends: Mapping[str, Sequence[float]],
             legend: bool = True, colorbar: bool = True) -> None:
        """The contour, box (if bounded), global minima and each path, on matplotlib axes."""
        import numpy as np

        arrays = {name: np.asarray(p, dtype=float).reshape(-1, 2) for name, p in paths.items()}
        (x0, x1), (y0, y1) = _window(self.spec.box, arrays.values())
        grid = torch.stack(torch.meshgrid(torch.linspace(x0, x1, 241, dtype=torch.float64),
                                          torch.linspace(y0, y1, 241, dtype=torch.float64),
                                          indexing="xy"), dim=-1)  # fmt: skip
        gap = (self.function(grid) - self.spec.minimum).clamp_min(0.0)
        levels = ax.contourf(grid[..., 0], grid[..., 1], torch.log10(gap + 1e-3), levels=30,
                             cmap="Greys_r")  # fmt: skip
        if colorbar:
            ax.figure.colorbar(levels, ax=ax, label="log10(f - f* + 1e-3)")
        if self.spec.bounded:
            (bx0, bx1), (by0, by1) = self.spec.box
            ax.plot([bx0, bx1, bx1, bx0, bx0], [by0, by0, by1, by1, by0], color="k", lw=1)
        mins = np.asarray(self.spec.minimisers)
        ax.scatter(mins[:, 0], mins[:, 1], marker="x", s=60, color="gold", zorder=5,
                   label="global minimum")  # fmt: skip
        for i, (name, xy) in enumerate(arrays.items()):
            if not len(xy):
                continue
            color = f"C{i}"
            ax.plot(xy[:, 0], xy[:, 1], color=color, lw=1.0, alpha=0.85, label=name)
            ax.scatter(*xy[0], marker="o", s=30, color="white", edgecolors=color, zorder=6)
            end = ends.get(name, xy[-1])
            ax.scatter(*end, marker="*", s=120, color=color, edgecolors="k", zorder=7)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        n = max((len(xy) for xy in arrays.values()), default=0)
        ax.set_title(f"{self.label}: {n} loss evaluations (o start, * end)", fontsize=10)
        if legend:
            ax.legend(fontsize=8, loc="best")


def _window(box, paths, margin: float = 0.05):
    """The plot window: the domain, widened to every path, plus a margin."""
    import numpy as np

    (x0, x1), (y0, y1) = box
    for xy in paths:
        finite = xy[np.isfinite(xy).all(axis=1)]
        if len(finite):
            x0, x1 = min(x0, finite[:, 0].min()), max(x1, finite[:, 0].max())
            y0, y1 = min(y0, finite[:, 1].min()), max(y1, finite[:, 1].max())
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    return (float(x0 - dx), float(x1 + dx)), (float(y0 - dy), float(y1 + dy))


def _check_start(start) -> tuple[float, float]:
    values = list(start) if isinstance(start, Sequence) and not isinstance(start, str) else None
    ok = values is not None and len(values) == 2 and all(map(is_real, values))
    check(ok, "start", start, "null or two finite numbers [x, y]")
    return float(values[0]), float(values[1])


class Himmelblau(TwoDFunction):
    def __init__(self, *, steps: int = 500, lr: float | None = None, start=None, tol=0.01):
        super().__init__("himmelblau", steps=steps, lr=lr, start=start, tol=tol)


class AckleyN2(TwoDFunction):
    def __init__(self, *, steps: int = 500, lr: float | None = None, start=None, tol=0.01):
        super().__init__("ackley_n2", steps=steps, lr=lr, start=start, tol=tol)


class Adjiman(TwoDFunction):
    def __init__(self, *, steps: int = 500, lr: float | None = None, start=None, tol=0.01):
        super().__init__("adjiman", steps=steps, lr=lr, start=start, tol=tol)


class Brent(TwoDFunction):
    def __init__(self, *, steps: int = 500, lr: float | None = None, start=None, tol=0.01):
        super().__init__("brent", steps=steps, lr=lr, start=start, tol=tol)


class Rosenbrock(TwoDFunction):
    def __init__(self, *, steps: int = 500, lr: float | None = None, start=None, tol=0.01):
        super().__init__("rosenbrock", steps=steps, lr=lr, start=start, tol=tol)
