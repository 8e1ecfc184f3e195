"""Reading run records: every ``result.json`` below a dir, and a ``missing`` record for each Hydra
job dir without one (a job that was killed, timed out or is still running)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from azure_sciml.report.stats import Run
from azure_sciml.runs import RESULT_FILE, problem_name


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
