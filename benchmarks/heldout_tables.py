"""The held-out benchmark's tables (``benchmarks/heldout.py``): per problem and loop mode, the
candidate's metric against the baseline's over paired seeds (medians, interquartile ranges, the
ratio of medians, wins/ties/losses and ``azure_sciml.report.paired``'s verdict), success rates,
the markdown table and the notes under it."""

from __future__ import annotations

import math

import numpy as np
from _common import table
from heldout_problems import SETS, Problem

from azure_sciml.report import paired as verdicts
from azure_sciml.report.stats import describe, median

P_LEVEL = 0.05
ADAM_MODE = "any"  # Adam's single run per seed serves every mode


def paired(records: list[dict], problem: str, mode: str, candidate: str, baseline: str = "adam"):
    """{seed: (baseline metric, candidate metric)} over the seeds both have; failures as inf."""

    def by_seed(optimizer, m):
        return {
            r["seed"]: _score(r)
            for r in records
            if r["problem"] == problem and r["optimizer"] == optimizer and r["mode"] == m
        }

    base = by_seed(baseline, _mode(baseline, mode))
    cand = by_seed(candidate, mode)
    return {s: (base[s], cand[s]) for s in sorted(base) if s in cand}


def _score(record: dict) -> float:
    value = record.get("metric", math.inf) if record["status"] == "ok" else math.inf
    return value if math.isfinite(value) else math.inf


def compare(pairs: dict, tie_tol: float) -> dict:
    """Medians, IQRs, wins/ties/losses of the candidate (lower is better), the Wilcoxon p and the
    verdict, both from ``azure_sciml.report.paired``."""
    base = np.array([b for b, _ in pairs.values()], dtype=float)
    cand = np.array([c for _, c in pairs.values()], dtype=float)
    c = verdicts.compare("", "candidate", "baseline", "metric", np.stack([cand, base], axis=1),
                         alpha=P_LEVEL, tie_tol=tie_tol)  # fmt: skip
    return {
        "n": c.n_pairs,
        "base": _summary(base),
        "cand": _summary(cand),
        "ratio": _ratio(median(cand), median(base)),
        "wins": c.better,
        "ties": c.ties,
        "losses": c.worse,
        "p": c.p_value,
        "verdict": {"candidate": "better", "baseline": "WORSE"}.get(c.winner, "not worse"),
    }


def _summary(values: np.ndarray) -> dict:
    stats = describe(values)
    return {"median": stats["median"], "q1": stats["q1"], "q3": stats["q3"]}


def _ratio(cand: float, base: float) -> float | None:
    """Azure's median over Adam's where both are >= 0 (Adam's > 0) and finite, else None."""
    if base > 0 and cand >= 0 and math.isfinite(base) and math.isfinite(cand):
        return cand / base
    return None


def success_rate(records: list[dict], problem: str, optimizer: str, mode: str) -> str:
    mine = [
        r
        for r in records
        if r["problem"] == problem
        and r["optimizer"] == optimizer
        and r["mode"] == mode
        and r["status"] != "unavailable"
    ]
    return f"{sum(bool(r.get('success')) for r in mine)}/{len(mine)}"


# --------------------------------------------------------------------------- report


LABELS = {"adam": "Adam", "azure": "Azure", "azure_kw": "Azure+kw"}


def comparisons(with_kw: bool) -> list[tuple[str, str]]:
    """(baseline, candidate) pairs reported: Azure vs Adam; with --azure-kw also Azure+kw vs
    Adam and Azure+kw vs Azure (defaults)."""
    out = [("adam", "azure")]
    return out + [("adam", "azure_kw"), ("azure", "azure_kw")] if with_kw else out


def summarise(
    records: list[dict],
    set_name: str,
    problems: list[str],
    modes: list[str],
    baseline: str,
    candidate: str,
) -> list[dict]:
    """One row per problem and mode: the candidate against the baseline."""
    problem_set = SETS[set_name]()
    rows = []
    for name in problems:
        problem = problem_set[name]
        for mode in (m for m in modes if m in problem.modes):
            row = {"problem": name, "mode": mode, "baseline": baseline, "candidate": candidate}
            why = _unavailable(records, name, mode, (baseline, candidate))
            if why:
                rows.append(row | {"unavailable": why})
                continue
            row |= compare(paired(records, name, mode, candidate, baseline), problem.tie_tol)
            if problem.success_gap is not None:
                row["success_base"] = success_rate(records, name, baseline, _mode(baseline, mode))
                row["success_cand"] = success_rate(records, name, candidate, mode)
            rows.append(row)
    return rows


def _mode(optimizer: str, mode: str) -> str:
    return ADAM_MODE if optimizer == "adam" else mode


def _unavailable(records, problem, mode, optimizers) -> str | None:
    for optimizer in optimizers:
        mine = [
            r
            for r in records
            if r["problem"] == problem
            and r["optimizer"] == optimizer
            and r["mode"] == _mode(optimizer, mode)
        ]
        if mine and all(r["status"] == "unavailable" for r in mine):
            return mine[0]["reason"]
    return None


def header(baseline: str, candidate: str) -> list[str]:
    b, c = LABELS[baseline], LABELS[candidate]
    return [
        "problem",
        "mode",
        f"{b} median [IQR]",
        f"{c} median [IQR]",
        "ratio",
        "W/T/L",
        "p",
        "verdict",
        f"success {b}",
        f"success {c}",
    ]


def markdown(rows: list[dict], baseline: str, candidate: str) -> str:
    cells = []
    for row in rows:
        if "unavailable" in row:
            cells.append([row["problem"], row["mode"], "", "", "", "", "", "unavailable", "", ""])
            continue
        cells.append(
            [
                row["problem"],
                row["mode"],
                _fmt_summary(row["base"]),
                _fmt_summary(row["cand"]),
                "n/a" if row["ratio"] is None else f"{row['ratio']:.3g}",
                f"{row['wins']}/{row['ties']}/{row['losses']}",
                "n/a" if row["p"] is None else f"{row['p']:.2g}",
                row["verdict"],
                row.get("success_base", ""),
                row.get("success_cand", ""),
            ]
        )
    return table(header(baseline, candidate), cells)


def _fmt_summary(s: dict) -> str:
    return f"{s['median']:.3g} [{s['q1']:.3g}, {s['q3']:.3g}]"


def notes(records: list[dict], problems: dict[str, Problem]) -> list[str]:
    """What the table does not say: run lengths, warnings, errors, each problem's setup."""
    out = []
    lengths = {r.get("run_length") for r in records if r["optimizer"] != "adam"} - {None}
    if any("no total_steps" in s for s in lengths):
        out.append("Azure takes no total_steps here: run with sa_steps = int(0.9 * steps).")
    seen = {}
    for r in records:
        for w in r.get("warnings", []):
            seen.setdefault(w, set()).add(f"{r['optimizer']} {r['mode']}")
    for w, where in seen.items():
        out.append(f"warning in {', '.join(sorted(where))} runs: {w}")
    for r in records:
        if r["status"] == "error":
            out.append(
                f"error: {r['problem']} {r['optimizer']} {r['mode']} seed {r['seed']}: "
                f"{r['reason']}"
            )
    for name, p in problems.items():
        out.append(f"{name}: {p.steps} steps, lr {p.lr:g}; metric: {p.metric_name}")
    return out
