"""``report.md``: where the runs came from (and what produced them), the paired verdict, the
targets, the convergence figure, then a section per problem and the runs that are not ok."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure_sciml.report.figures import Convergence
from azure_sciml.report.paired import Comparison, smallest_p
from azure_sciml.report.stats import Groups, Run, fmt, label
from azure_sciml.report.tables import md_table, problem_section, unscored_section
from azure_sciml.report.targets import TARGETS_FILE, Goal
from azure_sciml.runs import PROVENANCE_KEYS, provenance_differences

STATUSES = ("ok", "diverged", "failed", "missing")


@dataclass
class Report:
    """Everything ``report.md`` shows. ``root``: where the runs were read; ``out``: where the
    report is written (figure links are relative to it)."""

    root: Path
    out: Path
    runs: list[Run]
    groups: Groups
    summary: list[dict[str, Any]]
    comparisons: list[Comparison]
    goals: list[Goal]
    convergence: Convergence | None
    baseline: str
    alpha: float

    def link(self, path: str) -> str:
        """A path relative to ``root`` as a link from ``out``."""
        return Path(os.path.relpath(self.root / path, self.out)).as_posix()


def render_markdown(report: Report) -> str:
    runs = report.runs
    counts = ", ".join(f"{sum(run['status'] == s for run in runs)} {s}" for s in STATUSES)
    lines = [
        "# azure_sciml report",
        "",
        f"{source(runs, report.root)}: {len(runs)} runs — {counts}.",
        "",
        "Each problem's headline metric is lower-is-better (other metrics as the problem defines "
        "them, e.g. `r2`: higher is better). Cells show the median [quartile 1, quartile 3] over "
        "seeds. Diverged runs are scored at the weights they stopped at; failed and missing runs "
        "have no score and are listed at the end.",
        "",
        *provenance_section(runs),
        *verdict_section(report.comparisons, report.baseline, report.alpha),
        *targets_section(report.goals, set_later=(report.root / TARGETS_FILE).is_file()),
        *convergence_section(report.convergence),
    ]
    stats = {(r["problem"], r["optimizer"], r["quantity"]): r for r in report.summary}
    for problem, by_opt in report.groups.items():
        lines += problem_section(problem, by_opt, stats, report.link)
    lines += unscored_section(runs)
    return "\n".join(lines)


def source(runs: Sequence[Run], root: Path) -> str:
    """The sweep the runs were read from: the dir, or the one their table names."""
    sweeps = sorted({str(run["sweep"]) for run in runs if "sweep" in run})
    if not sweeps:
        return f"`{root}`"
    return ", ".join(f"`{s}`" for s in sweeps) + " (read from its table, `runs.jsonl`)"


def provenance_section(runs: Sequence[Run]) -> list[str]:
    """What produced the runs (code, torch, machine, threads, device, dtype), and where the runs
    differ in it; nothing for runs recorded before result.json had provenance."""
    records = [run.get("provenance") for run in runs]
    records = [record if isinstance(record, Mapping) else {} for record in records]
    if not any(records):
        return []
    differ = provenance_differences(runs)  # runs without provenance count as None
    present = {key for record in records for key in record}
    keys = dict.fromkeys([*(k for k in PROVENANCE_KEYS if k in present), *sorted(present)])
    rows = []
    for key in keys:
        seen = Counter(str(record.get(key)) for record in records)
        if key not in differ and len(seen) == 1:
            rows.append([f"`{key}`", next(iter(seen))])
            continue
        variants = "; ".join(f"{value} ({n} runs)" for value, n in sorted(seen.items()))
        rows.append([f"`{key}`", f"**differs**: {variants}"])
    lines = ["## Provenance", "", *md_table(["field", "value"], rows)]
    if any(row[1].startswith("**differs**") for row in rows):
        warning = (
            "**Warning:** the runs differ in what produced them (rows marked differs): float32 "
            "results can change with the CPU, the thread count or the torch version."
        )
        lines += [warning, ""]
    if missing := sum(not record for record in records):
        lines += [f"{missing} of {len(runs)} runs record no provenance.", ""]
    return lines


def verdict_section(comparisons: Sequence[Comparison], baseline: str, alpha: float) -> list[str]:
    lines = [f"## Verdict: paired with {label(baseline)} by seed", ""]
    if not comparisons:
        return lines + [f"No {label(baseline)} runs to pair with, so no verdict.", ""]
    header = ["problem", "optimizer", "metric", "pairs", "better on", "median ratio", "p (test)",
              "Verdict"]  # fmt: skip
    rows = [
        [c.problem, label(c.optimizer), f"`{c.metric}`", c.n_pairs, f"{c.better}/{c.n_pairs}",
         ratio_cell(c.median_ratio), f"{fmt(c.p_value)} ({c.test})", f"**{c.verdict}**"]
        for c in comparisons
    ]  # fmt: skip
    n = max(c.n_pairs for c in comparisons)
    too_few = smallest_p(n) >= alpha
    notes = [
        f'"better on k/n": seeds on which the optimizer\'s headline metric is lower than '
        f"{label(baseline)}'s; median ratio: optimizer / {label(baseline)} (below 1: optimizer "
        "better), given only where every paired value is above 0 (a ratio of values at or below "
        f"0, like an energy gap at the minimum, means nothing). Significance level {alpha}. With "
        f"{n} pairs the smallest possible two-sided p is {fmt(smallest_p(n))}"
        + (", so no difference can be significant: run more seeds." if too_few else "."),
        "",
    ]
    return lines + md_table(header, rows) + notes


def ratio_cell(ratio: float) -> str:
    return "n/a (values ≤ 0)" if ratio != ratio else fmt(ratio)  # NaN: not all values positive


def targets_section(goals: Sequence[Goal], set_later: bool = False) -> list[str]:
    if not goals:
        return []
    words = {True: "**met**", False: "**not met**", None: "not judged"}
    rows = [[goal.text, goal.measured, words[goal.met]] for goal in goals]
    source = (
        f"set after the sweep ran (`{TARGETS_FILE}` beside the runs)"
        if set_later
        else "its config's `targets`"
    )
    note = (
        f"Targets of this experiment ({source}), judged on the runs above, each "
        "against its baseline (Adam unless it names another); rates count failed and missing "
        "runs as misses, medians count them as the worst."
    )
    return ["## Targets", "", *md_table(["target", "measured", "met?"], rows), note, ""]


def convergence_section(convergence: Convergence | None) -> list[str]:
    if convergence is None:
        return []
    caption = [
        "Lines: the median over seeds of each optimizer's loss after that many loss evaluations; "
        "bands: the middle half of the seeds (quartiles 1 to 3); log scale."
    ]
    for problem, offset in convergence.offsets.items():
        caption.append(
            f"{problem}: the loss goes below 0 (an energy), so the panel plots loss − "
            f"({offset:.6g}), a constant just below the lowest loss of any run, to keep it on "
            "the log scale."
        )
    for problem, pairs in convergence.identical.items():
        same = ", ".join(f"{label(a)}'s runs are identical to {label(b)}'s" for a, b in pairs)
        caption.append(f"{problem}: {same} (drawn dashed, over it).")
    return ["## Convergence", "", f"![convergence]({convergence.path.name})", "",
            " ".join(caption), ""]  # fmt: skip
