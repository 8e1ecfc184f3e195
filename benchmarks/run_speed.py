"""Whole training runs: loss evaluations per second of Azure and Adam on every problem.

    python benchmarks/run_speed.py                  # CUDA when present, else CPU
    python benchmarks/run_speed.py --device cpu --steps 500 --repeats 3
    python benchmarks/run_speed.py --smoke          # a few evaluations per problem
    python benchmarks/run_speed.py --losses --problems Heat,NeuralODE   # ms per loss + backward
    python benchmarks/run_speed.py --losses --problems NeuralODE --train-first 750

Each run is ``azure_sciml.fit(problem, optimizer, steps=--steps, seed=0)`` on a fresh instance of a
problem of ``azure_sciml.problems.ALL`` (default settings; learning rate: the problem's ``lr``
attribute, else 1e-3); evaluations per second = loss evaluations / ``FitResult.wall_time_s`` (the
training loop only: building the problem and the final evaluation are not timed). Optimizers:
Adam (torch's default implementation for the device), Adam ``fused=True``, Azure and Azure
``fused=True``, with default hyperparameters, so Azure (``sa_steps=1000``) anneals, with
its Metropolis test, for the first 1000 steps. The figure is the median over ``--repeats`` runs, the
optimizers alternating run by run. A problem whose module is missing is skipped, and the script
says so.

``--losses`` times the losses alone instead: milliseconds per ``problem.loss(model)`` plus its
backward at the initial parameters (median and minimum of ``--steps`` evaluations after 3 warm-up
ones; CPU time of the process on the CPU, wall time on a GPU), in float32 and float64 (the dtype
L-BFGS refinements need), alternating evaluation by evaluation, or with ``--block K`` every K
evaluations (consecutive evaluations, as in training: each loss finds its buffers in cache).
Heat and NeuralODE are timed beside another loss of theirs (Heat: the nested-autograd residual
from before issue 17's fast losses, ``Heat.autograd_loss``; NeuralODE: the opt-in fixed-grid
loss, ``loss_solver="grid_rk4"``, beside the default dopri5 solve at rtol 1e-7), with the ratio
of the two, and the default's time over the other's (for Heat: the fast loss + backward over
nested autograd's, measured in one process so that the ratio holds on any CPU; issue 25 asks for
at most 0.35). A problem with ``loss_and_grad`` (Heat: the loss and its gradient in one call without
autograd, what ``fit`` evaluates) is timed that way too, beside the same reference.
``--train-first K`` trains each variant's model K Adam steps on its own loss first
(the adaptive solve's cost grows as the field trains)::

    python benchmarks/run_speed.py --losses --problems Heat,NeuralODE --threads 1 --steps 100
    python benchmarks/run_speed.py --losses --problems Heat --threads 1 --steps 400 --block 50
    python benchmarks/run_speed.py --losses --problems NeuralODE --threads 1 --train-first 750
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    command,
    discover_problems,
    machine,
    median,
    resolve_device,
    sync,
    table,
)

from azure_sciml import Azure, fit  # noqa: E402

RATIOS = [("Azure", "Adam"), ("Azure fused", "Adam fused")]


def optimizers(lr: float, device: torch.device, smoke: bool = False) -> dict:
    out = {"Adam": partial(torch.optim.Adam, lr=lr), "Azure": partial(Azure, lr=lr)}
    if smoke:
        return out
    out["Adam fused"] = partial(torch.optim.Adam, lr=lr, fused=True)
    out["Azure fused"] = partial(Azure, lr=lr, fused=True)
    return out


def run_problem(cls: type, steps: int, repeats: int, device: torch.device, smoke: bool = False):
    """(parameter count, {optimizer: median evaluations per second}, statuses)."""
    lr = getattr(cls(), "lr", None) or 1e-3
    opts = optimizers(lr, device, smoke)
    rates: dict[str, list[float]] = {name: [] for name in opts}
    statuses: set[str] = set()
    n_params = 0
    names = list(opts)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            result = fit(cls(), opts[name], steps=steps, seed=0, device=device)
            print(f"  {cls.__name__} {name}: {result.n_loss_evals / result.wall_time_s:.1f} "
                  f"evals/s", file=sys.stderr, flush=True)
            n_params = sum(p.numel() for p in result.model.parameters())
            rates[name].append(result.n_loss_evals / result.wall_time_s)
            if result.status != "ok":
                statuses.add(f"{name}: {result.status}")
    return n_params, {name: median(v) for name, v in rates.items()}, statuses


# Other losses of a problem, timed beside its default one: (label, constructor keywords, name of
# the loss method). Heat's is its loss before issue 17's fast losses; the neural ODE's is the
# opt-in fixed-grid loss (its default, dopri5 at rtol 1e-7, is the loss from before).
FUSED = "loss_and_grad"  # a problem's loss and gradient in one call, as fit() evaluates it
REFERENCE_LOSSES = {
    "Heat": ("nested autograd", {}, "autograd_loss"),
    "NeuralODE": ("grid_rk4", {"loss_solver": "grid_rk4"}, "loss"),
}


def time_losses(cls: type, evals: int, device: torch.device, train_first: int = 0,
                reference: bool = True, block: int = 1) -> dict[str, float]:
    """Median ms per loss + backward at seed 0's initial parameters (or after ``train_first``
    Adam steps on each variant's own loss), with the problem's float32 and float64 losses, and
    where :data:`REFERENCE_LOSSES` has one the old loss beside each, alternating every ``block``
    evaluations (1: evaluation by evaluation; more: consecutive evaluations, as a training run
    makes them, so a loss finds its own buffers in cache)."""
    variants = {}
    for dtype in ("float32", "float64"):
        variants[dtype] = (cls(), "loss", dtype)
        if callable(getattr(cls, "loss_and_grad", None)):
            variants[f"{dtype} {FUSED}"] = (cls(), FUSED, dtype)
        if reference and cls.__name__ in REFERENCE_LOSSES:
            label, kwargs, method = REFERENCE_LOSSES[cls.__name__]
            variants[f"{dtype} {label}"] = (cls(**kwargs), method, dtype)
    losses = {}
    for name, (problem, method, dtype) in variants.items():
        torch.manual_seed(0)
        model = problem.build(device, getattr(torch, dtype))
        loss = partial(getattr(problem, method), model)
        if train_first:
            adam = torch.optim.Adam(model.parameters(), lr=getattr(problem, "lr", None) or 1e-3)
            for _ in range(train_first):
                adam.zero_grad()
                loss().backward()
                adam.step()
        losses[name] = (model, loss, method == FUSED)
    # CPU time on the CPU (what the process spent, not what a loaded machine's other jobs took)
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in variants}
    block = max(1, block)
    for i in range(3 + -(-evals // block)):  # 3 warm-up rounds
        for name, (model, loss, fused) in losses.items():
            for _ in range(1 if i < 3 else block):
                start = clock()
                model.zero_grad()
                if fused:  # sets the gradients itself
                    loss()
                else:
                    loss().backward()
                sync(device)
                if i >= 3:
                    times[name].append((clock() - start) * 1e3)
    return {f"{cls.__name__} {name}": (median(t), min(t)) for name, t in times.items()}


def main_losses(args, classes, device) -> None:
    trained = f", after {args.train_first} Adam steps" if args.train_first else ""
    order = f"blocks of {args.block}" if args.block > 1 else "evaluation by evaluation"
    print(f"# ms per loss evaluation + backward (median of {args.steps}{trained}; variants "
          f"alternating {order})")
    print(f"# {machine(device)}")
    print(f"# command: {command('run_speed.py', None)}")
    rows, fast_ratios = [], []
    for cls in classes:
        timed = time_losses(cls, args.steps, device, args.train_first, not args.smoke, args.block)
        for name, (ms, fastest) in timed.items():
            label = REFERENCE_LOSSES.get(cls.__name__, ("",))[0]
            current = name.replace(f" {label}", "") if label and name.endswith(label) else None
            ratio = f"{ms / timed[current][0]:.2f}" if current in timed else ""
            rows.append([name, f"{ms:.2f}", f"{fastest:.2f}", ratio])
            for compared in (current, f"{current} {FUSED}"):
                if current is not None and compared in timed:
                    fast_ratios.append((compared, label, timed[compared][0] / ms,
                                        timed[compared][1] / fastest))
    print()
    print(table(["problem", "ms per loss + backward", "min ms", "this / default"], rows))
    for name, label, by_median, by_min in fast_ratios:
        print(f"\n{name} / {label}: {by_median:.2f} (medians), {by_min:.2f} (minima)"
              + (" (issue 25's target for Heat: <= 0.35)" if name.startswith("Heat") else ""))


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    ap.add_argument("--smoke", action="store_true",
                    help="a few evaluations, one run each, Adam and Azure only")
    ap.add_argument("--steps", type=int, default=None, help="loss evaluations per run (500)")
    ap.add_argument("--repeats", type=int, default=None, help="runs per optimizer (3)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--problems", default=None, help="comma-separated class names (default: all)")
    ap.add_argument("--losses", action="store_true",
                    help="time loss + backward per problem instead of whole runs")
    ap.add_argument("--train-first", type=int, default=0,
                    help="with --losses: Adam steps on each loss before timing it (0)")
    ap.add_argument("--block", type=int, default=1,
                    help="with --losses: consecutive evaluations per variant before the next "
                         "(1: alternate evaluation by evaluation)")
    args = ap.parse_args(argv)
    args.steps = args.steps or (4 if args.smoke else 500)
    args.repeats = args.repeats or (1 if args.smoke else 3)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    classes, notes = discover_problems()
    if args.problems:
        wanted = set(args.problems.split(","))
        classes = [c for c in classes if c.__name__ in wanted]
    if args.losses:
        main_losses(args, classes, device)
        return 0
    print(f"# Azure vs Adam: loss evaluations per second of whole fit() runs "
          f"({'smoke, ' if args.smoke else ''}{args.steps} evaluations, "
          f"median of {args.repeats} runs)")
    print(f"# {machine(device)}")
    print(f"# command: {command('run_speed.py', argv)}")
    print(f"# problems: {', '.join(c.__name__ for c in classes) or 'none'}")
    rows, names = [], []
    for cls in classes:
        try:
            n, rates, statuses = run_problem(cls, args.steps, args.repeats, device, args.smoke)
        except Exception as err:
            notes.append(f"skipped {cls.__name__}: {type(err).__name__}: {err}")
            continue
        names = list(rates)
        notes += [f"{cls.__name__} {s}" for s in sorted(statuses)]
        ratios = [(a, b) for a, b in RATIOS if a in rates and b in rates]
        rows.append([cls.__name__, f"{n:,}", *(f"{rates[k]:.1f}" for k in names),
                     *(f"{rates[a] / rates[b]:.2f}" for a, b in ratios)])
    if rows:
        print()
        print("Evaluations per second (higher is faster); ratios are speed ratios (> 1: faster):")
        print()
        print(table(["problem", "params", *names, *(f"{a} / {b}" for a, b in ratios)], rows))
    for note in notes:
        print(f"\nnote: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
