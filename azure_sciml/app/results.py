"""What a finished run's record holds besides its labels: metrics and counters, the loss
history (downsampled), the optimizer's ``stats()``, the problem's figure."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azure_sciml.train import FitResult, Problem

log = logging.getLogger("azure_sciml.app")

FIGURE_FILE = "solution.png"
MAX_HISTORY_POINTS = 500


def headline_value(record: Mapping[str, Any]) -> float:
    """The headline metric of a result record; inf when missing or not finite (Optuna minimises)."""
    try:
        value = float((record.get("metrics") or {}).get(record.get("headline_metric"), math.nan))
    except (TypeError, ValueError):
        return math.inf
    return value if math.isfinite(value) else math.inf


def result_fields(result: FitResult) -> dict[str, Any]:
    fields = result.summary()
    fields["history"] = downsample(result.history)
    stats = getattr(result.optimizer, "stats", None)
    fields["optimizer_stats"] = stats() if callable(stats) else None
    return fields


def downsample(history: Sequence[tuple[int, float]], max_points: int = MAX_HISTORY_POINTS) -> dict:
    """At most ``max_points`` evenly spaced (evaluation, loss) pairs, first and last kept."""
    n = len(history)
    if n > max_points:
        keep = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
        history = [history[i] for i in keep]
    return {"evals": [e for e, _ in history], "loss": [loss for _, loss in history]}


def save_figure(problem: Problem, result: FitResult, out_dir: Path) -> str | None:
    """The problem's picture of its solution; a plotting error costs the figure, not the run."""
    plot = getattr(problem, "plot", None)
    if plot is None or result.model is None:
        return None
    try:
        plot(result.model, str(out_dir / FIGURE_FILE))
    except Exception:
        log.exception("problem.plot failed; no %s", FIGURE_FILE)
        return None
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a sweep runs many jobs in one process
            sys.modules["matplotlib.pyplot"].close("all")
    return FIGURE_FILE
