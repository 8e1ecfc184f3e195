"""Azure's proposal on CUDA as one Triton kernel: ``θ ← θ + size · ξ``, ``ξ ~ N(0, I)`` made in
registers from a counter-based generator (Philox), so no noise tensor is written or read.

Element ``e`` of draw ``d`` gets a normal from Philox(key=seed, counter=(c, d)), where ``c`` numbers
``e``'s group of four within the bucket (four normals per Philox call): the stream is a pure
function of the optimizer's seed and its draw count, both in ``state_dict``. One launch covers every
tensor of a (device, dtype) bucket through a table of data pointers and per-block tensor indices,
built once per parameter list and cached.

Imported only when a proposal meets a CUDA tensor and Triton is installed (CUDA builds of torch ship
it); :func:`available` says whether it can run for a tensor.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 4096  # elements per program: four sub-blocks of BLOCK // 4, one Philox call per column
_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}


@triton.jit(do_not_specialize=["seed", "draw"])
def _add_normal_kernel(
    ptrs, numels, block_tensor, block_start, seed, draw, size,
    DTYPE: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    t = tl.load(block_tensor + pid)
    start = tl.load(block_start + pid)
    n = tl.load(numels + t)
    base = tl.load(ptrs + t).to(tl.pointer_type(DTYPE))
    QUARTER: tl.constexpr = BLOCK // 4
    col = tl.arange(0, QUARTER)
    counter = (pid.to(tl.int64) * QUARTER + col) | (draw.to(tl.int64) << 32)
    z0, z1, z2, z3 = tl.randn4x(seed, counter)
    _store(base, start, col, n, QUARTER, size, z0, 0)
    _store(base, start, col, n, QUARTER, size, z1, 1)
    _store(base, start, col, n, QUARTER, size, z2, 2)
    _store(base, start, col, n, QUARTER, size, z3, 3)


@triton.jit
def _store(base, start, col, n, QUARTER: tl.constexpr, size, z, j: tl.constexpr):
    idx = start + j * QUARTER + col
    mask = idx < n
    x = tl.load(base + idx, mask=mask).to(tl.float32)
    tl.store(base + idx, (x + size * z).to(base.dtype.element_ty), mask=mask)


def available(p: torch.Tensor) -> bool:
    """Whether the kernel handles ``p``: a contiguous CUDA float32, float16 or bfloat16 tensor."""
    return p.is_cuda and p.dtype in _DTYPES and p.is_contiguous()


def supported(device: torch.device) -> bool:
    """Whether Triton supports the GPU: compute capability 7.0 or newer."""
    return torch.cuda.get_device_capability(device) >= (7, 0)


def add_normal_(params: list[torch.Tensor], size: float, seed: int, draw: int, cache: dict) -> None:
    """``p += size * N(0, 1)`` for every ``p`` in ``params`` (one device and dtype, all
    :func:`available`), with the normals of draw number ``draw`` of the stream keyed by ``seed``."""
    table = _table(params, cache)
    with torch.cuda.device(params[0].device):  # Triton launches on the current device and stream
        _add_normal_kernel[(table["blocks"],)](
            table["ptrs"], table["numels"], table["block_tensor"], table["block_start"],
            seed & (2**63 - 1), draw, float(size), DTYPE=_DTYPES[params[0].dtype], BLOCK=BLOCK,
        )


def _table(params: list[torch.Tensor], cache: dict) -> dict:
    """Device arrays describing ``params`` for the kernel, cached by (pointer, numel) list; copied
    from pinned memory without blocking the host."""
    key = tuple((p.data_ptr(), p.numel()) for p in params)
    table = cache.get(key)
    if table is not None:
        return table
    counts = [triton.cdiv(p.numel(), BLOCK) for p in params]
    host = {
        "ptrs": [p.data_ptr() for p in params],
        "numels": [p.numel() for p in params],
        "block_tensor": [t for t, c in enumerate(counts) for _ in range(c)],
        "block_start": [b * BLOCK for c in counts for b in range(c)],
    }
    device = params[0].device
    table = {"blocks": sum(counts), "_host": {}}
    for name, values in host.items():
        pinned = torch.tensor(values, dtype=torch.int64).pin_memory()
        table["_host"][name] = pinned  # kept alive until the copy has run
        table[name] = pinned.to(device, non_blocking=True)
    if len(cache) >= 16:  # parameter lists seen before (groups, rebuilt models): bounded
        cache.pop(next(iter(cache)))
    cache[key] = table
    return table
