"""The verdict, "is it better than the baseline?", for the report, the dashboard and the benchmarks.

The rule: values paired by seed (lower is better); pairs equal, or within ``tie_tol``, are ties;
the differences (of logarithms where every value is positive: errors spread over decades) are
tested with the two-sided Wilcoxon signed-rank test; at p < ``alpha`` the side the signed ranks
lean to is better, else there is no significant difference. A failed run scores inf, so it loses
to any finite result and ties another failure."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from azure_sciml.report.stats import Groups, Run, headline, label, median, quantity, scored

BASELINE = "adam"
ALPHA = 0.05


@dataclass
class Comparison:
    problem: str
    optimizer: str
    baseline: str
    metric: str
    n_pairs: int
    better: int  # seeds on which ``optimizer`` has the lower metric
    worse: int
    ties: int
    median_ratio: float  # median over pairs of optimizer / baseline (nan unless all positive)
    p_value: float
    test: str
    verdict: str  # "Azure better (p=0.002)", "no significant difference (p=0.25)", ...
    winner: str = ""  # ``optimizer`` or ``baseline`` when the difference is significant, else ""


def csv_row(c: Comparison) -> dict[str, Any]:
    """A row of ``comparison.csv``: every field but ``winner``, which the verdict names."""
    return {k: v for k, v in asdict(c).items() if k != "winner"}


def compare_all(groups: Groups, baseline: str, alpha: float) -> list[Comparison]:
    """Every optimizer against ``baseline`` on the headline metric, paired by seed."""
    comparisons = []
    for problem, by_opt in groups.items():
        metric = headline([run for runs in by_opt.values() for run in runs])
        if baseline not in by_opt or metric is None:
            continue
        for optimizer, runs in by_opt.items():
            if optimizer != baseline:
                pairs = paired_values(runs, by_opt[baseline], metric)
                comparisons.append(compare(problem, optimizer, baseline, metric, pairs, alpha))
    return comparisons


def paired_values(runs: list[Run], baseline_runs: list[Run], metric: str) -> np.ndarray:
    """(n, 2) array: the metric of ``runs`` and of the baseline, for seeds both have scored (one
    run per seed and side: the last one found)."""
    return pair_by_seed(metric_by_seed(runs, metric), metric_by_seed(baseline_runs, metric))


def pair_by_seed(mine: Mapping[Any, float], base: Mapping[Any, float]) -> np.ndarray:
    """(n, 2) array of ``(mine[seed], base[seed])`` over the seeds both have, NaN pairs left out."""
    pairs = [(mine[seed], base[seed]) for seed in sorted(mine.keys() & base.keys(), key=str)]
    pairs = [pair for pair in pairs if not any(map(math.isnan, pair))]
    return np.array(pairs, dtype=float).reshape(-1, 2)


def metric_by_seed(runs: list[Run], metric: str) -> dict[Any, float]:
    return {run["seed"]: quantity(run, metric) for run in scored(runs)}


def compare(
    problem: str, optimizer: str, baseline: str, metric: str, pairs: np.ndarray,
    alpha: float = ALPHA, tie_tol: float = 0.0,
) -> Comparison:  # fmt: skip
    """``optimizer`` against ``baseline`` on ``pairs`` (rows: its value, the baseline's)."""
    a, b = pairs[:, 0], pairs[:, 1]
    positive = pairs.size > 0 and bool((pairs > 0).all())
    with np.errstate(divide="ignore", invalid="ignore"):  # inf scores: equal ones are ties
        tie = (a == b) | (np.abs(a - b) <= tie_tol)
        # Log ratios when possible: errors spread over decades, and a ratio is what a user reads.
        diffs = np.where(tie, 0.0, np.log(a) - np.log(b) if positive else a - b)
        ratios = np.where(a == b, 1.0, a / b)
    comparison = Comparison(
        problem=problem,
        optimizer=optimizer,
        baseline=baseline,
        metric=metric,
        n_pairs=len(pairs),
        better=int((diffs < 0).sum()),
        worse=int((diffs > 0).sum()),
        ties=int(tie.sum()),
        median_ratio=median(ratios) if positive else math.nan,
        p_value=math.nan,
        test="",
        verdict="",
    )
    comparison.p_value, comparison.test, lean = paired_test(diffs)
    if comparison.n_pairs and comparison.p_value < alpha:
        comparison.winner = optimizer if lean < 0 else baseline
    comparison.verdict = verdict(comparison, alpha)
    return comparison


def signed_rank_sum(diffs: np.ndarray) -> float:
    """Sum of the signed ranks of the non-zero differences (ties averaged): the side the
    Wilcoxon test leans to. Negative: the optimizer is better. Unlike the median difference it
    weighs a difference by its size, so many near-ties on one side cannot outvote large gaps."""
    nonzero = diffs[diffs != 0]
    if nonzero.size == 0:
        return 0.0
    magnitude = np.abs(nonzero)
    order = np.argsort(magnitude, kind="stable")
    ranks = np.empty(nonzero.size)
    ranks[order] = np.arange(1, nonzero.size + 1)
    for value in np.unique(magnitude):  # average the ranks of tied magnitudes
        tied = magnitude == value
        ranks[tied] = ranks[tied].mean()
    return float(np.sum(np.sign(nonzero) * ranks))


def paired_test(diffs: np.ndarray) -> tuple[float, str, float]:
    """Two-sided Wilcoxon signed-rank p of "no difference" (zeros dropped; 1 when all are zero)
    and the side the test leans to, its signed-rank sum: negative means the optimizer is
    better."""
    nonzero = diffs[diffs != 0]
    if nonzero.size == 0:
        return 1.0, "none (no differences)", 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(nonzero).pvalue), "Wilcoxon signed-rank", signed_rank_sum(nonzero)


def verdict(c: Comparison, alpha: float) -> str:
    if c.n_pairs == 0:
        return "no paired runs"
    if not c.winner:
        return f"no significant difference (p={c.p_value:.2g})"
    return f"{label(c.winner)} better (p={c.p_value:.2g})"


def smallest_p(n: int) -> float:
    """The smallest two-sided p the test can give with ``n`` pairs (all on one side, exact)."""
    return min(1.0, 2 / 2**n)
