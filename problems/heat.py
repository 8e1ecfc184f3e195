"""Heat-equation PINN: u_t = a u_xx on x in [0, 1], t in [0, 1], u(0, t) = u(1, t) = 0.

Defaults follow DeepXDE's heat example (``examples/pinn_forward/heat.py``): diffusivity a = 0.4,
u(x, 0) = sin(pi x), exact solution u = exp(-a pi^2 t) sin(pi x); a 2-20-20-20-1 tanh network
(Glorot-normal weights, zero biases); 2540 interior, 80 boundary and 160 initial points; Adam at
lr 1e-3; the loss is the sum of the mean squared PDE residual, boundary error and initial error.
The metric is the relative L2 error on a 256 (x) by 201 (t) grid. DeepXDE trains 20000 steps; the
default budget here is 6000 loss evaluations: ~17 s of training on the Intel Xeon 2-core box,
~46 s on the AMD EPYC one (one thread, loaded; docs/benchmarks.md).

For the tanh MLP that :meth:`Heat.build` returns, :meth:`Heat.loss` computes u at all points and
u_t - a u_xx at the interior ones in one forward-mode pass (value, x-tangent and residual streams
stacked into one matmul per layer) with its backward written out (:class:`_MLPHeatLoss`); it
equals the nested-autograd loss, :meth:`Heat.autograd_loss`, which any other model gets, to
rounding (tests: 1e-13 in float64). Measured (docs/benchmarks.md, "The heat PINN's loss"):
0.53-0.58x the CPU time of nested autograd per loss + backward, float32 and float64.

Variants (exact by superposition, u = sum_k c_k exp(-a k^2 pi^2 t) sin(k pi x)):

- ``"sine"``: one mode, k = 1 (DeepXDE's problem).
- ``"multimode"``: modes k = 1, 3, 5 with c = 1, 1/2, 1/4; the high modes die out within
  t ~ 0.01-0.03, a sharp initial transient the network must resolve.

Collocation points are drawn uniformly from torch's global RNG (DeepXDE uses a Hammersley set);
with ``resample_every = n > 0`` every n-th loss evaluation draws fresh points first (also from the
global RNG, so runs stay seed-deterministic). Resampling counts loss evaluations, so an optimizer
that evaluates several times per step (a line search) may see the points change within a step.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import check_choice, check_positive_float, check_positive_int

VARIANTS: dict[str, tuple[tuple[int, float], ...]] = {
    "sine": ((1, 1.0),),
    "multimode": ((1, 1.0), (3, 0.5), (5, 0.25)),
}


class Heat:
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
        check_positive_int("resample_every", resample_every, minimum=0)
        self.variant, self.diffusivity = variant, float(diffusivity)
        self.n_interior, self.n_boundary, self.n_initial = n_interior, n_boundary, n_initial
        self.width, self.depth = width, depth
        self.resample_every = resample_every
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
        if self._resample_due():
            self._sample_points()
        self.n_loss_evals += 1
        linears = tanh_mlp_layers(model)
        if linears is None:
            return self.autograd_loss(model)
        inputs, target, row_weight = self._stacked_points()
        params = [t for layer in linears for t in (layer.weight, layer.bias)]
        return _MLPHeatLoss.apply(
            inputs, target, row_weight, self.n_interior, self.diffusivity, *params
        )

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

    def _resample_due(self) -> bool:
        every, done = self.resample_every, self.n_loss_evals
        return every > 0 and done > 0 and done % every == 0

    def _stacked_points(self) -> tuple[Tensor, Tensor, Tensor]:
        """:class:`_MLPHeatLoss`'s inputs for the current points, rebuilt when they change."""
        points = (self.interior, self.boundary, self.initial, self.initial_u)
        cached = getattr(self, "_stacked", None)
        if cached is None or any(a is not b for a, b in zip(cached[0], points, strict=True)):
            cached = (points, _stack_points(*points))
            self._stacked = cached
        return cached[1]

    def _sample_points(self) -> None:
        """Draw interior, boundary (x = 0 or 1) and initial (t = 0) points from the global RNG."""
        self.interior = self._uniform(self.n_interior, 2)
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



def _stack_points(
    interior: Tensor, boundary: Tensor, initial: Tensor, initial_u: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(input stack, target, row weight) of :class:`_MLPHeatLoss` for these point sets."""
    n = interior.shape[0]
    tangents = interior.new_zeros(2 * n, 2)
    tangents[:n, 0] = 1  # d/dx of (x, t)
    tangents[n:, 1] = 1  # D (x, t) = (x_t - a x_xx, t_t - a t_xx)
    inputs = torch.cat([interior, boundary, initial, tangents])
    target = torch.cat([torch.zeros_like(boundary[:, :1]), initial_u])
    row_weight = torch.cat([
        torch.full_like(boundary[:, :1], 1 / boundary.shape[0]),
        torch.full_like(initial_u, 1 / initial.shape[0]),
    ])
    return inputs, target, row_weight


def tanh_mlp_layers(model: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of ``model`` when it is a plain ``nn.Sequential`` of Linear (with bias)
    and Tanh layers alternating, 2 inputs, 1 output (what :func:`tanh_mlp` builds); else None."""
    if type(model) is not nn.Sequential or len(model) < 3 or len(model) % 2 == 0:
        return None
    for i, layer in enumerate(model):
        if type(layer) is not (nn.Linear if i % 2 == 0 else nn.Tanh):
            return None
    linears = list(model)[::2]
    if any(layer.bias is None for layer in linears):
        return None
    if linears[0].in_features != 2 or linears[-1].out_features != 1:
        return None
    return linears


class _MLPHeatLoss(torch.autograd.Function):
    """The heat loss of a tanh MLP with its gradient written out by hand (one forward pass, one
    backward pass, two matmuls per layer each way), equal to :meth:`Heat.autograd_loss`.

    Forward mode carries three row blocks through each layer in one (M + 2N, width) stack: the
    values h at all M points (interior first, then boundary and initial) and, at the N interior
    points, the x-tangent h_x and the residual operator's image D h = h_t - a h_xx (the u_t and
    u_xx streams fold into one, since D is linear). The input stack is the points over N rows
    (1, 0) (d/dx of (x, t)) and N rows (0, 1) (D of (x, t)), so every layer is the same: through
    z = W h + b and h' = tanh(z), with s = 1 - h'^2 and tanh'' = -2 h' s, h'_x = s z_x and
    D h' = s P with P = z_d + 2 a h' z_x^2. The residual is D u = (D h_L) w_out. The backward
    pass is the chain rule through those formulas, the transposes of the same stacked matmuls.
    tanh(z) is computed as 2 sigmoid(2 z) - 1, equal to rounding and ~3x cheaper in torch's CPU
    kernels (docs/benchmarks.md).

    ``inputs``: the input stack (M + 2N, 2); ``target`` and ``row_weight`` (M - N, 1): u's target
    (0 on the boundary, the initial values) and 1 / (number of points of its set) at the boundary
    and initial points, so the loss is mean(residual^2) + sum(row_weight (u - target)^2).
    """

    @staticmethod
    def forward(ctx, inputs, target, row_weight, n_interior, diffusivity, *params):
        n, a = n_interior, diffusivity
        m = inputs.shape[0] - 2 * n
        weights, biases = params[0::2], params[1::2]
        stack, stacks, saved = inputs, [], []
        top = len(weights) - 2
        for i, (weight, bias) in enumerate(zip(weights[:-1], biases[:-1], strict=True)):
            new = stack.new_empty(stack.shape[0], weight.shape[0])
            h = torch.addmm(bias, stack[:m], weight.t(), beta=2, alpha=2, out=new[:m])  # 2 z
            _tanh_from_double_(h)
            s = torch.addcmul(h.new_ones(()), h, h, value=-1)
            tangents = stack[m:] @ weight.t()  # z_x over z_d; z_d becomes P in place
            z_x, p = tangents[:n], tangents[n:]
            h_n, s_n = h[:n], s[:n]
            p.addcmul_(h_n, z_x * z_x, value=2 * a)
            if i < top:  # h'_x and D h' in one product; the top layer's h'_x feeds nothing
                torch.mul(tangents.view(2, n, -1), s_n, out=new[m:].view(2, n, -1))
            else:
                torch.mul(p, s_n, out=new[m + n :])
            stacks.append(stack)
            saved.append((h, s, tangents))
            stack = new
        w_out, b_out = weights[-1], biases[-1]
        # u is needed at the boundary and initial points only, D u at the interior ones
        error = torch.addmm(b_out, stack[n:m], w_out.t()).sub_(target)
        residual = stack[m + n :] @ w_out.t()
        weighted = error * row_weight
        loss = torch.dot(residual.view(-1), residual.view(-1)).div_(n)
        loss.add_(torch.dot(weighted.view(-1), error.view(-1)))
        ctx.n, ctx.a = n, a
        ctx.stacks, ctx.saved, ctx.top_stack = stacks, saved, stack
        ctx.residual, ctx.weighted = residual, weighted
        ctx.save_for_backward(*weights)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        n = ctx.n
        weights = ctx.saved_tensors
        stack, w_out = ctx.top_stack, weights[-1]
        m = stack.shape[0] - 2 * n
        seed_d = ctx.residual * (grad_loss * (2 / n))  # of the loss by D u (interior)
        seed_u = ctx.weighted * (grad_loss * 2)  # of the loss by u (boundary, initial)
        grads = [None] * (2 * len(weights))
        grads[-2] = torch.addmm(seed_d.t() @ stack[m + n :], seed_u.t(), stack[n:m])
        grads[-1] = seed_u.sum(0)
        bar = None  # gradient of the loss by the layer's output stack
        for i in reversed(range(len(weights) - 1)):
            if bar is None:
                bar_z = _top_layer_backward(ctx, ctx.saved[i], seed_u, seed_d, w_out)
            else:
                bar_z = _layer_backward(ctx, ctx.saved[i], bar)
            grads[2 * i] = (ctx.stacks[i].t() @ bar_z).t()  # MKL: 6x faster at 2 inputs
            grads[2 * i + 1] = bar_z[:m].sum(0)
            if i > 0:
                bar = bar_z @ weights[i]
        return (None, None, None, None, None, *grads)


def _tanh_from_double_(z2: Tensor) -> Tensor:
    """tanh(z) = 2 sigmoid(2 z) - 1, in place on ``z2`` = 2 z."""
    return torch.add(z2.new_full((), -1), z2.sigmoid_(), alpha=2, out=z2)


def _layer_backward(ctx, saved, bar: Tensor) -> Tensor:
    """Gradient by the layer's stacked pre-activations (z, z_x, z_d) from ``bar``, the gradient
    by its output stack (h, h_x, D h); ``bar``'s value rows are overwritten."""
    n, a = ctx.n, ctx.a
    h, s, tangents = saved
    m = h.shape[0]
    z_x, p = tangents[:n], tangents[n:]
    h_n, s_n = h[:n], s[:n]
    bar_h, bar_x, bar_d = bar[:m], bar[m : m + n], bar[m + n :]
    bar_z = torch.empty_like(bar)
    torch.mul(bar[m:].view(2, n, -1), s_n, out=bar_z[m:].view(2, n, -1))  # s bar_x; s bar_d
    zx_bar_p = z_x * bar_z[m + n :]  # bar_p = s bar_d = bar_z_d
    bar_z[m : m + n].addcmul_(h_n, zx_bar_p, value=4 * a)
    bar_s = torch.mul(p, bar_d).addcmul_(z_x, bar_x)
    bar_h[:n].addcmul_(z_x, zx_bar_p, value=2 * a).addcmul_(h_n, bar_s, value=-2)
    torch.mul(s, bar_h, out=bar_z[:m])
    return bar_z


def _top_layer_backward(ctx, saved, seed_u: Tensor, seed_d: Tensor, w_out: Tensor) -> Tensor:
    """:func:`_layer_backward` for the last hidden layer, whose output feeds u (at the boundary
    and initial points) and D u (interior) only: no gradient by h at the interior nor by h_x."""
    n, a = ctx.n, ctx.a
    h, s, tangents = saved
    m = h.shape[0]
    z_x, p = tangents[:n], tangents[n:]
    h_n, s_n = h[:n], s[:n]
    bar_d = seed_d * w_out
    bar_z = h.new_empty(m + 2 * n, h.shape[1])
    bar_p = torch.mul(s_n, bar_d, out=bar_z[m + n :])
    zx_bar_p = z_x * bar_p
    torch.addcmul(h.new_zeros(()), h_n, zx_bar_p, value=4 * a, out=bar_z[m : m + n])
    bar_h = torch.empty_like(h)
    torch.mul(z_x, zx_bar_p, out=bar_h[:n]).mul_(2 * a).addcmul_(h_n, p * bar_d, value=-2)
    torch.mul(seed_u, w_out, out=bar_h[n:])
    torch.mul(s, bar_h, out=bar_z[:m])
    return bar_z
