"""One training loop for every optimizer: same seed, same data, same budget, ground-truth scores.

A *problem* is any object with ``steps``, ``build``, ``loss`` and ``evaluate`` (:class:`Problem`).
:func:`fit` seeds torch, builds the problem, wraps the loss in a counting closure and calls
``optimizer.step(closure)`` until the budget of loss evaluations is spent. Every closure call is one
loss evaluation and one gradient evaluation, whoever makes it (the loop, Azure's Metropolis test or
L-BFGS's line search), so an optimizer that evaluates more per step is charged for it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from azure_sciml._checkpoint import (  # noqa: F401  (CheckpointMismatch, checkpoint_config: API)
    CHECKPOINT_FORMAT,
    CheckpointMismatch,
    check_identity,
    checkpoint_config,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from azure_sciml._fit_types import (  # noqa: F401  (LossProblem: API)
    Callback,
    FitResult,
    LossProblem,
    NonFiniteLoss,
    OptimizerFactory,
    Problem,
    Progress,
)
from azure_sciml.run_length import hand_over_run_length

log = logging.getLogger(__name__)

class _Counter:
    """Counting closure: every call is a loss and a gradient evaluation; tracks the best iterate.

    A problem with ``loss_and_grad(model)`` (the heat PINN) computes loss and gradient in one call
    without autograd when it can (it returns None when it cannot: then ``loss`` and
    ``backward()``): the same numbers, the same ``.grad`` tensors, ~0.2 ms an evaluation less."""

    def __init__(self, problem: Problem, model: nn.Module, clip_grad_norm: float | None):
        self.problem, self.model, self.clip = problem, model, clip_grad_norm
        self.params = [p for p in model.parameters() if p.requires_grad]
        fused = getattr(problem, "loss_and_grad", None)
        self.loss_and_grad = fused if callable(fused) else None
        self.n_loss = self.n_grad = 0
        self.history: list[tuple[int, float]] = []
        self.best_loss = math.inf
        self.best_params: list[Tensor] | None = None
        self.last_loss = math.nan

    def __call__(self) -> Tensor:
        for p in self.params:
            p.grad = None
        loss = self.loss_and_grad(self.model) if self.loss_and_grad is not None else None
        backward = loss is None
        if backward:
            loss = self.problem.loss(self.model)
        self.n_loss += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            for p in self.params:  # as where no backward ran
                p.grad = None
            raise NonFiniteLoss(f"loss is {value} at loss evaluation {self.n_loss}")
        if value < self.best_loss:
            self.best_loss = value
            self._keep_best()
        if backward:
            loss.backward()
        self.n_grad += 1
        self._check_grads()
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        self.history.append((self.n_loss, value))
        self.last_loss = value
        return loss

    def _keep_best(self) -> None:
        """The current parameters into ``best_params`` (fresh copies the first time)."""
        if self.best_params is None:
            self.best_params = [p.detach().clone() for p in self.params]
        else:
            with torch.no_grad():
                torch._foreach_copy_(self.best_params, self.params)

    def _check_grads(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        # each norm read as a float: a third of the time of stacking them in a training loop
        if grads and not all(map(math.isfinite, torch._foreach_norm(grads))):
            raise NonFiniteLoss(f"non-finite gradient at gradient evaluation {self.n_grad}")


def fit(
    problem: Problem,
    optimizer: OptimizerFactory,
    *,
    seed: int = 0,
    steps: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    clip_grad_norm: float | None = None,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    on_nonfinite: str = "stop",
    progress: bool = False,
    log_every: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    config: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    callback_every: int = 1,
) -> FitResult:
    """Train ``problem`` with ``optimizer`` (a factory ``params -> Optimizer``, e.g. ``Azure`` or
    ``functools.partial(torch.optim.Adam, lr=1e-3)``) for ``steps`` loss evaluations.

    ``clip_grad_norm`` clips every optimizer's gradients the same way, inside the closure.
    ``on_nonfinite``: ``"stop"`` ends the run as ``status="diverged"`` at the first NaN/Inf loss or
    gradient; ``"skip"`` drops that step and goes on. Either way the weights never see it. (Azure
    handles one that its own exploration caused itself: it rejects the proposal and goes on.)
    ``checkpoint``: file that holds model, optimizer (Azure's generator and schedule included),
    the loop's counters and torch's RNG state, written atomically every ``checkpoint_every`` steps
    and at the end; with ``resume=True`` an existing checkpoint is loaded first and the run
    continues exactly where it stopped (bit for bit on CPU). ``config`` (JSON-like: what produced
    the run, e.g. the app's resolved config and code version) is stored in the checkpoint, and a
    checkpoint written with another one is refused, naming the keys that differ: a run never
    resumes into a result its labels do not describe. Checkpoints are read with
    ``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, so a foreign
    file cannot run code.

    Run length: ``optimizer(params)`` builds the optimizer, then :func:`fit` hands it the budget
    with ``set_run_length(budget)`` if it has that method (:mod:`azure_sciml.run_length`): Azure
    and ``Chain`` do, so ``lambda ps: Azure(ps, lr=0.01)`` anneals over 90% of this run; torch's
    optimizers have none. An explicit ``total_steps`` or ``sa_steps`` of Azure's wins.

    Progress and cancel: ``callback(progress)`` is called after the step that reaches each
    multiple of ``callback_every`` loss evaluations, and after the last step, with a
    :class:`Progress` (``n_loss_evals``, ``budget``, ``n_steps``, ``loss``, ``best_loss``,
    ``elapsed_s``); it returns ``True`` to stop the run there: the result is evaluated as usual,
    with ``status="stopped"`` (its checkpoint resumes from there). Any other return value goes
    on.
    """
    _check_fit_args(on_nonfinite, checkpoint, checkpoint_every, callback_every)
    budget = problem.steps if steps is None else steps
    if budget < 1:
        raise ValueError(f"steps must be a positive number of loss evaluations, got {budget}")
    torch.manual_seed(seed)
    model = problem.build(torch.device(device), dtype)
    counter = _Counter(problem, model, clip_grad_norm)
    # an optimizer that draws from torch's RNG when built (Azure with seed=None draws its seed)
    # must not shift the stream the training data come from: same minibatches for every optimizer
    with torch.random.fork_rng(devices=_cuda_indices(torch.device(device))):
        opt = optimizer(_param_groups(problem, model, counter.params))
        hand_over_run_length(opt, budget)
        sched = scheduler(opt) if scheduler is not None else None
    loop = _Loop(problem, model, opt, sched, counter, config, budget)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        loop.load(Path(checkpoint))
    bar = _progress_bar(budget, progress, initial=counter.n_loss)
    start = time.perf_counter() - loop.wall
    next_call = _next_multiple(counter.n_loss, callback_every)
    while counter.n_loss < budget and loop.status == "ok":
        before = counter.n_loss
        loop.step(on_nonfinite)
        _report(bar, counter, before, loop.n_steps, log_every)
        if checkpoint is not None and checkpoint_every and loop.n_steps % checkpoint_every == 0:
            loop.wall = time.perf_counter() - start
            loop.save(Path(checkpoint))
        if callback is not None and (counter.n_loss >= next_call or counter.n_loss >= budget):
            next_call = _next_multiple(counter.n_loss, callback_every)
            _call_back(callback, loop, budget, time.perf_counter() - start)
    loop.wall = time.perf_counter() - start
    if callable(getattr(opt, "finish", None)):  # Azure: back to the best point judged
        opt.finish()
    if checkpoint is not None:
        loop.save(Path(checkpoint))
    if bar is not None:
        bar.close()
    return _result(loop)


def _param_groups(problem: Problem, model: nn.Module, params: list[Tensor]) -> list:
    """What the optimizer is built on: ``problem.param_groups(model)`` when the problem has one and
    it returns groups (dicts with ``params`` and per-group options, e.g. Azure's ``sigma``), else
    the trainable parameters. The groups must hold every trainable parameter exactly once."""
    hook = getattr(problem, "param_groups", None)
    groups = hook(model) if callable(hook) else None
    if groups is None:
        return params
    groups = list(groups)
    seen = [p for g in groups for p in g["params"]]
    if len(seen) != len(params) or {id(p) for p in seen} != {id(p) for p in params}:
        raise ValueError(
            f"{type(problem).__name__}.param_groups must hold each trainable parameter exactly"
            f" once ({len(seen)} given, {len(params)} trainable)"
        )
    return groups


def _next_multiple(n: int, every: int) -> int:
    """The first multiple of ``every`` above ``n``."""
    return (n // every + 1) * every


def _call_back(callback: Callback, loop: _Loop, budget: int, elapsed: float) -> None:
    c = loop.counter
    progress = Progress(n_loss_evals=c.n_loss, budget=budget, n_steps=loop.n_steps,
                        loss=c.last_loss, best_loss=c.best_loss, elapsed_s=elapsed)
    if callback(progress) is True and loop.status == "ok":
        loop.status = "stopped"
        loop.message = f"stopped by the callback after {c.n_loss} loss evaluations"


def _cuda_indices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _check_fit_args(on_nonfinite: str, checkpoint, checkpoint_every: int, every: int) -> None:
    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if checkpoint_every and checkpoint is None:
        raise ValueError("checkpoint_every is set but no checkpoint path was given")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"callback_every must be a positive integer, got {every!r}")


class _Loop:
    """The run's mutable state: one step at a time, saved to and loaded from a checkpoint."""

    def __init__(self, problem, model, opt, sched, counter: _Counter, config, budget: int):
        self.problem, self.model, self.opt, self.sched, self.counter = (
            problem, model, opt, sched, counter
        )
        self.budget = budget
        self.config = None if config is None else dict(config)
        self.n_steps, self.wall, self.status, self.message = 0, 0.0, "ok", ""

    def step(self, on_nonfinite: str) -> None:
        stages = getattr(self.problem, "n_resamples", None)
        try:
            self.opt.step(self.counter)
            self._new_objective(stages)
        except NonFiniteLoss as err:
            self.message = f"step {self.n_steps}: {err}"
            log.warning("%s (%s)", self.message, on_nonfinite)
            if on_nonfinite == "stop":
                self.status = "diverged"
                return
        self.n_steps += 1
        if self.sched is not None:
            self.sched.step()

    def _new_objective(self, stages: int | None) -> None:
        """A problem that changes its objective (``n_resamples``: fresh collocation points) tells
        an optimizer with stages (Azure's ``new_stage``) after the step that saw the change; the
        new stage runs to the end of the budget."""
        if stages is None or self.problem.n_resamples == stages:
            return
        new_stage = getattr(self.opt, "new_stage", None)
        if callable(new_stage):
            new_stage(total_steps=max(self.budget - self.counter.n_loss, 1))

    def state_dict(self) -> dict[str, Any]:
        c = self.counter
        problem_state = getattr(self.problem, "state_dict", None)
        return {
            "format": CHECKPOINT_FORMAT,
            "problem": type(self.problem).__name__,
            "optimizer_class": type(self.opt).__name__,
            "config": self.config,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched is not None else None,
            "problem_state": problem_state() if problem_state is not None else None,
            "counter": dict(n_loss=c.n_loss, n_grad=c.n_grad, history=c.history,
                            best_loss=c.best_loss, best_params=c.best_params,
                            last_loss=c.last_loss),
            "loop": dict(n_steps=self.n_steps, wall=self.wall,
                         status="ok" if self.status == "stopped" else self.status,  # resumable
                         message=self.message),
            "rng": rng_state(),
        }

    def save(self, path: Path) -> None:
        write_checkpoint(self.state_dict(), path)

    def load(self, path: Path) -> None:
        ckpt = read_checkpoint(path)
        check_identity(ckpt, path, self.problem, self.opt, self.config)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(f"checkpoint {path} does not fit this model/optimizer: {err}") from err
        if self.sched is not None and ckpt["scheduler"] is not None:
            self.sched.load_state_dict(ckpt["scheduler"])
        if ckpt["problem_state"] is not None:
            self.problem.load_state_dict(ckpt["problem_state"])
        self.counter.__dict__.update(ckpt["counter"])
        if self.counter.best_params is not None:
            self.counter.best_params = [
                b.to(p.device) for b, p in zip(self.counter.best_params, self.counter.params,
                                               strict=True)
            ]
        self.__dict__.update(ckpt["loop"])
        set_rng_state(ckpt["rng"])


def _progress_bar(total: int, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="eval", dynamic_ncols=True, leave=False)


def _report(bar, counter: _Counter, before: int, n_steps: int, log_every: int) -> None:
    if bar is not None:
        bar.update(counter.n_loss - before)
        bar.set_postfix(loss=f"{counter.last_loss:.3e}", refresh=False)
    if log_every and n_steps % log_every == 0:
        log.info("step %d  evals %d  loss %.4e", n_steps, counter.n_loss, counter.last_loss)


def _all_equal(tensors: list[Tensor], others: list[Tensor]) -> bool:
    """Bit for bit: the best parameters are the last ones (e.g. L-BFGS ending on its last
    evaluation), so their metrics need no second evaluation (a neural ODE's is a dopri5 solve)."""
    return all(torch.equal(a, b) for a, b in zip(tensors, others, strict=True))


def _result(loop: _Loop) -> FitResult:
    problem, counter = loop.problem, loop.counter
    with torch.no_grad():
        metrics = problem.evaluate(loop.model)
        best_metrics = metrics
        if counter.best_params is not None and not _all_equal(counter.params, counter.best_params):
            last = [p.detach().clone() for p in counter.params]
            torch._foreach_copy_(counter.params, counter.best_params)
            best_metrics = problem.evaluate(loop.model)
            torch._foreach_copy_(counter.params, last)
    return FitResult(
        metrics=metrics,
        best_metrics=best_metrics,
        final_loss=counter.last_loss,
        best_loss=counter.best_loss,
        n_loss_evals=counter.n_loss,
        n_grad_evals=counter.n_grad,
        n_steps=loop.n_steps,
        wall_time_s=loop.wall,
        status=loop.status,
        history=counter.history,
        model=loop.model,
        optimizer=loop.opt,
        message=loop.message,
    )
