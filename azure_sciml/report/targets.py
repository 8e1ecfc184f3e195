"""Targets: a sweep whose config has a ``targets`` list (an experiment's goals, e.g. "LJ13
reaches the global minimum in >= 90% of runs") gets a "Targets" section saying of each whether it
is met, with the numbers. The list is read from ``multirun.yaml`` (Hydra's record of the sweep's
config). Each entry: ``text`` (what it says), ``problems`` (problem labels), ``kind`` and, as the
kind needs, ``metric`` and ``value``; ``optimizer`` (default ``azure``) is judged against
``baseline`` (default ``adam``, whatever baseline the report itself pairs with):

* ``rate_at_least``: the 0/1 ``metric`` (e.g. ``success``) holds in at least a ``value`` fraction
  of the optimizer's runs (failed and missing runs count as misses);
* ``rate_above_baseline``: the 0/1 ``metric`` holds in a larger fraction of the optimizer's runs
  than of the baseline's, over all ``problems`` together;
* ``median_ratio_at_most``: median headline metric of the optimizer over the baseline's is at most
  ``value``, on each problem (runs without a score count as the worst);
* ``median_at_most``: median headline metric of the optimizer is at most ``value`` on each
  problem (an absolute goal, e.g. a PINN's rel_l2 <= 1e-3; runs without a score count as the
  worst);
* ``not_worse``: the paired verdict on each problem is not "baseline better".

A target whose runs are missing, or that is malformed, is listed as "not judged" with the reason.
Targets set after a sweep ran (``azure-sciml-report DIR --targets FILE``) live in ``targets.yaml``
beside the runs and take the place of the sweep's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure_sciml.report.paired import BASELINE, compare, paired_values
from azure_sciml.report.stats import (
    Groups,
    Run,
    flat,
    fmt,
    headline,
    label,
    median,
    quantity,
    scored,
)
from azure_sciml.runs import sweep_config

TARGET_NEEDS = {  # kind -> the keys it needs besides text and problems
    "rate_at_least": ("metric", "value"),
    "rate_above_baseline": ("metric",),
    "median_ratio_at_most": ("value",),
    "median_at_most": ("value",),
    "not_worse": (),
}
TARGET_KEYS = {"text", "problems", "kind", "metric", "value", "optimizer", "baseline"}
TARGETS_FILE = "targets.yaml"  # beside the runs: targets set after the sweep ran


@dataclass
class Goal:
    """A target as judged on this sweep: ``met`` is None where it could not be judged."""

    text: str
    measured: str
    met: bool | None


ABSOLUTE = ("median_at_most", "rate_at_least")  # kinds judged on the optimizer's runs alone


def judge_targets(root: Path, groups: Groups, alpha: float):
    """Every target of the sweep's config, judged; an invalid entry is a row saying why."""
    goals = []
    for entry in load_targets(root):
        try:
            goals.append(judge(check_target(entry), groups, alpha))
        except ValueError as err:
            text = entry.get("text", "?") if isinstance(entry, dict) else "?"
            goals.append(Goal(str(text), f"invalid target: {err}", None))
    return goals


def load_targets(root: Path) -> list[Any]:
    """The ``targets`` list of ``root/targets.yaml`` if there is one, else of the sweep's config
    (``multirun.yaml``); [] if none."""
    path = Path(root) / TARGETS_FILE
    source = read_targets_file(path) if path.is_file() else (sweep_config(root) or {})
    targets = source.get("targets") or []
    return targets if isinstance(targets, list) else [targets]


def read_targets_file(path: Path) -> dict[str, Any]:
    """A YAML file's top level as a dict (an experiment config, or a file with ``targets:``)."""
    from omegaconf import OmegaConf

    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a mapping with a targets list")
    return loaded


def check_target(entry: Any) -> dict[str, Any]:
    """The entry with its defaults filled in, or ``ValueError`` naming what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"{entry!r} is not a mapping")
    kind, text = entry.get("kind"), entry.get("text")
    if kind not in TARGET_NEEDS:
        raise ValueError(f"kind={kind!r}, not one of {tuple(TARGET_NEEDS)}")
    unknown = sorted(set(entry) - TARGET_KEYS)
    problems = entry.get("problems")
    checks = {
        "text": isinstance(text, str) and text != "",
        "problems": isinstance(problems, list) and problems != []
        and all(isinstance(p, str) for p in problems),
        "metric": isinstance(entry.get("metric"), str),
        "value": isinstance(entry.get("value"), int | float)
        and not isinstance(entry.get("value"), bool),
    }  # fmt: skip
    for key in ("text", "problems", *TARGET_NEEDS[kind]):
        if not checks[key]:
            raise ValueError(f"{kind} needs {key!r} (got {entry.get(key)!r})")
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(TARGET_KEYS)}")
    return {
        "optimizer": "azure", "baseline": BASELINE, **entry,
        "problems": list(dict.fromkeys(problems)),  # a problem listed twice counts once
    }  # fmt: skip


def judge(target: Mapping[str, Any], groups: Groups, alpha: float) -> Goal:
    """Whether the target holds on this sweep's runs, and the numbers it was judged on."""
    text, kind, value = target["text"], target["kind"], target.get("value")
    mine, theirs, problems = target["optimizer"], target["baseline"], target["problems"]
    needed = (mine,) if kind in ABSOLUTE else (mine, theirs)  # an absolute goal needs no baseline
    for optimizer in needed:
        absent = [p for p in problems if optimizer not in groups.get(p, {})]
        if absent:
            return Goal(text, f"not run here (no {label(optimizer)} runs of {absent})", None)
    if kind in ("rate_at_least", "rate_above_baseline"):
        metric = target["metric"]
        runs = [run for p in problems for r in groups[p].values() for run in scored(r)]
        if all(math.isnan(quantity(run, metric)) for run in runs):
            return Goal(text, f"no run reports `{metric}`", None)
        k, n = rate(groups, problems, mine, metric)
        measured = f"{label(mine)} {rate_text(k, n)}"
        if all(theirs in groups[p] for p in problems):
            k0, n0 = rate(groups, problems, theirs, metric)
            measured += f", {label(theirs)} {rate_text(k0, n0)}"
        if kind == "rate_at_least":
            return Goal(text, measured, k / n >= value - 1e-12)
        return Goal(text, measured, k / n > k0 / n0)
    if kind == "median_ratio_at_most":
        return median_ratio_goal(text, groups, problems, mine, theirs, value)
    if kind == "median_at_most":
        medians = {p: worst_case_median(groups[p], mine) for p in problems}
        cells = [f"{p}: {label(mine)} {fmt(m)} (at most {fmt(value)})" for p, m in medians.items()]
        return Goal(text, "; ".join(cells), all(m <= value for m in medians.values()))
    return not_worse_goal(text, groups, problems, mine, theirs, alpha)


def rate(
    groups: Groups, problems: Sequence[str], optimizer: str,
    metric: str,
) -> tuple[int, int]:  # fmt: skip
    """(runs in which the 0/1 ``metric`` holds, all runs): runs without a score count as misses."""
    runs = [run for p in problems for run in groups[p][optimizer]]
    return sum(quantity(run, metric) == 1.0 for run in scored(runs)), len(runs)


def rate_text(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.1f}%)"


def median_ratio_goal(text, groups, problems, mine: str, theirs: str, value: float) -> Goal:
    """Median headline metric of ``mine`` over ``theirs``'s, at most ``value`` on each problem;
    runs without a score count as the worst (infinite)."""
    cells, met = [], True
    for p in problems:
        a, b = worst_case_median(groups[p], mine), worst_case_median(groups[p], theirs)
        if not 0 < b < math.inf:
            return Goal(text, f"{p}: {label(theirs)}'s median is {fmt(b)}: no ratio", None)
        cells.append(f"{p}: {label(mine)} {fmt(a)}, {label(theirs)} {fmt(b)} ({fmt(a / b)}x)")
        met = met and a / b <= value
    return Goal(text, "; ".join(cells), met)


def worst_case_median(by_opt: Mapping[str, list[Run]], optimizer: str) -> float:
    """Median headline metric of ``optimizer``'s runs, runs without a score counting as
    infinite (the worst, lower being better)."""
    metric, runs = headline(flat(by_opt)), by_opt[optimizer]
    ok = {id(run) for run in scored(runs)}
    values = [quantity(run, metric) if id(run) in ok else math.nan for run in runs]
    return median(math.inf if math.isnan(v) else v for v in values)  # no score: the worst


def not_worse_goal(text, groups, problems, mine: str, theirs: str, alpha: float) -> Goal:
    """The paired verdict of ``mine`` against ``theirs`` is not "``theirs`` better", anywhere."""
    cells, met = [], True
    for p in problems:
        metric = headline(flat(groups[p]))
        pairs = paired_values(groups[p][mine], groups[p][theirs], metric)
        if len(pairs) == 0:
            return Goal(text, f"{p}: no paired runs", None)
        c = compare(p, mine, theirs, metric, pairs, alpha)
        cells.append(f"{p}: {c.verdict}, better on {c.better}/{c.n_pairs}")
        met = met and not c.verdict.startswith(f"{label(theirs)} better")
    return Goal(text, "; ".join(cells), met)
