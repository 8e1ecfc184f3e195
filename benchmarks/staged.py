"""Staged objectives: three recipes that change the objective mid-run, Adam against Azure with
the stage protocol (``finish()`` / ``new_stage()``) and without it, each with quasi-Newton (v3,
the default) and Adam (v2, ``descent="adam"``) descents.

The runs are small sparse regressions on a Legendre term library (8 terms, 3 true), generated
here; ``tests/test_stages.py`` runs the same recipes on a few seeds.

- masked refit (sequential thresholding, as SINDy and EQL): an L1-penalised fit; at 60% of the
  budget the terms under 0.03 are masked and the rest refitted. Metric: the support recovered.
- curriculum: two true terms' data for the first half, then all three with more noise (every
  stage-2 loss lies above stage 1's), step decay at 90/95%. Metric: the final stage-2 loss.
- collocation resampling: fresh random points every 400 steps, four stages. Metric: the squared
  coefficient error.

    python benchmarks/staged.py --seeds 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from azure_sciml import Azure
from azure_sciml.report.paired import compare

sys.path.insert(0, str(Path(__file__).resolve().parent))

N_TERMS = 8
TRUE = torch.zeros(N_TERMS, dtype=torch.float64)
TRUE[[1, 3, 6]] = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
KINDS = ("adam", "protocol", "no_protocol")
VARIANTS = [("adam", "auto"), ("protocol", "auto"), ("no_protocol", "auto"),
            ("protocol", "adam"), ("no_protocol", "adam")]


def legendre(x: torch.Tensor, n: int = N_TERMS) -> torch.Tensor:
    """Legendre polynomials P_0 .. P_{n-1} at ``x`` (Bonnet's recursion), one per column."""
    terms = [torch.ones_like(x), x]
    for k in range(1, n - 1):
        terms.append(((2 * k + 1) * x * terms[k] - k * terms[k - 1]) / (k + 1))
    return torch.stack(terms, -1)


def samples(n: int, noise: float, seed: int, coef: torch.Tensor = TRUE, grid: bool = True):
    g = torch.Generator().manual_seed(seed)
    if grid:
        x = torch.linspace(-1, 1, n, dtype=torch.float64)
    else:
        x = 2 * torch.rand(n, generator=g, dtype=torch.float64) - 1
    features = legendre(x)
    return features, features @ coef + noise * torch.randn(n, generator=g, dtype=torch.float64)


def start(seed: int) -> torch.nn.Parameter:
    torch.manual_seed(seed)
    return torch.nn.Parameter(torch.randn(N_TERMS, dtype=torch.float64))


def mse_closure(opt, coef, features, y):
    """The closure of a least-squares fit of ``coef`` to ``(features, y)``."""

    def closure():
        opt.zero_grad()
        loss = (features @ coef - y).square().mean()
        loss.backward()
        return loss

    return closure


def optimizer(kind: str, coef, lr: float, stage_steps: int, run_steps: int, seed: int,
              descent: str = "auto"):
    """Adam; Azure told the first stage's length (the protocol); or Azure given the whole run."""
    if kind == "adam":
        return torch.optim.Adam([coef], lr=lr)
    steps = stage_steps if kind == "protocol" else run_steps
    return Azure([coef], lr=lr, total_steps=steps, seed=seed, descent=descent)


def masked_refit(kind: str, seed: int, budget: int = 2000, lr: float = 0.03, tol: float = 0.03,
                 descent: str = "auto") -> torch.Tensor:
    """Sequential thresholding: returns the kept terms."""
    features, y = samples(200, 0.05, 0)
    coef, mask = start(seed), torch.ones(N_TERMS, dtype=torch.float64)
    first = int(0.6 * budget)
    opt = optimizer(kind, coef, lr, first, budget, seed, descent)

    def closure():
        opt.zero_grad()
        kept = coef * mask
        loss = (features @ kept - y).square().mean() + 1e-3 * kept.abs().sum()
        loss.backward()
        return loss

    for k in range(budget):
        if k == first:
            if kind == "protocol":
                opt.finish()  # the mask is computed from the best point judged
            with torch.no_grad():
                mask = (coef.abs() > tol).double()
                coef.mul_(mask)
            if kind == "protocol":
                opt.new_stage(total_steps=budget - first)
        opt.step(closure)
    return mask.bool()


def curriculum(kind: str, seed: int = 0, steps: int = 1500, lr: float = 0.03,
               descent: str = "auto") -> float:
    """Easy to hard, with the reports' step decay; returns the final loss on stage 2's data."""
    easy = TRUE.clone()
    easy[[3, 6]] = 0.0
    stages = [samples(200, 0.05, 1, easy), samples(200, 0.3, 2)]
    coef = start(seed)
    opt = optimizer(kind, coef, lr, steps, 2 * steps, seed, descent)
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, [int(1.8 * steps), int(1.9 * steps)], 0.1)
    for stage, (features, y) in enumerate(stages):
        if stage and kind == "protocol":
            opt.new_stage(total_steps=steps)
        closure = mse_closure(opt, coef, features, y)
        for _ in range(steps):
            opt.step(closure)
            decay.step()
    if kind != "adam":
        opt.finish()
    features, y = stages[1]
    return float((features @ coef.detach() - y).square().mean())


def resampled(kind: str, seed: int = 0, stages: int = 4, steps: int = 400, lr: float = 0.03,
              descent: str = "auto") -> float:
    """Fresh random points every ``steps``; returns the squared coefficient error."""
    coef = start(seed)
    opt = optimizer(kind, coef, lr, steps, stages * steps, seed, descent)
    for stage in range(stages):
        features, y = samples(64, 0.1, 10 + stage, grid=False)
        if stage and kind == "protocol":
            opt.new_stage(total_steps=steps)
        closure = mse_closure(opt, coef, features, y)
        for _ in range(steps):
            opt.step(closure)
    if kind != "adam":
        opt.finish()
    return float((coef.detach() - TRUE).square().sum())


def versus(values: list[float], baseline: list[float]) -> str:
    """W/T/L and the paired test against the baseline (the reports' rule,
    ``azure_sciml.report.paired.compare``; lower is better; ties within 1e-9: rounding)."""
    pairs = np.stack([np.asarray(values), np.asarray(baseline)], axis=1)
    c = compare("", "candidate", "baseline", "", pairs, tie_tol=1e-9)
    return f"{c.better}/{c.ties}/{c.worse}, p = {c.p_value:.2g}"


def main(argv: list[str] | None = None) -> None:
    from _common import command, machine, median, table  # the scripts' own helpers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = range(args.seeds)
    truth = TRUE != 0
    rows = []
    results = {}
    for kind, descent in VARIANTS:
        recovered = sum(torch.equal(masked_refit(kind, s, descent=descent), truth) for s in seeds)
        final = [curriculum(kind, s, descent=descent) for s in seeds]
        error = [resampled(kind, s, descent=descent) for s in seeds]
        results[kind, descent] = final, error
        rows.append([kind, descent, f"{recovered}/{len(seeds)}", f"{median(final):.4g}",
                     f"{median(error):.3g}"])
    adam_final, adam_error = results["adam", "auto"]
    for row, key in zip(rows, VARIANTS, strict=True):
        final, error = results[key]
        row[3] += f" ({versus(final, adam_final)})"
        row[4] += f" ({versus(error, adam_error)})"
        if key[0] == "adam":
            row[1] = "–"
    header = ["optimizer", "descent", "masked refit: support recovered",
              "curriculum: final loss (W/T/L vs Adam)", "resampling: coef. error (W/T/L vs Adam)"]
    print(table(header, rows))
    print(f"\n`{command('staged.py', argv)}`; {machine(torch.device('cpu'))}")


if __name__ == "__main__":
    main()
