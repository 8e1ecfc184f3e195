"""The held-out benchmark's problem type and the models its problems share (``heldout_problems.py``
assembles the development and validation sets from them)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

MODES = ("closure", "plain", "plain_loss")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem (see the module docstring)."""

    name: str
    description: str
    steps: int
    lr: float
    build: Callable[[], nn.Module]  # called under torch.manual_seed(run seed)
    loss: Callable[[nn.Module], Tensor]
    metric: Callable[[nn.Module], dict[str, float]]  # {"metric": headline, ...extras}
    metric_name: str
    success_gap: float | None = None  # success: metric < success_gap (None: not defined)
    tie_tol: float = 0.0  # |difference| <= tie_tol counts as a tie (and as 0 in the test)
    modes: tuple[str, ...] = MODES
    notes: str = ""
    extras: dict = field(default_factory=dict)

    def spec(self) -> dict:
        """JSON-able description (for the output file)."""
        return {
            "description": self.description, "steps": self.steps, "lr": self.lr,
            "metric": self.metric_name, "success_gap": self.success_gap,
            "tie_tol": self.tie_tol, "modes": list(self.modes), "notes": self.notes,
        }


def build_seeded(problem: Problem, seed: int) -> nn.Module:
    """The problem's initial parameters for ``seed`` (torch's global RNG seeded, then built)."""
    torch.manual_seed(seed)
    return problem.build()


def fingerprint(model: nn.Module) -> str:
    """Hash of the parameters' values: equal for equal initial points."""
    h = hashlib.sha1()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- models


class Vector(nn.Module):
    """The optimization variable as one parameter ``x`` (points, spins, torsions, chains)."""

    def __init__(self, x: Tensor):
        super().__init__()
        self.x = nn.Parameter(x)


def uniform(shape, half_width: float, dtype=torch.float64) -> Tensor:
    return (torch.rand(shape, dtype=dtype) * 2 - 1) * half_width


def mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)
