"""Checkpoint files of :func:`azure_sciml.fit`: read as plain data only
(``torch.load(weights_only=True)``), with the config they were written with, and torch's RNG
state (what a resumed run needs to continue bit for bit)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from azure_sciml.runs import config_differences

__all__ = ["CHECKPOINT_FORMAT", "CheckpointMismatch", "checkpoint_config", "read_checkpoint"]


class CheckpointMismatch(ValueError):
    """A checkpoint written by a run with another config; ``differences`` lists the keys."""

    def __init__(self, path: Path, differences: list[str]):
        self.path, self.differences = path, differences
        super().__init__(
            f"checkpoint {path} was written with another config ({'; '.join(differences)})"
        )


def checkpoint_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config`` a checkpoint was written with (``None`` if it was given none); ValueError
    when the file is not a readable azure_sciml checkpoint."""
    return read_checkpoint(Path(path))["config"]


CHECKPOINT_FORMAT = 2  # 2: with the run's config


def read_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # an object weights_only refuses to build
        refused = next((line for line in str(err).splitlines() if "GLOBAL" in line), "")
        raise ValueError(
            f"checkpoint {path} holds objects that are not plain data, refused unread"
            f" (weights_only=True){': ' + refused.strip() if refused else ''}"
        ) from err
    except Exception as err:  # torch raises several types for truncated/corrupt files
        raise ValueError(f"checkpoint {path} is corrupt or truncated: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path} is not an azure_sciml checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return ckpt


def rng_state() -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Atomically: a pid-named temporary file renamed, so two writers never share one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def check_identity(ckpt: dict, path: Path, problem, opt, config: dict | None) -> None:
    """Refuse a checkpoint of another problem class, optimizer class or (when given) config."""
    for key, here in (("problem", type(problem).__name__),
                      ("optimizer_class", type(opt).__name__)):
        if ckpt.get(key) != here:
            raise ValueError(
                f"checkpoint {path} was written for {key} {ckpt.get(key)!r}, not {here!r}"
            )
    if config is not None:
        differences = config_differences(ckpt["config"] or {}, config)
        if differences:
            raise CheckpointMismatch(path, differences)
