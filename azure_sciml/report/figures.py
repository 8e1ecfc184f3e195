"""The convergence figure (loss against loss evaluations, one panel per problem) and compact PNGs
(256-colour palette: a third of the size, no visible loss on line plots and colour maps)."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from azure_sciml.report.stats import SCORED, Groups, Run, flat, label

CURVE_POINTS = 200
DPI = 100


@dataclass
class Convergence:
    """The figure's file, and what its caption has to say: the shift of panels whose loss goes
    non-positive (problem -> offset) and curves identical to another optimizer's (problem ->
    [(optimizer, the optimizer it repeats)])."""

    path: Path
    offsets: dict[str, float] = field(default_factory=dict)
    identical: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def plot_convergence(groups: Groups, path: Path) -> Convergence | None:
    """Loss against loss evaluations, one panel per problem: median and quartile band over seeds
    per optimizer, log-y (a loss that goes non-positive, like an energy, is shifted to stay > 0);
    an optimizer whose runs repeat another's exactly is drawn dashed and named "identical"."""
    panels = {p: by_opt for p, by_opt in groups.items() if any(map(has_history, flat(by_opt)))}
    if not panels:
        return None
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.8 * ncols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    result = Convergence(Path(path))
    for ax, (problem, by_opt) in zip(axes, panels.items(), strict=False):
        offset, identical = draw_panel(ax, problem, by_opt)
        if offset:
            result.offsets[problem] = offset
        if identical:
            result.identical[problem] = identical
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    save_png(fig, path)
    return result


def draw_panel(ax, problem: str, by_opt: Mapping[str, list[Run]]):
    """One problem's panel; returns its loss offset (0 if none) and the identical curves."""
    runs = [run for run in flat(by_opt) if has_history(run)]
    lowest = min(min(run["history"]["loss"]) for run in runs)
    offset = 0.0 if lowest > 0 else lowest - 1e-6 * max(1.0, abs(lowest))
    grid = np.linspace(1, max(run["history"]["evals"][-1] for run in runs), CURVE_POINTS)
    drawn: dict[str, np.ndarray] = {}
    identical = []
    for optimizer, opt_runs in by_opt.items():
        curves = np.array([resample(run, grid, offset) for run in opt_runs if has_history(run)])
        if not len(curves):
            continue
        same = next((o for o, c in drawn.items() if _equal(c, curves)), None)
        drawn[optimizer] = curves
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after divergence
            q1, median, q3 = np.exp(np.nanpercentile(curves, [25, 50, 75], axis=0))
        name = f"{label(optimizer)} (n={len(curves)})"
        if same is not None:
            identical.append((optimizer, same))
            name += f": identical to {label(same)}"
        line = ax.plot(grid, median, label=name, linestyle="--" if same else "-")[0]
        if same is None:
            ax.fill_between(grid, q1, q3, color=line.get_color(), alpha=0.25, linewidth=0)
    ylabel = "loss" if offset == 0 else f"loss − ({offset:.6g}) (≈ lowest loss)"
    ax.set(title=problem, xlabel="loss evaluations", ylabel=ylabel, yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return offset, identical


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def has_history(run: Run) -> bool:
    return run["status"] in SCORED and bool((run.get("history") or {}).get("evals"))


def resample(run: Run, grid: np.ndarray, offset: float) -> np.ndarray:
    """log(loss - offset) of the run on ``grid`` (linear interpolation of the log); NaN past its
    last evaluation."""
    evals = np.asarray(run["history"]["evals"], dtype=float)
    log_loss = np.log(np.asarray(run["history"]["loss"], dtype=float) - offset)
    return np.interp(grid, evals, log_loss, left=np.nan, right=np.nan)


PALETTE = 64  # colours of a saved figure


def save_png(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    compact_png(buffer, path)


def compact_png(source, path: Path) -> None:
    """``source`` (a PNG file or buffer) written to ``path`` with a 64-colour palette (line
    plots: a third smaller than 256 colours, the docs' 5 MB budget)."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(source) as image:
        image.convert("RGB").quantize(PALETTE, method=Image.Quantize.MEDIANCUT).save(
            path, optimize=True
        )
