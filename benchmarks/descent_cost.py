"""What Azure's step costs beyond the loss, with its descents: torch's Adam (foreach), Azure with
Adam descents (v2, ``descent="adam"``) and with quasi-Newton descents (v3, the default), whole
runs of ``step(closure)``; the closure's own time is subtracted. Median of three runs each.

    python benchmarks/descent_cost.py [--steps 3000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from azure_sciml import Azure
from azure_sciml.problems.energy import lj_energy, random_cluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine, median, table  # noqa: E402

VARIANTS = {"Adam (foreach)": None, "Azure, Adam descents": "adam", "Azure, quasi-Newton": "auto"}


def problem(name: str):
    """Parameters, loss and lr: LJ13 (39 coordinates) or a 1-32-32-1 tanh MLP fit (1153)."""
    torch.manual_seed(0)
    if name == "LJ13":
        x = nn.Parameter(random_cluster(13, 1.0, 0.8).float())
        return [x], lambda: lj_energy(x)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 1))
    xs = torch.linspace(-2, 2, 64)[:, None]
    return list(model.parameters()), lambda: (model(xs) - torch.sin(3 * xs)).square().mean()


def step_cost(name: str, descent: str | None, steps: int) -> tuple[float, int]:
    """Microseconds a step outside the closure, and the proposals made."""
    params, loss_of = problem(name)
    if descent is None:
        opt = torch.optim.Adam(params, lr=0.01, foreach=True)
    else:  # the MLP fit never settles by itself: explore from the start to time the descents
        opt = Azure(params, lr=0.01, total_steps=steps, seed=0, descent=descent,
                    sa_patience=0 if name == "MLP" else 50)
    in_closure = [0.0]

    def closure():
        start = time.perf_counter()
        opt.zero_grad()
        loss = loss_of()
        loss.backward()
        in_closure[0] += time.perf_counter() - start
        return loss

    start = time.perf_counter()
    for _ in range(steps):
        opt.step(closure)
    total = time.perf_counter() - start
    proposals = opt.stats()["n_proposals"] if descent is not None else 0
    return (total - in_closure[0]) / steps * 1e6, proposals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in ("LJ13", "MLP"):
        costs = {}
        for label, descent in VARIANTS.items():
            runs = [step_cost(name, descent, args.steps) for _ in range(args.repeats)]
            costs[label] = (median([us for us, _ in runs]), runs[0][1])
        adam = costs["Adam (foreach)"][0]
        rows += [[name, label, f"{us:.0f}", f"{us / adam:.2f}", str(props)]
                 for label, (us, props) in costs.items()]
    print(table(["problem", "optimizer", "µs a step (no loss)", "x Adam", "proposals"], rows))
    print(f"\n`{command('descent_cost.py', argv)}`; {machine(torch.device('cpu'))}")


if __name__ == "__main__":
    main()
