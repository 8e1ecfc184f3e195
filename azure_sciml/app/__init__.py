"""Hydra app: ``azure-sciml problem=heat optimizer=azure seed=0`` trains one problem with one
optimizer and writes ``result.json`` (and ``solution.png``) into the Hydra run dir.

One straight path: the composed config → :func:`~azure_sciml.app.plan.make_plan` (every value
checked, in :mod:`~azure_sciml.app.checks`; problem, optimizer factory and scheduler built once)
→ :func:`azure_sciml.fit` → the record (:mod:`~azure_sciml.app.results`). A bad value fails with
its key named, e.g. ``optimizer.lr=-0.001: ...``; on the command line that is one line, not a
traceback. In a multirun nothing a job does stops the sweep: a bad config, a crash or an
unwritable run dir is that job's ``status: failed`` record (with the error) and the sweep goes on
to its report; each finished job logs one line with k/N done and the time left
(:mod:`~azure_sciml.app.sweep`).

Resume is config-checked: a finished ``result.json`` is skipped, and a checkpoint resumed, only
when the keys that can change the result (everything but ``progress``, ``save_plot``,
``checkpoint_every``, ``resume``, ``targets``; for a checkpoint also the code version) are the
same; otherwise the run starts afresh and the log names the keys that differ.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from azure_sciml.app.checks import ConfigError
from azure_sciml.app.plan import RunPlan, make_plan, resolved_config, scheduler_factory, setup
from azure_sciml.app.results import FIGURE_FILE, headline_value, result_fields, save_figure
from azure_sciml.app.sweep import SweepJob, count_jobs, progress_line
from azure_sciml.runs import (
    FINISHED,
    RESULT_FILE,
    RecordError,
    code_version,
    config_differences,
    load_record,
    problem_name,
    provenance,
    result_config,
    write_json_atomic,
)
from azure_sciml.train import checkpoint_config, fit

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FILE", "FIGURE_FILE", "ConfigError", "RunPlan", "SweepJob", "count_jobs", "main",
    "make_plan", "progress_line", "run", "scheduler_factory", "setup",
]

CHECKPOINT_FILE = "checkpoint.pt"


@hydra.main(version_base="1.3", config_path="pkg://azure_sciml.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    choices = dict(hydra_cfg.runtime.choices)
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task)  # unresolved: may hold ${}
    if hydra_cfg.mode != RunMode.MULTIRUN:
        try:
            return run(cfg, out_dir, choices, overrides)
        except ConfigError as err:
            sys.exit(f"azure-sciml: error: {err}")  # one line on stderr, exit status 1
    job = SweepJob(Path(hydra_cfg.sweep.dir), int(hydra_cfg.job.num))
    return run(cfg, out_dir, choices, overrides, reraise=False, sweep=job)


def run(
    cfg: DictConfig,
    out_dir: Path,
    choices: Mapping[str, str | None],
    overrides: Sequence[str] = (),
    reraise: bool = True,
    sweep: SweepJob | None = None,
) -> float:
    """Train as ``cfg`` says, write ``out_dir/result.json``; return the headline metric.

    With ``resume``, a run dir that already holds a complete result of the same result-relevant
    config is skipped (a relaunched sweep recomputes nothing that finished) and a checkpoint left
    by an interrupted run of that config is resumed. ``reraise=False`` (a sweep's job): every
    error becomes a ``failed`` record and the return value ``inf``; ``sweep`` logs progress.
    """
    started = time.perf_counter()
    record = run_labels(cfg, choices, overrides)
    skipped = False
    try:
        plan = make_plan(cfg)
        use_threads(plan.keys.threads)
        record.update(headline_metric=plan.problem.metric, config=plan.config,
                      provenance=provenance(plan.keys.device, plan.keys.dtype))  # threads too
        done = completed_result(out_dir, plan.config) if plan.keys.resume else None
        if done is not None:
            log.info("%s already holds a complete result: skipped (resume=true)", out_dir)
            record, skipped = done, True
        else:
            record.update(train(plan, out_dir))
            write_json_atomic(out_dir / RESULT_FILE, record)
            (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    except Exception as err:
        record.update(status="failed", message=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc())
        if reraise and isinstance(err, ConfigError):
            raise  # nothing ran: no record
        save_failed(out_dir, record)
        if reraise:
            raise
        log.error("run failed (%s); recorded as status=failed in %s", record["message"], out_dir)
    value = math.inf if record["status"] == "failed" else headline_value(record)
    if sweep is not None:
        sweep.finished(record, time.perf_counter() - started, skipped)
    elif not skipped:
        log.info("%s=%.4g status=%s (%s)", record.get("headline_metric"), value,
                 record["status"], out_dir)
    return value


def train(plan: RunPlan, out_dir: Path) -> dict[str, Any]:
    """``fit()`` as the plan says; returns the result's JSON fields (and the figure's name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = plan.keys
    checkpoint = out_dir / CHECKPOINT_FILE if keys.checkpoint_every else None
    key = run_key(plan.config)
    if checkpoint is not None and keys.resume:
        discard_stale_checkpoint(checkpoint, key)
    result = fit(
        plan.problem,
        plan.optimizer,
        **plan.fit_arguments(),
        checkpoint=checkpoint,
        checkpoint_every=keys.checkpoint_every,
        resume=keys.resume,
        config=key,
    )
    fields = result_fields(result)
    if keys.save_plot:
        fields["figure"] = save_figure(plan.problem, result, out_dir)
    return fields


def use_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)``; 0 leaves torch's default (every core)."""
    if threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- labels, resume


def run_labels(
    cfg: DictConfig, choices: Mapping[str, str | None], overrides: Sequence[str]
) -> dict[str, Any]:
    """The record's labels, config and provenance, whatever state the config is in (a failed
    record needs them too)."""
    target = OmegaConf.select(cfg, "problem._target_", default="?",
                              throw_on_resolution_failure=False)
    seed = safe_get(cfg, "seed")
    return {
        "problem": problem_name(choices.get("problem"), str(target), overrides),
        "optimizer": optimizer_label(choices),
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "headline_metric": None,
        "config": resolved_config(cfg),
        "overrides": list(overrides),
        "choices": dict(choices),
        "provenance": provenance(str(safe_get(cfg, "device")), str(safe_get(cfg, "dtype"))),
    }


def optimizer_label(choices: Mapping[str, str | None]) -> str | None:
    """The run's optimizer label: the optimizer's config name, ``adam+lbfgs`` with a refine."""
    refine = choices.get("refine")
    plain = refine is None or refine == "none"
    return choices.get("optimizer") if plain else f"{choices.get('optimizer')}+{refine}"


def safe_get(cfg: DictConfig, key: str) -> Any:
    try:
        return cfg.get(key)
    except Exception:  # an interpolation that does not resolve
        return None


def save_failed(out_dir: Path, record: dict[str, Any]) -> None:
    """Write a failed record; a run dir that cannot be written is logged, naming the file."""
    try:
        write_json_atomic(out_dir / RESULT_FILE, record)
    except OSError as err:
        log.error("cannot write %s (%s): the failure is only in this log", out_dir / RESULT_FILE,
                  err)


def run_key(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint must have been written with to be resumed: the result-relevant config
    and the code version."""
    code = code_version()
    return {**result_config(config),
            "code": {"version": code["version"], "git_commit": code["git_commit"]}}


def completed_result(out_dir: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record in ``out_dir/result.json`` if that run finished (ok or diverged) with the same
    result-relevant config, else None. An unreadable or wrong-shape file, or another config's
    result, is named in the log (with the keys that differ) and run again."""
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        record = load_record(path)
    except RecordError as err:
        log.warning("%s: running again", err)
        return None
    if record["status"] not in FINISHED:
        return None
    differences = config_differences(
        result_config(record.get("config") or {}), result_config(config)
    )
    if differences:
        log.warning("%s holds a run with another config (%s): running again", path,
                    "; ".join(differences))
        return None
    return record


def discard_stale_checkpoint(path: Path, key: Mapping[str, Any]) -> None:
    """Delete a checkpoint that must not be resumed (written with another config or code
    version, or unreadable as plain data), saying why; the run then starts afresh."""
    if not path.exists():
        return
    try:
        written = checkpoint_config(path)
    except ValueError as err:
        log.warning("%s; starting afresh", err)
        path.unlink()
        return
    differences = config_differences(written or {}, key)
    if differences:
        log.warning("checkpoint %s was written with another config (%s): starting afresh", path,
                    "; ".join(differences))
        path.unlink()
