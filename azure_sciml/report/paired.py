"""Paired comparison with a baseline: runs paired by (problem, seed) on the headline metric (lower
is better), tested with the Wilcoxon signed-rank test (scipy) or else the exact sign test."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from azure_sciml.report.stats import Groups, Run, headline, label, quantity, scored

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
    verdict: str


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
    mine, base = metric_by_seed(runs, metric), metric_by_seed(baseline_runs, metric)
    pairs = [(mine[seed], base[seed]) for seed in sorted(mine.keys() & base.keys(), key=str)]
    pairs = [pair for pair in pairs if not any(map(math.isnan, pair))]
    return np.array(pairs, dtype=float).reshape(-1, 2)


def metric_by_seed(runs: list[Run], metric: str) -> dict[Any, float]:
    return {run["seed"]: quantity(run, metric) for run in scored(runs)}


def compare(
    problem: str, optimizer: str, baseline: str, metric: str, pairs: np.ndarray, alpha: float
) -> Comparison:
    a, b = pairs[:, 0], pairs[:, 1]
    positive = pairs.size > 0 and bool((pairs > 0).all())
    with np.errstate(divide="ignore", invalid="ignore"):  # inf scores: equal ones are ties
        # Log ratios when possible: errors spread over decades, and a ratio is what a user reads.
        diffs = np.where(a == b, 0.0, np.log(a) - np.log(b) if positive else a - b)
        ratios = np.where(a == b, 1.0, a / b)
    comparison = Comparison(
        problem=problem,
        optimizer=optimizer,
        baseline=baseline,
        metric=metric,
        n_pairs=len(pairs),
        better=int((a < b).sum()),
        worse=int((a > b).sum()),
        ties=int((a == b).sum()),
        median_ratio=float(np.median(ratios)) if positive else math.nan,
        p_value=math.nan,
        test="",
        verdict="",
    )
    comparison.p_value, comparison.test, lean = paired_test(diffs)
    comparison.verdict = verdict(comparison, lean, alpha)
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
    """Two-sided p of "no difference": Wilcoxon signed-rank (scipy) or the exact sign test; and
    the side that test leans to (its signed-rank sum, or wins minus losses for the sign test):
    negative means the optimizer is better."""
    nonzero = diffs[diffs != 0]
    if nonzero.size == 0:
        return 1.0, "none (no differences)", 0.0
    try:
        from scipy.stats import wilcoxon
    except ImportError:
        worse, better = int((nonzero > 0).sum()), int((nonzero < 0).sum())
        return sign_test(better, nonzero.size), "exact sign test", float(worse - better)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(nonzero).pvalue), "Wilcoxon signed-rank", signed_rank_sum(nonzero)


def sign_test(k: int, n: int) -> float:
    """Exact two-sided binomial p for ``k`` successes out of ``n`` at probability 1/2."""
    tail = min(k, n - k)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(tail + 1)) / 2**n)


def verdict(c: Comparison, lean: float, alpha: float) -> str:
    if c.n_pairs == 0:
        return "no paired runs"
    if c.p_value >= alpha:
        return f"no significant difference (p={c.p_value:.2g})"
    winner = c.optimizer if lean < 0 else c.baseline
    return f"{label(winner)} better (p={c.p_value:.2g})"


def smallest_p(n: int) -> float:
    """The smallest two-sided p either test can give with ``n`` pairs (all on one side)."""
    return sign_test(0, n) if n else 1.0
