"""Heat-equation PINN: u_t = a u_xx on x in [0, 1], t in [0, 1], u(0, t) = u(1, t) = 0.

Defaults follow DeepXDE's heat example (``examples/pinn_forward/heat.py``): diffusivity a = 0.4,
u(x, 0) = sin(pi x), exact solution u = exp(-a pi^2 t) sin(pi x); a 2-20-20-20-1 tanh network
(Glorot-normal weights, zero biases); 2540 interior, 80 boundary and 160 initial points; Adam at
lr 1e-3; the loss is the sum of the mean squared PDE residual, boundary error and initial error.
The metric is the relative L2 error on a 256 (x) by 201 (t) grid. DeepXDE trains 20000 steps; the
default budget here is 6000 loss evaluations: ~10-12 s of CPU for Adam's training on the AMD
EPYC 2-core box (one thread, loaded; docs/benchmarks.md).

For the tanh MLP that :meth:`Heat.build` returns, :meth:`Heat.loss` computes u at all points and
u_t - a u_xx at the interior ones in one forward-mode pass (value, residual and x-tangent streams
side by side in one features-major stack, one matmul per layer) with its backward written out,
into buffers kept between calls (``_heat_loss.MLPHeatLoss``, ``_heat_loss.Workspace``); it
equals the nested-autograd loss, :meth:`Heat.autograd_loss`, which any other model gets, to
rounding (tests: 1e-13 in float64). :meth:`Heat.loss_and_grad` runs the same passes without
autograd and sets the gradients itself (bit for bit what ``loss(model).backward()`` leaves);
:func:`azure_sciml.fit` evaluates through it. Measured (docs/benchmarks.md, "The heat PINN's
loss", 5b99cca): 0.27-0.30x (float32) the CPU time of nested autograd per loss and gradient
over consecutive evaluations, 0.32-0.33x (float32) and 0.23-0.25x (float64) alternating with it.

Variants (exact by superposition, u = sum_k c_k exp(-a k^2 pi^2 t) sin(k pi x)):

- ``"sine"``: one mode, k = 1 (DeepXDE's problem).
- ``"multimode"``: modes k = 1, 3, 5 with c = 1, 1/2, 1/4; the high modes die out within
  t ~ 0.01-0.03, a sharp initial transient the network must resolve.

Collocation points are drawn uniformly from torch's global RNG (DeepXDE uses a Hammersley set);
with ``resample_every = n > 0`` every n-th loss evaluation draws fresh points first (also from the
global RNG, so runs stay seed-deterministic), until ``resample_until`` of the budget (a finisher
after it sees fixed points). Resampling counts loss evaluations, so an optimizer that evaluates
several times per step (a line search) may see the points change within a step. With
``sampling="rad"`` the interior points are re-drawn by residual-based adaptive distribution
(:func:`~azure_sciml.problems._collocation.rad_sample` over 10x as many uniform candidates,
k = c = 1; the field's recipe, docs/finisher.md), outside the counted evaluations.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
)
from azure_sciml.problems._collocation import Resampled, check_resampling, rad_sample
from azure_sciml.problems._heat_loss import (
    MLPHeatLoss,
    Workspace,
    loss_and_grad,
    stack_points,
    tanh_mlp_layers,
)

VARIANTS: dict[str, tuple[tuple[int, float], ...]] = {
    "sine": ((1, 1.0),),
    "multimode": ((1, 1.0), (3, 0.5), (5, 0.25)),
}


class Heat(Resampled):
    """PINN for the 1-D heat equation with a closed-form solution (see module docstring)."""

    metric = "rel_l2"

    def __init__(
        self,
        *,
        variant: str = "sine",
        diffusivity: float = 0.4,
        n_interior: int = 2540,
        n_boundary: int = 80,
        n_initial: int = 160,
        width: int = 20,
        depth: int = 3,
        resample_every: int = 0,
        resample_until: float = 1.0,
        sampling: str = "uniform",
        n_test_x: int = 256,
        n_test_t: int = 201,
        steps: int = 6000,
        lr: float = 1e-3,
    ):
        check_choice("variant", variant, sorted(VARIANTS))
        check_positive_float("diffusivity", diffusivity)
        check_positive_float("lr", lr)
        for name, value in [
            ("n_interior", n_interior),
            ("n_boundary", n_boundary),
            ("n_initial", n_initial),
            ("width", width),
            ("depth", depth),
            ("steps", steps),
        ]:
            check_positive_int(name, value)
        for name, value in [("n_test_x", n_test_x), ("n_test_t", n_test_t)]:
            check_positive_int(name, value, minimum=2)
        check_resampling(sampling, resample_every, resample_until)
        self.variant, self.diffusivity = variant, float(diffusivity)
        self.n_interior, self.n_boundary, self.n_initial = n_interior, n_boundary, n_initial
        self.width, self.depth = width, depth
        self.resample_every, self.resample_until = resample_every, float(resample_until)
        self.sampling = sampling
        self.n_test_x, self.n_test_t = n_test_x, n_test_t
        self.steps, self.lr = steps, float(lr)

    def exact(self, xt: Tensor) -> Tensor:
        """Exact solution at points ``xt`` of shape (N, 2) holding (x, t); returns shape (N, 1)."""
        x, t = xt[:, :1], xt[:, 1:]
        u = torch.zeros_like(x)
        for k, amplitude in VARIANTS[self.variant]:
            rate = self.diffusivity * (k * math.pi) ** 2
            u = u + amplitude * torch.exp(-rate * t) * torch.sin(k * math.pi * x)
        return u

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module:
        self.device, self.dtype = torch.device(device), dtype
        self.n_loss_evals = 0
        self._sample_points()
        self.test_points = self._test_grid()
        self.test_u = self.exact(self.test_points)
        return tanh_mlp(self.width, self.depth).to(device=self.device, dtype=dtype)

    def loss(self, model: nn.Module) -> Tensor:
        self._next_evaluation(model)
        linears = tanh_mlp_layers(model)
        if linears is None:
            return self.autograd_loss(model)
        inputs, target, weight = self._stacked_points()
        params = _weights_and_biases(linears)
        return MLPHeatLoss.apply(inputs, target, weight, self.diffusivity, self._buffers(), *params)

    def loss_and_grad(self, model: nn.Module) -> Tensor | None:
        """``loss(model)`` and its backward in one call without autograd, for the tanh MLP of
        :meth:`build` whose parameters all train and carry no hooks: sets each parameter's
        ``.grad`` (replacing it) to what ``loss(model).backward()`` would leave from None, bit
        for bit, and returns the loss (no graph). Else None, with nothing done: the caller takes
        :meth:`loss` and ``backward()``. :func:`azure_sciml.fit` prefers it (~0.2 ms an
        evaluation less, docs/benchmarks.md)."""
        linears = tanh_mlp_layers(model)
        if linears is None:
            return None
        params = _weights_and_biases(linears)
        for p in params:
            if not p.requires_grad or p._backward_hooks or p._post_accumulate_grad_hooks:
                return None
        self._next_evaluation(model)
        inputs, target, weight = self._stacked_points()
        loss, grads = loss_and_grad(inputs, target, weight, self.diffusivity, self._buffers(),
                                    params)
        for p, grad in zip(params, grads, strict=True):
            p.grad = grad
        return loss

    def autograd_loss(self, model: nn.Module) -> Tensor:
        """The loss with the residual by nested autograd: any model (the fast path in
        :meth:`loss` needs the tanh MLP of :meth:`build`); the reference the tests hold it to."""
        pde = self.residual(model, self.interior).pow(2).mean()
        boundary = model(self.boundary).pow(2).mean()
        initial = (model(self.initial) - self.initial_u).pow(2).mean()
        return pde + boundary + initial

    def residual(self, model: nn.Module, xt: Tensor) -> Tensor:
        """PDE residual u_t - a u_xx at ``xt`` (shape (N, 2)), by nested autograd; shape (N, 1)."""
        xt = xt.detach().requires_grad_(True)
        u = model(xt)
        (du,) = torch.autograd.grad(u.sum(), xt, create_graph=True)
        u_x, u_t = du[:, :1], du[:, 1:]
        (d_ux,) = torch.autograd.grad(u_x.sum(), xt, create_graph=True)
        return u_t - self.diffusivity * d_ux[:, :1]

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return field_errors(model, self.test_points, self.test_u)

    def plot(self, model: nn.Module, path: str | os.PathLike) -> None:
        """Save prediction, exact solution and absolute error over (x, t) as a PNG."""
        from matplotlib.figure import Figure  # no pyplot: no global figure state, no backend

        with torch.no_grad():
            predicted = model(self.test_points)
        shape = (self.n_test_t, self.n_test_x)
        panels = {
            "PINN u(x, t)": predicted,
            "exact u(x, t)": self.test_u,
            "|error|": (predicted - self.test_u).abs(),
        }
        fig = Figure(figsize=(13, 3.8), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, (title, values) in zip(axes, panels.items(), strict=True):
            image = values.reshape(shape).cpu().float().numpy()
            shown = ax.imshow(image, origin="lower", extent=(0, 1, 0, 1), aspect="auto")
            ax.set(title=title, xlabel="x", ylabel="t")
            fig.colorbar(shown, ax=ax)
        fig.suptitle(f"heat equation ({self.variant}), rel L2 {self.evaluate(model)['rel_l2']:.2e}")
        fig.savefig(path, dpi=120)

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the seed: the resampling position and current points."""
        names = ("interior", "boundary", "initial", "initial_u")
        return {"n_loss_evals": self.n_loss_evals, **{n: getattr(self, n) for n in names}}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value.to(self.device) if isinstance(value, Tensor) else value)

    def _next_evaluation(self, model: nn.Module) -> None:
        """Fresh points if they are due (RAD reads the model's residual), then count the
        evaluation."""
        if self._resample_due():
            self._sample_points(model if self.sampling == "rad" else None)
        self.n_loss_evals += 1

    def _buffers(self) -> Workspace:
        """The fast loss's buffers, kept between calls."""
        if getattr(self, "_workspace", None) is None:
            self._workspace = Workspace()
        return self._workspace

    def _stacked_points(self) -> tuple[Tensor, Tensor, Tensor]:
        """``MLPHeatLoss``'s inputs for the current points, rebuilt when they change."""
        points = (self.interior, self.boundary, self.initial, self.initial_u)
        cached = getattr(self, "_stacked", None)
        if cached is None or any(a is not b for a, b in zip(cached[0], points, strict=True)):
            cached = (points, stack_points(*points))
            self._stacked = cached
        return cached[1]

    def _sample_points(self, model: nn.Module | None = None) -> None:
        """Draw interior, boundary (x = 0 or 1) and initial (t = 0) points from the global RNG;
        with ``model``, the interior points by RAD on its residual."""
        if model is None:
            self.interior = self._uniform(self.n_interior, 2)
        else:
            candidates = self._uniform(10 * self.n_interior, 2)
            residual = lambda xt: self.residual(model, xt)  # noqa: E731
            self.interior = rad_sample(residual, candidates, self.n_interior)
        boundary_t = self._uniform(self.n_boundary, 1)
        boundary_x = (torch.rand(self.n_boundary, 1) < 0.5).to(boundary_t)
        self.boundary = torch.cat([boundary_x, boundary_t], dim=1)
        initial_x = self._uniform(self.n_initial, 1)
        self.initial = torch.cat([initial_x, torch.zeros_like(initial_x)], dim=1)
        self.initial_u = self.exact(self.initial)

    def _uniform(self, n: int, dim: int) -> Tensor:
        # Drawn on the CPU so the points do not depend on the device's RNG.
        return torch.rand(n, dim).to(device=self.device, dtype=self.dtype)

    def _test_grid(self) -> Tensor:
        """Grid points (x, t), shape (n_test_t * n_test_x, 2), t-major like the plot's image."""
        x = torch.linspace(0, 1, self.n_test_x, device=self.device, dtype=self.dtype)
        t = torch.linspace(0, 1, self.n_test_t, device=self.device, dtype=self.dtype)
        grid_t, grid_x = torch.meshgrid(t, x, indexing="ij")
        return torch.stack([grid_x.reshape(-1), grid_t.reshape(-1)], dim=1)


@torch.no_grad()
def field_errors(model: nn.Module, points: Tensor, exact: Tensor) -> dict[str, float]:
    """A PINN's headline errors against the exact solution on a test grid."""
    error = model(points) - exact
    return {"rel_l2": float(error.norm() / exact.norm()), "max_abs_err": float(error.abs().max())}


def tanh_mlp(width: int, depth: int) -> nn.Sequential:
    """(x, t) -> u: ``depth`` tanh layers of ``width``, Glorot-normal weights, zero biases (the
    PINNs' network: heat, convection, reaction)."""
    sizes = [2] + [width] * depth
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.Tanh()]
    layers.append(nn.Linear(width, 1))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def _weights_and_biases(linears: list[nn.Linear]) -> list[Tensor]:
    """The layers' parameters in the fast loss's order: weight, bias, weight, bias, ... (read
    from the modules' dicts: ``layer.weight`` goes through ``Module.__getattr__``, ~8x slower)."""
    return [layer._parameters[name] for layer in linears for name in ("weight", "bias")]
