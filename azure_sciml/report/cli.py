"""``azure-sciml-report DIR`` and the Hydra callback that runs it after a multirun.

``azure-sciml-report SWEEP`` writes the report into the sweep dir (with its compact table,
``runs.jsonl``); ``azure-sciml-report SWEEP --export docs/results/NAME`` writes what a results
page keeps (the table, ``multirun.yaml``, the solution figures the report shows, and the report
rebuilt from them); ``azure-sciml-report docs/results/NAME`` rebuilds that report from its table.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from azure_sciml.report.figures import compact_png, plot_convergence
from azure_sciml.report.load import TABLE, load_runs, write_table
from azure_sciml.report.paired import ALPHA, BASELINE, compare_all, csv_row
from azure_sciml.report.render import Report, render_markdown
from azure_sciml.report.stats import Run, group_runs, solution_run, summarise
from azure_sciml.report.summary import summary_block
from azure_sciml.report.tables import run_row, write_csv
from azure_sciml.report.targets import TARGETS_FILE, check_target, judge_targets, read_targets_file
from azure_sciml.runs import SWEEP_CONFIG

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="azure-sciml-report",
        description="Aggregate every result.json below DIR (or DIR's runs.jsonl) into report.md, "
        "CSVs and figures.",
    )
    parser.add_argument("dir", type=Path, help="a run dir, a sweep dir or a dir with runs.jsonl "
                        "(with --summary: a dir of results pages, e.g. docs/results)")
    parser.add_argument("--baseline", default=BASELINE, help="optimizer the others are paired with")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="significance level")
    parser.add_argument("--out", type=Path, help="write the report here instead of into DIR")
    parser.add_argument(
        "--export", type=Path, metavar="DEST", help="write DIR's table, figures and report to DEST"
    )
    parser.add_argument(
        "--targets", type=Path, metavar="FILE",
        help="judge the targets of FILE (e.g. an experiment config) instead of the sweep's own; "
        f"kept as {TARGETS_FILE} beside the report",
    )  # fmt: skip
    parser.add_argument(
        "--summary", action="store_true",
        help="print one table over the results pages below DIR (Azure, Adam, the best "
        "alternative, the verdict, a link to each page) instead of writing a report",
    )  # fmt: skip
    parser.add_argument("--pages", help="with --summary: these pages only (comma-separated)")
    parser.add_argument(
        "--optimizers",
        help="with --summary: a column per optimizer (comma-separated, e.g. "
        "adam+lbfgs,adam+ssbroyden), its median on each problem, instead of Azure against Adam",
    )
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a directory")
    if args.summary:
        names = args.pages.split(",") if args.pages else None
        optimizers = args.optimizers.split(",") if args.optimizers else None
        print(summary_block(args.dir.as_posix(), names, args.alpha, optimizers), end="")
        return
    if args.export is not None:
        export(args.dir, args.export)
        args.dir, args.out = args.export, args.out or args.export
    if args.targets is not None:
        keep_targets(args.targets, args.out or args.dir)
    print(write_report(args.dir, baseline=args.baseline, alpha=args.alpha, out=args.out))


def keep_targets(source: Path, out: Path) -> None:
    """``source``'s ``targets`` list, checked, written to ``out/targets.yaml`` (where the report
    of ``out`` reads its targets from)."""
    from omegaconf import OmegaConf

    targets = read_targets_file(source).get("targets")
    if not isinstance(targets, list) or not targets:
        raise SystemExit(f"azure-sciml-report: error: {source} has no targets list")
    for entry in targets:
        try:
            check_target(entry)
        except ValueError as err:
            raise SystemExit(f"azure-sciml-report: error: {source}: {err}") from err
    Path(out).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"targets": targets}), Path(out) / TARGETS_FILE)


class ReportCallback(Callback):
    """Hydra callback: the report of the sweep dir once every job of a multirun has finished."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            log.info("report: %s", write_report(sweep_dir))
        except Exception:  # the runs are safe on disk; do not fail the sweep over its summary
            log.exception("report failed; retry with: azure-sciml-report %s", sweep_dir)


def write_report(
    root: Path, baseline: str = BASELINE, alpha: float = ALPHA, out: Path | None = None
) -> Path:
    """Write the report of ``root``'s runs into ``out`` (default ``root``): ``report.md``,
    ``report.csv``, ``comparison.csv``, ``convergence.png`` and, when the runs were read from run
    dirs, their table ``runs.jsonl`` and its flat view ``runs.csv``. Returns the path of
    ``report.md``."""
    root = Path(root)
    out = Path(out) if out is not None else root
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(root)
    if not any("sweep" in run for run in runs):  # read from run dirs: keep their table
        write_table(out / TABLE, runs, sweep=str(root))
        write_csv(out / "runs.csv", [run_row(run) for run in runs])
    groups = group_runs(runs)
    report = Report(
        root=root,
        out=out,
        runs=runs,
        groups=groups,
        summary=summarise(groups),
        comparisons=compare_all(groups, baseline, alpha),
        goals=judge_targets(root, groups, alpha),
        convergence=plot_convergence(groups, out / "convergence.png"),
        baseline=baseline,
        alpha=alpha,
    )
    write_csv(out / "report.csv", report.summary)
    write_csv(out / "comparison.csv", [csv_row(c) for c in report.comparisons])
    (out / "report.md").write_text(render_markdown(report))
    return out / "report.md"


def export(root: Path, dest: Path, sweep: str | None = None) -> Path:
    """``root``'s runs as a results page keeps them in ``dest``: the table, the sweep's config and
    the solution figures the report shows (``figures/PROBLEM_OPTIMIZER_seedN.png``). ``sweep``:
    the name the table gives its source (default: the one it has, else ``root``)."""
    root, dest = Path(root), Path(dest)
    runs = load_runs(root)
    dest.mkdir(parents=True, exist_ok=True)
    shown = {id(run) for by_opt in group_runs(runs).values() for r in by_opt.values()
             if (run := solution_run(r)) is not None}  # fmt: skip
    runs = [_with_figure(run, root, dest, id(run) in shown) for run in runs]
    runs = _share_identical_figures(runs, dest)
    kept = {run["figure"] for run in runs}
    for stale in (dest / "figures").glob("*.png"):  # from an earlier export to the same page
        if f"figures/{stale.name}" not in kept:
            stale.unlink()
    if root.resolve() != dest.resolve():
        for name in (SWEEP_CONFIG, TARGETS_FILE):  # a page's targets are its source's
            if (root / name).is_file():
                shutil.copyfile(root / name, dest / name)
            else:
                (dest / name).unlink(missing_ok=True)
    sweep = sweep or next((run["sweep"] for run in runs if "sweep" in run), str(root))
    return write_table(dest / TABLE, [{**run, "sweep": sweep} for run in runs], sweep=sweep)


def _share_identical_figures(runs: list[Run], dest: Path) -> list[Run]:
    """Identical runs draw identical figures: a figure byte for byte the same as one kept before
    is deleted and its run points at the kept one, so a page stores each picture once."""
    first: dict[str, str] = {}
    shared = []
    for run in runs:
        name = run.get("figure")
        if name:
            digest = hashlib.sha256((dest / name).read_bytes()).hexdigest()
            kept = first.setdefault(digest, name)
            if kept != name:
                (dest / name).unlink()
                run = {**run, "figure": kept}
        shared.append(run)
    return shared


def _with_figure(run: Run, root: Path, dest: Path, shown: bool) -> Run:
    if not shown:
        return {**run, "figure": None}
    if not (root / run["figure"]).is_file():
        log.warning("%s: no such figure; the page shows none for this run", root / run["figure"])
        return {**run, "figure": None}
    name = f"figures/{run['problem']}_{run['optimizer']}_seed{run.get('seed')}.png"
    (dest / "figures").mkdir(exist_ok=True)
    compact_png(root / run["figure"], dest / name)
    return {**run, "figure": name}
