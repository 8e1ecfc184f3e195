"""Azure's quasi-Newton relaxation against scipy's L-BFGS-B (basin-hopping's local search) on
LJ19, one relaxation at a time: the same anchor (an L-BFGS-B minimum of a random start), the same
random move, each method relaxes once; Azure's end point is then relaxed fully by L-BFGS-B to
name the basin it reached. Prints, per method and move: evaluations a relaxation, how often it
ends below the anchor, back in the anchor's basin, and in the global minimum.

Azure's relaxation is its descent as a run makes it (``azure_sciml._relax.Relaxation``: float32,
one evaluation a step, first step ``lr`` per coordinate, steps capped at ``sigma · lr · K``), judged
as the controller judges a long descent: once its last K kept losses fell by at most ``eta · D``
(``--scale`` is D), at most ``longest`` K steps. L-BFGS-B runs in float64 at basin-hopping's
``gtol`` (the reports' configuration).

    python benchmarks/relax_vs_lbfgs.py [--anchors 3-22] [--moves 40] [--move gaussian|uniform]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import scipy.optimize
import torch

from azure_sciml._relax import Relaxation
from azure_sciml.problems.energy import GLOBAL_MINIMA, lj_energy, random_cluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, float64_objective, machine, seed_ranges, table  # noqa: E402

ATOMS = 19
SAME = 1e-3  # two relaxed energies this close are one minimum


energy_and_gradient = float64_objective(lambda x: lj_energy(x.view(-1, 3)))


def lbfgs(x: np.ndarray, gtol: float) -> tuple[np.ndarray, float, int]:
    """scipy's L-BFGS-B from ``x``: end point, its energy and the evaluations spent."""
    result = scipy.optimize.minimize(energy_and_gradient, x, jac=True, method="L-BFGS-B",
                                     options={"gtol": gtol, "maxiter": 15000})
    return result.x, float(result.fun), int(result.nfev)


def azure_relax(x: np.ndarray, args) -> tuple[np.ndarray, int]:
    """Azure's descent from ``x`` until judged: end point (its last kept one), evaluations."""
    p = torch.tensor(x, dtype=torch.float32).view(-1, 3).requires_grad_()
    first = args.lr * math.sqrt(p.numel())
    longest = args.interval * args.sigma * first
    relaxation, kept = Relaxation(), []
    for k in range(args.longest * args.interval):
        p.grad = None
        energy = lj_energy(p)
        energy.backward()
        with torch.no_grad():
            kept = [*kept, relaxation.observe([p], float(energy))][-(args.interval + 1):]
            if k >= args.interval and kept[0] - kept[-1] <= args.eta * args.scale:
                break
            relaxation.update([p], first, longest)
    with torch.no_grad():
        relaxation.back_to_kept([p])
    return p.detach().double().reshape(-1).numpy(), k + 1


def move(rng: np.random.Generator, shape, kind: str, size: float) -> np.ndarray:
    """Gaussian moves of std ``size`` (Azure's) or uniform ones of the same std (basin-hopping's
    kind: half-width sqrt(3) size)."""
    if kind == "gaussian":
        return rng.normal(0.0, size, shape)
    return rng.uniform(-math.sqrt(3) * size, math.sqrt(3) * size, shape)


def summary(name: str, anchors: list[float], ends: list[float], evals: list[int]) -> list[str]:
    change = np.array(ends) - np.array(anchors)
    hit = np.array(ends) < GLOBAL_MINIMA[ATOMS] + SAME
    return [name, f"{np.mean(evals):.1f}", f"{np.mean(change < -SAME):.1%}",
            f"{np.mean(abs(change) <= SAME):.1%}", f"{np.mean(hit):.1%}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", nargs="+", default=["3-22"],
                        help="seeds of the random starts whose minima anchor the moves (a-b)")
    parser.add_argument("--moves", type=int, default=40, help="moves per anchor")
    parser.add_argument("--move", choices=("gaussian", "uniform"), default="gaussian")
    parser.add_argument("--lr", type=float, default=0.01, help="the problem's lr")
    parser.add_argument("--sigma", type=float, default=2.4, help="Azure's proposal scale")
    parser.add_argument("--interval", type=int, default=10, help="K")
    parser.add_argument("--eta", type=float, default=0.01, help="Azure's converge tolerance")
    parser.add_argument("--scale", type=float, default=2.0, help="the loss scale D")
    parser.add_argument("--longest", type=int, default=20, help="longest descent, in K")
    parser.add_argument("--gtol", type=float, default=1e-5, help="L-BFGS-B's gtol")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# {command('relax_vs_lbfgs.py', argv)}")
    print(f"# {machine(torch.device('cpu'))}")
    rng = np.random.default_rng(0)
    size = args.sigma * args.lr * args.interval  # a proposal's std per coordinate
    anchors, lbfgs_ends, lbfgs_evals, azure_ends, azure_evals = [], [], [], [], []
    for seed in seed_ranges(args.anchors):
        torch.manual_seed(seed)
        start = random_cluster(ATOMS, 1.0, 0.8).double().reshape(-1).numpy()
        anchor, anchor_energy, _ = lbfgs(start, args.gtol)
        for _ in range(args.moves):
            x = anchor + move(rng, anchor.shape, args.move, size)
            _, energy, evals = lbfgs(x, args.gtol)
            end, steps = azure_relax(x, args)
            anchors.append(anchor_energy)
            lbfgs_ends.append(energy)
            lbfgs_evals.append(evals)
            azure_ends.append(lbfgs(end, args.gtol)[1])  # the basin Azure's descent reached
            azure_evals.append(steps)
    header = ["LJ19, " + args.move + " moves", "evaluations", "below the anchor",
              "back in its basin", "global minimum"]
    print(table(header, [summary("L-BFGS-B (float64)", anchors, lbfgs_ends, lbfgs_evals),
                         summary("Azure's descent (float32)", anchors, azure_ends, azure_evals)]))
    print(f"# {len(anchors)} relaxations each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
