"""The report's tables: one section per problem (metrics, costs, optimizer counters, text metrics,
solution figures), the runs that are not ok, and the markdown and CSV writers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from azure_sciml.report.stats import (
    COST_KEYS,
    RATE_WORDS,
    Run,
    flat,
    fmt,
    headline,
    label,
    metric_names,
    quantity,
    scored,
    seed_key,
    solution_run,
)

SHARED_KEYS = ("problem", "dtype", "clip_grad_norm")  # config every optimizer must share
NON_NEGATIVE = ("gap",)  # distances to a known minimum: >= 0 up to the reference's rounding
REFERENCE_ROUNDING = 5e-7  # known minima (Lennard-Jones E*) are tabulated to 6 decimals


def run_row(run: Run) -> dict[str, Any]:
    """A run as a flat ``runs.csv`` row (for spreadsheets; ``runs.jsonl`` is the full table)."""
    row = {key: run.get(key) for key in ("problem", "optimizer", "seed", "status", "dir")}
    row.update({f"metric.{k}": v for k, v in (run.get("metrics") or {}).items()})
    row.update({key: run.get(key) for key in COST_KEYS})
    row.update({f"stats.{k}": v for k, v in (run.get("optimizer_stats") or {}).items()})
    row["message"] = run.get("message", "")
    return row


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def problem_section(
    problem: str, by_opt: Mapping[str, list[Run]], stats: Mapping, link
) -> list[str]:
    runs = flat(by_opt)
    names = metric_names(runs)
    lines = [f"## {problem}", "", f"Headline metric: `{headline(runs)}`.", ""]
    for note in consistency_notes(by_opt):
        lines += [f"**Warning:** {note}.", ""]
    header = ["optimizer", "scored runs", *[f"`{n}`" for n in names], "loss evals", "grad evals",
              "wall s", "SA proposals (accepted)"]  # fmt: skip
    rows = []
    for optimizer, opt_runs in by_opt.items():
        ok = scored(opt_runs)
        cells = [metric_cell(name, ok, stats[problem, optimizer, name]) for name in names]
        costs = [fmt(stats[problem, optimizer, key]["median"]) for key in COST_KEYS[1:]]
        rows.append(
            [
                label(optimizer),
                run_counts(opt_runs),
                *cells,
                *costs,
                proposal_cell(stats, problem, optimizer),
            ]
        )
    lines += md_table(header, rows)
    lines += ["", PROPOSALS_NOTE, ""]
    lines += round_off_note(headline(runs), by_opt)
    return lines + text_metric_table(by_opt) + figure_table(by_opt, link)


PROPOSALS_NOTE = (
    "SA proposals: median per run of the Metropolis proposals Azure made (accepted ones in "
    "brackets); 0 means the loss never settled, so Azure ran as plain Adam throughout."
)


def round_off_note(metric: str | None, by_opt: Mapping[str, list[Run]]) -> list[str]:
    """A distance to a known minimum (``gap``) below 0: the reference minimum's rounding (within
    :data:`REFERENCE_ROUNDING`), else a run below the reference, which deserves a look."""
    if metric not in NON_NEGATIVE:
        return []
    values = [v for run in scored(flat(by_opt)) if (v := quantity(run, metric)) < 0]
    if not values:
        return []
    lowest, where = min(values), f"`{metric}` below 0 on {len(values)} runs (down to"
    if lowest >= -REFERENCE_ROUNDING:
        return [
            f"{where} {fmt(lowest)}): the reference minimum is tabulated to 6 decimals, so "
            "these runs are at the known minimum; read them as 0. The pairing compares the values "
            "as they are: such near-ties weigh almost nothing in the signed-rank test.",
            "",
        ]
    return [f"**Warning:** {where} {fmt(lowest)}): below the known minimum by more than its "
            "rounding; check the run and the reference.", ""]  # fmt: skip


def proposal_cell(stats: Mapping, problem: str, optimizer: str) -> str:
    """Median proposals (accepted) for optimizers that count them, else a dash."""
    made = stats.get((problem, optimizer, "stats.n_proposals"))
    accepted = stats.get((problem, optimizer, "stats.n_accepted"))
    if not made or not accepted or made["median"] is None:
        return "–"
    return f"{fmt(made['median'])} ({fmt(accepted['median'])})"


def consistency_notes(by_opt: Mapping[str, list[Run]]) -> list[str]:
    """What would make the comparison unfair: settings that differ, seeds run twice."""
    runs = [run for run in flat(by_opt) if run.get("config")]
    notes = [
        f"runs differ in `{key}` ({n} variants), so the optimizers did not face the same task"
        for key in SHARED_KEYS
        if (n := len({json.dumps(run["config"].get(key), sort_keys=True) for run in runs})) > 1
    ]
    for optimizer, opt_runs in by_opt.items():
        seeds = [run.get("seed") for run in opt_runs]
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1}, key=str)
        if repeated:
            notes.append(
                f"{label(optimizer)} ran seed(s) {repeated} more than once: every run is in the "
                "statistics, the last one found in the pairing"
            )
    return notes


def text_metric_table(by_opt: Mapping[str, list[Run]]) -> list[str]:
    """Non-numeric metrics (e.g. symbolic regression's read-out formula), one row per run."""
    names = metric_names(flat(by_opt), numeric=False)
    if not names:
        return []
    rows = [
        [label(optimizer), run.get("seed"), *[f"`{run['metrics'].get(n, '')}`" for n in names]]
        for optimizer, runs in by_opt.items()
        for run in scored(runs)
    ]
    return md_table(["optimizer", "seed", *names], rows)


def metric_cell(name: str, runs: Sequence[Run], stat: Mapping[str, float]) -> str:
    values = [quantity(run, name) for run in runs]
    if RATE_WORDS.search(name) and values and all(v in (0.0, 1.0) for v in values):
        return f"{int(sum(values))}/{len(values)} ({100 * sum(values) / len(values):.0f}%)"
    return f"{fmt(stat['median'])} [{fmt(stat['q1'])}, {fmt(stat['q3'])}]"


def run_counts(runs: Sequence[Run]) -> str:
    text = f"{len(scored(runs))}/{len(runs)}"
    bad = {s: sum(run["status"] == s for run in runs) for s in ("diverged", "failed", "missing")}
    notes = ", ".join(f"{n} {s}" for s, n in bad.items() if n)
    return f"{text} ({notes})" if notes else text


def figure_table(by_opt: Mapping[str, list[Run]], link) -> list[str]:
    """The problem's own picture of the solution, lowest seed per optimizer; ``link`` turns a path
    relative to the runs' dir into one relative to the report."""
    cells = {
        optimizer: run for optimizer, runs in by_opt.items() if (run := solution_run(runs))
    }
    if not cells:
        return []
    names = {o: f"{label(o)}, seed {run.get('seed')}" for o, run in cells.items()}
    images = [f"![{names[o]}]({link(run['figure'])})" for o, run in cells.items()]
    title = "Solutions (the lowest seed of each optimizer):"
    return [title, "", *md_table(names.values(), [images])]


def unscored_section(runs: Sequence[Run]) -> list[str]:
    bad = [run for run in runs if run["status"] != "ok"]
    if not bad:
        return ["## Runs not ok", "", "None: every run finished with status ok.", ""]
    header = ["problem", "optimizer", "seed", "status", "message", "dir"]
    rows = [
        [
            run.get("problem"),
            run.get("optimizer"),
            run.get("seed"),
            f"**{run['status']}**",
            _one_line(run.get("message", "")),
            f"`{run['dir']}`",
        ]  # fmt: skip
        for run in sorted(bad, key=lambda r: (r["status"], str(r.get("problem")), seed_key(r)))
    ]
    return [f"## Runs not ok ({len(bad)})", "", *md_table(header, rows)]


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
