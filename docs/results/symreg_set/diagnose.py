"""The measured failure classification of diagnosis.md (symreg_set, seeds 0-9, Adam's runs).

    python docs/results/symreg_set/diagnose.py train    # Adam as symreg_set trains it; models
    python docs/results/symreg_set/diagnose.py analyse  # objective of fit and truth; new read-out
    python docs/results/symreg_set/diagnose.py explore RUNS VARIANT  # Azure, proposals forced on
    python docs/results/symreg_set/diagnose.py table    # diagnosis.md's table

(``explore`` prints a JSON line per run: redirect it to $SYMREG_DIAG/explore_VARIANT.jsonl.)
J is the training objective (normalised MSE + sparsity * sum sqrt(share)) at least-squares
constants (``SymbolicRegression._polish``): "fit" on the terms the thresholding keeps from the
trained model, "truth" on the hand-set ground truth of tests/test_symreg.py. RUNS: target:seed,...;
VARIANT: ``all`` (sa_patience=0) or ``inner`` (sa_patience=0, proposals on frequencies and rates
only, sigma 0 on the coefficients). Files go to $SYMREG_DIAG (default /tmp/symreg_diag).
Run with OMP_NUM_THREADS=1 (as the sweep's provenance says: float32 runs depend on the threads).
"""

import copy
import functools
import json
import os
import sys
from pathlib import Path

import torch

from azure_sciml import Azure
from azure_sciml.problems.symreg import TARGETS, SymbolicRegression, is_recovered
from azure_sciml.train import fit

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from test_symreg import TRUTH_BY_HAND  # noqa: E402

OUT = Path(os.environ.get("SYMREG_DIAG", "/tmp/symreg_diag"))
ORDER = ["damped_oscillation", "nguyen1", "rc_charging", "square_wave", "x_sin_x", "spring_energy"]
SPLITS = {("damped_oscillation", s) for s in (2, 3, 4, 5)} | {("square_wave", s) for s in (0, 1, 9)}
READOUT = {("square_wave", 5), ("rc_charging", 4), ("rc_charging", 5)}


def schedule(problem):
    milestones = [int(0.9 * problem.steps), int(0.95 * problem.steps)]
    return functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=milestones, gamma=0.1)


def train(runs, variant="adam"):
    (OUT / "models").mkdir(parents=True, exist_ok=True)
    for target, seed in runs:
        problem = SymbolicRegression(target=target)

        def factory(params, problem=problem):
            if variant == "adam":
                return torch.optim.Adam(params, lr=problem.lr)
            kw = dict(lr=problem.lr, total_steps=problem.steps, sa_patience=0)
            if variant == "inner":  # frequencies and rates are the 2-d parameters
                params = list(params)
                inner = [p for p in params if p.dim() == 2]
                outer = [p for p in params if p.dim() != 2]
                return Azure([{"params": inner}, {"params": outer, "sigma": 0.0}], **kw)
            return Azure(params, **kw)

        r = fit(problem, factory, seed=seed, dtype=torch.float32, scheduler=schedule(problem))
        saved = {"state": r.model.state_dict(), "metrics": r.metrics, "final_loss": r.final_loss}
        torch.save(saved, OUT / "models" / f"{target}_{seed}_{variant}.pt")
        stats = r.optimizer.stats() if variant != "adam" else {}
        row = dict(
            target=target,
            seed=seed,
            variant=variant,
            rec=r.metrics["recovered"],
            loss=r.final_loss,
            expr=r.metrics["expression"],
            **stats,
        )
        print(json.dumps(row), flush=True)


def objective(problem, model, keep, x, y):
    work = copy.deepcopy(model).double()
    for p in work.parameters():
        p.requires_grad_(False)
    return problem._polish(work, keep, x, y)  # (J, coefficients, normalised MSE)


def analyse():
    rows = []
    for target in ORDER:
        for seed in range(10):
            saved = torch.load(OUT / "models" / f"{target}_{seed}_adam.pt", weights_only=False)
            problem = SymbolicRegression(target=target)
            torch.manual_seed(seed)
            model = problem.build(torch.device("cpu"), torch.float32)
            model.load_state_dict(saved["state"])
            x, y = problem.x_train.double(), problem.y_train.double()
            j_fit, _, mse_fit = objective(problem, model, problem._refit(model) != 0, x, y)
            truth = copy.deepcopy(model)
            with torch.no_grad():
                for bank in truth.banks():
                    bank.coef.zero_()
                TRUTH_BY_HAND[target](truth)
            keep = truth.coefficients().detach() != 0
            j_truth, _, mse_truth = objective(problem, truth, keep, x, y)
            _, _, log = problem._simplify(model)
            expr, spec = problem.expression(model), TARGETS[target]
            rows.append(
                dict(
                    target=target,
                    seed=seed,
                    old_rec=saved["metrics"]["recovered"],
                    old_expr=saved["metrics"]["expression"],
                    J_fit=j_fit,
                    nmse_fit=mse_fit,
                    J_truth=j_truth,
                    nmse_truth=mse_truth,
                    log=log,
                    new_expr=str(expr),
                    new_rec=float(is_recovered(expr, spec.truth, spec.symbols, spec.domain)),
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    (OUT / "analysis.json").write_text(json.dumps(rows, indent=1))


def kind(row) -> str:
    key = (row["target"], row["seed"])
    if key in SPLITS:
        return "(a) degenerate split"
    if key in READOUT:
        return "(c) read-out"
    return "(d) objective prefers it" if row["J_fit"] < row["J_truth"] else "(b) local minimum"


def table():
    rows = json.loads((OUT / "analysis.json").read_text())
    explored = {}
    for variant in ("all", "inner"):
        path = OUT / f"explore_{variant}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        for r in map(json.loads, lines):
            explored[(r["target"], r["seed"], variant)] = "**yes**" if r["rec"] == 1 else "no"
    print(
        "| problem | seed | read-out before | type | J fit | J truth | nMSE fit | read-out after"
        " | forced exploring recovers (all / inner) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["old_rec"] == 1:
            continue
        k = kind(r)
        after = "**recovered**" if r["new_rec"] == 1 else f"`{r['new_expr']}`"
        key = (r["target"], r["seed"])
        cells = [explored.get((*key, v), "–") for v in ("all", "inner")]
        expl = " / ".join(cells) if k.startswith("(b)") else ""
        name = "symreg" if r["target"] == "damped_oscillation" else f"symreg_{r['target']}"
        print(
            f"| {name} | {r['seed']} | `{r['old_expr']}` | {k} | {r['J_fit']:.3g} |"
            f" {r['J_truth']:.3g} | {r['nmse_fit']:.1e} | {after} | {expl} |"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    command = sys.argv[1]
    if command == "train":
        train([(t, s) for t in ORDER for s in range(10)])
    elif command == "explore":
        runs = [(t, int(s)) for t, s in (r.split(":") for r in sys.argv[2].split(","))]
        train(runs, sys.argv[3])
    elif command == "analyse":
        analyse()
    else:
        table()
