"""Azure's proposals: ``θ ← θ + size · ξ``, ``ξ ~ N(0, I)``, from the optimizer's own random
stream, with its state (seed, generator states, kernel draw counts) saved in ``state_dict``.

On CPU (and on CUDA without Triton) the normals are written into a flat buffer reused between
proposals (the same numbers as ``torch.randn`` from a generator per device). On CUDA with Triton,
one kernel per device and dtype makes them in registers from a counter-based Philox stream keyed
by the seed and a draw count: nothing is stored, runs repeat exactly, the numbers differ from the
buffer path's.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from azure_sciml._adam import by_device_and_dtype


class Noise:
    """The random source of Azure's proposals (see module docstring)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.generators: dict[str, torch.Generator] = {}
        self.kernel_draws: dict[str, int] = {}
        self._buffers: dict[tuple, Tensor] = {}  # reused memory, never saved
        self._tables: dict[tuple, dict] = {}  # the kernel's pointer tables, never saved
        self._kernel_failed: set[torch.device] = set()

    def add(self, params: list[Tensor], size: float, momentum: float = 0.0,
            directions: list[Tensor] | None = None) -> None:
        """``p += size · ξ``; with ``momentum`` μ: ``d ← μ d + sqrt(1-μ²) ξ``, ``p += size · d``."""
        if momentum:
            torch._foreach_mul_(directions, momentum)
            torch._foreach_add_(directions, self.normal(params), alpha=math.sqrt(1 - momentum**2))
            torch._foreach_add_(params, directions, alpha=size)
            return
        for idx in by_device_and_dtype(params).values():
            bucket = [params[i] for i in idx]
            if not self._add_in_kernel(bucket, size):
                torch._foreach_add_(bucket, self.normal(bucket), alpha=size)

    def normal(self, params: list[Tensor]) -> list[Tensor]:
        """Standard normals shaped like ``params``: one draw per device and dtype into a reused
        buffer (no allocation after the first proposal)."""
        out: list[Tensor | None] = [None] * len(params)
        for (device, dtype), idx in by_device_and_dtype(params).items():
            sizes = [params[i].numel() for i in idx]
            flat = self._buffers.get((device, dtype))
            if flat is None or flat.numel() < sum(sizes):
                flat = self._buffers[device, dtype] = torch.empty(
                    sum(sizes), device=device, dtype=dtype
                )
            flat = flat[: sum(sizes)].normal_(generator=self._generator(device))
            for i, piece in zip(idx, torch.split(flat, sizes), strict=True):
                out[i] = piece.view_as(params[i])
        return out  # type: ignore[return-value]

    def free(self) -> None:
        """Drop the buffers (the phase is over)."""
        self._buffers.clear()
        self._tables.clear()

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "kernel_draws": dict(self.kernel_draws),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = state["seed"]
        self.generators = {
            k: torch.Generator(device=k).set_state(st) for k, st in state["generators"].items()
        }
        self.kernel_draws = dict(state["kernel_draws"])

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self.generators:
            offset = len(self.generators)
            self.generators[key] = torch.Generator(device=device).manual_seed(self.seed + offset)
        return self.generators[key]

    def _add_in_kernel(self, bucket: list[Tensor], size: float) -> bool:
        """The Triton path for one device and dtype; False where it cannot run (no CUDA, no
        Triton, or a Triton that fails to build here: warned once, then the buffer path)."""
        device, dtype = bucket[0].device, bucket[0].dtype
        kernel = None if device in self._kernel_failed else _kernel_for(bucket)
        if kernel is None:
            return False
        draw = self.kernel_draws.get(str(device), -1) + 1
        key = self.seed + 1_000_003 * _ordinal(self.kernel_draws, str(device))  # one per GPU
        try:
            tables = self._tables.setdefault((device, dtype), {})
            kernel.add_normal_(bucket, size, key, draw, tables)
        except Exception as err:  # Triton installed but unable to build or launch the kernel
            self._kernel_failed.add(device)
            warnings.warn(
                f"Azure: Triton proposal kernel unavailable on {device} ({type(err).__name__}: "
                f"{err}); drawing the noise into a buffer instead.",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
        self.kernel_draws[str(device)] = draw
        return True


def _ordinal(seen: dict[str, Any], device: str) -> int:
    """A GPU's place in the order of first use, not its index: DDP ranks, each on its own GPU,
    draw the same stream."""
    return list(seen).index(device) if device in seen else len(seen)


def _kernel_for(params: list[Tensor]):
    """The Triton kernel module when it can add the noise to ``params`` (CUDA tensors of one
    dtype, Triton importable), else ``None``."""
    if not params[0].is_cuda:
        return None
    try:
        from azure_sciml import _noise_kernel
    except Exception:  # no Triton (a CPU-only install, a CUDA build without it) or a broken one
        return None
    ok = _noise_kernel.supported(params[0].device) and all(map(_noise_kernel.available, params))
    return _noise_kernel if ok else None
