"""The neural ODE's fast loss: classic RK4 on the data grid (:func:`grid_rk4`, for any vector
field) and, for the :class:`~azure_sciml.problems.ode.NeuralField` (Linear-Tanh-Linear), its mean
squared error against the true windows with the backward pass written out (:class:`FieldRK4Loss`,
the discrete adjoint of RK4). ``NeuralODE(loss_solver="grid_rk4")``, the default, uses them."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def grid_rk4(field: nn.Module, y0: Tensor, t: Tensor, substeps: int = 1) -> Tensor:
    """Classic RK4 with ``substeps`` equal steps per interval of the uniform grid ``t``; states at
    ``t``, shape (len(t), *y0.shape). Written out (not torchdiffeq's fixed-grid loop, whose "rk4"
    is the 3/8 rule): fewer tensor ops."""
    fine = _fine_grid(t, substeps)
    h = float(fine[1] - fine[0])
    mid = fine[:-1] + h / 2
    y, states = y0, [y0]
    for k in range(len(fine) - 1):
        k1 = field(fine[k], y)
        k2 = field(mid[k], torch.add(y, k1, alpha=h / 2))
        k3 = field(mid[k], torch.add(y, k2, alpha=h / 2))
        k4 = field(fine[k + 1], torch.add(y, k3, alpha=h))
        y = torch.add(y, torch.add(k1, k2.add(k3), alpha=2).add_(k4), alpha=h / 6)
        if (k + 1) % substeps == 0:
            states.append(y)
    return torch.stack(states)


def _fine_grid(t: Tensor, substeps: int) -> Tensor:
    if substeps == 1:
        return t
    return torch.linspace(
        float(t[0]), float(t[-1]), (len(t) - 1) * substeps + 1, dtype=t.dtype, device=t.device
    )


class FieldRK4Loss(torch.autograd.Function):
    """Mean squared error of :func:`grid_rk4`'s states against ``targets`` (shape (window, B, 2),
    solved from ``targets[0]``) for a :class:`NeuralField`, with the backward pass written out:
    the discrete adjoint of RK4, the field's vector-Jacobian products by hand, and its parameter
    gradients as one matmul each over all stages. Equal to autograd through :func:`grid_rk4`
    (tests), at a fraction of its tensor ops (no graph, no per-op autograd bookkeeping)."""

    @staticmethod
    def forward(ctx, targets, h, substeps, cubic, w1, b1, w2, b2):
        n_steps = (targets.shape[0] - 1) * substeps
        batch, hidden = targets.shape[1], w1.shape[0]
        states = targets.new_empty(n_steps * 4, batch, 2)  # each stage's state
        hiddens = targets.new_empty(n_steps * 4, batch, hidden)
        stage_states, stage_hiddens = states.unbind(0), hiddens.unbind(0)
        w1t, w2t = w1.t(), w2.t()
        y, outputs = targets[0], [targets[0]]
        for i in range(n_steps):
            j = 4 * i
            u, ks = stage_states[j].copy_(y), []
            for stage, step in enumerate((h / 2, h / 2, h, None)):
                z = torch.addmm(b1, u.pow(3) if cubic else u, w1t)
                ks.append(torch.addmm(b2, torch.tanh(z, out=stage_hiddens[j + stage]), w2t))
                if step is not None:
                    u = torch.add(y, ks[-1], alpha=step, out=stage_states[j + stage + 1])
            k1, k2, k3, k4 = ks
            y = torch.add(y, torch.add(k1, k2.add(k3), alpha=2).add_(k4), alpha=h / 6)
            if (i + 1) % substeps == 0:
                outputs.append(y)
        errors = torch.stack(outputs) - targets
        ctx.h, ctx.substeps, ctx.cubic = h, substeps, cubic
        ctx.states, ctx.hiddens, ctx.errors = states, hiddens, errors
        ctx.save_for_backward(w1, w2)
        return errors.square().mean()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        w1, w2 = ctx.saved_tensors
        h, substeps, cubic = ctx.h, ctx.substeps, ctx.cubic
        states, hiddens, errors = ctx.states, ctx.hiddens, ctx.errors
        n_steps = states.shape[0] // 4
        seeds = errors * (2 * grad_loss / errors.numel())  # d loss / d state at the grid points
        tanh_slopes = torch.addcmul(hiddens.new_ones(()), hiddens, hiddens, value=-1).unbind(0)
        if cubic:  # d(y^3) / dy
            input_slopes = states.square().mul_(3).unbind(0)
        bar_k = torch.empty_like(states)  # d loss / d each stage's field output
        bar_z = torch.empty_like(hiddens)  # d loss / d each stage's pre-activation
        stage_bar_k, stage_bar_z = bar_k.unbind(0), bar_z.unbind(0)
        bar_y = torch.zeros_like(errors[0])
        for i in reversed(range(n_steps)):
            if (i + 1) % substeps == 0:
                bar_y = bar_y + seeds[(i + 1) // substeps]
            bar_next, bar_u, j = bar_y, None, 4 * i
            # stage s's output k_s enters y_next with weight w_s and stage s + 1's input with
            # step c_s (y + c_s k_s); d loss / d k_s = w_s d/d y_next + c_s d/d (input s + 1)
            for stage, weight, step in (
                (3, h / 6, None),
                (2, h / 3, h),
                (1, h / 3, h / 2),
                (0, h / 6, h / 2),
            ):
                out = stage_bar_k[j + stage]
                if bar_u is None:
                    bar_ks = torch.mul(bar_next, weight, out=out)
                else:
                    bar_ks = torch.add(bar_next * weight, bar_u, alpha=step, out=out)
                pre = torch.mm(bar_ks, w2, out=stage_bar_z[j + stage])
                pre.mul_(tanh_slopes[j + stage])
                bar_u = pre @ w1
                if cubic:
                    bar_u.mul_(input_slopes[j + stage])
                bar_y = bar_y + bar_u
        flat_k, flat_z = bar_k.reshape(-1, 2), bar_z.reshape(-1, bar_z.shape[-1])
        inputs = states.pow(3) if cubic else states
        grad_w2 = flat_k.t() @ hiddens.reshape(-1, hiddens.shape[-1])
        grad_w1 = flat_z.t() @ inputs.reshape(-1, 2)
        return None, None, None, None, grad_w1, flat_z.sum(0), grad_w2, flat_k.sum(0)
