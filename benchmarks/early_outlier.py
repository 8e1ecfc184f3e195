"""One huge finite loss at one of the first judgements: how much does it heat the test after it?

Rastrigin-5 (float64), Azure(lr=0.05, total_steps=1500, sa_interval=5, sa_patience=20), 10 seeds.
At judgement j (0, 1 or 2) the loss handed to the Metropolis test is the true one plus 1e6 (the
parameters are not touched). Over the next 5 judgements the script counts uphill proposals and
how many were accepted, against the same runs without the outlier, and the factor by which the
outlier changes the loss scale D there (D from the uphill list with it / without it).

    python benchmarks/early_outlier.py
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from azure_sciml import Azure
from azure_sciml._anneal import robust_scale
from azure_sciml.problems.rugged import rastrigin
from azure_sciml.report.stats import median

OUTLIER = 1e6
FOLLOW = 5  # judgements counted after the outlier


def run(seed: int, at: int | None) -> list[tuple[bool, bool, float]]:
    """(uphill, accepted, D with / D without the outlier) of the FOLLOW judgements after
    judgement ``at`` (after judgement 2 when ``at`` is None: the clean reference)."""
    torch.manual_seed(seed)
    x = nn.Parameter(torch.empty(5, dtype=torch.float64).uniform_(-5.12, 5.12))
    opt = Azure([x], lr=0.05, seed=seed, total_steps=1500, sa_interval=5, sa_patience=20)
    ctl = opt._controller
    judge, seen, spike = ctl._judge, [], []
    first = 2 if at is None else at

    def judged(loss: float):
        st = ctl.state
        index, anchor, accepted = st.n_judged, st.anchor_loss, st.n_accepted
        if index == at:
            loss += OUTLIER
            spike.append(loss - anchor)
        decision = judge(loss)
        if first < index <= first + FOLLOW:
            ups = list(st.uphill)
            clean = [u for u in ups if u not in spike]
            d_with, d_without = robust_scale(ups, 5.0), robust_scale(clean, 5.0)
            ratio = d_with / d_without if d_with and d_without else 1.0
            seen.append((loss > anchor, st.n_accepted > accepted, ratio))
        return decision

    ctl._judge = judged

    def closure():
        opt.zero_grad()
        loss = rastrigin(x)
        loss.backward()
        return loss

    for _ in range(1500):
        opt.step(closure)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| outlier at judgement | uphill accepted / uphill, next 5 | D factor, median | max |")
    print("|---|---|---|---|")
    for at in (None, 0, 1, 2):
        rows = [r for seed in range(args.seeds) for r in run(seed, at)]
        ups = [r for r in rows if r[0]]
        ratios = [r[2] for r in ups] or [1.0]
        label = "none" if at is None else str(at)
        print(f"| {label} | {sum(r[1] for r in ups)}/{len(ups)} | "
              f"{median(ratios):.3g} | {max(ratios):.3g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
