"""Hydra app: ``azure-sciml problem=heat optimizer=azure seed=0`` trains one problem with one
optimizer and writes ``result.json`` (and ``solution.png``) into the Hydra run dir.

The whole config is checked and instantiated before any training (:func:`setup`): a bad value fails
with its key named, e.g. ``optimizer.lr=-0.001: ...``. In a multirun a run that crashes is recorded
as ``status: failed`` and the sweep goes on, so the report can list it; a single run re-raises.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

import azure_sciml.conf  # noqa: F401  (registers the configs' resolvers)
from azure_sciml.runs import RESULT_FILE, problem_name, write_json_atomic
from azure_sciml.train import FitResult, OptimizerFactory, Problem, fit

log = logging.getLogger(__name__)

FIGURE_FILE = "solution.png"
CHECKPOINT_FILE = "checkpoint.pt"
MAX_HISTORY_POINTS = 500
DTYPES = ("float32", "float64", "bfloat16", "float16")
LR_FROM_PROBLEM = "${problem.lr}"
# Words torch's optimizers use in their errors for keys of our optimizer configs.
KEY_ALIASES = {"lr": "learning rate", "betas": "beta", "eps": "epsilon"}
USER_PROBLEM_HINT = (
    ". Every key of the problem config goes to the constructor: for a class of your own start"
    " from an empty node, '~problem' '+problem._target_=pkg.Class' +problem.steps=N +problem.lr=X,"
    " or add a problem config dir with hydra.searchpath=[file://DIR]"
)


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with ``key=value``."""


@hydra.main(version_base="1.3", config_path="pkg://azure_sciml.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    return run(
        cfg,
        Path(hydra_cfg.runtime.output_dir),
        choices=dict(hydra_cfg.runtime.choices),
        overrides=OmegaConf.to_container(hydra_cfg.overrides.task),  # unresolved: may hold ${}
        reraise=hydra_cfg.mode != RunMode.MULTIRUN,
    )


def run(
    cfg: DictConfig,
    out_dir: Path,
    choices: Mapping[str, str | None],
    overrides: Sequence[str] = (),
    reraise: bool = True,
) -> float:
    """Train as ``cfg`` says, write ``out_dir/result.json``; return the headline metric.

    With ``resume``, a run dir that already holds a complete result is skipped (a relaunched sweep
    recomputes nothing that finished) and a checkpoint left by an interrupted run is resumed.
    """
    problem, make_optimizer = setup(cfg)
    done = completed_result(out_dir, cfg) if cfg.resume else None
    if done is not None:
        log.info("%s already holds a complete result: skipped (resume=true)", out_dir)
        return headline_value(done)
    record = {
        "problem": problem_name(choices.get("problem"), cfg.problem._target_, overrides),
        "optimizer": optimizer_label(choices),
        "seed": cfg.seed,
        "headline_metric": problem.metric,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "overrides": list(overrides),
        "choices": dict(choices),
    }
    try:
        record.update(train(cfg, problem, make_optimizer, out_dir))
    except Exception as err:
        record.update(status="failed", message=repr(err), traceback=traceback.format_exc())
        write_json_atomic(out_dir / RESULT_FILE, record)
        if reraise:
            raise
        log.exception("run failed; recorded as status=failed in %s", out_dir / RESULT_FILE)
        return math.inf
    write_json_atomic(out_dir / RESULT_FILE, record)
    (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    value = headline_value(record)
    log.info("%s=%.4g status=%s (%s)", problem.metric, value, record["status"], out_dir)
    return value


def headline_value(record: Mapping[str, Any]) -> float:
    """The headline metric of a result record; inf when missing or not finite (Optuna minimises)."""
    value = float(record.get("metrics", {}).get(record.get("headline_metric"), math.nan))
    return value if math.isfinite(value) else math.inf


def completed_result(out_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The record in ``out_dir/result.json`` if that run finished (ok or diverged) with this very
    config, else None. A corrupt file or another config's result is reported and run again."""
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        log.warning("%s is corrupt (%s): running again", path, err)
        return None
    if record.get("config") != OmegaConf.to_container(cfg, resolve=True):
        log.warning("%s holds a run with another config: running again", path)
        return None
    return record if record.get("status") in ("ok", "diverged") else None


def train(
    cfg: DictConfig, problem: Problem, make_optimizer: OptimizerFactory, out_dir: Path
) -> dict[str, Any]:
    """``fit()`` as the config says; returns the result's JSON fields (and the figure's name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = fit(
        problem,
        make_optimizer,
        seed=cfg.seed,
        device=cfg.device,
        dtype=getattr(torch, cfg.dtype),
        clip_grad_norm=cfg.clip_grad_norm,
        scheduler=scheduler_factory(cfg),
        progress=cfg.progress,
        checkpoint=out_dir / CHECKPOINT_FILE if cfg.checkpoint_every else None,
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
    )
    fields = result_fields(result)
    if cfg.save_plot:
        fields["figure"] = save_figure(problem, result, out_dir)
    return fields


# ---------------------------------------------------------------- checks, before any training


def setup(cfg: DictConfig) -> tuple[Problem, OptimizerFactory]:
    """Check ``cfg`` and build the problem and the optimizer factory; :class:`ConfigError` names
    the first bad key."""
    check_run_keys(cfg)
    problem = instantiate(cfg.problem, "problem")
    check_problem(problem, cfg.problem)
    adopt_problem_lr(cfg, problem)
    check_lr(cfg.optimizer)
    make_optimizer = instantiate(cfg.optimizer, "optimizer")
    dry_run(make_optimizer, cfg.optimizer)
    make_optimizer = refined(cfg, problem, make_optimizer)
    scheduler_factory(cfg)
    return problem, make_optimizer


def refined(cfg: DictConfig, problem: Problem, make_first: OptimizerFactory) -> OptimizerFactory:
    """With a ``refine`` group (``refine=lbfgs``): a :class:`~azure_sciml.chain.Chain` that hands
    the run over to ``refine.optimizer`` after ``refine.at`` of the budget; else ``make_first``."""
    node = cfg.get("refine")
    if node is None:
        return make_first
    from azure_sciml.chain import Chain

    make_then = instantiate(node.optimizer, "refine.optimizer")
    try:
        make_then([torch.zeros(1, requires_grad=True)])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{blame(node.optimizer, 'refine.optimizer', err)}: {err}") from err
    make = functools.partial(
        Chain, first=make_first, then=make_then, at=node.at, total_steps=problem.steps
    )
    try:
        make([torch.zeros(1, requires_grad=True)])
    except ValueError as err:
        raise ConfigError(f"refine.at={node.at!r}: {err}") from err
    return make


def optimizer_label(choices: Mapping[str, str | None]) -> str | None:
    """The run's optimizer label: the optimizer's config name, ``adam+lbfgs`` with a refine."""
    refine = choices.get("refine")
    return choices.get("optimizer") if refine is None else f"{choices.get('optimizer')}+{refine}"


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


def check_run_keys(cfg: DictConfig) -> None:
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ConfigError(f"seed={cfg.seed!r}: must be an integer")
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"dtype={cfg.dtype!r}: must be one of {', '.join(DTYPES)}")
    every = cfg.checkpoint_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"checkpoint_every={every!r}: must be an integer >= 0 (0: none)")
    if not isinstance(cfg.resume, bool):
        raise ConfigError(f"resume={cfg.resume!r}: must be true or false")
    clip = cfg.clip_grad_norm
    if clip is not None and not (isinstance(clip, int | float) and clip > 0):
        raise ConfigError(f"clip_grad_norm={clip!r}: must be null or a positive number")
    check_device(cfg.device)


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


def check_lr(node: DictConfig) -> None:
    try:
        lr = node.get("lr")
    except InterpolationResolutionError as err:
        raise ConfigError(
            f"optimizer.lr={unresolved(node, 'lr')}: {err} (set problem.lr or optimizer.lr)"
        ) from err
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float) or lr < 0):
        source = unresolved(node, "lr")
        origin = f" (from {source})" if source != lr else ""
        raise ConfigError(f"optimizer.lr={lr!r}{origin}: learning rate must be a number >= 0")


def dry_run(make_optimizer: OptimizerFactory, node: DictConfig) -> None:
    """Build the optimizer on a dummy tensor so it checks its own arguments before training."""
    try:
        make_optimizer([torch.zeros(1, requires_grad=True)])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{blame(node, 'optimizer', err)}: {err}") from err


def unresolved(node: DictConfig, key: str) -> Any:
    """The value as written in the config, interpolations unresolved."""
    return OmegaConf.to_container(node, resolve=False).get(key)


def instantiate(node: DictConfig, group: str) -> Any:
    """``hydra.utils.instantiate``, with a constructor's error prefixed by the key it is about."""
    try:
        return hydra.utils.instantiate(node)
    except InstantiationException as err:
        cause = err.__cause__ or err
        if isinstance(cause, ImportError):
            target = f"{group}._target_={node._target_!r}"
            raise ConfigError(f"{target}: cannot import ({cause})") from err
        unexpected_key = group == "problem" and "unexpected keyword" in str(cause)
        hint = USER_PROBLEM_HINT if unexpected_key else ""
        raise ConfigError(f"{blame(node, group, cause)}: {cause}{hint}") from err


def blame(node: DictConfig, group: str, err: BaseException) -> str:
    """``group.key=value`` for the first key of ``node`` that the error message mentions."""
    message = str(err)
    for key, value in node.items():
        words = [key, KEY_ALIASES.get(key)]
        if any(word and re.search(rf"\b{re.escape(word)}\b", message) for word in words):
            return f"{group}.{key}={value!r}"
    return f"{group} ({node.get('_target_')})"


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
