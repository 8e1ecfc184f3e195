"""The Results tab's side: sweep dirs below the results dir, their reports, tables and figures.

Every path typed or picked is resolved (``..``, absolute paths and symlinks included) and refused
unless it stays inside the results dir; without a results dir nothing can be opened."""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from azure_sciml.dashboard.inputs import InputError

MAX_TABLE_ROWS = 2000
MAX_FIGURES = 60
MAX_SWEEPS = 500
MAX_DEPTH = 4  # directory levels searched for sweeps
IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def safe_path(root: Path | None, typed: str) -> Path:
    """``typed`` (relative to ``root``, or absolute) resolved, symlinks followed; InputError
    unless it exists and stays inside ``root`` (always without a ``root``)."""
    if root is None:
        raise InputError("no results dir: start the dashboard with one, e.g. "
                         "azure-sciml-dashboard docs/results")  # fmt: skip
    if not isinstance(typed, str) or not typed.strip():
        raise InputError("no path given")
    if "\x00" in typed:
        raise InputError(f"{typed!r} is not a valid path")
    base = Path(root).resolve(strict=True)
    try:
        path = (base / typed.strip()).resolve(strict=True)
    except (OSError, RuntimeError) as err:  # missing, a symlink loop, too long
        raise InputError(f"{typed!r}: no such file or directory below the results dir") from err
    if path != base and base not in path.parents:
        raise InputError(f"{typed!r} is outside the results dir {base}")
    return path


def list_sweeps(root: Path | None) -> list[str]:
    """Directories below ``root`` (itself included) holding a ``report.md`` or Hydra's
    ``multirun.yaml``, relative to it; symlinks are not followed. None without a ``root``."""
    if root is None:
        return []
    base = Path(root).resolve()
    found: list[str] = []
    for current, dirs, files in os.walk(base):
        here = Path(current)
        depth = len(here.relative_to(base).parts)
        if "report.md" in files or "multirun.yaml" in files:
            found.append(here.relative_to(base).as_posix() or ".")
            dirs[:] = [d for d in dirs if not d.isdigit()]  # a sweep's job dirs hold no sweeps
        if depth >= MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        if len(found) >= MAX_SWEEPS:
            break
    return found


@dataclass
class SweepView:
    """What the Results tab shows of one sweep dir."""

    report: str  # report.md with its image links replaced by captions (the images: ``figures``)
    tables: list[str]  # CSV files in the sweep dir
    figures: list[tuple[Path, str]]  # (resolved path, caption)


def open_sweep(root: Path, typed: str) -> SweepView:
    sweep = safe_path(root, typed)
    if not sweep.is_dir():
        raise InputError(f"{typed!r} is not a directory")
    report_file = sweep / "report.md"
    report = ""
    figures: list[tuple[Path, str]] = []
    if report_file.is_file():
        report = safe_path(root, str(report_file)).read_text(errors="replace")
        for caption, link in IMAGE_LINK.findall(report):
            image = _inside(root, sweep, link)
            if image is not None and image.suffix.lower() in (".png", ".jpg", ".jpeg", ".svg"):
                figures.append((image, f"{caption} ({link})"))
        report = IMAGE_LINK.sub(lambda m: f"*[figure: {m.group(1)}, in Figures below]*", report)
    else:
        report = (f"No report.md in `{typed}` yet: `azure-sciml-report {typed}` writes one "
                  "from its runs.")  # fmt: skip
    for image in sorted(sweep.glob("*.png")):
        image = _inside(root, sweep, image.name)
        if image is not None and all(image != path for path, _ in figures):
            figures.append((image, image.name))
    tables = sorted(p.name for p in [*sweep.glob("*.csv"), *sweep.glob("*.jsonl")]
                    if _inside(root, sweep, p.name))  # fmt: skip
    return SweepView(report=report, tables=tables, figures=figures[:MAX_FIGURES])


def read_table(root: Path, sweep: str, name: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (at most MAX_TABLE_ROWS) of a CSV file of the sweep dir, or of its run
    table ``runs.jsonl`` (one row per run: labels, status, cost and metrics)."""
    path = safe_path(root, str(Path(sweep) / name))
    if path.suffix not in (".csv", ".jsonl") or not path.is_file():
        raise InputError(f"{name!r} is not a table (.csv, .jsonl) of {sweep!r}")
    with path.open(newline="", errors="replace") as handle:
        if path.suffix == ".jsonl":
            return _run_rows(line for _, line in zip(range(MAX_TABLE_ROWS), handle, strict=False))
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = [row for _, row in zip(range(MAX_TABLE_ROWS), reader, strict=False)]
    return header, rows


def _run_rows(lines) -> tuple[list[str], list[list[str]]]:
    """A run record per line: its plain top-level fields and ``metrics`` as columns."""
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {number} is not JSON: {err}") from err
        if isinstance(record, dict):
            flat = {k: v for k, v in record.items() if isinstance(v, str | int | float | None)}
            metrics = record.get("metrics")
            flat.update({f"metrics.{k}": v for k, v in (metrics or {}).items()}
                        if isinstance(metrics, dict) else {})  # fmt: skip
            records.append(flat)
    header = list(dict.fromkeys(key for record in records for key in record))
    return header, [["" if r.get(k) is None else str(r.get(k)) for k in header] for r in records]


def _inside(root: Path, sweep: Path, link: str) -> Path | None:
    try:
        path = safe_path(root, str(sweep / link))
    except InputError:
        return None
    return path if path.is_file() else None
