import functools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from azure_sciml.problems.energy import (
    Cluster,
    LennardJones,
    lj_energy,
    pair_distances,
)
from azure_sciml.train import fit

R0 = 2 ** (1 / 6)  # dimer bond length
CPU = torch.device("cpu")


def score(positions) -> dict[str, float]:
    positions = torch.as_tensor(np.asarray(positions), dtype=torch.float64)
    return LennardJones(n_atoms=len(positions)).evaluate(Cluster(positions))


def relax(positions: np.ndarray) -> np.ndarray:
    """Local L-BFGS minimisation of the LJ energy, float64, analytic gradient from torch."""

    def energy_and_grad(flat):
        x = torch.tensor(flat.reshape(-1, 3), requires_grad=True)
        energy = lj_energy(x)
        energy.backward()
        return float(energy.detach()), x.grad.numpy().ravel()

    result = minimize(
        energy_and_grad,
        positions.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15},
    )
    return result.x.reshape(-1, 3)


def pentagonal_bipyramid(bond=R0) -> np.ndarray:
    ring_radius = bond / (2 * math.sin(math.pi / 5))
    angles = 2 * math.pi * np.arange(5) / 5
    ring = np.stack([ring_radius * np.cos(angles), ring_radius * np.sin(angles), 0 * angles], 1)
    apex = math.sqrt(bond**2 - ring_radius**2)
    return np.concatenate([ring, [[0, 0, apex], [0, 0, -apex]]])


def icosahedron(bond=R0) -> np.ndarray:
    """Centred 13-atom icosahedron, centre-to-vertex distance ``bond``."""
    phi = (1 + 5**0.5) / 2
    vertices = [(0, s1, s2 * phi) for s1 in (-1, 1) for s2 in (-1, 1)]
    vertices = [np.roll(v, shift) for v in vertices for shift in range(3)]
    vertices = np.array(vertices, dtype=float) * bond / math.hypot(1, phi)
    return np.concatenate([np.zeros((1, 3)), vertices])


def numpy_energy(x: np.ndarray) -> float:
    total = 0.0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            r = np.linalg.norm(x[i] - x[j])
            total += 4 * (r**-12 - r**-6)
    return total


EXACT = {
    "dimer": [[0, 0, 0], [R0, 0, 0]],
    "triangle": [[0, 0, 0], [R0, 0, 0], [R0 / 2, R0 * 3**0.5 / 2, 0]],
    "tetrahedron": (np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * R0 / 8**0.5),
}


@pytest.mark.parametrize("name", EXACT)
def test_exact_small_minima_have_zero_gap(name):
    metrics = score(EXACT[name])
    assert metrics["gap"] == pytest.approx(0, abs=1e-12)
    assert metrics["success"] == 1.0


@pytest.mark.parametrize("guess, n", [(pentagonal_bipyramid, 7), (icosahedron, 13)])
def test_relaxed_ideal_structures_reach_tabulated_minima(guess, n):
    rng = np.random.default_rng(0)
    start = guess() + 0.02 * rng.standard_normal((n, 3))
    metrics = score(relax(start))
    assert abs(metrics["gap"]) < 1e-5  # also checks the tabulated E* to its 6 decimals
    assert metrics["success"] == 1.0


def test_perturbed_minimum_does_not_succeed():
    minimum = relax(icosahedron())
    perturbed = minimum + 0.03 * np.random.default_rng(1).standard_normal(minimum.shape)
    metrics = score(perturbed)
    assert metrics["gap"] > 1e-3
    assert metrics["success"] == 0.0


def test_energy_matches_direct_numpy_sum():
    x = icosahedron() + 0.1 * np.random.default_rng(2).standard_normal((13, 3))
    assert score(x)["energy"] == pytest.approx(numpy_energy(x), rel=1e-12)
    assert float(lj_energy(torch.tensor(x))) == pytest.approx(numpy_energy(x), rel=1e-12)


@pytest.mark.parametrize("n_atoms", [13, 55])
def test_initial_configurations_are_compact_without_overlaps(n_atoms):
    problem = LennardJones(n_atoms=n_atoms)
    radius = (3 * n_atoms / (4 * math.pi * problem.density)) ** (1 / 3)
    for seed in range(3):
        torch.manual_seed(seed)
        positions = problem.build(CPU, torch.float64).positions.detach()
        assert positions.shape == (n_atoms, 3)
        assert pair_distances(positions).min() >= problem.min_distance
        assert positions.norm(dim=1).max() <= radius


def test_same_seed_same_initial_configuration():
    problem = LennardJones()
    configs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        configs.append(problem.build(CPU, torch.float32).positions.detach())
    assert torch.equal(configs[0], configs[1])
    assert not torch.equal(configs[0], configs[2])


def test_short_adam_run_lowers_energy():
    problem = LennardJones(n_atoms=13)
    torch.manual_seed(0)
    start = problem.evaluate(problem.build(CPU, torch.float32))["energy"]
    result = fit(problem, functools.partial(torch.optim.Adam, lr=problem.lr), seed=0, steps=300)
    assert result.status == "ok"
    assert result.metrics["energy"] < start - 10


def test_metrics_are_floats_and_plot_is_written(tmp_path):
    problem = LennardJones(n_atoms=7)
    model = Cluster(torch.tensor(pentagonal_bipyramid()))
    metrics = problem.evaluate(model)
    assert set(metrics) == {"energy", "gap", "success"}
    assert all(isinstance(v, float) for v in metrics.values())
    problem.plot(model, tmp_path / "lj7.png")
    assert (tmp_path / "lj7.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_atoms": 20}, "n_atoms"),
        ({"density": 0.0}, "density"),
        ({"min_distance": 1.5}, "min_distance"),
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "lr"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, name):
    (value,) = kwargs.values()
    with pytest.raises(ValueError, match=rf"{name}.*{value}"):
        LennardJones(**kwargs)


def test_unknown_size_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"\[2, 3, 4, 7, 13, 19, 26, 38, 55\]"):
        LennardJones(n_atoms=20)
