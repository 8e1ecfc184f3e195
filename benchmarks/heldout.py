"""Held-out benchmark of the library path: Azure as users meet it, against Adam, in their own loops.

    python benchmarks/heldout.py --set dev --seeds 10
    python benchmarks/heldout.py --set val --seeds 10 --out /tmp/val.json
    python benchmarks/heldout.py --set dev --problems lj13,rastrigin10 --modes closure \\
        --azure-kw sa_patience=20 T0=0.5

The split (fixed on 2026-12-01, before any tuning of Azure v2, issue 14):

* DEVELOPMENT set (``--set dev``; defaults may be tuned on it): Rastrigin-10 (1000 steps, lr
  0.05), Rastrigin-20 (3000 steps, lr 0.05: the issue's target), Ackley-10 (1000 steps, lr 0.33),
  LJ13 from the shipped start (density 1.0, 3000 steps, lr 0.01), a 1-32-32-1 tanh MLP fitting a
  1-D curve (300 steps, lr 1e-2). All float64 but the MLP (float32). Added 2026-12-07 for short
  budgets (issue 23, the early hand-over): Ackley-10 at 300 steps and a 20-D ill-conditioned
  convex quadratic with loss + 1e3 at 400 steps (lr 0.05).
* VALIDATION set (``--set val``; never tuned on, reported separately): families, sizes, starting
  densities, loss offsets and budgets the development set does not have, most of them families
  the package does not ship: a Sherrington-Kirkpatrick spin glass (64 soft spins s = tanh(x),
  1000 steps, lr 0.05), a 16-atom chain conformer in torsion space (torsion terms + LJ, 1000
  steps, lr 0.05), egg-crate-16 with loss + 1e4 (1000 steps, lr 0.05), a Frenkel-Kontorova chain
  with loss - 1e5 (500 steps, lr 0.02), a noisy regression (1-64-64-1 SiLU MLP, 800 steps, lr
  3e-3; metric: test MSE against the noise-free function), a minibatch regression (1-32-32-1
  tanh MLP, batches of 32, 1000 steps, lr 1e-3; same metric), LJ19 from a sparser start (density
  0.5, 3000 steps, lr 0.01), LJ13 from a sparse start (density 0.3, 2000 steps), Levy-30 at 500
  steps (lr 0.1), and a two-moons ReLU MLP classifier at lr 1e-3, 1e-2 and 1e-1 (500 steps each).

Definitions of every problem (builder, loss, budget, lr, metric, success rule):
``benchmarks/heldout_problems.py``; ``python benchmarks/heldout_problems.py`` lists them. The
tables and their statistics: ``benchmarks/heldout_tables.py``.

Protocol. Every optimizer gets the problem's lr and budget, no scheduler, no clipping, and the same
initial parameters per seed (the problem is built under ``torch.manual_seed(seed)``; the
parameters' hash is recorded with each run, and ``torch.manual_seed(seed)`` is set again before
the optimizer is made, so Azure's own generator is seeded too). The budget counts loss
evaluations. Loop modes, the three ways a user meets Azure:

* ``closure``: ``opt.step(closure)`` until the closure has been called ``steps`` times (closure:
  zero_grad, loss, backward, return loss);
* ``plain``: ``steps`` times ``loss = f(); loss.backward(); opt.step()``;
* ``plain_loss``: the same with ``opt.step(loss=loss)``; "unavailable" while Azure's ``step``
  takes no ``loss``.

Optimizers: ``adam`` = ``torch.optim.Adam(params, lr)`` (one run per seed serves every mode:
Adam's update does not depend on how the loss reaches it); ``azure`` = ``Azure(params, lr=lr,
total_steps=steps)``, or ``sa_steps=int(0.9 * steps)`` where Azure does not take
``total_steps`` yet (the output says so); with ``--azure-kw``, also ``azure_kw`` ("Azure+kw"),
the same plus the given keyword overrides (Python literals; ``settings.<field>=value`` entries
build an ``azure_sciml.optim.Settings`` of the algorithm's fixed constants, for ablations), and
two more tables: Azure+kw vs Adam and Azure+kw vs Azure.

Metric: the problem's ground truth on the FINAL parameters (what the user gets; lower is better):
gap to the known or reference minimum, test MSE, or the final loss where no minimum is known (the
problem says which). Also recorded per run (JSON): the final loss, the best loss among the loop's
evaluations (which precede the last update), success where defined (LJ: gap < 1e-4; egg-crate:
f < 1e-3), Azure's ``stats()``, the warnings raised, wall and CPU seconds.

Table: medians [interquartile range] over seeds, ratio of medians (Azure / Adam, where both are
>= 0), paired wins/ties/losses (ties within the problem's ``tie_tol``), and the verdict of
``azure_sciml.report.paired``, the report's rule: the two-sided Wilcoxon signed-rank p of the
paired differences (of logarithms where every value is positive; ties dropped; 1.0 when all are
ties), and at p < 0.05 ``better`` or ``WORSE`` by the side the signed ranks lean to, else ``not
worse``. A failed or non-finite run counts as the worst result (inf).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import math
import multiprocessing
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine  # noqa: E402
from heldout_problems import MODES, SETS, Problem, build_seeded, fingerprint  # noqa: E402
from heldout_tables import (  # noqa: E402, F401  (compare, header: the tables' API)
    ADAM_MODE,
    LABELS,
    compare,
    comparisons,
    header,
    markdown,
    notes,
    summarise,
)

from azure_sciml import Azure  # noqa: E402


@dataclass(frozen=True)
class Task:
    set_name: str
    problem: str
    optimizer: str  # adam | azure | azure_kw
    mode: str
    seed: int
    azure_kw: tuple[tuple[str, object], ...] = ()
    steps: int | None = None  # None: the problem's budget (else a smoke-test override)


def azure_api() -> dict[str, bool]:
    """Which of the new library-path arguments this Azure takes."""
    return {
        "total_steps": "total_steps" in inspect.signature(Azure).parameters,
        "step_loss": "loss" in inspect.signature(Azure.step).parameters,
    }


def make_optimizer(task: Task, params: list, problem: Problem):
    """(optimizer, how its run length was given)."""
    if task.optimizer == "adam":
        return torch.optim.Adam(params, lr=problem.lr), None
    kw = dict(task.azure_kw) if task.optimizer == "azure_kw" else {}
    research = {
        k.removeprefix("settings."): kw.pop(k) for k in list(kw) if k.startswith("settings.")
    }
    if research:  # the algorithm's fixed constants, for ablations: settings.stall_tol=1e-4
        from azure_sciml.optim import Settings

        kw["settings"] = Settings(**research)
    if azure_api()["total_steps"]:
        kw.setdefault("total_steps", problem.steps)
        return Azure(params, lr=problem.lr, **kw), "total_steps"
    kw.setdefault("sa_steps", int(0.9 * problem.steps))
    return Azure(params, lr=problem.lr, **kw), "sa_steps=int(0.9*steps) (no total_steps)"


def run_task(task: Task) -> dict:
    """One run; a dict of JSON-able results (``status``: ok, unavailable or error)."""
    torch.set_num_threads(1)
    problem = get_problem(task.set_name, task.problem, task.steps)
    record = asdict(task) | {"azure_kw": dict(task.azure_kw), "steps": problem.steps}
    if task.mode == "plain_loss" and task.optimizer != "adam" and not azure_api()["step_loss"]:
        return record | {"status": "unavailable", "reason": "Azure.step takes no loss="}
    model = build_seeded(problem, task.seed)
    record["init_hash"] = fingerprint(model)
    torch.manual_seed(task.seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opt, run_length = make_optimizer(task, list(model.parameters()), problem)
            losses = LOOPS[task.mode if task.optimizer != "adam" else "plain"](opt, model, problem)
            metrics = problem.metric(model)
    except Exception as error:  # noqa: BLE001 - a failed run is a result (the worst)
        return record | {"status": "error", "reason": f"{type(error).__name__}: {error}"}
    record["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    finite = [v for v in losses if math.isfinite(v)]
    with torch.no_grad():
        final_loss = float(problem.loss(model))
    record |= {
        "status": "ok", "run_length": run_length, "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu_start,
        "evals": len(losses), "metric": metrics.pop("metric"), "extra": metrics,
        "final_loss": final_loss, "best_loss": min(finite) if finite else math.nan,
        "n_nonfinite": len(losses) - len(finite),
    }
    if problem.success_gap is not None:
        record["success"] = bool(record["metric"] < problem.success_gap)
    if hasattr(opt, "stats"):
        record["stats"] = {k: _plain(v) for k, v in opt.stats().items()}
    return record


def get_problem(set_name: str, name: str, steps: int | None = None) -> Problem:
    problem = SETS[set_name]()[name]
    return problem if steps is None else replace(problem, steps=steps)


def closure_loop(opt, model, problem: Problem) -> list[float]:
    losses: list[float] = []

    def closure():
        opt.zero_grad()
        loss = problem.loss(model)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    for _ in range(2 * problem.steps):  # guard: an optimizer that never calls the closure
        if len(losses) >= problem.steps:
            break
        opt.step(closure)
    return losses


def plain_loop(opt, model, problem: Problem, hand_over: bool = False) -> list[float]:
    losses: list[float] = []
    for _ in range(problem.steps):
        opt.zero_grad()
        loss = problem.loss(model)
        loss.backward()
        losses.append(float(loss.detach()))
        if hand_over:
            opt.step(loss=loss)
        else:
            opt.step()
    return losses


LOOPS = {
    "closure": closure_loop,
    "plain": plain_loop,
    "plain_loss": lambda opt, model, problem: plain_loop(opt, model, problem, hand_over=True),
}


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else value


# --------------------------------------------------------------------------- tasks and runs


def tasks_for(set_name: str, problems: list[str], modes: list[str], seeds: list[int],
              azure_kw: dict, steps: int | None = None) -> list[Task]:
    problem_set = SETS[set_name]()
    kw = tuple(sorted(azure_kw.items()))
    out = []
    for name in problems:
        problem = problem_set[name]
        for seed in seeds:
            out.append(Task(set_name, name, "adam", ADAM_MODE, seed, steps=steps))
            for mode in (m for m in modes if m in problem.modes):
                out.append(Task(set_name, name, "azure", mode, seed, steps=steps))
                if kw:
                    out.append(Task(set_name, name, "azure_kw", mode, seed, kw, steps))
    return out


def run_all(tasks: list[Task], jobs: int, log=sys.stderr) -> list[dict]:
    """Every task's record, ``jobs`` processes; a line per finished problem on ``log``."""
    left = {}
    for t in tasks:
        left[t.problem] = left.get(t.problem, 0) + 1
    records, start = [], time.perf_counter()

    def finished(record):
        records.append(record)
        left[record["problem"]] -= 1
        if left[record["problem"]] == 0:
            mine = [r for r in records if r["problem"] == record["problem"]]
            errors = sum(r["status"] == "error" for r in mine)
            cpu = sum(r.get("cpu_s", 0.0) for r in mine)
            print(f"[{time.perf_counter() - start:7.1f} s] {record['problem']}: {len(mine)} runs "
                  f"({cpu:.1f} CPU s, {errors} errors)", file=log, flush=True)

    if jobs <= 1:
        for t in tasks:
            finished(run_task(t))
    else:
        with multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker_init) as pool:
            for record in pool.imap_unordered(run_task, tasks):
                finished(record)
    return records


def _worker_init():
    torch.set_num_threads(1)


# --------------------------------------------------------------------------- command line


def parse_kw(items: list[str]) -> dict:
    """``key=value`` pairs, values as Python literals (``T0=0.5``, ``sa_relax=None``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.removeprefix("settings.").isidentifier():
            raise SystemExit(f"--azure-kw: expected key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            message = f"--azure-kw: {key}'s value {value!r} is not a Python literal"
            raise SystemExit(message) from None
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="set_name", choices=sorted(SETS), default="dev")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--problems", default="", help="comma-separated subset of the set")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated loop modes")
    parser.add_argument("--azure-kw", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra Azure keyword arguments (adds the azure_kw optimizer)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, help="write the per-run JSON here")
    parser.add_argument("--steps", type=int, help="override every budget (smoke tests only: "
                        "the results are not the benchmark's)")
    args = parser.parse_args(argv)
    problem_set = SETS[args.set_name]()
    args.problems = args.problems.split(",") if args.problems else list(problem_set)
    unknown = [p for p in args.problems if p not in problem_set]
    if unknown:
        parser.error(f"--problems: {unknown} not in the {args.set_name} set {list(problem_set)}")
    args.modes = args.modes.split(",")
    if bad := [m for m in args.modes if m not in MODES]:
        parser.error(f"--modes: {bad} not among {list(MODES)}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    args.azure_kw = parse_kw(args.azure_kw)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # the runs are in worker processes (or inline, one thread)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    tasks = tasks_for(args.set_name, args.problems, args.modes, seeds, args.azure_kw, args.steps)
    print(f"{len(tasks)} runs, {args.jobs} jobs, Azure API {azure_api()}", file=sys.stderr)
    start = time.perf_counter()
    records = run_all(tasks, args.jobs)
    elapsed = time.perf_counter() - start
    title = f"Held-out benchmark, {args.set_name} set, {args.seeds} paired seeds"
    if args.steps is not None:
        title += f", every budget overridden to {args.steps} steps (smoke run)"
    if args.azure_kw:
        title += f"; Azure+kw: Azure with {args.azure_kw}"
    print(f"## {title}\n")
    rows = []
    for baseline, candidate in comparisons(bool(args.azure_kw)):
        mine = summarise(records, args.set_name, args.problems, args.modes, baseline, candidate)
        print(f"### {LABELS[candidate]} vs {LABELS[baseline]}\n\n"
              f"{markdown(mine, baseline, candidate)}\n")
        rows += mine
    problems = {name: get_problem(args.set_name, name, args.steps) for name in args.problems}
    for line in notes(records, problems):
        print(f"- {line}")
    cmd = command("heldout.py", argv)
    cpu = sum(r.get("cpu_s", 0.0) for r in records)
    print(f"\n`{cmd}`: {elapsed:.0f} s wall, {cpu:.0f} CPU s in the runs; "
          f"{machine(torch.device('cpu'))}")
    if args.out:
        _write_json(args.out, {
            "set": args.set_name, "command": cmd, "machine": machine(torch.device("cpu")),
            "elapsed_s": elapsed, "cpu_s": cpu, "jobs": args.jobs, "seeds": seeds,
            "modes": args.modes,
            "azure_api": azure_api(), "azure_kw": args.azure_kw,
            "problems": {name: problem.spec() for name, problem in problems.items()},
            "summary": rows, "runs": sorted(records, key=_order),
        })
    return 0


def _order(r: dict):
    return (r["problem"], r["optimizer"], r["mode"], r["seed"])


def _write_json(path: Path, data: dict) -> None:
    from azure_sciml.runs import write_json_atomic

    write_json_atomic(path, json.loads(json.dumps(data, default=str)))


if __name__ == "__main__":
    raise SystemExit(main())
