"""Grouping runs and summarising them over seeds: median, quartiles, min and max of every metric,
cost and optimizer counter; diverged runs are scored, failed and missing ones are not."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Run = dict[str, Any]  # a run record plus "dir" (relative to the report dir)
Groups = Mapping[str, Mapping[str, list[Run]]]  # problem -> optimizer -> runs

SCORED = ("ok", "diverged")  # statuses whose runs have metrics
COST_KEYS = ("final_loss", "n_loss_evals", "n_grad_evals", "wall_time_s")
RATE_WORDS = re.compile(r"success|recover|solved|found")  # 0/1 metrics shown as rates
LABELS = {"azure": "Azure", "adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "lbfgs": "L-BFGS",
          "bfgs": "BFGS", "ssbfgs": "SSBFGS", "ssbroyden": "SSBroyden"}


def group_runs(runs: Iterable[Run]) -> dict[str, dict[str, list[Run]]]:
    """problem -> optimizer -> runs sorted by seed (problems and optimizers in name order)."""
    groups: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[str(run.get("problem"))][str(run.get("optimizer"))].append(run)
    return {
        problem: {opt: sorted(rs, key=seed_key) for opt, rs in sorted(by_opt.items())}
        for problem, by_opt in sorted(groups.items())
    }


def seed_key(run: Run) -> tuple[bool, int]:
    seed = run.get("seed")
    return (seed is None, seed if isinstance(seed, int) else 0)


def scored(runs: Iterable[Run]) -> list[Run]:
    return [run for run in runs if run["status"] in SCORED and run.get("metrics")]


def headline(runs: Iterable[Run]) -> str | None:
    return next((run["headline_metric"] for run in runs if run.get("headline_metric")), None)


def metric_names(runs: Sequence[Run], numeric: bool = True) -> list[str]:
    """Numeric (else text, e.g. a read-out formula) metrics of a problem's runs, headline first."""
    names = dict.fromkeys(
        name
        for run in scored(runs)
        for name, value in run["metrics"].items()
        if isinstance(value, str) != numeric
    )
    first = headline(runs)
    return sorted(names, key=lambda name: (name != first, name))


def quantity(run: Run, name: str) -> float:
    """A metric, a cost (``n_loss_evals`` ...) or an optimizer counter (``stats.n_accepted``)."""
    if name.startswith("stats."):
        value = (run.get("optimizer_stats") or {}).get(name[len("stats.") :])
    else:
        value = run.get("metrics", {}).get(name, run.get(name))
    return float(value) if isinstance(value, int | float) else math.nan


def describe(values: Iterable[float]) -> dict[str, float]:
    """n, median, quartiles, min and max; NaN is dropped, inf kept (a failed solve scores inf)."""
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return {"n": 0, **dict.fromkeys(("median", "q1", "q3", "min", "max"), math.nan)}
    q1, median, q3 = (quantile(data, q) for q in (0.25, 0.5, 0.75))
    return {"n": len(data), "median": median, "q1": q1, "q3": q3, "min": data[0], "max": data[-1]}


def median(values: Iterable[float]) -> float:
    """The median (:func:`quantile` 0.5); NaN dropped, inf kept; NaN when nothing is left."""
    return describe(values)["median"]


def quantile(data: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted ``data`` (numpy's default), safe with inf: the one
    quantile of the package (the report, the dashboard and the benchmarks use it)."""
    position = (len(data) - 1) * q
    low, high = data[math.floor(position)], data[math.ceil(position)]
    return low if low == high else low + (high - low) * (position - math.floor(position))


def stat_names(runs: Iterable[Run]) -> list[str]:
    names = dict.fromkeys(
        f"stats.{key}"
        for run in runs
        for key, value in (run.get("optimizer_stats") or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    )
    return list(names)


def summarise(groups: Groups) -> list[dict[str, Any]]:
    """Long table: one row per (problem, optimizer, quantity) over the scored runs."""
    rows = []
    for problem, by_opt in groups.items():
        names = metric_names([run for runs in by_opt.values() for run in runs])
        for optimizer, runs in by_opt.items():
            ok = scored(runs)
            for name in [*names, *COST_KEYS, *stat_names(ok)]:
                stats = describe(quantity(run, name) for run in ok)
                rows.append({"problem": problem, "optimizer": optimizer, "quantity": name, **stats})
    return rows


def flat(by_opt: Mapping[str, list[Run]]) -> list[Run]:
    return [run for runs in by_opt.values() for run in runs]


def label(optimizer: str) -> str:
    return LABELS.get(optimizer, optimizer)


def fmt(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3g}"


def solution_run(runs: Sequence[Run]) -> Run | None:
    """The run whose figure a report shows: the lowest-seed scored run that has one."""
    return next((run for run in scored(runs) if run.get("figure")), None)
