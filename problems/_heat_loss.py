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
    and Tanh layers alternating, 2 inputs, 1 output (what :func:`tanh_mlp` builds); else None.
    (Reads the modules' dicts: a quarter of the time of ``Module.__getattr__``, once a loss.)"""
    if type(model) is not nn.Sequential:
        return None
    layers = list(model._modules.values())
    if len(layers) < 3 or len(layers) % 2 == 0:
        return None
    for i, layer in enumerate(layers):
        if type(layer) is not (nn.Linear if i % 2 == 0 else nn.Tanh):
            return None
    linears = layers[::2]
    for layer in linears:
        if layer._parameters.get("weight") is None or layer._parameters.get("bias") is None:
            return None
    if linears[0].in_features != 2 or linears[-1].out_features != 1:
        return None
    return linears


class _Layer:
    """One hidden layer's buffers and their column blocks (values | D | x, see
    :class:`MLPHeatLoss`): ``out`` the output stack with its bias row (2 under the values, 0
    under the tangents); ``z`` the pre-activations, where 2 z at the values becomes s = 1 -
    tanh(z)^2 once h' is computed and the D block becomes P (the first layer's z_x and z_d are
    columns of its weight: its ``z`` holds the values and P only). The backward pass turns
    them into the gradients: :meth:`backward_buffers`."""

    def __init__(self, like: Tensor, width: int, m: int, n: int, first: bool):
        r = m + 2 * n
        self.out = like.new_zeros(width + 1, r)
        self.out[width, :m] = 2
        out = self.out[:width]
        self.h2, self.h2_n = out[:, :m], out[:, :n]  # 2 h' at all points, at the interior ones
        self.out_d, self.out_x = out[:, m : m + n], out[:, m + n :]
        self.out_t3 = out[:, m:].view(width, 2, n)
        self.z = like.new_empty(width, m + n if first else r)
        self.z_v, self.p = self.z[:, :m], self.z[:, m : m + n]
        if not first:
            self.z_x, self.z_t3 = self.z[:, m + n :], self.z[:, m:].view(width, 2, n)
        self.s = self.z_v  # in place of 2 z, done with once h' is computed
        self.s_n, self.s_n3 = self.s[:, :n], self.s[:, :n].view(width, 1, n)
        self.zero = like.new_zeros(())
        self.top_columns = self.out[:, n : m + n]  # what the loss reads of the top layer
        self.top_columns_t = self.top_columns.t()

    def backward_buffers(self, bar: Tensor, m: int, n: int) -> None:
        """Views of ``bar``, the buffer that holds the gradient by the output stack (then by z).
        (Scratch blocks, set by :class:`Workspace`: ``zx2`` for z_x^2 in the forward pass,
        ``zx_bar_p`` for z_x times the gradient by P in the backward pass, the top layer's
        ``t``: blocks of other buffers that are free at the time.)"""
        width = self.s.shape[0]
        self.bar = bar[:width]
        self.bar_t = self.bar.t()
        self.bar_v, self.bar_n = self.bar[:, :m], self.bar[:, :n]
        self.bar_top = self.bar[:, n : m + n]
        self.bar_d, self.bar_x = self.bar[:, m : m + n], self.bar[:, m + n :]
        self.bar_t3 = self.bar[:, m:].view(width, 2, n)


class Workspace:
    """:class:`MLPHeatLoss`'s buffers, allocated once for a shape and reused by every call: a
    fresh allocation of this size costs page faults, which dominated the loss on a loaded VM
    (docs/benchmarks.md). They include each layer's (W | b), copied from the parameters by one
    call, its gradient's, and the views the passes read, made once. As few as the passes
    allow (3.8 MB in float32 at the defaults, against 6.3 MB with buffers of their own for s,
    the gradients and the scratch blocks: a loss evaluated after other work finds them in
    memory, not in cache, ~35 us a MB on the AMD EPYC box): s takes the place of 2 z, each
    layer's gradient the place of the pre-activations of the layer above (the top layer's, of
    its own output stack), which the backward pass is done with by then. So a forward pass
    overwrites what the previous one left for its backward, and a backward pass overwrites its
    forward's: a backward that finds its forward overwritten runs it again (``generation``)."""

    def __init__(self):
        self.key = None
        self.generation = 0
        self.inputs = self.target = None

    def setup(self, inputs: Tensor, target: Tensor, params: tuple[Tensor, ...]) -> Workspace:
        shapes = tuple(w.shape for w in params[0::2])
        key = (inputs.dtype, inputs.device, inputs.shape[1], target.shape[1], shapes)
        if key != self.key:
            self.key = key
            self._allocate(inputs, target, [s[0] for s in shapes[:-1]], shapes)
        if inputs is not self.inputs or target is not self.target:  # fresh points
            self.inputs, self.inputs_v = inputs, inputs[:, : self.m]
            self.target, self.minus_target = target, -target
        return self

    def _allocate(self, inputs: Tensor, target: Tensor, widths: list[int], shapes) -> None:
        m = target.shape[1]
        n = (inputs.shape[1] - m) // 2
        self.m, self.n = m, n
        self.layers = [_Layer(inputs, width, m, n, i == 0) for i, width in enumerate(widths)]
        top = len(widths) - 1
        for i, layer in enumerate(self.layers):
            w = widths[i]
            if i == top:  # in place of what the loss read of it and in its unused h'_x block
                layer.backward_buffers(layer.out, m, n)
                layer.zx2 = layer.zx_bar_p = layer.bar_x
                layer.t = inputs.new_empty(w, n) if i == 0 else layer.z_x
                continue
            above = self.layers[i + 1]
            if w <= widths[i + 1]:  # in place of the pre-activations of the layer above
                layer.backward_buffers(above.z, m, n)
                layer.zx2 = above.z[:w, :n]  # before that layer's matmul fills it
            else:
                layer.backward_buffers(inputs.new_empty(w, m + 2 * n), m, n)
                layer.zx2 = inputs.new_empty(w, n)
            # in the top layer's output stack, done with when this layer's backward pass runs
            fits = w <= widths[top]
            layer.zx_bar_p = self.layers[top].out[:w, :n] if fits else inputs.new_empty(w, n)
        # (W | b) of every layer, the top one's included; parts: the views the parameters
        # are copied into, in their order (weight, bias, weight, bias, ...)
        self.augmented = [inputs.new_empty(out, fan_in + 1) for out, fan_in in shapes]
        self.parts = [t for aug in self.augmented for t in (aug[:, :-1], aug[:, -1])]
        self.weights_t = [aug[:, :-1].t() for aug in self.augmented]
        # (W | b)'s gradients: the hidden layers' transposed ((fan in + 1, width) products),
        # the top layer's one row; grad_parts: the views of W's and b's, in the parameters' order
        self.grads = [inputs.new_empty(fan_in + 1, out) for out, fan_in in shapes[:-1]]
        self.grads.append(inputs.new_empty(1, shapes[-1][1] + 1))
        self.grad_parts = [t for g in self.grads[:-1] for t in (g[:-1].t(), g[-1])]
        self.grad_parts += [self.grads[-1][:, :-1], self.grads[-1][:, -1]]
        first = self.layers[0]  # its input tangents are constant: z_x = W[:, 0], z_d = W[:, 1]
        first.z_x, first.z_d = self.augmented[0][:, :1], self.augmented[0][:, 1:2]
        first.zx2 = inputs.new_empty(widths[0], 1)
        self.error = inputs.new_empty(1, m)
        self.weighted = inputs.new_empty(1, m)
        self.seed = inputs.new_empty(1, m)
        self.error_flat, self.weighted_flat = self.error.view(-1), self.weighted.view(-1)
        self.one, self.minus_two = inputs.new_ones(()), inputs.new_full((), -2)
        self.two = inputs.new_full((), 2)
        self.inputs = self.target = None

    def fresh_grads(self) -> list[Tensor]:
        """Copies of the gradients the last backward pass left, contiguous, in the parameters'
        order (weight, bias, weight, bias, ...)."""
        return [part.clone(memory_format=torch.contiguous_format) for part in self.grad_parts]


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
        if ctx.generation != ws.generation:  # a later pass reused the buffers: redo our forward
            if [p._version for p in ctx.params] != ctx.versions:
                raise RuntimeError(
                    "MLPHeatLoss: a parameter was modified in place after this loss was computed"
                    " and a later one reused its buffers; compute the loss again"
                )
            ws = Workspace().setup(ctx.inputs, ctx.target, ctx.params)
            _loss(ws, ctx.inputs, ctx.target, ctx.weight, a, ctx.params)
        _gradients(ws, ctx.inputs, a, 2 * grad_loss)
        return (None, None, None, None, None, *ws.fresh_grads())


def loss_and_grad(
    inputs: Tensor, target: Tensor, weight: Tensor, diffusivity: float, workspace: Workspace,
    params: list[Tensor],
) -> tuple[Tensor, list[Tensor]]:
    """:class:`MLPHeatLoss`'s loss and its gradients by ``params`` (fresh, contiguous tensors in
    their order), without autograd: the same passes, so the same numbers as
    ``MLPHeatLoss.apply(...)`` and ``backward()`` (bit for bit, tested), less the graph, the
    engine and the gradients' accumulation (~0.15-0.2 ms an evaluation, docs/benchmarks.md)."""
    grad_enabled = torch.is_grad_enabled()
    torch.set_grad_enabled(False)  # called, not entered: no context manager's frames
    try:
        ws = workspace.setup(inputs, target, params)
        loss = _loss(ws, inputs, target, weight, diffusivity, params)
        _gradients(ws, inputs, diffusivity, ws.two)
        return loss, ws.fresh_grads()
    finally:
        torch.set_grad_enabled(grad_enabled)


# The passes call each op as torch.<op>(..., out=...) (none in the method style, x.op_(...)):
# a call's first run in an evaluation finds its code out of cache (the data stream evicts it),
# so the fewer distinct entry points, the less that costs (the same kernels either way).


def _loss(ws: Workspace, inputs: Tensor, target: Tensor, weight: Tensor, a: float,
          params) -> Tensor:
    """The forward pass into ``ws`` (a new generation of its buffers); returns the loss."""
    ws.generation += 1
    torch._foreach_copy_(ws.parts, params)
    top = _forward(ws, a)
    error = torch.mm(ws.augmented[-1], top.top_columns, out=ws.error)
    torch.add(error, ws.minus_target, out=error)  # u - target, exactly
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
        torch.addcmul(ws.one, h2, h2, value=-0.25, out=layer.s)  # in place of 2 z
        if i == 0:
            z_d, zx2 = layer.z_d, torch.mul(layer.z_x, layer.z_x, out=layer.zx2)
        else:
            z_d, zx2 = layer.p, torch.mul(layer.z_x, layer.z_x, out=layer.zx2)
        torch.addcmul(z_d, layer.h2_n, zx2, value=a, out=layer.p)  # P
        if i == top:  # the top layer's h'_x feeds nothing
            torch.mul(layer.p, layer.s_n, out=layer.out_d)
        elif i == 0:
            torch.mul(layer.p, layer.s_n, out=layer.out_d)
            torch.mul(layer.s_n, layer.z_x, out=layer.out_x)
        else:  # D h' and h'_x in one product
            torch.mul(layer.z_t3, layer.s_n3, out=layer.out_t3)
    return layer


def _gradients(ws: Workspace, inputs: Tensor, a: float, scale: Tensor) -> None:
    """The backward pass of the forward pass in ``ws`` for d loss = ``scale`` / 2, over the
    forward pass's buffers (a new generation): (W | b)'s gradient of every layer into
    ``ws.grads``."""
    ws.generation += 1
    layers, weights_t, grads = ws.layers, ws.weights_t, ws.grads
    seed = torch.mul(ws.weighted, scale, out=ws.seed)  # by (2 u at boundary and initial, D u)
    torch.mm(seed, layers[-1].top_columns_t, out=grads[-1])
    for i in reversed(range(len(layers))):
        layer = layers[i]
        if i == len(layers) - 1:
            torch.mul(weights_t[-1], seed, out=layer.bar_top)  # over the columns just read
            _top_layer_backward(layer, a)
        else:
            _layer_backward(layer, a)
        if i > 0:  # the gradient by the output stack below
            torch.mm(weights_t[i], layer.bar, out=layers[i - 1].bar)
        below = inputs if i == 0 else layers[i - 1].out
        # (W | b)'s gradient, after the product above, which leaves bar in cache (~10 %
        # faster); MKL is faster this way round
        torch.mm(below, layer.bar_t, out=grads[i])


def _layer_backward(layer: _Layer, a: float) -> None:
    """``layer.bar``, the gradient by the layer's output stack (2 h', D h', h'_x), becomes in place
    the gradient by its pre-activations (2 z, z_d, z_x)."""
    bar_d, bar_x, bar_n = layer.bar_d, layer.bar_x, layer.bar_n
    bar_s = torch.mul(layer.p, bar_d, out=layer.p)  # in place of P, read for the last time
    torch.addcmul(bar_s, layer.z_x, bar_x, out=bar_s)
    torch.mul(layer.bar_t3, layer.s_n3, out=layer.bar_t3)  # bar_d is now bar_p, by z_d
    zx_bar_p = torch.mul(layer.z_x, bar_d, out=layer.zx_bar_p)
    torch.addcmul(bar_x, layer.h2_n, zx_bar_p, value=2 * a, out=bar_x)
    torch.addcmul(bar_n, layer.z_x, zx_bar_p, value=a, out=bar_n)
    torch.addcmul(bar_n, layer.h2_n, bar_s, value=-0.5, out=bar_n)
    torch.mul(layer.bar_v, layer.s, out=layer.bar_v)


def _top_layer_backward(layer: _Layer, a: float) -> None:
    """:func:`_layer_backward` for the last hidden layer, whose output feeds u at the boundary and
    initial points and D u at the interior ones only: ``layer.bar`` (its output stack) holds
    those columns; the ones by h' at the interior points (in place of h2_n, read last) and by
    h'_x are written here."""
    bar_d = layer.bar_d
    bar_s = torch.mul(bar_d, layer.p, out=layer.p)  # in place of P, read for the last time
    torch.mul(bar_d, layer.s_n, out=bar_d)
    zx_bar_p = torch.mul(layer.z_x, bar_d, out=layer.zx_bar_p)  # in bar_x's block
    bar_n = torch.addcmul(layer.zero, layer.z_x, zx_bar_p, value=a, out=layer.t)
    torch.addcmul(layer.zero, layer.h2_n, zx_bar_p, value=2 * a, out=layer.bar_x)
    torch.addcmul(bar_n, layer.h2_n, bar_s, value=-0.5, out=layer.bar_n)
    torch.mul(layer.bar_v, layer.s, out=layer.bar_v)
