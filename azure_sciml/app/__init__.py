"""Hydra app: ``azure-sciml problem=heat optimizer=azure seed=0`` trains one problem with one
optimizer and writes ``result.json`` (and ``solution.png``) into the Hydra run dir.

The whole config is typed, checked and instantiated before any training (:func:`setup`): a bad
value fails with its key named, e.g. ``optimizer.lr=-0.001: ...``; on the command line that is one
line, not a traceback. In a multirun nothing a job does stops the sweep: a bad config, a crash or
an unwritable run dir is that job's ``status: failed`` record (with the error) and the sweep goes
on to its report; each finished job logs one line with k/N done and the time left.

Resume is config-checked: a finished ``result.json`` is skipped, and a checkpoint resumed, only
when the keys that can change the result (everything but ``progress``, ``save_plot``,
``checkpoint_every``, ``resume``, ``targets``; for a checkpoint also the code version) are the
same; otherwise the run starts afresh and the log names the keys that differ.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra._internal.utils import _locate  # what instantiate() imports with, without its log
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

import azure_sciml.conf  # noqa: F401  (registers the configs' resolvers)
from azure_sciml.config import (
    GROUPS,
    HYDRA_KEYS,
    OTHER_GROUPS,
    ConfigError,
    check_arguments,
    check_run_keys,
)
from azure_sciml.runs import (
    FINISHED,
    RESULT_FILE,
    SWEEP_CONFIG,
    RecordError,
    code_version,
    config_differences,
    load_record,
    problem_name,
    provenance,
    result_config,
    sweep_config,
    write_json_atomic,
)
from azure_sciml.train import FitResult, OptimizerFactory, Problem, checkpoint_config, fit

log = logging.getLogger(__name__)

__all__ = ["ConfigError", "main", "run", "setup"]

FIGURE_FILE = "solution.png"
CHECKPOINT_FILE = "checkpoint.pt"
PROGRESS_DIR = ".progress"  # in a sweep dir: one marker per finished job, for k/N and the ETA
MAX_HISTORY_POINTS = 500
LR_FROM_PROBLEM = "${problem.lr}"
# Words torch's optimizers use in their errors for keys of our optimizer configs.
KEY_ALIASES = {"lr": "learning rate", "betas": "beta", "eps": "epsilon"}
USER_PROBLEM_HINT = (
    ". Every key of the problem config goes to the constructor: for a class of your own start"
    " from an empty node, '~problem' '+problem._target_=pkg.Class' +problem.steps=N +problem.lr=X,"
    " or add a problem config dir with hydra.searchpath=[file://DIR]"
)
IMPORT_HINT = (
    " (a module of your own must be importable: run from its directory with PYTHONPATH=. or"
    " pip install it)"
)


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
        problem, make_optimizer = setup(cfg)
        record.update(headline_metric=problem.metric, config=resolved_config(cfg))
        done = completed_result(out_dir, cfg) if cfg.resume else None
        if done is not None:
            log.info("%s already holds a complete result: skipped (resume=true)", out_dir)
            record, skipped = done, True
        else:
            record.update(train(cfg, problem, make_optimizer, out_dir))
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


def safe_get(cfg: DictConfig, key: str) -> Any:
    try:
        return cfg.get(key)
    except Exception:  # an interpolation that does not resolve
        return None


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as the run used it; unresolved where an interpolation fails."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        return OmegaConf.to_container(cfg, resolve=False)


def save_failed(out_dir: Path, record: dict[str, Any]) -> None:
    """Write a failed record; a run dir that cannot be written is logged, naming the file."""
    try:
        write_json_atomic(out_dir / RESULT_FILE, record)
    except OSError as err:
        log.error("cannot write %s (%s): the failure is only in this log", out_dir / RESULT_FILE,
                  err)


def run_key(cfg: DictConfig) -> dict[str, Any]:
    """What a checkpoint must have been written with to be resumed: the result-relevant config
    and the code version."""
    code = code_version()
    return {**result_config(resolved_config(cfg)),
            "code": {"version": code["version"], "git_commit": code["git_commit"]}}


def headline_value(record: Mapping[str, Any]) -> float:
    """The headline metric of a result record; inf when missing or not finite (Optuna minimises)."""
    try:
        value = float((record.get("metrics") or {}).get(record.get("headline_metric"), math.nan))
    except (TypeError, ValueError):
        return math.inf
    return value if math.isfinite(value) else math.inf


def completed_result(out_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
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
        result_config(record.get("config") or {}), result_config(resolved_config(cfg))
    )
    if differences:
        log.warning("%s holds a run with another config (%s): running again", path,
                    "; ".join(differences))
        return None
    return record


def train(
    cfg: DictConfig, problem: Problem, make_optimizer: OptimizerFactory, out_dir: Path
) -> dict[str, Any]:
    """``fit()`` as the config says; returns the result's JSON fields (and the figure's name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / CHECKPOINT_FILE if cfg.checkpoint_every else None
    key = run_key(cfg)
    if checkpoint is not None and cfg.resume:
        discard_stale_checkpoint(checkpoint, key)
    result = fit(
        problem,
        make_optimizer,
        seed=cfg.seed,
        device=cfg.device,
        dtype=getattr(torch, cfg.dtype),
        clip_grad_norm=cfg.clip_grad_norm,
        scheduler=scheduler_factory(cfg),
        progress=cfg.progress,
        checkpoint=checkpoint,
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        config=key,
    )
    fields = result_fields(result)
    if cfg.save_plot:
        fields["figure"] = save_figure(problem, result, out_dir)
    return fields


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


# ---------------------------------------------------------------- checks, before any training


def setup(cfg: DictConfig) -> tuple[Problem, OptimizerFactory]:
    """Check ``cfg`` and build the problem and the optimizer factory; :class:`ConfigError` names
    the first bad key."""
    check_run_keys(resolved_node(cfg, "", skip=GROUPS + OTHER_GROUPS))
    check_device(cfg.device)
    problem = instantiate(cfg.problem, "problem", hint=USER_PROBLEM_HINT)
    check_problem(problem, cfg.problem)
    adopt_problem_lr(cfg, problem)
    make_optimizer = instantiate(cfg.optimizer, "optimizer")
    dry_run(make_optimizer, cfg.optimizer)
    make_optimizer = refined(cfg, problem, make_optimizer)
    scheduler_factory(cfg)
    return problem, make_optimizer


def refined(cfg: DictConfig, problem: Problem, make_first: OptimizerFactory) -> OptimizerFactory:
    """With a ``refine`` group (``refine=lbfgs``): a :class:`~azure_sciml.chain.Chain` that hands
    the run over to ``refine.optimizer`` after ``refine.at`` of the budget; else ``make_first``."""
    node = cfg.get("refine")
    if node is None or node.get("optimizer") is None:  # refine=none: no hand-over
        return make_first
    from azure_sciml.chain import Chain

    make_then = instantiate(node.optimizer, "refine.optimizer")
    try:
        make_then([torch.zeros(1, requires_grad=True)])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{blame(node.optimizer, 'refine.optimizer', err)}: {err}") from err
    make = functools.partial(Chain, first=make_first, then=make_then, at=node.at)
    try:
        make([torch.zeros(1, requires_grad=True)])
    except ValueError as err:
        raise ConfigError(f"refine.at={node.at!r}: {err}") from err
    return make


def optimizer_label(choices: Mapping[str, str | None]) -> str | None:
    """The run's optimizer label: the optimizer's config name, ``adam+lbfgs`` with a refine."""
    refine = choices.get("refine")
    plain = refine is None or refine == "none"
    return choices.get("optimizer") if plain else f"{choices.get('optimizer')}+{refine}"


def scheduler_factory(cfg: DictConfig) -> Callable[[torch.optim.Optimizer], Any] | None:
    """The ``scheduler`` group's ``_partial_`` LR scheduler (the same for every optimizer), checked
    on a dummy optimizer; ``None`` without one."""
    node = cfg.get("scheduler")
    if node is None:
        return None
    make = instantiate(node, "scheduler")
    try:
        make(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{blame(node, 'scheduler', err)}: {err}") from err
    return make


def check_device(name: str) -> None:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device={name!r}: {err}") from err
    available = {
        "cuda": torch.cuda.is_available,
        "mps": torch.backends.mps.is_available,
    }.get(device.type, lambda: True)
    if not available():
        raise ConfigError(f"device={name!r}: {device.type} is not available on this machine")


def check_problem(problem: Any, node: DictConfig) -> None:
    if not isinstance(problem, Problem):
        raise ConfigError(
            f"problem._target_={node._target_!r}: not a Problem "
            "(needs steps, metric, build(device, dtype), loss(model), evaluate(model))"
        )
    steps = problem.steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"problem.steps={steps!r}: must be a positive number of loss evaluations")


def adopt_problem_lr(cfg: DictConfig, problem: Problem) -> None:
    """``lr: ${problem.lr}`` when the problem chooses its own lr: ``problem.lr`` null or absent
    (a user's class with an ``lr`` attribute, joined with ``+problem._target_=...``)."""
    lr = getattr(problem, "lr", None)
    if unresolved(cfg.optimizer, "lr") == LR_FROM_PROBLEM and cfg.problem.get("lr") is None:
        if isinstance(lr, int | float) and not isinstance(lr, bool):
            cfg.optimizer.lr = float(lr)


def dry_run(make_optimizer: OptimizerFactory, node: DictConfig) -> None:
    """Build the optimizer on a dummy tensor so it checks its own arguments before training."""
    try:
        make_optimizer([torch.zeros(1, requires_grad=True)])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{blame(node, 'optimizer', err)}: {err}") from err


def unresolved(node: DictConfig, key: str) -> Any:
    """The value as written in the config, interpolations unresolved."""
    return OmegaConf.to_container(node, resolve=False).get(key)


def resolved_node(node: DictConfig, prefix: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The node's values as plain data, interpolations resolved; one that does not resolve is a
    :class:`ConfigError` naming its key (``${problem.lr}`` with a hint where to set it)."""
    values = {}
    for key in node:
        if key in skip:
            continue
        try:
            value = node[key]
        except InterpolationResolutionError as err:
            raw = unresolved(node, key)
            hint = " (set problem.lr or optimizer.lr)" if key == "lr" else ""
            raise ConfigError(f"{prefix}{key}={raw}: {one_line(err)}{hint}") from err
        is_node = OmegaConf.is_config(value)
        values[key] = OmegaConf.to_container(value, resolve=True) if is_node else value
    return values


def instantiate(node: DictConfig, group: str, hint: str = "") -> Any:
    """``hydra.utils.instantiate`` after the node's values are typed by its ``_target_``'s
    signature (:func:`azure_sciml.config.check_arguments`); an import error or a constructor's
    error is a :class:`ConfigError` naming the key (``hint`` follows an unknown key's message)."""
    values = resolved_node(node, f"{group}.", skip=HYDRA_KEYS)
    target_path = node.get("_target_")
    if target_path is None:
        raise ConfigError(f"{group}._target_: missing (the class or function to build)")
    try:
        target = _locate(str(target_path))
    except ImportError as err:
        cause = err.__cause__ or err
        fix = IMPORT_HINT if isinstance(cause, ModuleNotFoundError) else ""
        raise ConfigError(
            f"{group}._target_={target_path!r}: cannot import ({one_line(cause)}){fix}"
        ) from err
    check_arguments(target, values, group, hint)
    try:  # plain lists and dicts, as a constructor called from Python gets them
        return hydra.utils.instantiate(node, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{blame(node, group, cause)}: {one_line(cause)}") from err


def one_line(err: BaseException) -> str:
    """An error message on one line (OmegaConf and Hydra add lines of context)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(line for line in lines if not line.startswith(("full_key:", "object_type")))


def blame(node: DictConfig, group: str, err: BaseException) -> str:
    """``group.key=value`` for the first key of ``node`` that the error message mentions."""
    message = str(err)
    for key, value in node.items():
        words = [key, KEY_ALIASES.get(key)]
        if any(word and re.search(rf"\b{re.escape(word)}\b", message) for word in words):
            return f"{group}.{key}={value!r}"
    return f"{group} ({node.get('_target_')})"


# ---------------------------------------------------------------- sweep progress


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
            if marker.stat().st_mtime >= launched:
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


# ---------------------------------------------------------------- results


def result_fields(result: FitResult) -> dict[str, Any]:
    fields = result.summary()
    fields["history"] = downsample(result.history)
    stats = getattr(result.optimizer, "stats", None)
    fields["optimizer_stats"] = stats() if callable(stats) else None
    return fields


def downsample(history: Sequence[tuple[int, float]], max_points: int = MAX_HISTORY_POINTS) -> dict:
    """At most ``max_points`` evenly spaced (evaluation, loss) pairs, first and last kept."""
    n = len(history)
    if n > max_points:
        keep = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
        history = [history[i] for i in keep]
    return {"evals": [e for e, _ in history], "loss": [loss for _, loss in history]}


def save_figure(problem: Problem, result: FitResult, out_dir: Path) -> str | None:
    """The problem's picture of its solution; a plotting error costs the figure, not the run."""
    plot = getattr(problem, "plot", None)
    if plot is None or result.model is None:
        return None
    try:
        plot(result.model, str(out_dir / FIGURE_FILE))
    except Exception:
        log.exception("problem.plot failed; no %s", FIGURE_FILE)
        return None
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a sweep runs many jobs in one process
            sys.modules["matplotlib.pyplot"].close("all")
    return FIGURE_FILE


if __name__ == "__main__":
    main()
