"""The Adam update of ``torch.optim.Adam``, bit for bit: its multi-tensor (foreach) arithmetic
with a cache-friendly CPU path, and its fused kernel. Azure's ``step`` calls :func:`adam_group`
once per parameter group."""

from __future__ import annotations

import torch
from torch import Tensor


def adam_update(
    params, grads, exp_avgs, exp_avg_sqs, steps, group, scratch=None, min_numel=1 << 15
) -> None:
    """``torch.optim.Adam``'s update, bit for bit: with ``group["fused"]`` its fused kernel
    (``Adam(fused=True)``, CPU and CUDA tensors), otherwise its multi-tensor arithmetic
    (``Adam(foreach=True)``: same operations, bias correction and eps placement).

    On CPU ``torch._foreach_*`` runs its operation tensor by tensor, so running all operations on
    one tensor before the next gives the same numbers. Contiguous real CPU tensors of at least
    ``min_numel`` elements are updated that way, while they are in cache, with the intermediate
    tensor written into a reused buffer from ``scratch`` (dtype -> flat tensor) instead of a new
    allocation each step; the others (small, strided, non-CPU) go through ``torch._foreach_*``.
    """
    beta1, beta2 = group["betas"]
    lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
    if group.get("fused"):
        fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, group)
        return
    corr = {t: (-(lr / (1 - beta1**t)), (1 - beta2**t) ** 0.5) for t in set(steps)}
    rest = []
    for i, p in enumerate(params):
        g, m, v = grads[i], exp_avgs[i], exp_avg_sqs[i]
        n = p.numel()
        if (
            scratch is None
            or n < min_numel
            or not p.is_cpu
            or not p.is_floating_point()
            or not (
                p.is_contiguous() and g.is_contiguous() and m.is_contiguous() and v.is_contiguous()
            )
        ):
            rest.append(i)
            continue
        buf = scratch.get(p.dtype)
        if buf is None or buf.numel() < n:
            buf = scratch[p.dtype] = torch.empty(n, dtype=p.dtype)
        buf = buf[:n].view_as(p)
        step_size, bias_correction2_sqrt = corr[steps[i]]
        if weight_decay != 0:
            g = torch.add(g, p, alpha=weight_decay, out=buf)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2)
        v.addcmul_(g, g, value=1 - beta2)
        torch.sqrt(v, out=buf)  # g is no longer needed
        buf.div_(bias_correction2_sqrt)
        buf.add_(eps)
        p.addcdiv_(m, buf, value=step_size)
    if not rest:
        return
    if len(rest) < len(params):
        params, grads = [params[i] for i in rest], [grads[i] for i in rest]
        exp_avgs, exp_avg_sqs = [exp_avgs[i] for i in rest], [exp_avg_sqs[i] for i in rest]
        steps = [steps[i] for i in rest]
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    step_size = [corr[t][0] for t in steps]
    bias_correction2_sqrt = [corr[t][1] for t in steps]
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)


def by_device_and_dtype(tensors: list[Tensor]) -> dict[tuple, list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype), in order: one kernel call per group."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return groups


def fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, group) -> None:
    """``Adam(fused=True)``'s kernel, one call per device and dtype (CPU and CUDA tensors). The
    kernel reads each tensor's step from a float32 tensor on its device, as Adam keeps it; on CUDA
    that tensor is filled on the device (``torch.full``), so the host never waits for it."""
    beta1, beta2 = group["betas"]
    buckets = by_device_and_dtype(params)
    for device, _ in buckets:
        if device.type not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Azure(fused=True) supports CPU and CUDA tensors, not {device.type}; "
                "use fused=None"
            )
    for (device, _), idx in buckets.items():
        step_t = {
            t: torch.full((), float(t), dtype=torch.float32, device=device)
            for t in {steps[i] for i in idx}
        }
        torch._fused_adam_(
            [params[i] for i in idx],
            [grads[i] for i in idx],
            [exp_avgs[i] for i in idx],
            [exp_avg_sqs[i] for i in idx],
            [],
            [step_t[steps[i]] for i in idx],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )


def adam_group(group: dict, state: dict, lr_factor: float, scratch: dict) -> None:
    """One parameter group's Adam step at ``lr_factor`` times its ``lr`` (Adam's state in
    ``state``, created on first use; ``scratch``: :func:`adam_update`'s buffers)."""
    lists = adam_lists(group, state)
    if lists is None:
        return
    hyper = {**group, "lr": float(group["lr"]) * lr_factor}
    adam_update(*lists, hyper, scratch)


def adam_lists(group: dict, state: dict) -> tuple[list, list, list, list, list[float]] | None:
    """The group's parameters that have a gradient, with their gradients, moments and steps (each
    step advanced by one), as :func:`adam_update` takes them; complex tensors as real views (Adam's
    treatment: |g|² per component); ``None`` if no parameter has a gradient. Adam's state is
    created on first use."""
    params, grads, exp_avgs, exp_avg_sqs, step_ts = [], [], [], [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError("Azure does not support sparse gradients")
        p_state = adam_state(state, p)
        tensors = (p, p.grad, p_state["exp_avg"], p_state["exp_avg_sq"])
        if p.is_complex():
            tensors = tuple(map(torch.view_as_real, tensors))
        for out, t in zip((params, grads, exp_avgs, exp_avg_sqs), tensors, strict=True):
            out.append(t)
        step_ts.append(p_state["step"])
    if not params:
        return None
    torch._foreach_add_(step_ts, 1.0)
    steps = [t.item() for t in step_ts]  # CPU tensors, as Adam keeps them: no device sync
    return params, grads, exp_avgs, exp_avg_sqs, steps


def adam_state(state: dict, p: Tensor) -> dict:
    p_state = state[p]
    if "step" not in p_state:
        p_state["step"] = torch.tensor(0.0, dtype=torch.float32)
        p_state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        p_state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return p_state


def check_fused_devices(param_groups: list[dict]) -> None:
    """The fused kernel's devices, checked before any state is created (parameters with a
    gradient only, as Adam)."""
    for group in param_groups:
        if not group.get("fused"):
            continue
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.device.type not in ("cpu", "cuda") or not p.is_floating_point():
                raise RuntimeError(
                    "`fused=True` requires all the params to be floating point Tensors of "
                    f"supported devices (CPU, CUDA), got {p.dtype} on {p.device.type}; "
                    "use fused=None"
                )


def steps_as_tensors(param_groups: list[dict], state: dict, keys: tuple[str, ...]) -> None:
    """A loaded state's plain-number steps (older torch, hand-written) as float32 tensors, as Adam
    keeps them."""
    for group in param_groups:
        for p in group["params"]:
            p_state = state.get(p, {})
            for key in keys:
                if key in p_state and not torch.is_tensor(p_state[key]):
                    p_state[key] = torch.tensor(float(p_state[key]), dtype=torch.float32)
