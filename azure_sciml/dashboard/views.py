"""What the Run tab shows of a comparison: the runs table, the summary with the report's verdict
(:mod:`azure_sciml.report.paired`), the convergence curves and, on 2-D problems, each
optimizer's paths on the contour (matplotlib ``Figure`` objects, no pyplot)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from azure_sciml.dashboard.runner import Run
from azure_sciml.report import paired
from azure_sciml.report.stats import median


def results_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[Any]]]:
    """One row per finished run: optimizer, seed, status and the problem's numeric metrics."""
    finished = [run for run in runs if run.done]
    names: list[str] = []
    for run in finished:
        if run.result is not None:
            names += [k for k, v in run.result.metrics.items()
                      if isinstance(v, int | float) and k not in names]  # fmt: skip
    header = ["optimizer", "seed", "status", *names, "loss evals", "wall s"]
    rows = []
    for run in finished:
        r = run.result
        if r is None:
            rows.append([run.job.optimizer, run.job.seed, run.error, *[""] * (len(names) + 2)])
            continue
        metrics = [_num(r.metrics.get(name)) for name in names]
        rows.append([run.job.optimizer, run.job.seed, r.status, *metrics, r.n_loss_evals,
                     round(r.wall_time_s, 2)])  # fmt: skip
    return header, rows


def summary_text(runs: Sequence[Run], baseline: str = "adam") -> str:
    """Median headline metric per optimizer and, paired by seed, the report's verdict against
    the baseline (:mod:`azure_sciml.report.paired`, lower is better)."""
    done = [run for run in runs if run.result is not None]
    if not done:
        return ""
    metric = done[0].job.problem.metric
    by_opt: dict[str, dict[int, float]] = {}
    for run in done:
        by_opt.setdefault(run.job.optimizer, {})[run.job.seed] = run.result.metrics[metric]
    lines = [f"Headline metric `{metric}` (lower is better), median over seeds:"]
    for name, values in by_opt.items():
        versus = _verdict(values, by_opt.get(baseline), name, baseline, metric)
        lines.append(f"- **{name}**: {_num(median(values.values()))} ({len(values)} seeds){versus}")
    return "\n".join(lines)


def _verdict(mine: Mapping[int, float], theirs: Mapping[int, float] | None, name: str,
             baseline: str, metric: str) -> str:
    if theirs is None or name == baseline:
        return ""
    c = paired.compare("", name, baseline, metric, paired.pair_by_seed(mine, theirs))
    return (f"; vs {baseline}, same seeds: {c.verdict}; better on {c.better}, worse on "
            f"{c.worse}, equal on {c.ties} of {c.n_pairs}")


def _num(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) and math.isfinite(value) else value


def convergence_figure(runs: Sequence[Run]):
    """Loss against loss evaluations, one line per run, one colour per optimizer; for 2-D
    problems ``f - f*``, on a log axis where every value is positive."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    colors: dict[str, str] = {}
    positive = True
    for run in runs:
        curve = list(run.curve)
        if not curve:
            continue
        evals, losses = zip(*curve, strict=True)
        if _is_two_d(run.job.problem):  # f - f* >= 0 up to rounding: floored for the log axis
            values = [max(loss - run.job.problem.spec.minimum, 1e-12) for loss in losses]
        else:
            values = list(losses)
        positive &= min(values) > 0
        color = colors.setdefault(run.job.optimizer, f"C{len(colors)}")
        label = run.job.optimizer if run.job.seed == min(r.job.seed for r in runs) else None
        ax.plot(evals, values, color=color, lw=1, alpha=0.8, label=label)
    if positive and colors:
        ax.set_yscale("log")
    two_d = bool(runs) and _is_two_d(runs[0].job.problem)
    ax.set_xlabel("loss evaluations")
    ax.set_ylabel("f - f*" if two_d else "loss")
    ax.set_title("convergence (one line per seed)", fontsize=10)
    if colors:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def paths_figure(runs: Sequence[Run]):
    """For a 2-D problem: one panel per optimizer, every seed's evaluated path on the contour
    (same seed, same start, same colour in every panel); None for other problems."""
    if not runs or not _is_two_d(runs[0].job.problem):
        return None
    from matplotlib.figure import Figure

    optimizers = list(dict.fromkeys(run.job.optimizer for run in runs))
    fig = Figure(figsize=(4.2 * len(optimizers), 4.0))
    for i, name in enumerate(optimizers):
        ax = fig.add_subplot(1, len(optimizers), i + 1)
        mine = [run for run in runs if run.job.optimizer == name]
        paths = {f"seed {run.job.seed}": run.job.problem.path() for run in mine}
        run_problem = mine[0].job.problem
        run_problem.draw(ax, paths, {}, legend=len(paths) > 1, colorbar=False)
        ax.set_title(f"{name}: {ax.get_title()}", fontsize=8)
    fig.tight_layout()
    return fig


def _is_two_d(problem) -> bool:
    from azure_sciml.problems.two_d import TwoDFunction

    return isinstance(problem, TwoDFunction)
