"""Run records: the result file each run writes and every reader reads (app, report, dashboard).

A record is one JSON object per run directory (``result.json``): labels (``problem``,
``optimizer``, ``seed``), ``status`` (``ok``, ``diverged``, ``failed``; readers add ``missing``),
``metrics``, ``stats``, ``config`` and, where recorded, ``history`` and ``provenance``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"


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
