"""``azure-sciml-report DIR`` and the Hydra callback that runs it after a multirun."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from azure_sciml.report.figures import plot_convergence
from azure_sciml.report.load import load_runs
from azure_sciml.report.paired import ALPHA, BASELINE, compare_all
from azure_sciml.report.render import render_markdown, run_row, write_csv
from azure_sciml.report.stats import group_runs, summarise
from azure_sciml.report.targets import judge_targets

log = logging.getLogger(__name__)


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
    text = render_markdown(root, runs, groups, summary, comparisons, goals, curves, baseline, alpha)
    (root / "report.md").write_text(text)
    return root / "report.md"
