"""``azure-sciml-report DIR``: aggregate every ``result.json`` below DIR (one run or a sweep).

Writes into DIR: ``report.md`` (verdict per problem, targets, tables, figures), ``report.csv``
(median, quartiles, min and max of every quantity per problem and optimizer), ``comparison.csv``
(paired comparison with the baseline, Adam), ``runs.csv`` (one row per run) and
``convergence.png``.
:class:`ReportCallback` runs it at the end of a multirun (``hydra.callbacks`` in ``config.yaml``).

Honesty rules: metrics are summarised by median and quartiles over seeds; the verdict pairs runs
with the baseline by (problem, seed) on the headline metric (lower is better) and tests them with
the Wilcoxon signed-rank test (scipy) or else the exact sign test; diverged runs are scored at the
weights they stopped at and flagged; failed runs and job dirs without a ``result.json`` (missing)
are counted and listed, never averaged.

Targets: a sweep whose config has a ``targets`` list (an experiment's goals, e.g. "LJ13 reaches the
global minimum in >= 90% of runs") gets a "Targets" section saying of each whether it is met, with
the numbers. The list is read from ``multirun.yaml`` (Hydra's record of the sweep's config). Each
entry: ``text`` (what it says), ``problems`` (problem labels), ``kind`` and, as the kind needs,
``metric`` and ``value``; ``optimizer`` (default ``azure``) is judged against ``baseline``
(default ``adam``, whatever baseline the report itself pairs with):

* ``rate_at_least``: the 0/1 ``metric`` (e.g. ``success``) holds in at least a ``value`` fraction
  of the optimizer's runs (failed and missing runs count as misses);
* ``rate_above_baseline``: the 0/1 ``metric`` holds in a larger fraction of the optimizer's runs
  than of the baseline's, over all ``problems`` together;
* ``median_ratio_at_most``: median headline metric of the optimizer over the baseline's is at most
  ``value``, on each problem (runs without a score count as the worst);
* ``not_worse``: the paired verdict on each problem is not "baseline better".

A target whose runs are missing, or that is malformed, is listed as "not judged" with the reason.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from azure_sciml.runs import RESULT_FILE, problem_name

log = logging.getLogger(__name__)

SWEEP_CONFIG = "multirun.yaml"  # written by Hydra into the sweep dir; its ``targets`` key
BASELINE = "adam"
ALPHA = 0.05
SCORED = ("ok", "diverged")  # statuses whose runs have metrics
COST_KEYS = ("final_loss", "n_loss_evals", "n_grad_evals", "wall_time_s")
SHARED_KEYS = ("problem", "dtype", "clip_grad_norm")  # config every optimizer must share
RATE_WORDS = re.compile(r"success|recover|solved|found")  # 0/1 metrics shown as rates
LABELS = {"azure": "Azure", "adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "lbfgs": "L-BFGS"}
CURVE_POINTS = 200

Run = dict[str, Any]  # a result.json record plus "dir" (relative to the report dir)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="azure-sciml-report",
        description="Aggregate every result.json below DIR into report.md, CSVs and figures.",
    )
    parser.add_argument("dir", type=Path, help="a run dir or a sweep dir (searched recursively)")
    parser.add_argument("--baseline", default=BASELINE, help="optimizer the others are paired with")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="significance level")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a directory")
    print(write_report(args.dir, baseline=args.baseline, alpha=args.alpha))


class ReportCallback(Callback):
    """Hydra callback: the report of the sweep dir once every job of a multirun has finished."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            log.info("report: %s", write_report(sweep_dir))
        except Exception:  # the runs are safe on disk; do not fail the sweep over its summary
            log.exception("report failed; retry with: azure-sciml-report %s", sweep_dir)


def write_report(root: Path, baseline: str = BASELINE, alpha: float = ALPHA) -> Path:
    """Write the report files into ``root``; returns the path of ``report.md``."""
    root = Path(root)
    runs = load_runs(root)
    groups = group_runs(runs)
    summary = summarise(groups)
    comparisons = compare_all(groups, baseline, alpha)
    goals = judge_targets(root, groups, alpha)
    write_csv(root / "report.csv", summary)
    write_csv(root / "comparison.csv", [asdict(c) for c in comparisons])
    write_csv(root / "runs.csv", [run_row(run) for run in runs])
    curves = plot_convergence(groups, root / "convergence.png")
    text = render_markdown(
        root, runs, groups, summary, comparisons, goals, curves, baseline, alpha
    )
    (root / "report.md").write_text(text)
    return root / "report.md"


# ---------------------------------------------------------------- loading


def load_runs(root: Path) -> list[Run]:
    """Every ``result.json`` below ``root``, plus a ``missing`` run for each Hydra job dir (one
    with ``.hydra/``) that has none: a job that was killed, timed out or is still running."""
    runs = [read_result(path, root) for path in sorted(root.rglob(RESULT_FILE))]
    finished = {path.parent for path in root.rglob(RESULT_FILE)}
    for hydra_dir in sorted(root.rglob(".hydra")):
        if hydra_dir.is_dir() and hydra_dir.parent not in finished:
            runs.append(missing_run(hydra_dir.parent, root))
    return runs


def read_result(path: Path, root: Path) -> Run:
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        run = {**job_labels(path.parent), "status": "failed", "message": f"unreadable: {err}"}
    run["dir"] = path.parent.relative_to(root).as_posix()
    run.setdefault("status", "ok")
    return run


def missing_run(job_dir: Path, root: Path) -> Run:
    return {
        **job_labels(job_dir),
        "status": "missing",
        "message": f"no {RESULT_FILE}: job killed, timed out or still running",
        "dir": job_dir.relative_to(root).as_posix(),
    }


def job_labels(job_dir: Path) -> Run:
    """Problem, optimizer and seed of a job from the config Hydra saved when it started."""
    try:
        hydra_cfg = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra
        cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    except OSError:
        return {"problem": "?", "optimizer": "?", "seed": None}
    choices = hydra_cfg.runtime.choices
    target = OmegaConf.select(cfg, "problem._target_", default="?")
    return {
        "problem": problem_name(choices.get("problem"), target, hydra_cfg.overrides.task),
        "optimizer": choices.get("optimizer"),
        "seed": cfg.get("seed"),
    }


# ---------------------------------------------------------------- statistics


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


def quantile(data: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted ``data`` (numpy's default), safe with inf."""
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


def summarise(groups: Mapping[str, Mapping[str, list[Run]]]) -> list[dict[str, Any]]:
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


# ---------------------------------------------------------------- paired comparison


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


def compare_all(
    groups: Mapping[str, Mapping[str, list[Run]]], baseline: str, alpha: float
) -> list[Comparison]:
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


def label(optimizer: str) -> str:
    return LABELS.get(optimizer, optimizer)


# ---------------------------------------------------------------- targets

TARGET_NEEDS = {  # kind -> the keys it needs besides text and problems
    "rate_at_least": ("metric", "value"),
    "rate_above_baseline": ("metric",),
    "median_ratio_at_most": ("value",),
    "not_worse": (),
}
TARGET_KEYS = {"text", "problems", "kind", "metric", "value", "optimizer", "baseline"}


@dataclass
class Goal:
    """A target as judged on this sweep: ``met`` is None where it could not be judged."""

    text: str
    measured: str
    met: bool | None


def judge_targets(root: Path, groups: Mapping[str, Mapping[str, list[Run]]], alpha: float):
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
    """The ``targets`` list of the sweep's config (``multirun.yaml``); [] if none."""
    path = root / SWEEP_CONFIG
    if not path.is_file():
        return []
    targets = OmegaConf.to_container(OmegaConf.load(path)).get("targets") or []
    return targets if isinstance(targets, list) else [targets]


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


def judge(
    target: Mapping[str, Any], groups: Mapping[str, Mapping[str, list[Run]]], alpha: float
) -> Goal:
    """Whether the target holds on this sweep's runs, and the numbers it was judged on."""
    text, kind, value = target["text"], target["kind"], target.get("value")
    mine, theirs, problems = target["optimizer"], target["baseline"], target["problems"]
    for optimizer in (mine, theirs):
        absent = [p for p in problems if optimizer not in groups.get(p, {})]
        if absent:
            return Goal(text, f"not run here (no {label(optimizer)} runs of {absent})", None)
    if kind in ("rate_at_least", "rate_above_baseline"):
        metric = target["metric"]
        runs = [run for p in problems for r in groups[p].values() for run in scored(r)]
        if all(math.isnan(quantity(run, metric)) for run in runs):
            return Goal(text, f"no run reports `{metric}`", None)
        (k, n), (k0, n0) = (rate(groups, problems, o, metric) for o in (mine, theirs))
        measured = f"{label(mine)} {rate_text(k, n)}, {label(theirs)} {rate_text(k0, n0)}"
        if kind == "rate_at_least":
            return Goal(text, measured, k / n >= value - 1e-12)
        return Goal(text, measured, k / n > k0 / n0)
    if kind == "median_ratio_at_most":
        return median_ratio_goal(text, groups, problems, mine, theirs, value)
    return not_worse_goal(text, groups, problems, mine, theirs, alpha)


def rate(
    groups: Mapping[str, Mapping[str, list[Run]]], problems: Sequence[str], optimizer: str,
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
    metric, runs = headline(_flat(by_opt)), by_opt[optimizer]
    ok = {id(run) for run in scored(runs)}
    values = [quantity(run, metric) if id(run) in ok else math.nan for run in runs]
    return float(np.median([math.inf if math.isnan(v) else v for v in values]))  # no score: worst


def not_worse_goal(text, groups, problems, mine: str, theirs: str, alpha: float) -> Goal:
    """The paired verdict of ``mine`` against ``theirs`` is not "``theirs`` better", anywhere."""
    cells, met = [], True
    for p in problems:
        metric = headline(_flat(groups[p]))
        pairs = paired_values(groups[p][mine], groups[p][theirs], metric)
        if len(pairs) == 0:
            return Goal(text, f"{p}: no paired runs", None)
        c = compare(p, mine, theirs, metric, pairs, alpha)
        cells.append(f"{p}: {c.verdict}, better on {c.better}/{c.n_pairs}")
        met = met and not c.verdict.startswith(f"{label(theirs)} better")
    return Goal(text, "; ".join(cells), met)


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


# ---------------------------------------------------------------- figures


def plot_convergence(groups: Mapping[str, Mapping[str, list[Run]]], path: Path) -> Path | None:
    """Loss against loss evaluations, one panel per problem: median and quartile band over seeds
    per optimizer, log-y (a loss that goes non-positive, like an energy, is shifted to stay > 0)."""
    panels = {p: by_opt for p, by_opt in groups.items() if any(map(has_history, _flat(by_opt)))}
    if not panels:
        return None
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.8 * ncols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (problem, by_opt) in zip(axes, panels.items(), strict=False):
        draw_panel(ax, problem, by_opt)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=120)
    return path


def draw_panel(ax, problem: str, by_opt: Mapping[str, list[Run]]) -> None:
    runs = [run for run in _flat(by_opt) if has_history(run)]
    lowest = min(min(run["history"]["loss"]) for run in runs)
    offset = 0.0 if lowest > 0 else lowest - 1e-6 * max(1.0, abs(lowest))
    grid = np.linspace(1, max(run["history"]["evals"][-1] for run in runs), CURVE_POINTS)
    for optimizer, opt_runs in by_opt.items():
        curves = [resample(run, grid, offset) for run in opt_runs if has_history(run)]
        if not curves:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after divergence
            q1, median, q3 = np.exp(np.nanpercentile(np.array(curves), [25, 50, 75], axis=0))
        line = ax.plot(grid, median, label=f"{label(optimizer)} (n={len(curves)})")[0]
        ax.fill_between(grid, q1, q3, color=line.get_color(), alpha=0.25, linewidth=0)
    ylabel = "loss" if offset == 0 else f"loss − ({offset:.6g})"
    ax.set(title=problem, xlabel="loss evaluations", ylabel=ylabel, yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def has_history(run: Run) -> bool:
    return run["status"] in SCORED and bool((run.get("history") or {}).get("evals"))


def resample(run: Run, grid: np.ndarray, offset: float) -> np.ndarray:
    """log(loss - offset) of the run on ``grid`` (linear interpolation of the log); NaN past its
    last evaluation."""
    evals = np.asarray(run["history"]["evals"], dtype=float)
    log_loss = np.log(np.asarray(run["history"]["loss"], dtype=float) - offset)
    return np.interp(grid, evals, log_loss, left=np.nan, right=np.nan)


def _flat(by_opt: Mapping[str, list[Run]]) -> list[Run]:
    return [run for runs in by_opt.values() for run in runs]


# ---------------------------------------------------------------- output


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


def fmt(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3g}"


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
    runs = _flat(by_opt)
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
        rows.append([label(optimizer), run_counts(opt_runs), *cells, *costs,
                     proposal_cell(stats, problem, optimizer)])
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
    runs = [run for run in _flat(by_opt) if run.get("config")]
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
    names = metric_names(_flat(by_opt), numeric=False)
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


if __name__ == "__main__":
    main()
