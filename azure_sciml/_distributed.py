"""Azure under ``torch.distributed``: every rank takes the same decisions.

Data-parallel training (DDP, Lightning's ``ddp``, ``torchrun``) averages gradients, never losses:
each rank sees the loss of its own data shard. Azure's Metropolis test judges a loss and a
proposal writes parameters directly, so ranks judging their own losses, or drawing their own
proposals, drift apart. Here the ranks agree: on one seed (rank 0's, broadcast once when the
optimizer is built) and, every step that hands Azure a loss, on the mean loss over the ranks (one
``all_reduce`` of two numbers on the loss's device, read back by the ``float`` the judgement needs
anyway). Identical decisions and identical random streams keep replicated parameters bit-identical.

Sharded parameters (FSDP's ``DTensor`` and ``FlatParameter``, tensor parallelism) are refused: a
proposal must draw each coordinate once over the whole tensor, and each rank holds only its shard.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import torch
from torch import Tensor
from torch import distributed as dist

_SHARDED = (  # (module, class) of parameters each rank holds only a shard of
    ("torch.distributed.tensor", "DTensor"),
    ("torch.distributed.fsdp._flat_param", "FlatParameter"),
)


def resolve_group(process_group: Any) -> Any:
    """The group Azure's ranks agree within, or ``None`` for one independent chain per process:
    ``None`` picks the default group when one is initialised (with more than one rank), ``False``
    opts out, a ``ProcessGroup`` is used as given."""
    if process_group is False:
        return None
    if process_group is None:
        if not (dist.is_available() and dist.is_initialized()):
            return None
        process_group = dist.group.WORLD
    elif not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
        raise ValueError(
            f"Invalid process_group value: {process_group!r} (None: the default group when one "
            "is initialised; False: independent chains per process; or a ProcessGroup)"
        )
    return process_group if dist.get_world_size(process_group) > 1 else None


def default_group_started_later(group: Any, independent: bool) -> bool:
    """Whether the ranks may drift: Azure was built before ``init_process_group``."""
    return (
        group is None
        and not independent
        and dist.is_available()
        and dist.is_initialized()
        and dist.get_world_size() > 1
    )


def agree_on_seed(seed: int, group: Any, device: torch.device) -> int:
    """Rank 0's seed on every rank (one broadcast, on ``device``: CUDA for NCCL)."""
    t = torch.tensor([seed], dtype=torch.int64, device=device)
    dist.broadcast(t, src=dist.get_global_rank(group, 0), group=group)
    return int(t.item())


def mean_loss(loss: Tensor | float, raised: bool, group: Any, device: torch.device):
    """The mean loss over the ranks and whether any rank's closure raised (a NaN mean then):
    one ``all_reduce`` on the loss's device, read back with a single host transfer."""
    if isinstance(loss, Tensor):
        value = loss.detach().reshape(()).to(_wide(loss.device))
        device = loss.device
    else:
        value = torch.tensor(float(loss), dtype=_wide(device), device=device)
    both = torch.stack([value, torch.tensor(float(raised), dtype=value.dtype, device=device)])
    dist.all_reduce(both, group=group)
    total, n_raised = both.tolist()
    return total / dist.get_world_size(group), n_raised > 0


def sharded_kind(p: Tensor) -> str | None:
    """The class name when ``p`` is a shard of a parameter spread over ranks, else ``None``
    (classes looked up only where torch has already imported them)."""
    for module, name in _SHARDED:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(p, cls):
            return name
    return None


def _wide(device: torch.device) -> torch.dtype:
    """The mean's dtype: float64 (no float64 on Apple's MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def refuse_sharded(params: list[Tensor]) -> None:
    for p in params:
        kind = sharded_kind(p)
        if kind is not None:
            raise ValueError(
                f"Azure cannot optimize a sharded parameter ({kind}, e.g. from FSDP or tensor "
                "parallelism): a proposal draws every coordinate of a tensor once, and each rank "
                "holds only its shard. Use DDP (replicated parameters) instead."
            )


def warn_late_group() -> None:
    """Azure built before the default process group, used under it (stacklevel: the line that
    called ``Azure.step``)."""
    warnings.warn(
        "Azure was built before torch.distributed's process group was initialised, so its "
        "ranks judge their own losses and drift apart: build it after init_process_group, "
        "or pass process_group=False to silence this for independent chains per process.",
        RuntimeWarning,
        stacklevel=4,
    )
