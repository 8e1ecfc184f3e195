"""The heat PINN's loss for a tanh MLP with its backward written out (:class:`MLPHeatLoss`): one
forward-mode pass carries values, x-tangents and the residual operator's image as column blocks of
one features-major stack, so each layer is one matmul each way, into buffers kept between calls
(:class:`Workspace`). :meth:`azure_sciml.problems.heat.Heat.loss` uses it for the network
:func:`~azure_sciml.problems.heat.tanh_mlp` builds, and :func:`loss_and_grad` (the same passes
without autograd's graph, engine and gradient accumulation) serves
:meth:`~azure_sciml.problems.heat.Heat.loss_and_grad`, which :func:`azure_sciml.fit` prefers;
measured in docs/benchmarks.md ("The heat PINN's loss")."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def stack_points(
    interior: Tensor, boundary: Tensor, initial: Tensor, initial_u: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(input stack, target, column weight) of :class:`MLPHeatLoss` for these point sets.

    The input stack is features-major, (3, M + 2N) for M points of which the first N are interior:
    columns 0..M-1 hold 2 (x, t) over a row of 2 (the bias row: the stack carries twice the
    values), the next N columns D (x, t) = (0, 1) and the last N d/dx (x, t) = (1, 0) over a row
    of 0. ``target`` and ``weight`` (1, M) cover what the loss reads: twice u at the boundary and
    initial points, then D u at the interior ones."""
    n = interior.shape[0]
    points = torch.cat([interior, boundary, initial])
    m = points.shape[0]
    inputs = points.new_zeros(3, m + 2 * n)
    inputs[:2, :m] = 2 * points.t()
    inputs[2, :m] = 2
    inputs[1, m : m + n] = 1
    inputs[0, m + n :] = 1
    target = torch.cat([torch.zeros_like(boundary[:, 0]), 2 * initial_u[:, 0], points.new_zeros(n)])
    weight = torch.cat([  # the loss's 1 / (points of the set), over 4 for the doubled values
        torch.full_like(boundary[:, 0], 1 / boundary.shape[0] / 4),
        torch.full_like(initial_u[:, 0], 1 / initial.shape[0] / 4),
        points.new_full((n,), 1 / n),
    ])
    return inputs, target[None], weight[None]


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


class _Layer:
    """One hidden layer's buffers and their column blocks (values | D | x, see
    :class:`MLPHeatLoss`): ``out`` the output stack with its bias row (2 under the values, 0
    under the tangents), ``z`` the pre-activations (2 z at the values; the D block becomes P;
    the first layer's z_x is a column of its weight, its x block unused), ``s`` = 1 - tanh(z)^2
    at the values; the gradient buffers and two scratch blocks (z_x^2 in
    the forward pass), shared by the layers, come from :meth:`backward_buffers`."""

    def __init__(self, like: Tensor, width: int, m: int, n: int):
        r = m + 2 * n
        self.out = like.new_zeros(width + 1, r)
        self.out[width, :m] = 2
        out = self.out[:width]
        self.h2, self.h2_n = out[:, :m], out[:, :n]  # 2 h' at all points, at the interior ones
        self.out_d, self.out_x = out[:, m : m + n], out[:, m + n :]
        self.out_t3 = out[:, m:].view(width, 2, n)
        self.z = like.new_empty(width, r)
        self.z_v, self.p = self.z[:, :m], self.z[:, m : m + n]
        self.z_x, self.z_t3 = self.z[:, m + n :], self.z[:, m:].view(width, 2, n)
        self.s = like.new_empty(width, m)
        self.s_n, self.s_n3 = self.s[:, :n], self.s[:, :n].view(width, 1, n)
        self.zero = like.new_zeros(())
        self.top_columns = self.out[:, n : m + n]  # what the loss reads of the top layer
        self.top_columns_t = self.top_columns.t()

    def backward_buffers(self, bar: Tensor, scratch: list[Tensor], m: int, n: int) -> None:
        """Views of the buffer that holds the gradient by the output stack (then by z)."""
        width = self.s.shape[0]
        self.bar = bar[:width]
        self.bar_t = self.bar.t()
        self.bar_v, self.bar_n = self.bar[:, :m], self.bar[:, :n]
        self.bar_top = self.bar[:, n : m + n]
        self.bar_d, self.bar_x = self.bar[:, m : m + n], self.bar[:, m + n :]
        self.bar_t3 = self.bar[:, m:].view(width, 2, n)
        self.scratch = [t[:width] for t in scratch]


class Workspace:
    """:class:`MLPHeatLoss`'s buffers, allocated once for a shape and reused by every call: a
    fresh allocation of this size costs page faults, which dominated the loss on a loaded VM
    (docs/benchmarks.md). They include each layer's (W | b), copied from the parameters by one
    call, and the views the passes read, made once. A forward pass overwrites what the previous
    one left for its backward; a backward that finds its forward overwritten runs it again
    (``generation``)."""

    def __init__(self):
        self.key = None
        self.generation = 0
        self.inputs = None

    def setup(self, inputs: Tensor, target: Tensor, params: tuple[Tensor, ...]) -> Workspace:
        shapes = tuple(w.shape for w in params[0::2])
        key = (inputs.dtype, inputs.device, inputs.shape[1], target.shape[1], shapes)
        if key != self.key:
            self.key = key
            self._allocate(inputs, target, [s[0] for s in shapes[:-1]], shapes)
        if inputs is not self.inputs:  # fresh points
            self.inputs, self.inputs_v = inputs, inputs[:, : self.m]
        return self

    def _allocate(self, inputs: Tensor, target: Tensor, widths: list[int], shapes) -> None:
        m = target.shape[1]
        n = (inputs.shape[1] - m) // 2
        self.m, self.n = m, n
        self.layers = [_Layer(inputs, width, m, n) for width in widths]
        bars = [inputs.new_empty(max(widths), m + 2 * n) for _ in range(2)]
        scratch = [inputs.new_empty(max(widths), n) for _ in range(2)]
        for i, layer in enumerate(self.layers):  # layer i's gradient in bars[i % 2]
            layer.backward_buffers(bars[i % 2], scratch, m, n)
        # (W | b) of every layer, the top one's included; parts: the views the parameters
        # are copied into, in their order (weight, bias, weight, bias, ...)
        self.augmented = [inputs.new_empty(out, fan_in + 1) for out, fan_in in shapes]
        self.parts = [t for aug in self.augmented for t in (aug[:, :-1], aug[:, -1])]
        self.weights_t = [aug[:, :-1].t() for aug in self.augmented]
        first = self.layers[0]  # its input tangents are constant: z_x = W[:, 0], z_d = W[:, 1]
        first.z_x, first.z_d = self.augmented[0][:, :1], self.augmented[0][:, 1:2]
        first.zx2 = inputs.new_empty(widths[0], 1)
        self.error = inputs.new_empty(1, m)
        self.weighted = inputs.new_empty(1, m)
        self.seed = inputs.new_empty(1, m)
        self.error_flat, self.weighted_flat = self.error.view(-1), self.weighted.view(-1)
        self.one, self.minus_two = inputs.new_ones(()), inputs.new_full((), -2)
        self.two = inputs.new_full((), 2)
        self.inputs = None


class MLPHeatLoss(torch.autograd.Function):
    """The heat loss of a tanh MLP with its gradient written out by hand (one forward pass, one
    backward pass, one matmul per layer each way plus the weight gradient's), equal to
    :meth:`Heat.autograd_loss` to rounding.

    Forward mode carries three column blocks through each layer in one features-major stack
    (width + 1, M + 2N): the values at all M points (interior first, then boundary and initial),
    and at the N interior points the residual operator's image D h = h_t - a h_xx (the u_t and
    u_xx streams fold into one, since D is linear) and the x-tangent h_x. Below them a row of 2
    under the values and 0 under the tangents makes the bias a column of the weight matrix, and
    the stack carries 2 h rather than h (exact: a power of 2), so one matmul (W | b) @ stack gives
    2 z at the values and z_d, z_x at the tangents. Through h' = tanh(z) = 2 sigmoid(2 z) - 1 (3x
    cheaper than torch's CPU ``tanh``), s = 1 - h'^2 and tanh'' = -2 h' s: h'_x = s z_x and
    D h' = s P with P = z_d + 2 a h' z_x^2. The loss reads twice u at the boundary and initial
    points and D u at the interior ones, one matmul; the backward pass is the chain rule through
    those formulas, with the transposes of the same products.

    ``inputs``, ``target``, ``weight``: :func:`stack_points`; ``workspace``: a :class:`Workspace`
    (None: a fresh one for this call); ``params``: weight, bias, weight, bias, ... of the layers.
    A backward whose buffers a later call overwrote runs its forward pass again from the
    parameters, which must not have changed in place since (a RuntimeError says so, as autograd
    does for a tensor it saved).
    """

    @staticmethod
    def forward(ctx, inputs, target, weight, diffusivity, workspace, *params):
        ws = (workspace or Workspace()).setup(inputs, target, params)
        loss = _loss(ws, inputs, target, weight, diffusivity, params)
        ctx.diffusivity, ctx.workspace, ctx.generation = diffusivity, ws, ws.generation
        ctx.inputs, ctx.target, ctx.weight, ctx.params = inputs, target, weight, params
        ctx.versions = [p._version for p in params]
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        ws, a = ctx.workspace, ctx.diffusivity
        if ctx.generation != ws.generation:  # a later forward pass reused the buffers: redo ours
            if [p._version for p in ctx.params] != ctx.versions:
                raise RuntimeError(
                    "MLPHeatLoss: a parameter was modified in place after this loss was computed"
                    " and a later one reused its buffers; compute the loss again"
                )
            ws = Workspace().setup(ctx.inputs, ctx.target, ctx.params)
            _loss(ws, ctx.inputs, ctx.target, ctx.weight, a, ctx.params)
        grads = _gradients(ws, ctx.inputs, a, 2 * grad_loss)
        out = []
        for grad in grads[:-1]:  # hidden layers: (W | b)'s gradient transposed
            grad = grad.t()
            out += [grad[:, :-1], grad[:, -1]]
        top = grads[-1]
        return (None, None, None, None, None, *out, top[:, :-1], top[:, -1])


def loss_and_grad(
    inputs: Tensor, target: Tensor, weight: Tensor, diffusivity: float, workspace: Workspace,
    params: list[Tensor],
) -> tuple[Tensor, list[Tensor]]:
    """:class:`MLPHeatLoss`'s loss and its gradients by ``params`` (fresh, contiguous tensors in
    their order), without autograd: the same passes, so the same numbers as
    ``MLPHeatLoss.apply(...)`` and ``backward()`` (bit for bit, tested), less the graph, the
    engine and the gradients' accumulation (~0.15-0.2 ms an evaluation, docs/benchmarks.md)."""
    with torch.no_grad():
        ws = workspace.setup(inputs, target, params)
        loss = _loss(ws, inputs, target, weight, diffusivity, params)
        grads = _gradients(ws, inputs, diffusivity, ws.two)
        out = []
        for grad in grads[:-1]:  # hidden layers: (W | b)'s gradient transposed, (fan in + 1, width)
            out += [grad[:-1].t().contiguous(), grad[-1]]
        top = grads[-1]  # one row: its weight part is contiguous
        out += [top[:, :-1], top[:, -1]]
    return loss, out


def _loss(ws: Workspace, inputs: Tensor, target: Tensor, weight: Tensor, a: float,
          params) -> Tensor:
    """The forward pass into ``ws`` (a new generation of its buffers); returns the loss."""
    ws.generation += 1
    torch._foreach_copy_(ws.parts, params)
    top = _forward(ws, a)
    error = torch.mm(ws.augmented[-1], top.top_columns, out=ws.error).sub_(target)
    torch.mul(error, weight, out=ws.weighted)
    return torch.dot(ws.weighted_flat, ws.error_flat)


def _forward(ws: Workspace, a: float) -> _Layer:
    """The hidden layers' pass into ``ws``'s buffers; returns the top layer."""
    layers, augmented = ws.layers, ws.augmented
    top = len(layers) - 1
    for i, layer in enumerate(layers):
        if i == 0:  # the input tangents are constant: z_x = W[:, 0] and z_d = W[:, 1], broadcast
            torch.mm(augmented[0], ws.inputs_v, out=layer.z_v)
        else:
            torch.mm(augmented[i], layers[i - 1].out, out=layer.z)
        h2 = torch.sigmoid(layer.z_v, out=layer.h2)
        torch.add(ws.minus_two, h2, alpha=4, out=h2)  # 2 tanh(z) = 4 sigmoid(2 z) - 2
        torch.addcmul(ws.one, h2, h2, value=-0.25, out=layer.s)
        if i == 0:
            z_d, zx2 = layer.z_d, torch.mul(layer.z_x, layer.z_x, out=layer.zx2)
        else:
            z_d, zx2 = layer.p, torch.mul(layer.z_x, layer.z_x, out=layer.scratch[0])
        torch.addcmul(z_d, layer.h2_n, zx2, value=a, out=layer.p)  # P
        if i == top:  # the top layer's h'_x feeds nothing
            torch.mul(layer.p, layer.s_n, out=layer.out_d)
        elif i == 0:
            torch.mul(layer.p, layer.s_n, out=layer.out_d)
            torch.mul(layer.s_n, layer.z_x, out=layer.out_x)
        else:  # D h' and h'_x in one product
            torch.mul(layer.z_t3, layer.s_n3, out=layer.out_t3)
    return layer


def _gradients(ws: Workspace, inputs: Tensor, a: float, scale: Tensor) -> list[Tensor]:
    """The backward pass of the forward pass in ``ws`` for d loss = ``scale`` / 2: (W | b)'s
    gradient of every layer, bottom first, as fresh tensors, the hidden layers' transposed
    ((fan in + 1, width) products), the top layer's one row."""
    layers, weights_t = ws.layers, ws.weights_t
    seed = torch.mul(ws.weighted, scale, out=ws.seed)  # by (2 u at boundary and initial, D u)
    grads = [torch.mm(seed, layers[-1].top_columns_t)]
    for i in reversed(range(len(layers))):
        layer = layers[i]
        if i == len(layers) - 1:
            torch.mul(weights_t[-1], seed, out=layer.bar_top)
            _top_layer_backward(layer, a)
        else:
            _layer_backward(layer, a)
        if i > 0:  # the gradient by the output stack below
            torch.mm(weights_t[i], layer.bar, out=layers[i - 1].bar)
        below = inputs if i == 0 else layers[i - 1].out
        # (W | b)'s gradient, after the product above, which leaves bar in cache (~10 %
        # faster); MKL is faster this way round
        grads.append(torch.mm(below, layer.bar_t))
    return grads[::-1]


def _layer_backward(layer: _Layer, a: float) -> None:
    """``layer.bar``, the gradient by the layer's output stack (2 h', D h', h'_x), becomes in place
    the gradient by its pre-activations (2 z, z_d, z_x)."""
    bar_d, bar_x = layer.bar_d, layer.bar_x
    bar_s = torch.mul(layer.p, bar_d, out=layer.scratch[1]).addcmul_(layer.z_x, bar_x)
    layer.bar_t3.mul_(layer.s_n3)  # bar_d is now bar_p, the gradient by z_d
    zx_bar_p = torch.mul(layer.z_x, bar_d, out=layer.scratch[0])
    bar_x.addcmul_(layer.h2_n, zx_bar_p, value=2 * a)
    layer.bar_n.addcmul_(layer.z_x, zx_bar_p, value=a).addcmul_(layer.h2_n, bar_s, value=-0.5)
    layer.bar_v.mul_(layer.s)


def _top_layer_backward(layer: _Layer, a: float) -> None:
    """:func:`_layer_backward` for the last hidden layer, whose output feeds u at the boundary and
    initial points and D u at the interior ones only: ``layer.bar`` holds those columns; the ones
    by h' at the interior points and by h'_x are zero and are written here."""
    bar_d = layer.bar_d
    bar_s = torch.mul(bar_d, layer.p, out=layer.scratch[1])
    bar_d.mul_(layer.s_n)
    zx_bar_p = torch.mul(layer.z_x, bar_d, out=layer.scratch[0])
    torch.addcmul(layer.zero, layer.h2_n, zx_bar_p, value=2 * a, out=layer.bar_x)
    torch.addcmul(layer.zero, layer.z_x, zx_bar_p, value=a, out=layer.bar_n)
    layer.bar_n.addcmul_(layer.h2_n, bar_s, value=-0.5)
    layer.bar_v.mul_(layer.s)
