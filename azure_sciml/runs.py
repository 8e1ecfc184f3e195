"""Run records: the result file each run writes and every reader reads (app, report, dashboard).

A record is one JSON object per run directory (``result.json``): labels (``problem``,
``optimizer``, ``seed``), ``status`` (``ok``, ``diverged``, ``failed``; readers add ``missing``),
``metrics``, ``stats``, ``config`` and, where recorded, ``history`` and ``provenance``.

Readers use :func:`read_record` (a wrong-shape or unreadable file becomes a ``failed`` record
naming the file), :func:`result_config` / :func:`config_differences` (which config keys can
change a result) and :func:`provenance_differences` (what produced the runs, where they differ).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
SWEEP_CONFIG = "multirun.yaml"  # Hydra's record of a sweep's config, in the sweep dir
STATUSES = ("ok", "diverged", "failed")
FINISHED = ("ok", "diverged")  # statuses of a run that need not run again
# Config keys that cannot change a run's result: a relaunch that differs only in these resumes
# the checkpoint and skips a finished result.json.
NOT_RESULT_KEYS = ("progress", "save_plot", "checkpoint_every", "resume", "targets")


def problem_name(problem_choice: str | None, target: str, overrides: Iterable[str]) -> str:
    """A run's problem label: its config name, or the class name when ``problem._target_`` was
    overridden from the command line (a user's own problem)."""
    if problem_choice is None or any(
        o.lstrip("+~").startswith("problem._target_=") for o in overrides
    ):
        return target.rsplit(".", 1)[-1]
    return problem_choice


def write_json_atomic(path: Path, data: Mapping) -> None:
    """Write to a temporary file next to ``path`` (named by pid: two writers never share one),
    then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    """Tensors and numpy values (e.g. in optimizer stats) as plain numbers or lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# ---------------------------------------------------------------- reading records


class RecordError(ValueError):
    """A result file that is not a run record; the message names the file."""


def load_record(path: Path) -> dict[str, Any]:
    """The record in ``path``, checked for shape; :class:`RecordError` names the file and what is
    wrong (unreadable, not JSON, not an object, a field of the wrong type)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RecordError(f"{path}: unreadable ({err})") from err
    if not isinstance(record, dict):
        raise RecordError(f"{path}: not a run record (a JSON {type(record).__name__})")
    for key, kind in RECORD_FIELDS.items():
        if record.get(key) is not None and not isinstance(record[key], kind):
            kind_name, value_name = kind[0].__name__, type(record[key]).__name__
            raise RecordError(f"{path}: {key} is a {value_name}, not a {kind_name}")
    status = record.setdefault("status", "ok")
    if status not in STATUSES:
        raise RecordError(f"{path}: status {status!r} is not one of {', '.join(STATUSES)}")
    return record


RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "problem": (str,),
    "optimizer": (str,),
    "seed": (int,),
    "status": (str,),
    "headline_metric": (str,),
    "metrics": (dict,),
    "best_metrics": (dict,),
    "config": (dict,),
    "history": (dict,),
    "provenance": (dict,),
}


def read_record(path: Path) -> dict[str, Any]:
    """As :func:`load_record`, but a bad file is a ``failed`` record (``message`` names the file and
    the reason, ``invalid: true``; no labels: the reader takes them from the job's ``.hydra``)."""
    try:
        return load_record(path)
    except RecordError as err:
        return {"status": "failed", "message": str(err), "invalid": True}


def sweep_config(root: Path) -> dict[str, Any] | None:
    """The sweep's config from ``root/multirun.yaml`` as a plain dict; ``None`` with a warning
    when the file is missing (a sweep's targets and job count come from it)."""
    path = Path(root) / SWEEP_CONFIG
    if not path.is_file():
        log.warning("%s is missing: the sweep's targets and size are unknown", path)
        return None
    from omegaconf import OmegaConf  # readers of sweeps (app, report) have Hydra

    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


# ---------------------------------------------------------------- which config keys count


def result_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a run's resolved config that can change its result."""
    return {key: value for key, value in config.items() if key not in NOT_RESULT_KEYS}


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every (dotted) key whose value differs, in key order."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [
            line
            for key in sorted(set(old) | set(new), key=str)
            for line in config_differences(
                old.get(key, "<absent>"), new.get(key, "<absent>"), f"{prefix}{key}."
            )
        ]
    if old == new or (_is_nan(old) and _is_nan(new)):
        return []
    return [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ---------------------------------------------------------------- provenance


def provenance(device: str, dtype: str) -> dict[str, Any]:
    """What produced a result, beyond its config: code, torch, machine, threads, device, dtype
    (float32 sums depend on the CPU and the thread count)."""
    import torch

    return {
        **code_version(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "device": _device_name(device),
        "dtype": dtype,
    }


@functools.cache
def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout of it, the commit (``None`` otherwise) and
    whether tracked files differ from it."""
    from azure_sciml import __version__

    here = Path(__file__).resolve().parent
    commit = _git(here, "rev-parse", "HEAD")
    dirty = None
    if commit is not None and _git(here, "ls-files", "--error-unmatch", "runs.py") is None:
        commit = None  # a git repo around an installed copy, not a checkout of this package
    if commit is not None:
        dirty = bool(_git(here, "status", "--porcelain", "--untracked-files=no", "--", "."))
    return {"version": __version__, "git_commit": commit, "git_dirty": dirty}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _device_name(device: str) -> str:
    import torch

    try:
        if device.startswith("cuda") and torch.cuda.is_available():
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    except (AssertionError, RuntimeError):  # torch without CUDA, a bad index: the name only
        pass
    return device


def provenance_differences(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Provenance keys whose values differ between ``records`` (records without provenance count
    as ``None``), each with its distinct values sorted; empty when all agree."""
    values: dict[str, set] = {}
    for record in records:
        prov = record.get("provenance")
        prov = prov if isinstance(prov, Mapping) else {}
        for key in PROVENANCE_KEYS:
            value = prov.get(key)
            values.setdefault(key, set()).add(value if _hashable(value) else repr(value))
    return {
        key: sorted(seen, key=lambda v: (v is None, str(v)))
        for key, seen in values.items()
        if len(seen) > 1
    }


PROVENANCE_KEYS = (
    "version", "git_commit", "git_dirty", "torch", "python", "platform", "cpu", "threads",
    "device", "dtype",
)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
