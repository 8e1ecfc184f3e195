"""What a comparison runs: the app's own planning for every (seed, optimizer).

Each job's config is composed with Hydra's compose API from the app's configs
(``azure_sciml.conf``) and the typed settings as overrides (``++problem.KEY=VALUE``,
``++optimizer.KEY=VALUE``), then checked and built by the app's
:func:`~azure_sciml.app.plan.make_plan`, exactly as ``azure-sciml`` would; its
``ConfigError`` (naming the key) is shown as typed. Nothing trains before every job is planned.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure_sciml.dashboard.inputs import InputError, parse_pairs, parse_settings, whole

MAX_STEPS = 20_000  # loss evaluations per run
MAX_SEEDS = 10
MAX_RUNS = 40  # seeds x optimizers per comparison
QUIET = ("progress=false", "save_plot=false")

_HYDRA_LOCK = threading.Lock()  # Hydra's compose API keeps global state


def config_names(group: str) -> list[str]:
    """The configs of a group (``problem``, ``optimizer``) the app knows."""
    import azure_sciml.conf

    conf = Path(azure_sciml.conf.__file__).resolve().parent
    return sorted(path.stem for path in (conf / group).glob("*.yaml") if path.stem[0] != "_")


@dataclass(frozen=True)
class Job:
    """One run of a comparison: its composed config and the app's checked plan of it."""

    optimizer: str
    seed: int
    cfg: Any  # the composed DictConfig
    plan: Any  # azure_sciml.app.plan.RunPlan

    @property
    def problem(self):
        return self.plan.problem


def plan(
    problem: str,
    optimizers: Sequence[str],
    settings: str = "",
    problem_settings: str = "",
    steps: Any = 500,
    seeds: Any = 3,
) -> list[Job]:
    """The runs of a paired comparison, every config checked by the app before any training;
    :class:`InputError` names the first bad input."""
    problems, known = config_names("problem"), config_names("optimizer")
    if problem not in problems:
        raise InputError(f"problem {problem!r} is not one of {', '.join(problems)}")
    optimizers = list(dict.fromkeys(optimizers or []))
    if not optimizers:
        raise InputError("choose at least one optimizer")
    for name in optimizers:
        if name not in known:
            raise InputError(f"optimizer {name!r} is not one of {', '.join(known)}")
    steps = whole(steps, "loss evaluations per run", 1, MAX_STEPS)
    seeds = whole(seeds, "paired seeds", 1, MAX_SEEDS)
    if seeds * len(optimizers) > MAX_RUNS:
        raise InputError(
            f"{seeds} seeds x {len(optimizers)} optimizers = {seeds * len(optimizers)} runs: "
            f"at most {MAX_RUNS} here (run bigger studies with azure-sciml -m)"
        )
    per_optimizer = parse_settings(settings, optimizers)
    problem_pairs = [f"++problem.{p}" for p in parse_pairs(problem_settings, "problem settings")]
    jobs = []
    for seed in range(seeds):
        for name in optimizers:
            overrides = [f"problem={problem}", f"optimizer={name}", f"seed={seed}",
                         f"problem.steps={steps}", *QUIET, *problem_pairs,
                         *(f"++optimizer.{pair}" for pair in per_optimizer[name])]  # fmt: skip
            cfg = compose(overrides)
            jobs.append(Job(name, seed, cfg, checked_plan(cfg)))
    return jobs


def compose(overrides: list[str]):
    """The app's config with ``overrides`` (Hydra's compose API, as ``azure-sciml`` composes)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with _HYDRA_LOCK, initialize_config_module("azure_sciml.conf", version_base="1.3"):
        try:
            return hydra_compose("config", overrides=overrides)
        except (HydraException, OmegaConfBaseException) as err:
            raise InputError(str(err).splitlines()[0]) from err


def checked_plan(cfg):
    """The app's :func:`~azure_sciml.app.plan.make_plan` of ``cfg``; its ``ConfigError``
    (``key=value: reason``) as an :class:`InputError`."""
    from azure_sciml.app.checks import ConfigError
    from azure_sciml.app.plan import make_plan

    try:
        return make_plan(cfg)
    except ConfigError as err:
        raise InputError(str(err)) from err
