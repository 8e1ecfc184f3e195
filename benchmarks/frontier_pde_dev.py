"""The development runs of experiment=frontier_pde (docs/finisher.md): Adam then a finisher on the
convection (beta = 40) or reaction (rho = 5) PINN, float64, one line of JSON per run (metric,
final loss, why the finisher stopped, wall and CPU seconds).

    python benchmarks/frontier_pde_dev.py convection --seeds 0 1 2 --runs ssbroyden:0.25:10000
    python benchmarks/frontier_pde_dev.py reaction --seeds 0 --runs ssbroyden:0.25:10000 \\
        --problem '{"sampling": "rad", "resample_every": 500, "resample_until": 0.25}'

A run is FINISHER:AT:STEPS: ``none`` (Adam alone), ``lbfgs`` (refine=lbfgs's settings) or a
``BFGS`` update (``bfgs``, ``ssbfgs``, ``ssbroyden``; refine=bfgs's settings), handing over after
AT of STEPS loss evaluations. Adam at the problem's lr with ``--eps`` (1e-20: optimizer=adam_pinn);
the net is ``--width`` x ``--depth`` tanh; ``--problem`` takes further constructor arguments as
JSON. No lr schedule (the app's step_decay drops Adam's lr at 90% of the budget only, after the
hand-over).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from azure_sciml import Chain, fit
from azure_sciml.problems.convection import Convection, Reaction

REFINE = Path(__file__).resolve().parents[1] / "conf" / "refine"


def finisher(name: str):
    """The app's finisher, from its refine config (conf/refine/lbfgs.yaml, bfgs.yaml)."""
    if name == "lbfgs":
        return instantiate(OmegaConf.load(REFINE / "lbfgs.yaml").optimizer)
    return instantiate(OmegaConf.load(REFINE / "bfgs.yaml").optimizer, update=name)


def run(args: argparse.Namespace, spec: str, seed: int) -> dict:
    then, at, steps = spec.split(":")
    steps = int(steps)
    cls = {"convection": Convection, "reaction": Reaction}[args.what]
    problem = cls(width=args.width, depth=args.depth, steps=steps, **json.loads(args.problem))
    adam = functools.partial(torch.optim.Adam, lr=problem.lr, eps=args.eps)
    make = adam if then == "none" else functools.partial(
        Chain, first=adam, then=finisher(then), at=float(at), total_steps=steps)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(problem, make, seed=seed, steps=steps, dtype=torch.float64)
    stats = result.optimizer.stats() if then != "none" else {}
    then_stats = stats.get("then_stats", {})
    return {"problem": args.what, "seed": seed, "finisher": then, "at": float(at), "steps": steps,
            "width": args.width, "depth": args.depth, "problem_args": json.loads(args.problem),
            **result.metrics, "final_loss": result.final_loss,
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(time.process_time() - cpu, 1), "then": then_stats}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["convection", "reaction"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", nargs="+", default=["ssbroyden:0.25:10000"])
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--eps", type=float, default=1e-20)
    parser.add_argument("--problem", default="{}", help="more constructor arguments, as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for seed in args.seeds:
        for spec in args.runs:
            print(json.dumps(run(args, spec, seed)), flush=True)


if __name__ == "__main__":
    main()
