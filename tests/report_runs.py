"""Synthetic run dirs as azure_sciml.app writes them, for the report's tests."""

import csv
import json


def write_run(root, name, problem="heat", optimizer="azure", seed=0, value=1.0, **fields):
    """A result.json as azure_sciml.app writes it, with ``value`` as the headline metric."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    evals = list(range(1, 101))
    record = {
        "problem": problem,
        "optimizer": optimizer,
        "seed": seed,
        "status": "ok",
        "headline_metric": "err",
        "metrics": {"err": value, "recovered": float(value < 0.5), "formula": "x + 1"},
        "best_metrics": {"err": value},
        "final_loss": value,
        "n_loss_evals": 100,
        "n_grad_evals": 100,
        "wall_time_s": 0.5,
        "history": {"evals": evals, "loss": [value * (1 + 100 / e) for e in evals]},
        "optimizer_stats": {"n_proposals": 5, "n_accepted": 3} if optimizer == "azure" else None,
        **fields,
    }
    (run_dir / "result.json").write_text(json.dumps(record))
    return run_dir


def write_sweep(root, azure_values, adam_values, problem="heat"):
    for seed, (azure, adam) in enumerate(zip(azure_values, adam_values, strict=True)):
        write_run(root, f"{problem}_azure_{seed}", problem, "azure", seed, azure)
        write_run(root, f"{problem}_adam_{seed}", problem, "adam", seed, adam)


def write_missing_job(root, name, problem="heat", optimizer="adam", seed=7):
    """A job dir as Hydra leaves it when the job dies before writing result.json."""
    hydra_dir = root / name / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "config.yaml").write_text(
        f"seed: {seed}\nproblem:\n  _target_: azure_sciml.problems.heat.Heat\n"
    )
    (hydra_dir / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n"
        f"      problem: {problem}\n      optimizer: {optimizer}\n"
        "  overrides:\n    task: []\n"
    )


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def comparison_rows(root):
    return {row["problem"]: row for row in read_csv(root / "comparison.csv")}


def write_targets(root, *targets):
    """The sweep's config as Hydra records it (``multirun.yaml``), with a ``targets`` list."""
    (root / "multirun.yaml").write_text(json.dumps({"seed": 0, "targets": list(targets)}))


def targets_table(text):
    section = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
