"""Basin-hopping at the precision scipy needs, beside Azure and Adam, run as the reports run them.

    OMP_NUM_THREADS=1 python benchmarks/fair_baselines.py --problems rastrigin20 --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/fair_baselines.py --problems lj13 lj19 --seeds 2000-2019

Every run: the problem's budget and lr, the reports' step-decay LR schedule (10x drops at 90% and
95%), one seed per row. ``bh32`` is basin-hopping evaluated in float32 (``float64=False``: what
the reports ran before issue 23), ``bh64`` the wrapper's default; Azure and Adam are run with the
model in float32 and float64. Prints one line per run and medians / success counts per column.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

from azure_sciml import Azure, fit
from azure_sciml.baselines import BasinHopping
from azure_sciml.problems import LennardJones
from azure_sciml.problems.rugged import RuggedFunction
from azure_sciml.report.stats import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import seed_ranges  # noqa: E402

PROBLEMS = {
    "rastrigin20": lambda: RuggedFunction("rastrigin", dim=20),
    "ackley20": lambda: RuggedFunction("ackley", dim=20),
    "lj13": lambda: LennardJones(n_atoms=13),
    "lj19": lambda: LennardJones(n_atoms=19),
}
RUNS = {  # name: (optimizer factory from (problem), model dtype)
    "bh32": (lambda pr: functools.partial(BasinHopping, total_steps=pr.steps, float64=False),
             torch.float32),
    "bh64": (lambda pr: functools.partial(BasinHopping, total_steps=pr.steps), torch.float32),
    "azure32": (lambda pr: functools.partial(Azure, lr=pr.lr), torch.float32),
    "azure64": (lambda pr: functools.partial(Azure, lr=pr.lr), torch.float64),
    "adam32": (lambda pr: functools.partial(torch.optim.Adam, lr=pr.lr), torch.float32),
    "adam64": (lambda pr: functools.partial(torch.optim.Adam, lr=pr.lr), torch.float64),
}


def step_decay(problem):
    drops = [int(0.9 * problem.steps), int(0.95 * problem.steps)]
    return functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=drops, gamma=0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["rastrigin20"], choices=sorted(PROBLEMS))
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--seeds", nargs="+", default=["0-2"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.problems:
        results: dict[str, list[dict]] = {r: [] for r in args.runs}
        for seed in seed_ranges(args.seeds):
            for run in args.runs:
                problem = PROBLEMS[name]()
                factory, dtype = RUNS[run]
                res = fit(problem, factory(problem), seed=seed, dtype=dtype,
                          scheduler=step_decay(problem))
                results[run].append(res.metrics)
                print(name, run, seed, {k: round(v, 6) for k, v in res.metrics.items()},
                      flush=True)
        metric = PROBLEMS[name]().metric
        for run, rows in results.items():
            values = [r[metric] for r in rows]
            hits = sum(r.get("success", 0.0) for r in rows)
            print(f"SUMMARY {name} {run}: median {metric} {median(values):.4g} "
                  f"values {[round(v, 3) for v in values]} success {hits:.0f}/{len(rows)}")


if __name__ == "__main__":
    main()
