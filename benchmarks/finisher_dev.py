"""The quasi-Newton finisher's development runs (docs/finisher.md): Adam then a finisher on the heat
PINN or the spiral neural ODE, float64, one line of JSON per run (metric, evaluations, why the
finisher stopped); and the dense BFGS update's cost per parameter count.

    python benchmarks/finisher_dev.py heat --seeds 0 1 2 --runs ssbroyden:0.5:6000 bfgs:0.5:6000
    python benchmarks/finisher_dev.py ode --seeds 0 --runs bfgs:0.5:1500 lbfgs:0.5:1500
    python benchmarks/finisher_dev.py dense-cost

A run is FINISHER:AT:STEPS: ``lbfgs`` (refine=lbfgs's settings) or a ``BFGS`` update (``bfgs``,
``ssbfgs``, ``ssbroyden``), handing over after AT of STEPS loss evaluations. ``--horizon 0.1``
turns the neural ODE's horizon curriculum on (first quarter of the budget).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import torch

from azure_sciml import BFGS, Chain, fit

LBFGS = functools.partial(torch.optim.LBFGS, lr=1.0, max_iter=20, max_eval=25, history_size=100,
                          tolerance_grad=1e-9, tolerance_change=0.0, line_search_fn="strong_wolfe")


def finisher(name: str):
    if name == "lbfgs":
        return LBFGS
    return functools.partial(BFGS, update=name, tolerance_grad=1e-12)


def problem(name: str, steps: int, horizon: float):
    if name == "heat":
        from azure_sciml.problems.heat import Heat

        return Heat(steps=steps)
    from azure_sciml.problems.ode import NeuralODE

    return NeuralODE(steps=steps, horizon=horizon, horizon_until=0.25)


def run(name: str, spec: str, seed: int, horizon: float) -> dict:
    then, at, steps = spec.split(":")
    make = functools.partial(Chain, first=functools.partial(torch.optim.Adam, lr=1e-3),
                             then=finisher(then), at=float(at), total_steps=int(steps))
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(problem(name, int(steps), horizon), make, seed=seed, steps=int(steps),
                 dtype=torch.float64)
    stats = result.optimizer.stats()
    then_stats = stats.pop("then_stats", {})
    return {"problem": name, "seed": seed, "finisher": then, "at": float(at), "steps": int(steps),
            "horizon": horizon, **result.metrics, "final_loss": result.final_loss,
            "wall_s": round(time.perf_counter() - wall), "cpu_s": round(time.process_time() - cpu),
            "chain": {k: v for k, v in stats.items() if not k.startswith("then.")},
            "then": then_stats}


def dense_cost(sizes=(1000, 2000, 4000, 8000), repeats: int = 5) -> None:
    """Seconds per iteration of the dense update: one matvec H g, one H y, three rank-1 updates."""
    for n in sizes:
        H = torch.eye(n, dtype=torch.float64)
        g, s, y = (torch.randn(n, dtype=torch.float64) for _ in range(3))
        start = time.perf_counter()
        for _ in range(repeats):
            Hy, _ = H @ y, H @ g
            for u, v in ((Hy, Hy), (s, s), (s, Hy)):
                H.addr_(u, v, alpha=1e-3)
        seconds = (time.perf_counter() - start) / repeats
        print(json.dumps({"n": n, "ms_per_iter": round(seconds * 1e3, 1),
                          "H_MiB": round(8 * n * n / 2**20)}), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["heat", "ode", "dense-cost"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", nargs="+", default=["ssbroyden:0.5:6000"])
    parser.add_argument("--horizon", type=float, default=1.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.what == "dense-cost":
        dense_cost()
        return
    for seed in args.seeds:
        for spec in args.runs:
            print(json.dumps(run(args.what, spec, seed, args.horizon)), flush=True)


if __name__ == "__main__":
    main()
