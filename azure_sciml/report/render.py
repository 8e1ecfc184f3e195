"""The report's text: ``report.md`` (verdict, targets, convergence, a section per problem, runs
not ok) and the CSV tables."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from azure_sciml.report.paired import Comparison, smallest_p
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
)  # fmt: skip
from azure_sciml.report.targets import Goal

SHARED_KEYS = ("problem", "dtype", "clip_grad_norm")  # config every optimizer must share


def run_row(run: Run) -> dict[str, Any]:
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


def render_markdown(
    root, runs, groups, summary, comparisons, goals, curves, baseline, alpha
) -> str:
    statuses = ("ok", "diverged", "failed", "missing")
    counts = {s: sum(run["status"] == s for run in runs) for s in statuses}
    lines = [
        "# azure_sciml report",
        "",
        f"`{root}`: {len(runs)} runs — " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".",
        "",
        "Each problem's headline metric is lower-is-better (other metrics as the problem defines "
        "them, e.g. `r2`: higher is better). Cells show the median [quartile 1, quartile 3] over "
        "seeds. Diverged runs are scored at the weights they stopped at; failed and missing runs "
        "have no score and are listed at the end.",
        "",
        *verdict_section(comparisons, baseline, alpha),
        *targets_section(goals),
    ]
    if curves is not None:
        lines += ["## Convergence", "", f"![convergence]({curves.name})", ""]
    stats = {(r["problem"], r["optimizer"], r["quantity"]): r for r in summary}
    for problem, by_opt in groups.items():
        lines += problem_section(problem, by_opt, stats)
    lines += unscored_section(runs)
    return "\n".join(lines)


def targets_section(goals: Sequence[Goal]) -> list[str]:
    if not goals:
        return []
    words = {True: "**met**", False: "**not met**", None: "not judged"}
    rows = [[goal.text, goal.measured, words[goal.met]] for goal in goals]
    note = (
        "Targets of this experiment (its config's `targets`), judged on the runs above, each "
        "against its baseline (Adam unless it names another); rates count failed and missing "
        "runs as misses, medians count them as the worst."
    )
    return ["## Targets", "", *md_table(["target", "measured", "met?"], rows), note, ""]


def verdict_section(comparisons: Sequence[Comparison], baseline: str, alpha: float) -> list[str]:
    lines = [f"## Verdict: paired with {label(baseline)} by seed", ""]
    if not comparisons:
        return lines + [f"No {label(baseline)} runs to pair with, so no verdict.", ""]
    header = ["problem", "optimizer", "metric", "pairs", "better on", "median ratio", "p (test)",
              "Verdict"]  # fmt: skip
    rows = [
        [
            c.problem,
            label(c.optimizer),
            f"`{c.metric}`",
            c.n_pairs,
            f"{c.better}/{c.n_pairs}",
            fmt(c.median_ratio),
            f"{fmt(c.p_value)} ({c.test})",
            f"**{c.verdict}**",
        ]  # fmt: skip
        for c in comparisons
    ]
    n = max(c.n_pairs for c in comparisons)
    notes = [
        f'"better on k/n": seeds on which the optimizer\'s headline metric is lower than '
        f"{label(baseline)}'s; median ratio: optimizer / {label(baseline)} (below 1: optimizer "
        f"better). Significance level {alpha}. With {n} pairs the smallest possible two-sided p is "
        f"{fmt(smallest_p(n))}"
        + (
            ", so no difference can be significant: run more seeds."
            if smallest_p(n) >= alpha
            else "."
        ),  # fmt: skip
        "",
    ]
    return lines + md_table(header, rows) + notes


def problem_section(problem: str, by_opt: Mapping[str, list[Run]], stats: Mapping) -> list[str]:
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
    return lines + text_metric_table(by_opt) + figure_table(by_opt)


PROPOSALS_NOTE = (
    "SA proposals: median per run of the Metropolis proposals Azure made (accepted ones in "
    "brackets); 0 means the loss never settled, so Azure ran as plain Adam throughout."
)


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


def figure_table(by_opt: Mapping[str, list[Run]]) -> list[str]:
    """The problem's own picture of the solution, lowest seed per optimizer."""
    cells = {}
    for optimizer, runs in by_opt.items():
        run = next((r for r in scored(runs) if r.get("figure")), None)
        if run is not None:
            path = f"{run['dir']}/{run['figure']}"
            cells[optimizer] = f"![{label(optimizer)} seed {run.get('seed')}]({path})"
    if not cells:
        return []
    return ["Solutions (lowest seed):", "", *md_table([label(o) for o in cells], [cells.values()])]


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
