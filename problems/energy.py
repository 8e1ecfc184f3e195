"""Lennard-Jones cluster: find the minimum-energy arrangement of ``n_atoms`` atoms.

Energy (reduced units, epsilon = sigma = 1): ``E = sum_{i<j} 4 (r_ij^-12 - r_ij^-6)``. The
parameters are the atom coordinates (an ``(n_atoms, 3)`` :class:`torch.nn.Parameter`). The loss is
the pure LJ energy: with compact starts and gradient steps no atom evaporates, so there is no
confining term.

Initial configurations: random sequential addition in a ball sized for ``density`` atoms per
sigma^3 (default 1.0, close to the solid's 1.09), rejecting draws closer than ``min_distance``
(default 0.8) to an atom already placed; all draws come from torch's global RNG.

Known putative global minima ``E*`` (:data:`GLOBAL_MINIMA`): N = 2, 3, 4 are exact (dimer at
``r = 2^(1/6)``, equilateral triangle, regular tetrahedron); N = 7, 13, 19, 26, 38, 55 are from the
Cambridge Cluster Database (Wales & Doye, J. Phys. Chem. A 101, 5111 (1997);
https://www-wales.ch.cam.ac.uk/CCD.html). Other sizes are rejected, so the headline metric is
always defined.

Defaults: ``n_atoms=13``, ``steps=3000``, ``lr=0.01``. Metrics (energy in float64): ``energy``,
``gap = energy - E*`` (headline), ``success`` (1.0 if ``gap < 1e-4``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_real,
)

GLOBAL_MINIMA: dict[int, float] = {
    2: -1.0,
    3: -3.0,
    4: -6.0,
    7: -16.505384,
    13: -44.326801,
    19: -72.659782,
    26: -108.315616,
    38: -173.928427,
    55: -279.248470,
}
SUCCESS_GAP = 1e-4
BOND_LENGTH = 2 ** (1 / 6)  # pair-potential minimum
MAX_DRAWS_PER_ATOM = 10_000


def lj_energy(positions: Tensor) -> Tensor:
    """Total Lennard-Jones energy of an ``(N, 3)`` configuration."""
    i, j = torch.triu_indices(len(positions), len(positions), 1, device=positions.device)
    inv_r6 = (positions[i] - positions[j]).square().sum(-1).reciprocal().pow(3)
    return 4 * (inv_r6.square() - inv_r6).sum()


def pair_distances(positions: Tensor) -> Tensor:
    """All ``N (N - 1) / 2`` interatomic distances."""
    i, j = torch.triu_indices(len(positions), len(positions), 1, device=positions.device)
    return (positions[i] - positions[j]).norm(dim=-1)


def random_cluster(n_atoms: int, density: float, min_distance: float) -> Tensor:
    """``(n_atoms, 3)`` float64 points in a ball of ``n_atoms / density`` volume, no pair closer
    than ``min_distance`` (random sequential addition, torch's global RNG)."""
    radius = (3 * n_atoms / (4 * math.pi * density)) ** (1 / 3)
    atoms: list[Tensor] = []
    while len(atoms) < n_atoms:
        atoms.append(_draw_clear_of(atoms, radius, min_distance))
    return torch.stack(atoms)


def _draw_clear_of(atoms: list[Tensor], radius: float, min_distance: float) -> Tensor:
    placed = torch.stack(atoms) if atoms else torch.empty(0, 3, dtype=torch.float64)
    for _ in range(MAX_DRAWS_PER_ATOM):
        point = _uniform_in_ball(radius)
        if (placed - point).norm(dim=-1).ge(min_distance).all():
            return point
    raise RuntimeError(
        f"could not place atom {len(atoms) + 1} at least {min_distance} from the others in a ball "
        f"of radius {radius:.3f}; lower density or min_distance"
    )


def _uniform_in_ball(radius: float) -> Tensor:
    direction = torch.randn(3, dtype=torch.float64)
    return direction / direction.norm() * radius * torch.rand((), dtype=torch.float64) ** (1 / 3)


class Cluster(nn.Module):
    """Atom coordinates as one ``(N, 3)`` parameter; calling it returns the LJ energy."""

    def __init__(self, positions: Tensor):
        super().__init__()
        self.positions = nn.Parameter(positions)

    def forward(self) -> Tensor:
        return lj_energy(self.positions)


class LennardJones:
    """Minimise the Lennard-Jones energy of a cluster of ``n_atoms`` atoms."""

    metric = "gap"

    def __init__(
        self,
        n_atoms: int = 13,
        density: float = 1.0,
        min_distance: float = 0.8,
        steps: int = 3000,
        lr: float = 0.01,
    ):
        check_choice("n_atoms", n_atoms, sorted(GLOBAL_MINIMA))
        check_positive_float("density", density)
        check_real("min_distance", min_distance, 0.0, BOND_LENGTH)
        check_positive_int("steps", steps)
        check_positive_float("lr", lr)
        self.n_atoms, self.density = int(n_atoms), float(density)
        self.min_distance = float(min_distance)
        self.steps, self.lr = int(steps), float(lr)
        self.global_minimum = GLOBAL_MINIMA[self.n_atoms]

    def build(self, device: torch.device, dtype: torch.dtype) -> Cluster:
        positions = random_cluster(self.n_atoms, self.density, self.min_distance)
        return Cluster(positions.to(device=device, dtype=dtype))

    def loss(self, model: Cluster) -> Tensor:
        return model()

    def evaluate(self, model: Cluster) -> dict[str, float]:
        energy = float(lj_energy(model.positions.detach().double()))
        gap = energy - self.global_minimum
        return {"energy": energy, "gap": gap, "success": float(gap < SUCCESS_GAP)}

    def plot(self, model: Cluster, path) -> None:
        from matplotlib.figure import Figure

        xyz = model.positions.detach().double().cpu()
        xyz = (xyz - xyz.mean(0)).numpy()
        fig = Figure(figsize=(5, 5))  # no pyplot: no global backend or figure registry
        ax = fig.add_subplot(projection="3d")
        for a, b in _bonds(xyz):
            ax.plot(*zip(xyz[a], xyz[b], strict=True), color="0.5", lw=1)
        ax.scatter(*xyz.T, s=200, c="C0", edgecolors="k", depthshade=True)
        energy = float(lj_energy(torch.from_numpy(xyz)))
        ax.set_title(f"LJ{self.n_atoms}: E = {energy:.6f} (E* = {self.global_minimum})")
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(path, dpi=120)


def _bonds(xyz, cutoff: float = 1.2 * BOND_LENGTH) -> list[tuple[int, int]]:
    n = len(xyz)
    near = ((xyz[:, None] - xyz[None]) ** 2).sum(-1) < cutoff**2
    return [(a, b) for a in range(n) for b in range(a + 1, n) if near[a, b]]
