"""The PINN failure-mode benchmarks: 1-D convection and reaction on x in [0, 2 pi), t in [0, 1],
periodic in x, with closed-form solutions.

- :class:`Convection`: u_t + beta u_x = 0, u(x, 0) = sin x; exact u = sin(x - beta t); beta = 40.
- :class:`Reaction`: u_t - rho u (1 - u) = 0, u(x, 0) = exp(-(x - pi)^2 / (2 (pi/4)^2)); exact
  u = u0 e^(rho t) / (u0 e^(rho t) + 1 - u0); rho = 5.

Set up as in Krishnapriyan, Gholami, Zhe, Kirby & Mahoney, "Characterizing possible failure modes
in physics-informed neural networks" (NeurIPS 2021; code a1k12/characterizing-pinns-failure-modes)
and Rathore, Lei, Frangella, Lu & Udell, "Challenges in training PINNs: a loss landscape
perspective" (ICML 2024; code pratikrathore8/opt_for_pinns). Their setups, read in that code:

===========================  =============================  ====================================
                             Krishnapriyan et al.           Rathore et al.
===========================  =============================  ====================================
network                      tanh, 4 hidden layers of 50    tanh, 3 hidden layers of 50-400
                                                            (their best runs: 200)
init                         Xavier normal, zero biases     Xavier normal, zero biases
residual points              N_f = 1000 (README default)    10,000, without replacement
                             from a 256 x 100 grid          from the interior of a 257 x 101 grid
initial points (t = 0)       256 (x in [0, 2 pi))           257 (x in [0, 2 pi])
boundary                     u(0, t) = u(2 pi, t), 100 t    u(0, t) = u(2 pi, t), 101 t
loss                         mean sq. residual + IC + BC,   the same (MSE each), unit weights
                             unit weights
optimizer                    L-BFGS, lr 1                   Adam (lr swept 1e-5..1e-1), then
                                                            L-BFGS (history 100, strong Wolfe,
                                                            20 iterations per step), then
                                                            NysNewton-CG
budget (best runs)           --                             convection: 11,000 Adam + 1,500
                                                            L-BFGS steps; reaction: 1,000 Adam +
                                                            2,000 L-BFGS steps (<= 41,000
                                                            iterations either way), + 2,000
                                                            NysNewton-CG
metric                       rel. L2 on the 256 x 100 grid  rel. L2 on a 129 x 101 grid
===========================  =============================  ====================================

Here, by default: Rathore et al.'s network at its smallest width (3 hidden tanh layers of 50,
Xavier normal, zero biases), their initial (257) and boundary (101) points and metric grid
(129 x 101 on [0, 2 pi] x [0, 1]), unit weights, and Krishnapriyan et al.'s 1,000 residual points,
drawn uniformly in the domain from torch's global RNG (not from a grid) so that a 2-core CPU runs
a budget of thousands of evaluations in minutes. Rathore et al.'s counts are
``n_residual=10000 width=200`` (about 10x slower per evaluation at width 50).

Both residuals are a first derivative along one direction plus a term in u: u_t + beta u_x is
grad u . (beta, 1), u_t - rho u (1 - u) is grad u . (0, 1) - rho u (1 - u). :meth:`_Periodic.loss`
takes it by one reverse-mode pass (``torch.autograd.grad`` with ``create_graph``), no second
derivatives. Measured against forward mode (``torch.func.jvp``, ``torch.autograd.forward_ad`` and
a hand-stacked tangent pass), float64, 2,000 points, width 50: the reverse pass was as fast or
faster (38-60 ms loss + backward against 49-87 ms, on a shared 2-core box, so noisy).

Sampling (``sampling``, ``resample_every``, ``resample_until``): ``uniform`` draws the residual
points once or, with ``resample_every = n > 0``, afresh every n loss evaluations; ``rad``
re-draws them every n evaluations by residual-based adaptive distribution
(:func:`~azure_sciml.problems._collocation.rad_sample`, Wu et al. 2023: p ∝ |r|^k / mean|r|^k + c
over ``n_candidates`` uniform candidates; Urbán et al. 2025 re-draw every 500 Adam iterations).
Re-drawing stops after ``resample_until`` of the budget (default 0.8, ``refine.at``'s default),
so a finisher (L-BFGS, BFGS) sees fixed points. The RAD residual on the candidates is computed
outside the counted loss evaluations (about ``n_candidates / n_residual`` forward and backward
passes of the residual per re-draw).
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import (
    check,
    check_positive_float,
    check_positive_int,
    is_real,
)
from azure_sciml.problems._collocation import Resampled, check_resampling, rad_sample
from azure_sciml.problems.heat import field_errors, tanh_mlp

TWO_PI = 2 * math.pi


class _Periodic(Resampled):
    """A first-order PINN on [0, 2 pi) x [0, 1], periodic in x: the residual is
    grad u . ``direction`` + :meth:`reaction_term` (u); subclasses set both and the solution."""

    metric = "rel_l2"
    title = ""

    def __init__(
        self,
        *,
        n_residual: int,
        n_initial: int,
        n_boundary: int,
        width: int,
        depth: int,
        sampling: str,
        resample_every: int,
        resample_until: float,
        n_candidates: int,
        rad_k: float,
        rad_c: float,
        n_test_x: int,
        n_test_t: int,
        steps: int,
        lr: float,
    ):
        check_resampling(sampling, resample_every, resample_until)
        check_positive_float("lr", lr)
        for name, value in [("n_residual", n_residual), ("width", width), ("depth", depth)]:
            check_positive_int(name, value)
        check_positive_int("steps", steps)
        for name, value in [("n_initial", n_initial), ("n_boundary", n_boundary)]:
            check_positive_int(name, value, minimum=2)
        for name, value in [("n_test_x", n_test_x), ("n_test_t", n_test_t)]:
            check_positive_int(name, value, minimum=2)
        check_positive_int("n_candidates", n_candidates, minimum=n_residual)
        for name, value in [("rad_k", rad_k), ("rad_c", rad_c)]:
            check(is_real(value) and value >= 0, name, value, "a finite number >= 0")
        self.n_residual, self.n_initial, self.n_boundary = n_residual, n_initial, n_boundary
        self.width, self.depth = width, depth
        self.sampling, self.resample_every = sampling, resample_every
        self.resample_until, self.n_candidates = float(resample_until), n_candidates
        self.rad_k, self.rad_c = float(rad_k), float(rad_c)
        self.n_test_x, self.n_test_t = n_test_x, n_test_t
        self.steps, self.lr = steps, float(lr)

    # -- the equation, set by the subclasses ----------------------------------------------------

    direction: tuple[float, float] = (0.0, 1.0)  # (x, t) components of the derivative

    def reaction_term(self, u: Tensor) -> Tensor:
        return torch.zeros_like(u)

    def exact(self, xt: Tensor) -> Tensor:
        """Exact solution at ``xt`` of shape (N, 2) holding (x, t); returns shape (N, 1)."""
        raise NotImplementedError

    # -- the problem protocol ----------------------------------------------------------------------

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module:
        self.device, self.dtype = torch.device(device), dtype
        self.n_loss_evals = 0
        self.initial = self._grid(_line(0, TWO_PI, self.n_initial), _line(0, 0, 1))  # t = 0
        self.initial_u = self.exact(self.initial)
        t = _line(0, 1, self.n_boundary)
        edges = [self._grid(_line(x, x, 1), t) for x in (0, TWO_PI)]  # x = 0, then x = 2 pi
        self.boundary = torch.cat(edges)
        self.residual_points = self._uniform(self.n_residual)
        self.test_points = self._grid(_line(0, TWO_PI, self.n_test_x), _line(0, 1, self.n_test_t))
        self.test_u = self.exact(self.test_points)
        return tanh_mlp(self.width, self.depth).to(device=self.device, dtype=dtype)

    def loss(self, model: nn.Module) -> Tensor:
        """Mean squared residual + mean squared initial error + mean squared u(2pi, t) - u(0, t)."""
        if self._resample_due():
            self.resample(model)
        self.n_loss_evals += 1
        n, m = self.n_residual, self.n_initial
        points = torch.cat([self.residual_points, self.initial, self.boundary])
        u, residual = self._value_and_residual(model, points, n)
        initial_error = u[n : n + m] - self.initial_u
        left, right = u[n + m :].chunk(2)
        periodic = (right - left).square().mean()
        return residual.square().mean() + initial_error.square().mean() + periodic

    def residual(self, model: nn.Module, xt: Tensor) -> Tensor:
        """The PDE residual at ``xt`` (shape (N, 2)); shape (N, 1), differentiable by the model."""
        return self._value_and_residual(model, xt, xt.shape[0])[1]

    def resample(self, model: nn.Module) -> None:
        """New residual points: uniform, or by RAD on the current model's residual."""
        if self.sampling == "uniform":
            self.residual_points = self._uniform(self.n_residual)
            return
        candidates = self._uniform(self.n_candidates)
        self.residual_points = rad_sample(
            lambda xt: self.residual(model, xt), candidates, self.n_residual,
            k=self.rad_k, c=self.rad_c,
        )

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return field_errors(model, self.test_points, self.test_u)

    def plot(self, model: nn.Module, path: str | os.PathLike) -> None:
        """Save prediction, exact solution and absolute error over (x, t) as a PNG."""
        from matplotlib.figure import Figure

        with torch.no_grad():
            predicted = model(self.test_points)
        panels = {
            "PINN u(x, t)": predicted,
            "exact u(x, t)": self.test_u,
            "|error|": (predicted - self.test_u).abs(),
        }
        fig = Figure(figsize=(13, 3.8), layout="constrained")
        for ax, (title, values) in zip(fig.subplots(1, 3), panels.items(), strict=True):
            image = values.reshape(self.n_test_x, self.n_test_t).t().cpu().double().numpy()
            shown = ax.imshow(image, origin="lower", extent=(0, TWO_PI, 0, 1), aspect="auto")
            ax.set(title=title, xlabel="x", ylabel="t")
            fig.colorbar(shown, ax=ax)
        fig.suptitle(f"{self.title}, rel L2 {self.evaluate(model)['rel_l2']:.2e}")
        fig.savefig(path, dpi=120)

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the seed: the resampling position and current points."""
        return {"n_loss_evals": self.n_loss_evals, "residual_points": self.residual_points}

    def load_state_dict(self, state: dict) -> None:
        self.n_loss_evals = state["n_loss_evals"]
        self.residual_points = state["residual_points"].to(self.device, self.dtype)

    # -- helpers -------------------------------------------------------------------------------

    def _value_and_residual(self, model: nn.Module, points: Tensor, n: int) -> tuple[Tensor, ...]:
        """u at all ``points`` and the residual at the first ``n`` of them (one reverse pass)."""
        points = points.detach().requires_grad_(True)
        u = model(points)
        (grad,) = torch.autograd.grad(u[:n].sum(), points, create_graph=True)
        direction = grad.new_tensor(self.direction)
        return u, grad[:n] @ direction.unsqueeze(1) + self.reaction_term(u[:n])

    def _uniform(self, n: int) -> Tensor:
        """``n`` points uniform in [0, 2 pi) x [0, 1), drawn on the CPU (device-independent)."""
        points = torch.rand(n, 2, dtype=torch.float64) * torch.tensor([TWO_PI, 1.0]).double()
        return points.to(self.device, self.dtype)

    def _grid(self, x: Tensor, t: Tensor) -> Tensor:
        """All (x, t) pairs, x-major: row i * len(t) + j holds (x_i, t_j)."""
        grid_x, grid_t = torch.meshgrid(x, t, indexing="ij")
        points = torch.stack([grid_x.reshape(-1), grid_t.reshape(-1)], dim=1)
        return points.to(self.device, self.dtype)


class Convection(_Periodic):
    """u_t + beta u_x = 0, u(x, 0) = sin x, periodic; exact u = sin(x - beta t) (see the module)."""

    def __init__(
        self,
        *,
        beta: float = 40.0,
        n_residual: int = 1000,
        n_initial: int = 257,
        n_boundary: int = 101,
        width: int = 50,
        depth: int = 3,
        sampling: str = "uniform",
        resample_every: int = 0,
        resample_until: float = 0.8,
        n_candidates: int = 10000,
        rad_k: float = 1.0,
        rad_c: float = 1.0,
        n_test_x: int = 129,
        n_test_t: int = 101,
        steps: int = 6000,
        lr: float = 1e-3,
    ):
        check_positive_float("beta", beta)
        super().__init__(
            n_residual=n_residual, n_initial=n_initial, n_boundary=n_boundary, width=width,
            depth=depth, sampling=sampling, resample_every=resample_every,
            resample_until=resample_until, n_candidates=n_candidates, rad_k=rad_k, rad_c=rad_c,
            n_test_x=n_test_x, n_test_t=n_test_t, steps=steps, lr=lr,
        )
        self.beta = float(beta)
        self.direction = (self.beta, 1.0)
        self.title = f"convection, beta = {self.beta:g}"

    def exact(self, xt: Tensor) -> Tensor:
        return torch.sin(xt[:, :1] - self.beta * xt[:, 1:])


class Reaction(_Periodic):
    """u_t = rho u (1 - u), a Gaussian bump at t = 0, periodic; exact logistic growth (module
    docstring)."""

    def __init__(
        self,
        *,
        rho: float = 5.0,
        n_residual: int = 1000,
        n_initial: int = 257,
        n_boundary: int = 101,
        width: int = 50,
        depth: int = 3,
        sampling: str = "uniform",
        resample_every: int = 0,
        resample_until: float = 0.8,
        n_candidates: int = 10000,
        rad_k: float = 1.0,
        rad_c: float = 1.0,
        n_test_x: int = 129,
        n_test_t: int = 101,
        steps: int = 6000,
        lr: float = 1e-3,
    ):
        check_positive_float("rho", rho)
        super().__init__(
            n_residual=n_residual, n_initial=n_initial, n_boundary=n_boundary, width=width,
            depth=depth, sampling=sampling, resample_every=resample_every,
            resample_until=resample_until, n_candidates=n_candidates, rad_k=rad_k, rad_c=rad_c,
            n_test_x=n_test_x, n_test_t=n_test_t, steps=steps, lr=lr,
        )
        self.rho = float(rho)
        self.title = f"reaction, rho = {self.rho:g}"

    def reaction_term(self, u: Tensor) -> Tensor:
        return -self.rho * u * (1 - u)

    @staticmethod
    def initial_condition(x: Tensor) -> Tensor:
        return torch.exp(-0.5 * ((x - math.pi) / (math.pi / 4)) ** 2)

    def exact(self, xt: Tensor) -> Tensor:
        u0 = self.initial_condition(xt[:, :1])
        growth = u0 * torch.exp(self.rho * xt[:, 1:])
        return growth / (growth + 1 - u0)


def _line(start: float, end: float, n: int) -> Tensor:
    """``n`` evenly spaced float64 numbers from ``start`` to ``end`` (2 pi not in float32)."""
    return torch.linspace(start, end, n, dtype=torch.float64)
