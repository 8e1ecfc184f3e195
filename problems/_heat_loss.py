"""The heat PINN's loss for a tanh MLP with its backward written out (:class:`MLPHeatLoss`): one
forward-mode pass carries values, x-tangents and the residual operator's image as row blocks of
one stack, so each layer is one matmul each way. :meth:`azure_sciml.problems.heat.Heat.loss`
uses it for the network :func:`~azure_sciml.problems.heat.tanh_mlp` builds; measured in
docs/benchmarks.md ("The heat PINN's loss")."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def stack_points(
    interior: Tensor, boundary: Tensor, initial: Tensor, initial_u: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(input stack, target, row weight) of :class:`MLPHeatLoss` for these point sets."""
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


class MLPHeatLoss(torch.autograd.Function):
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
