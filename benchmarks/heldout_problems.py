"""Problems of the held-out benchmark (``benchmarks/heldout.py``): development and validation sets.

Each :class:`Problem` has a seeded builder of the initial parameters (an ``nn.Module``), a loss, a
budget (``steps`` = loss evaluations), the lr every optimizer gets, a ground-truth metric (lower is
better), an optional success rule and the loop modes that apply. Data sets, couplings and other
fixed parts of a problem come from fixed numpy seeds: only the initial parameters change with the
run's seed. The split and the reasons for it are in ``heldout.py``'s docstring.

Families we do not ship (spin glass, conformer, Frenkel-Kontorova chain, egg-crate, two moons,
noisy regression) are written here; Lennard-Jones and Rastrigin/Ackley/Levy reuse
``azure_sciml.problems``' energy and test functions. Reference minima of the problems without a
known one (``REFERENCE_MINIMA``) were found by strong global searches that are not part of the
comparison (``python benchmarks/heldout_problems.py --references`` recomputes them): the metric is
the gap to that reference, so a run can beat it (negative gap) and the paired comparison is the
same as on the final loss (a constant shift).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from azure_sciml.problems.energy import GLOBAL_MINIMA, lj_energy, random_cluster
from azure_sciml.problems.rugged import ackley, levy, rastrigin

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_base import MODES, Problem, Vector, build_seeded, fingerprint, uniform  # noqa: E402
from heldout_energies import (  # noqa: E402
    REFERENCE_MINIMA,
    conformer_problem,
    fk_energy,
    fk_problem,
    references,
    sk_problem,
)
from heldout_fits import (  # noqa: E402
    curve_problem,
    minibatch_regression_problem,
    moons_problem,
    noisy_regression_problem,
)

__all__ = ["MODES", "REFERENCE_MINIMA", "SETS", "Problem", "build_seeded", "fingerprint",
           "fk_energy"]
LJ_SUCCESS_GAP = 1e-4  # azure_sciml.problems.energy's success rule


# --------------------------------------------------------------------------- test functions


def point_problem(name, description, function, dim, half_width, steps, lr, *, offset=0.0,
                  success_gap=None, notes="") -> Problem:
    """Minimise ``function(x) + offset`` (global minimum value 0) from a uniform start in
    ``[-half_width, half_width]^dim``, float64. Metric: ``function`` at the final point."""

    def metric(m):
        with torch.no_grad():
            return {"metric": float(function(m.x.detach().double()))}

    return Problem(
        name=name, description=description, steps=steps, lr=lr,
        build=lambda: Vector(uniform(dim, half_width)),
        loss=lambda m: function(m.x) + offset,
        metric=metric, metric_name="f(x) - f* (f* = 0)", success_gap=success_gap, tie_tol=1e-8,
        notes=notes,
    )


def bowl(x: Tensor) -> Tensor:
    """A smooth basin with nothing to find: ``sum 0.5 c_i x_i^2``, curvatures ``c`` log-spaced
    over [1e-2, 1]; minimum 0 at 0."""
    c = torch.logspace(-2, 0, x.shape[-1], dtype=x.dtype)
    return 0.5 * (c * x.square()).sum(-1)


def egg_crate(x: Tensor) -> Tensor:
    """Egg-crate in d dimensions: ``sum x_i^2 + 25 sin^2 x_i``; global minimum 0 at 0."""
    return (x.square() + 25.0 * torch.sin(x).square()).sum(-1)


# --------------------------------------------------------------------------- Lennard-Jones


class Cluster(nn.Module):
    def __init__(self, positions: Tensor):
        super().__init__()
        self.x = nn.Parameter(positions)


def lj_problem(name, n_atoms, density, steps, lr, description) -> Problem:
    """LJ cluster (``azure_sciml.problems.energy``'s energy and random start), float64.
    Metric: gap to the known global minimum, clipped at 0; success: gap < 1e-4."""
    e_star = GLOBAL_MINIMA[n_atoms]

    def metric(m):  # E* is tabulated to 1e-6: a gap below 0 is rounding, clipped to 0
        energy = float(lj_energy(m.x.detach().double()))
        return {"metric": max(energy - e_star, 0.0), "energy": energy}

    return Problem(
        name=name, description=description, steps=steps, lr=lr,
        build=lambda: Cluster(random_cluster(n_atoms, density, 0.8)),
        loss=lambda m: lj_energy(m.x), metric=metric, metric_name=f"max(E - E*, 0) (E* = {e_star})",
        success_gap=LJ_SUCCESS_GAP, tie_tol=LJ_SUCCESS_GAP,
        notes="tie: both within 1e-4 of each other (e.g. both at E*)",
    )


# --------------------------------------------------------------------------- the two sets

def development() -> dict[str, Problem]:
    problems = [
        point_problem("rastrigin10", "Rastrigin, 10-D, start U[-5.12, 5.12]^10, float64",
                      rastrigin, 10, 5.12, 1000, 0.05),
        point_problem("rastrigin20", "Rastrigin, 20-D, start U[-5.12, 5.12]^20, float64 "
                      "(the issue's Rastrigin-20 target)", rastrigin, 20, 5.12, 3000, 0.05),
        point_problem("ackley10", "Ackley, 10-D, start U[-32.768, 32.768]^10, float64",
                      ackley, 10, 32.768, 1000, 0.33),
        lj_problem("lj13", 13, 1.0, 3000, 0.01,
                   "LJ13 from the shipped random start (density 1.0, min distance 0.8)"),
        curve_problem(),
        # short budgets (issue 23): finds early or nothing at all, where the polish counts
        point_problem("ackley10_short", "Ackley, 10-D, start U[-32.768, 32.768]^10, 300 steps, "
                      "float64", ackley, 10, 32.768, 300, 0.33),
        point_problem("bowl20_short", "ill-conditioned convex quadratic, 20-D (curvatures "
                      "1e-2..1), start U[-5, 5]^20, loss = f + 1e3, 400 steps, float64", bowl, 20,
                      5.0, 400, 0.05, offset=1e3),
    ]
    return {p.name: p for p in problems}


def validation() -> dict[str, Problem]:
    problems = [
        sk_problem(),
        conformer_problem(),
        point_problem("eggcrate16_offset", "egg-crate, 16-D, start U[-5, 5]^16, loss = f + 1e4, "
                      "float64", egg_crate, 16, 5.0, 1000, 0.05, offset=1e4, success_gap=1e-3),
        fk_problem(-1e5),
        noisy_regression_problem(),
        minibatch_regression_problem(),
        lj_problem("lj19_sparse", 19, 0.5, 3000, 0.01,
                   "LJ19 from a sparser random start (density 0.5, min distance 0.8)"),
        lj_problem("lj13_sparse", 13, 0.3, 2000, 0.01,
                   "LJ13 from a sparse random start (density 0.3), 2000 steps"),
        point_problem("levy30_short", "Levy, 30-D, start U[-10, 10]^30, 500 steps, float64",
                      levy, 30, 10.0, 500, 0.1),
        moons_problem(1e-3),
        moons_problem(1e-2),
        moons_problem(1e-1),
    ]
    return {p.name: p for p in problems}


SETS: dict[str, Callable[[], dict[str, Problem]]] = {"dev": development, "val": validation}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", action="store_true", help="recompute REFERENCE_MINIMA")
    parser.add_argument("--hops", type=int, default=2000, help="basin-hopping steps per start")
    args = parser.parse_args(argv)
    if args.references:
        torch.set_num_threads(1)
        for name, value in references(args.hops):
            print(f'    "{name}": {value!r},  (stored: {REFERENCE_MINIMA[name]!r})', flush=True)
    else:
        print(listing())
    return 0


def listing() -> str:
    """Markdown table of both sets' problems."""
    from _common import table

    rows = [
        [name, set_name, str(p.steps), f"{p.lr:g}", p.description, p.metric_name,
         "-" if p.success_gap is None else f"metric < {p.success_gap:g}", ", ".join(p.modes)]
        for set_name, make in SETS.items() for name, p in make().items()
    ]
    header = ["problem", "set", "steps", "lr", "setup", "metric (lower is better)", "success",
              "modes"]
    return table(header, rows)


if __name__ == "__main__":
    raise SystemExit(main())
