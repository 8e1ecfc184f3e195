"""Reading run records: every ``result.json`` below a dir (and a ``missing`` record for each Hydra
job dir without one: a job that was killed, timed out or is still running), or else the dir's
compact table ``runs.jsonl``.

The table has one JSON object per line, one per run: the run's record (labels, status, metrics,
costs, optimizer counters, config without the sweep-level ``targets``, config-group choices
without Hydra's own, provenance where recorded) with its ``history`` downsampled to about
:data:`HISTORY_POINTS` points, ``dir`` (the job dir, relative to the sweep), ``figure`` (a path
relative to the table's dir, or ``null``) and ``sweep`` (the dir it was read from). A report
rebuilt from the table says what the sweep's said.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from azure_sciml.report.stats import Run
from azure_sciml.runs import RESULT_FILE, problem_name, read_record

TABLE = "runs.jsonl"
TABLE_GZ = "runs.jsonl.gz"  # the same table, gzipped, for sweeps whose table is large
GZIP_ABOVE = 64_000  # bytes of JSONL (docs/ stays small: tests/test_report_results.py)
HISTORY_POINTS = 32
SWEEP_LEVEL = ("targets",)  # config keys the sweep holds (multirun.yaml), not each run


def load_runs(root: Path) -> list[Run]:
    """The runs of the dirs below ``root`` or, when there are none, of ``root/runs.jsonl``
    (or ``runs.jsonl.gz``)."""
    runs = load_run_dirs(root)
    for name in (TABLE, TABLE_GZ):
        if not runs and (root / name).is_file():
            return read_table(root / name)
    return runs


def load_run_dirs(root: Path) -> list[Run]:
    """Every ``result.json`` below ``root``, plus a ``missing`` run for each Hydra job dir (one
    with ``.hydra/``) that has none."""
    runs = [read_result(path, root) for path in sorted(root.rglob(RESULT_FILE))]
    finished = {path.parent for path in root.rglob(RESULT_FILE)}
    for hydra_dir in sorted(root.rglob(".hydra")):
        if hydra_dir.is_dir() and hydra_dir.parent not in finished:
            runs.append(missing_run(hydra_dir.parent, root))
    return runs


def read_result(path: Path, root: Path) -> Run:
    """The record (:func:`azure_sciml.runs.read_record`: a bad file is a ``failed`` record naming
    it, labelled from the job's ``.hydra``), with ``dir`` relative to ``root``."""
    run = read_record(path)
    if run.get("invalid"):
        run = {**job_labels(path.parent), **run}
    run["dir"] = path.parent.relative_to(root).as_posix()
    if run.get("figure"):  # the report links figures relative to its own dir
        run["figure"] = f"{run['dir']}/{run['figure']}"
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


# ---------------------------------------------------------------- the compact table


def read_table(path: Path) -> list[Run]:
    """The runs of a ``runs.jsonl``; ``ValueError`` names the line that is not a record."""
    runs = []
    path = Path(path)
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except ValueError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err})") from err
        if not isinstance(run, dict):
            raise ValueError(f"{path}:{number}: not a run record ({type(run).__name__})")
        run.setdefault("status", "ok")
        runs.append(run)
    return runs


def write_table(path: Path, runs: Iterable[Run], sweep: str) -> Path:
    """One compact line per run (see the module docstring); gzipped next to ``path`` (``.gz``)
    when the text is over ``GZIP_ABOVE`` bytes. Returns the path written."""
    lines = [json.dumps(table_record(run, sweep), separators=(",", ":")) for run in runs]
    text, path = "".join(line + "\n" for line in lines), Path(path)
    zipped = path.with_name(path.name + ".gz")
    if len(text) > GZIP_ABOVE:
        zipped.write_bytes(gzip.compress(text.encode(), mtime=0))  # mtime 0: the same bytes
        path.unlink(missing_ok=True)
        return zipped
    path.write_text(text)
    zipped.unlink(missing_ok=True)
    return path


def table_record(run: Run, sweep: str) -> Run:
    record = {key: value for key, value in run.items() if key not in ("config", "history")}
    record["sweep"] = run.get("sweep", sweep)
    if isinstance(run.get("choices"), Mapping):  # config groups chosen; Hydra's own are noise
        record["choices"] = {k: v for k, v in run["choices"].items() if not k.startswith("hydra")}
    if isinstance(run.get("config"), Mapping):
        record["config"] = {k: v for k, v in run["config"].items() if k not in SWEEP_LEVEL}
    if isinstance(run.get("history"), Mapping):
        record["history"] = downsample(run["history"])
    return record


def downsample(history: Mapping[str, Any], points: int = HISTORY_POINTS) -> dict[str, Any]:
    """About ``points`` evenly spaced entries of each logged series, the first, the last and the
    lowest loss kept (the figure's log-scale shift comes from it); floats to 9 significant digits
    (exact for float32 losses)."""
    lengths = {len(v) for v in history.values() if isinstance(v, list)}
    if len(lengths) != 1 or (n := lengths.pop()) <= points:
        return {key: _short(value) for key, value in history.items()}
    keep = np.linspace(0, n - 1, points).round().astype(int)
    loss = np.asarray(history.get("loss") or [np.nan], dtype=float)
    if not np.isnan(loss).all():
        keep = np.append(keep, int(np.nanargmin(loss)))
    keep = np.unique(keep)
    return {
        key: _short([value[i] for i in keep]) if isinstance(value, list) else value
        for key, value in history.items()
    }


def _short(value: Any) -> Any:
    if isinstance(value, list):
        return [_short(v) for v in value]
    return float(f"{value:.9g}") if isinstance(value, float) else value
