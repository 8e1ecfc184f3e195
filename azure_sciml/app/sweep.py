"""Sweep progress: one line per finished job, ``[k/N] ...; n left, about 12m30s`` where the
sweep's size is known, ``[k/?] ...; k done in 4m10s`` where it is not. A filtered sweep
(``hydra/sweeper=filtered``: ``hydra_plugins/azure_sciml_sweeper``) leaves its size in the
sweep dir."""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins

from azure_sciml.app.results import headline_value
from azure_sciml.runs import SWEEP_CONFIG, sweep_config, write_json_atomic

log = logging.getLogger("azure_sciml.app")


def register_filtered_sweeper() -> type:
    """Hydra's plugin scan finds ``hydra/sweeper=filtered`` in a wheel install but not in an
    editable one: register it by hand. After the scan, which re-executes the plugin modules (so a
    class imported before it would subclass a stale ``FilterSweeper``)."""
    plugins = Plugins.instance()
    from hydra_plugins.azure_sciml_sweeper import FilteredSweeper

    plugins.register(FilteredSweeper)
    return FilteredSweeper


PROGRESS_DIR = ".progress"  # in a sweep dir: one marker per finished job, for k/N and the ETA
SIZE_FILE = register_filtered_sweeper().size_file  # .progress/size.json: a filtered sweep's size


@dataclass
class SweepJob:
    """One job of a multirun. Jobs may run in other processes (joblib, submitit), so progress is
    counted on disk: each finished job leaves a marker in ``<sweep dir>/.progress/``; the markers
    newer than ``multirun.yaml`` (rewritten at every launch) are this launch's finished jobs, and
    the sweep's size comes from ``multirun.yaml`` as Hydra's sweeper expands it."""

    dir: Path
    num: int

    def finished(self, record: Mapping[str, Any], seconds: float, skipped: bool) -> None:
        """Leave this job's marker and log its progress line; never fails the job."""
        try:
            write_json_atomic(self.dir / PROGRESS_DIR / f"{self.num}.json",
                              {"seconds": seconds, "skipped": skipped})
            done, computed, elapsed = self.count()
        except OSError:
            done, computed, elapsed = None, 0, 0.0
        try:
            total = sweep_size(self.dir)
        except Exception:  # a multirun.yaml that does not parse
            log.warning("%s does not parse: the sweep's size is unknown", self.dir / SWEEP_CONFIG)
            total = None
        log.info("%s", progress_line(record, seconds, skipped, done, total, computed, elapsed))

    def count(self) -> tuple[int, int, float]:
        """Jobs finished in this launch, how many of them trained, seconds since the launch."""
        launched = (self.dir / SWEEP_CONFIG).stat().st_mtime
        done = computed = 0
        for marker in (self.dir / PROGRESS_DIR).glob("*.json"):
            if marker.name != SIZE_FILE.name and marker.stat().st_mtime >= launched:
                done += 1
                computed += not read_marker(marker).get("skipped", False)
        return done, computed, time.time() - launched


def read_marker(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def progress_line(
    record: Mapping[str, Any],
    seconds: float,
    skipped: bool,
    done: int | None,
    total: int | None,
    computed: int,
    elapsed: float,
) -> str:
    """``[3/8] heat azure seed=1: rel_l2=0.005929 ok in 12.3 s; 5 left, about 1m02s``."""
    metric = record.get("headline_metric")
    value = headline_value(record)
    score = f"{metric}={value:.4g}" if metric and math.isfinite(value) else "no score"
    what = "skipped, already complete" if skipped else f"{record.get('status')} in {seconds:.1f} s"
    seed = record.get("seed")
    head = f"[{done if done is not None else '?'}/{total if total is not None else '?'}]"
    line = f"{head} {record.get('problem')} {record.get('optimizer')} seed={seed}: {score} {what}"
    if done is not None and total is not None and total >= done:
        left = total - done
        eta = elapsed / computed * left if computed else None
        line += f"; {left} left" + (f", about {format_seconds(eta)}" if eta and left else "")
    elif done is not None:  # a filtered sweep: its size is unknown, its pace is not
        line += f"; {done} done in {format_seconds(elapsed)}"
    if record.get("status") == "failed":
        line += f" ({record.get('message')})"
    return line


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@functools.lru_cache(maxsize=8)
def _sweep_size(path: Path, mtime: float) -> int | None:
    size_file = path.parent / SIZE_FILE
    if size_file.exists() and size_file.stat().st_mtime >= mtime:  # a filtered sweep's count
        jobs = read_marker(size_file).get("jobs")
        return jobs if isinstance(jobs, int) else None
    sweep = sweep_config(path.parent)
    return None if sweep is None else count_jobs(sweep)


def sweep_size(sweep_dir: Path) -> int | None:
    """The number of jobs in the sweep (cached per launch); None when unknown."""
    path = sweep_dir / SWEEP_CONFIG
    try:
        return _sweep_size(path, path.stat().st_mtime)
    except OSError:
        log.warning("%s is missing: the sweep's size is unknown", path)
        return None


def count_jobs(sweep: Mapping[str, Any]) -> int | None:
    """Jobs of a sweep from its ``multirun.yaml``: Hydra's basic sweeper runs the product of the
    sweeper's ``params`` and the command line's sweep overrides (later ones win); a sweeper with
    ``n_trials`` (Optuna) runs that many; None for others."""
    hydra_node = sweep.get("hydra") or {}
    sweeper = hydra_node.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        trials = sweeper.get("n_trials")
        return trials if isinstance(trials, int) else None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    arguments += list((hydra_node.get("overrides") or {}).get("task") or [])
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
    except Exception:  # e.g. an interpolation the parser cannot read without the config
        return None
    sizes = {}
    for override in overrides:
        sweep_values = override.is_sweep_override()
        sizes[override.get_key_element()] = (
            len(list(override.sweep_string_iterator())) if sweep_values else 1
        )
    return math.prod(sizes.values())
