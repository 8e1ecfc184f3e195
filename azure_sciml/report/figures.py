"""The convergence figure: loss against loss evaluations, one panel per problem."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from azure_sciml.report.stats import SCORED, Groups, Run, flat, label

CURVE_POINTS = 200


def plot_convergence(groups: Groups, path: Path) -> Path | None:
    """Loss against loss evaluations, one panel per problem: median and quartile band over seeds
    per optimizer, log-y (a loss that goes non-positive, like an energy, is shifted to stay > 0)."""
    panels = {p: by_opt for p, by_opt in groups.items() if any(map(has_history, flat(by_opt)))}
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
    runs = [run for run in flat(by_opt) if has_history(run)]
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
