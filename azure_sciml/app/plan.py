"""From a composed config to a checked :class:`RunPlan`: the problem, the optimizer factory and
the scheduler, each built once, and the run keys typed; everything :func:`azure_sciml.fit` needs.

A bad value is a :class:`~azure_sciml.app.checks.ConfigError` naming its key before anything
trains. A constructor's own ``ValueError`` is located without reading its wording: the key
whose removal lets the constructor succeed is the one it refuses (:func:`culprit`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import hydra
import torch
from hydra._internal.utils import _locate  # what instantiate() imports with, without its log
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

import azure_sciml.conf  # noqa: F401  (registers the configs' resolvers and the open nodes)
from azure_sciml.app.checks import (
    GROUPS,
    HYDRA_KEYS,
    NO_VALUE,
    OTHER_GROUPS,
    ConfigError,
    RunKeys,
    check_arguments,
    check_run_keys,
    check_steps,
    one_line,
    resolved_node,
    unresolved,
)
from azure_sciml.train import OptimizerFactory, Problem

SchedulerFactory = Callable[[torch.optim.Optimizer], Any]

LR_FROM_PROBLEM = "${problem.lr}"
USER_PROBLEM_HINT = (
    ". Every key of the problem config goes to the constructor: for a class of your own start"
    " from an empty node, '~problem' '+problem._target_=pkg.Class' +problem.steps=N +problem.lr=X,"
    " or add a problem config dir with hydra.searchpath=[file://DIR]"
)
IMPORT_HINT = (
    " (a module of your own must be importable: run from its directory with PYTHONPATH=. or"
    " pip install it)"
)


@dataclass(frozen=True)
class RunPlan:
    """A checked run: the typed run keys, the problem, the optimizer factory (a ``Chain`` with a
    ``refine`` group), the scheduler factory (or None) and the config as plain data (the lr the
    optimizer gets written in), as the record stores it."""

    keys: RunKeys
    problem: Problem
    optimizer: OptimizerFactory
    scheduler: SchedulerFactory | None
    config: dict[str, Any]

    def fit_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`azure_sciml.fit` the config decides."""
        return {
            "seed": self.keys.seed,
            "device": self.keys.device,
            "dtype": getattr(torch, self.keys.dtype),
            "clip_grad_norm": self.keys.clip_grad_norm,
            "scheduler": self.scheduler,
            "progress": self.keys.progress,
        }


def make_plan(cfg: DictConfig) -> RunPlan:
    """Check ``cfg`` and build what the run needs; :class:`ConfigError` names the first bad key."""
    keys = check_run_keys(resolved_node(cfg, "", skip=GROUPS + OTHER_GROUPS))
    problem = instantiate(cfg.problem, "problem", hint=USER_PROBLEM_HINT)
    check_problem(problem, cfg.problem)
    lr = problem_lr(cfg, problem)
    overrides = {} if lr is None else {"lr": lr}
    make_optimizer = instantiate(cfg.optimizer, "optimizer", overrides=overrides)
    dry_run(make_optimizer, cfg.optimizer, "optimizer", overrides)
    make_optimizer = refined(cfg, make_optimizer)
    config = resolved_config(cfg, overrides)
    return RunPlan(keys, problem, make_optimizer, scheduler_factory(cfg), config)


def setup(cfg: DictConfig) -> tuple[Problem, OptimizerFactory]:
    """The checked problem and optimizer factory of ``cfg`` (:func:`make_plan`'s)."""
    plan = make_plan(cfg)
    return plan.problem, plan.optimizer


def resolved_config(cfg: DictConfig, optimizer_overrides: Mapping[str, Any] = ()) -> dict:
    """The config as the run uses it; unresolved where an interpolation fails."""
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        config = OmegaConf.to_container(cfg, resolve=False)
    if optimizer_overrides:
        config["optimizer"] = {**config["optimizer"], **optimizer_overrides}
    return config


def check_problem(problem: Any, node: DictConfig) -> None:
    if not isinstance(problem, Problem):
        raise ConfigError(
            "problem._target_", node._target_, "not a Problem "
            "(needs steps, metric, build(device, dtype), loss(model), evaluate(model))"
        )
    check_steps(problem.steps)


def problem_lr(cfg: DictConfig, problem: Problem) -> float | None:
    """The problem's own ``lr`` where the optimizer's is ``${problem.lr}`` and the problem config
    sets none (null or absent: a user's class with an ``lr`` attribute); else None."""
    lr = getattr(problem, "lr", None)
    if unresolved(cfg.optimizer, "lr") == LR_FROM_PROBLEM and cfg.problem.get("lr") is None:
        if isinstance(lr, int | float) and not isinstance(lr, bool):
            return float(lr)
    return None


def refined(cfg: DictConfig, make_first: OptimizerFactory) -> OptimizerFactory:
    """With a ``refine`` group (``refine=lbfgs``): a :class:`~azure_sciml.chain.Chain` that hands
    the run over to ``refine.optimizer`` after ``refine.at`` of the run length (which ``fit``
    hands the chain); else ``make_first``."""
    node = cfg.get("refine")
    if node is None or node.get("optimizer") is None:  # refine=none: no hand-over
        return make_first
    from azure_sciml.chain import Chain

    make_then = instantiate(node.optimizer, "refine.optimizer")
    dry_run(make_then, node.optimizer, "refine.optimizer")
    make = functools.partial(Chain, first=make_first, then=make_then, at=node.at)
    try:
        make([torch.zeros(1, requires_grad=True)])
    except ValueError as err:
        raise ConfigError("refine.at", node.at, str(err)) from err
    return make


def scheduler_factory(cfg: DictConfig) -> SchedulerFactory | None:
    """The ``scheduler`` group's ``_partial_`` LR scheduler (the same for every optimizer), checked
    on a dummy optimizer; ``None`` without one."""
    node = cfg.get("scheduler")
    if node is None:
        return None
    make = instantiate(node, "scheduler")
    dry_run(make, node, "scheduler")
    return make


def dummy_argument(group: str) -> Any:
    """What a factory of ``group`` is called with in a dry run."""
    params = [torch.zeros(1, requires_grad=True)]
    return torch.optim.SGD(params, lr=0.1) if group == "scheduler" else params


def dry_run(make: Callable, node: DictConfig, group: str, overrides: Mapping = ()) -> None:
    """Call the factory on a dummy so the constructor checks its own arguments before training."""
    try:
        make(dummy_argument(group))
    except (ValueError, TypeError) as err:
        raise located(node, group, err, dict(overrides), call=True) from err


def instantiate(node: DictConfig, group: str, hint: str = "", overrides: Mapping = ()) -> Any:
    """``hydra.utils.instantiate`` (with ``overrides``) after the node's values are typed by its
    ``_target_``'s signature (:func:`~azure_sciml.app.checks.check_arguments`); an import error
    or a constructor's error is a :class:`ConfigError` naming the key (``hint`` follows an
    unknown key's message)."""
    overrides = dict(overrides)
    values = resolved_node(node, f"{group}.", skip=(*HYDRA_KEYS, *overrides))
    target_path = node.get("_target_")
    if target_path is None:
        raise ConfigError(f"{group}._target_", NO_VALUE, "missing (the class or function to build)")
    try:
        target = _locate(str(target_path))
    except ImportError as err:
        cause = err.__cause__ or err
        fix = IMPORT_HINT if isinstance(cause, ModuleNotFoundError) else ""
        raise ConfigError(
            f"{group}._target_", str(target_path), f"cannot import ({one_line(cause)}){fix}"
        ) from err
    check_arguments(target, {**values, **overrides}, group, hint)
    try:  # plain lists and dicts, as a constructor called from Python gets them
        return hydra.utils.instantiate(node, _convert_="all", **overrides)
    except InstantiationException as err:
        raise located(node, group, err.__cause__ or err, overrides, call=False) from err


def located(
    node: DictConfig, group: str, err: BaseException, overrides: dict, call: bool
) -> ConfigError:
    """The constructor's error as a :class:`ConfigError` at the key it refuses
    (:func:`culprit`), or at the group (with its ``_target_``) when no single key is to blame."""
    written = OmegaConf.to_container(node, resolve=False)
    plain = {k: v for k, v in written.items() if k in HYDRA_KEYS}
    plain |= resolved_node(node, f"{group}.", skip=(*HYDRA_KEYS, *overrides)) | overrides
    key = culprit(plain, group, call)
    if key is None:
        return ConfigError(group, NO_VALUE, f"{plain.get('_target_')}: {one_line(err)}")
    return ConfigError(f"{group}.{key}", plain[key], one_line(err))


def culprit(plain: dict[str, Any], group: str, call: bool) -> str | None:
    """The first key without which the node builds (and, with ``call``, its factory runs on a
    dummy): the value the constructor refuses. None when no single key is to blame."""
    for key in [k for k in plain if k not in HYDRA_KEYS]:
        trial = OmegaConf.create({k: v for k, v in plain.items() if k != key})
        try:
            built = hydra.utils.instantiate(trial, _convert_="all")
            if call:
                built(dummy_argument(group))
        except Exception:
            continue
        return key
    return None
