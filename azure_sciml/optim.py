"""Azure: simulated annealing blended into Adam, as a ``torch.optim.Optimizer``.

The pieces: :mod:`azure_sciml._adam` (torch's Adam update, bit for bit), :mod:`azure_sciml._anneal`
(the annealing controller: plain Python, no tensors), :mod:`azure_sciml._buffers` (what its
decisions do to the tensors), :mod:`azure_sciml._noise` (the proposals' random source),
:mod:`azure_sciml._checks` (the arguments' checks, the warnings), :mod:`azure_sciml._distributed`
(several ranks). :class:`Azure` evaluates, asks the controller, and acts on the tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from azure_sciml import _adam, _buffers, _checks
from azure_sciml._anneal import WAIT, Controller, ControllerState, Decision, Settings
from azure_sciml._distributed import (
    agree_on_seed,
    default_group_started_later,
    mean_loss,
    refuse_sharded,
    resolve_group,
    warn_late_group,
)
from azure_sciml._noise import Noise
from azure_sciml._relax import Relaxation, allowed, step_lengths

_GLOBAL = "azure"  # key of the optimizer-wide state in ``self.state`` (saved by ``state_dict``)
SA_FRACTION = 0.9  # annealing phase as a fraction of ``total_steps``
DEFAULT_SA_STEPS = 1000  # annealing phase when neither ``sa_steps`` nor ``total_steps`` is given


class Azure(Optimizer):
    r"""Adam that, once it has settled, explores with Metropolis-judged proposals.

    .. code-block:: text

        input: lr γ, betas (β1, β2), eps ε, weight_decay λ, T0, sigma σ, sa_steps S,
               total_steps N (S = 0.9 N unless given; S = 1000 if neither), sa_momentum μ,
               sa_interval K, sa_patience P; constants c = 0.125, η = 0.01, ρ = 2, g = 0.75
        for k = 0, 1, 2, ...
            L_k, g_k ← f(θ_k)          (closure, or step(loss=L_k) after your own backward)
            process group of n > 1 ranks:  L_k ← (1/n) Σ_ranks L_k   (one all_reduce)
            no loss given:  Adam update; next k                 (nothing to judge: plain Adam)
            L_k NaN/Inf:  θ ← anchor (if exploring); no update; next k
            wait (k < k0): once min L has improved by < 3e-4 (L_0 - min L) (a positive loss
                under 1% of L_0, heading for 0: < 1e-3 min L) for P steps and L moved less than
                that per step, and a proposal could still be judged before S:
                k0 ← k;  best ← θ_k with its m, v, t;  m, v, t ← 0;
                R ← clamp(round(c (k0 - P)), K, 10 K)                  (descent length)
            settle: after R steps  anchor ← θ_k, L_a ← L_k;  best ← θ_k if L_k < L_best
            descend (proposal made at k_p):  judged at k - k_p = R, or, if R >= 2K ("long"),
                at the first of R, R+K, ... (at most 20 K) whose last K steps lowered L by at
                most η D;  a descent longer than K restarts m, v, t every K steps; a long one
                runs at lr ρ γ
            judge:  Δ ← L_k - L_a;  if Δ > 0: append Δ to the last 20 uphill changes
                D ← their mean, each capped at 5x the others' median  (the loss scale)
                T ← T0 (1 - (k - k0) / (S - k0))                          (linear cooling)
                R < 2K: a ← a (1.1 if |Δ| <= η D (fell back into the anchor's basin) else 1.1^-0.1),
                    a within [0.05, 4]                              (proposal scale, from 1)
                accept with prob min(1, exp(-Δ / (T D))):
                    accept: anchor ← θ_k, L_a ← L_k;  best ← θ_k if L_k < L_best
                    reject: θ ← anchor;  m, v, t ← 0;  no update
            Adam update (identical to torch.optim.Adam):
                g ← g_k + λ θ;  m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) |g|²
                θ ← θ - γ/(1-β1^t) · m / (sqrt(v/(1-β2^t)) + ε)
            curvature (descent="auto": ≤ 100k exploring parameters, λ = 0): settling, descents
            and the rest after the phase take quasi-Newton steps instead (azure_sciml._relax):
                L_k > L_kept: θ ← θ_kept, L_k ← L_kept, d ← d/2;  else keep (θ_k, L_k, g_k),
                d ← -H g_k (L-BFGS, last 10 pairs; none: length γ sqrt(n)), |d| ≤ σγK sqrt(n)
                θ ← θ_kept + d (not at the last step);  judged once the last K steps lowered
                L by at most η D ("converged");  long ones (R >= 2K) where S followed N:
                S ← N - 10 K at k0 (the best point's polish is one relaxation), but the phase
                ends at its old end unless a judged point beat the best from before the first
                proposal and the last judged descent converged; M = 8 K below while it did
            anchored, k + 1 + M < S:  propose   (groups with σ > 0;  M: the longest descent)
                d ← μ d + sqrt(1-μ²) ξ,  ξ ~ N(0, I);  θ ← θ + w σ γ K d;  m, v, t ← 0
                w = 1 for long descents, else a / (1 + exp(10 ((k-k0)/(S-k0) - 1/2)))
            k + 1 = S, finish(), or (R < 2K) k - k0 = g (S - k0) with no judged point below
                the best before the first proposal:  θ, m, v, t ← best's if L_best < L_a (or a
                proposal is still descending);  from then on plain Adam

    Every threshold is invariant to ``L → a L`` (``a > 0``), and to ``L → L + b`` except for a
    positive loss heading for 0 (under 1% of its first value), which is judged on a log scale: a
    residual's slow descent is not a settled minimum. ``sa_steps=0`` makes Azure exactly
    ``torch.optim.Adam`` (``Adam(foreach=True)``, or ``Adam(fused=True)`` with ``fused=True``), bit
    for bit; so does a loop that never gives Azure a loss (it warns once, since it then cannot
    anneal). While Adam keeps improving or the loss keeps moving (minibatch noise), Azure is Adam.

    Where Azure gets its loss: ``step(closure)`` as with any torch optimizer (one evaluation per
    step: the Metropolis test spends the step it judges), or, in a plain loop, the loss you already
    computed: ``loss.backward(); opt.step(loss=loss)``. Both give the test the same numbers. A
    small model's descents use curvature (quasi-Newton steps, one evaluation each: basin-hopping's
    relaxations without a line search); large ones and ``descent="adam"`` Adam's (Azure v2).

    Run length: give ``total_steps`` (your number of ``step`` calls) and the annealing phase is
    its first 90%, followed by plain Adam (or one quasi-Newton relaxation) from the best point
    judged; with long quasi-Newton descents that relax to minima (atomic clusters) and have
    found a better one, the phase runs until 10 K steps before the end (once exploring starts,
    ``sa_steps`` shows that later end; docs/algorithm.md, "The end of the phase"). A driver that
    knows the run's length (``azure_sciml.fit``, ``Chain``) hands it over with
    :meth:`set_run_length` before the first step; without either, the phase is 1000 steps and
    the first step warns so.
    A run that stops earlier should call :meth:`finish` (``azure_sciml.fit`` does), which
    returns to the best point judged instead of leaving the parameters at a half-descended
    proposal.

    When the objective changes mid-run (a mask, a curriculum stage, resampled points, new loss
    weights), tell Azure, or it judges the new losses against the old objective's points::

        opt = Azure(params, lr, total_steps=n_first)   # n_first steps, then
        opt.finish()                                   # parameters <- the best point judged
        coef.data.mul_(coef.abs() > tol)               # a mask computed from that point
        opt.new_stage(total_steps=n_second)            # a fresh schedule for the new objective

    (:meth:`new_stage` alone ends a stage as :meth:`finish` does; :meth:`settled` shows the best
    point judged without ending anything.)

    Scale of a proposal: ``sigma · lr · sa_interval`` per coordinate (the distance Adam travels
    in one descent block), so one default suits different weight scales; with short descents it
    adapts so that about 1 proposal in 11 falls back into the anchor's basin (docs/algorithm.md,
    "The proposal scale"); ``T0`` is measured in
    the typical uphill loss change ``D``. Groups with ``sigma=0`` never move by a proposal (their
    Adam updates continue; a rejection restores every group). Per-group: ``lr``, ``betas``,
    ``eps``, ``weight_decay``, ``sigma``; the rest is optimizer-wide.

    Args:
        params: iterable of tensors, of ``(name, tensor)`` pairs, or of parameter-group dicts.
        lr: learning rate, a float or a 1-element Tensor (default 1e-3).
        betas, eps, weight_decay: as in ``torch.optim.Adam`` (L2 penalty added to the gradient).
        T0: initial temperature, in units of ``D`` (default 0.2).
        sigma: proposal scale, in units of ``lr · sa_interval`` (default 2.4).
        sa_steps: length of the annealing phase in steps; 0 turns annealing off (default:
            ``0.9 · total_steps``, or 1000 without ``total_steps``).
        sa_momentum: correlation of successive proposals (default 0).
        sa_interval: K, the shortest descent and the restart period of long ones (default 10).
        sa_patience: P, steps without progress before exploring starts; 0 explores from the
            first step (default 50).
        seed: seed of the optimizer's random streams (saved in ``state_dict``); ``None`` draws
            one from torch's global generator, so ``torch.manual_seed`` makes runs repeatable.
        fused: ``True`` runs the Adam part with torch's fused kernel (CPU and CUDA).
        total_steps: the run's number of steps; sets ``sa_steps`` to 90% of it unless given.
        descent: ``"auto"`` (quasi-Newton descents for models of at most 100k exploring
            parameters without weight decay, Adam's otherwise) or ``"adam"`` (always Adam's).
        settings: :class:`azure_sciml._anneal.Settings` for ablation studies of the algorithm's
            fixed constants (its ``sa_steps``, ``T0``, ``interval`` and ``patience`` come from
            the arguments above).
        process_group: the ranks that train one model (DDP, Lightning's ``ddp``, ``torchrun``):
            ``None``, the default group if initialised when Azure is built; a ``ProcessGroup``;
            ``False``, none (each process its own chain). Every rank uses rank 0's seed and
            judges the mean loss (one ``all_reduce`` of two numbers a step given a loss), so
            replicated parameters stay bit-identical; sharded ones (FSDP, DTensor) are refused.

    float16 parameters: a restart zeroes only the first moment (a restarted second moment would
    underflow). Counters (:meth:`stats`): ``n_loss_evals`` (losses seen: closure calls and
    ``step(loss=)``), ``n_proposals``, ``n_accepted``, ``n_rejected``, ``n_nonfinite``.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        T0: float = 0.2,
        sigma: float = 2.4,
        sa_steps: int | None = None,
        sa_momentum: float = 0.0,
        sa_interval: int = 10,
        sa_patience: int = 50,
        seed: int | None = None,
        fused: bool | None = None,
        *,
        total_steps: int | None = None,
        descent: str = "auto",
        settings: Settings | None = None,
        process_group: Any = None,
    ):
        betas = _checks.check_betas(betas)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, sigma=sigma, fused=fused
        )
        _checks.check_group(defaults)
        _checks.check_arguments(
            T0, sa_steps, sa_momentum, sa_interval, sa_patience, seed, total_steps, settings
        )
        _checks.check_descent(descent)
        super().__init__(params, defaults)
        self.descent = descent
        self._relax = Relaxation()
        self._length_given = sa_steps is not None or total_steps is not None
        follows = total_steps if sa_steps is None else None  # the phase follows the run's length
        if sa_steps is None:
            sa_steps = DEFAULT_SA_STEPS if total_steps is None else int(SA_FRACTION * total_steps)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self._independent = process_group is False
        self._group = resolve_group(process_group)
        if self._group is not None:  # one seed for all ranks: rank 0's
            seed = agree_on_seed(seed, self._group, self._first_device())
        self.total_steps, self.sa_momentum = total_steps, sa_momentum
        schedule = replace(
            settings or Settings(), sa_steps=sa_steps, total_steps=follows, T0=T0,
            interval=sa_interval, patience=sa_patience,
        )
        self._controller = Controller(schedule, ControllerState(seed=seed))
        self._noise = Noise(seed)
        self._n_loss_evals = 0
        self._warned: set[str] = set()
        self.state[_GLOBAL] = self._global_state()

    # -- torch.optim protocol ------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:  # deepcopy and pickle keep the controller
        own = ("total_steps", "sa_momentum", "_controller", "_noise", "_n_loss_evals",
               "_warned", "_length_given", "_independent", "descent", "_relax")  # not the group
        return {**super().__getstate__(), **{k: self.__dict__[k] for k in own}}

    def __setstate__(self, state: dict[str, Any]) -> None:  # load_state_dict ends here too
        super().__setstate__(state)
        if "_independent" in state:  # a copy (deepcopy, pickle): the default group, if any
            self._group = resolve_group(False if self._independent else None)
        _adam.steps_as_tensors(self.param_groups, self.state, ("step", "best_step"))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if "betas" in param_group:
            param_group = {**param_group, "betas": _checks.check_betas(param_group["betas"])}
        _checks.check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)
        refuse_sharded(self.param_groups[-1]["params"])

    def state_dict(self) -> dict[str, Any]:
        self.state[_GLOBAL] = self._global_state()
        return super().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if _GLOBAL not in state_dict["state"]:
            raise ValueError("not an Azure state_dict: it has no 'azure' entry")
        super().load_state_dict(state_dict)
        g = self.state[_GLOBAL]
        self._controller.load_state_dict(g["controller"])
        self._noise.load_state_dict(g["noise"])
        self._n_loss_evals = g["n_loss_evals"]
        self._relax.load_state_dict(g.get("relax", {}))
        if self._controller.state.stage:  # a later stage's schedule (new_stage)
            self.total_steps = self._controller.state.stage_total_steps

    def _global_state(self) -> dict[str, Any]:
        return {
            "controller": self._controller.state_dict(),
            "noise": self._noise.state_dict(),
            "n_loss_evals": self._n_loss_evals,
            "relax": self._relax.state_dict(),
        }

    def set_run_length(self, total_steps: int) -> None:
        """The run-length protocol (see ``azure_sciml.train.fit``): the driver of a run tells the
        optimizer its number of steps before the first one. Azure takes it as ``total_steps``
        (the annealing phase is its first 90%) unless the constructor got ``total_steps`` or
        ``sa_steps``: an explicit argument wins, and so does the first length handed over."""
        _checks.check_int("total_steps", total_steps, 1)
        if self._length_given:
            return
        if self._controller.state.step:
            raise RuntimeError(
                f"Azure.set_run_length({total_steps}) after {self._controller.state.step} steps:"
                " hand the run length over before the first step"
            )
        self.total_steps = total_steps
        self._controller.settings = replace(
            self._controller.settings, sa_steps=int(SA_FRACTION * total_steps),
            total_steps=total_steps)
        self._length_given = True

    @property
    def sa_steps(self) -> int:
        """The annealing phase's length in steps: the argument (or 0.9 ``total_steps``), a later
        stage's, or the later end a phase of long quasi-Newton descents may run to (from the
        step exploring starts)."""
        return self._controller.settings.sa_steps

    def stats(self) -> dict[str, int]:
        """Evaluation and Metropolis counters (also in ``state_dict()``)."""
        st = self._controller.state
        return {
            "n_loss_evals": self._n_loss_evals, "n_proposals": st.n_proposals,
            "n_accepted": st.n_accepted, "n_rejected": st.n_rejected,
            "n_nonfinite": st.n_nonfinite,
        }

    @torch.no_grad()
    def step(
        self, closure: Callable[[], Tensor] | None = None, *, loss: Tensor | float | None = None
    ) -> Tensor | None:
        """One step. ``closure`` re-evaluates the loss (as for any torch optimizer); in a plain
        loop pass the ``loss`` already computed at the current parameters instead."""
        if closure is not None and loss is not None:
            raise ValueError("Azure.step: pass a closure or a loss, not both")
        _adam.check_fused_devices(self.param_groups)
        raised = False
        if closure is not None:
            try:
                with torch.enable_grad():
                    loss = closure()
            except FloatingPointError:  # a closure that refuses a NaN/Inf loss or gradient
                if not self._controller.exploring:
                    raise
                loss, raised = math.nan, True
        if loss is None:
            self._warn_unjudged()
            self._adam_all(1.0)
            self._after(self._controller.advance(can_propose=False))
            return None
        self._n_loss_evals += 1
        if not self._length_given and "length" not in self._warned:
            self._warned.add("length")
            _checks.warn_default_length(self.sa_steps)
        value, raised = self._judged_value(loss, raised)
        was_relaxing = self._controller.relaxing and math.isfinite(value)
        if was_relaxing:  # a quasi-Newton step that raised the loss goes back (and is halved)
            value = self._relax.observe(self._relax_params(), value)
        curvature = self._controller.state.phase == WAIT and allowed(  # read at k0 only
            self.descent, self.param_groups, self._relax_params())
        decision = self._controller.observe(value, curvature)
        if not math.isfinite(value) and "nonfinite" not in self._warned:
            self._warned.add("nonfinite")
            _checks.warn_nonfinite(value, self._controller.state.step - 1)
        self._act(decision)
        if decision.update and self._controller.relaxing:
            if not was_relaxing:  # settling starts here: the first point of its descent
                self._relax.reset()
                self._relax.observe(self._relax_params(), value)
            if not self._last_step():  # the run ends on an evaluated point
                self._relax_update()
        elif decision.update:
            self._adam_all(decision.lr_factor)
        self._after(self._controller.advance(can_propose=not raised))
        return loss

    @torch.no_grad()
    def finish(self) -> None:
        """End the annealing phase now: back to the best point judged if it beats the current
        one (a proposal still descending is dropped); plain Adam from then on (quasi-Newton
        descents: the last one goes on). Call it when a run stops before ``sa_steps``
        (``azure_sciml.fit`` does); after the phase, with quasi-Newton descents, it leaves the
        parameters at the last point evaluated and kept, not at a trial step."""
        if self._controller.done and self._controller.relaxing:
            self._relax.back_to_kept(self._relax_params())
        self._after(self._controller.finish())

    @torch.no_grad()
    def new_stage(self, total_steps: int | None = None, *, sa_steps: int | None = None) -> None:
        """Tell Azure the objective changed (a mask, a new curriculum stage, resampled
        collocation points, new loss weights): the current stage ends at its best point judged,
        as :meth:`finish`, and a fresh schedule starts for the new objective: ``total_steps``
        steps (annealing in their first 90%) or an annealing phase of ``sa_steps``. The stall
        test, the loss scale and the anchor start over; Adam's moments, the random streams and
        the counters carry on. Saved in ``state_dict`` (a resume continues the stage)."""
        if (total_steps is None) == (sa_steps is None):
            raise ValueError(
                f"Azure.new_stage: give total_steps or sa_steps (got total_steps={total_steps!r},"
                f" sa_steps={sa_steps!r})"
            )
        if total_steps is not None:
            _checks.check_int("total_steps", total_steps, 1)
            sa_steps = int(SA_FRACTION * total_steps)
        _checks.check_int("sa_steps", sa_steps, 0)
        self.finish()
        self._controller.new_stage(sa_steps, total_steps)
        self.total_steps, self._length_given = total_steps, True

    def settled(self) -> AbstractContextManager[None]:
        """Inside the block the parameters are at the best point judged so far (Adam's iterate
        while waiting or after the phase), not at a proposal in flight: read them there for a
        validation metric, a log line or a copy of the model. On exit the run's own parameters
        come back, so anything written to them inside is undone; to act on the settled point (a
        mask computed from it), call :meth:`finish` or :meth:`new_stage` instead."""
        active = self._controller.exploring_or_settling
        return _buffers.at_best(self.state, self._sa_params(), active)

    # -- acting on the controller's decisions --------------------------------------------------

    def _act(self, d: Decision) -> None:
        if d.restore:
            _buffers.restore(self.state, self._sa_params(), d.restore)
        for name in d.save:
            _buffers.save(self.state, self._sa_params(), name)
        if d.restart:
            _buffers.restart(self.state, self._sa_params())
        elif d.restart_exploring:
            _buffers.restart(self.state, self._sa_params(exploring=True))

    def _after(self, advance) -> None:
        if advance.finish:
            _buffers.end_phase(self.state, self._sa_params(), advance.restore_best)
            self._relax.reset()  # curvature descents: a last one, from the best point
            self._noise.free()
        elif advance.propose:
            self._relax.reset()
            interval = self._controller.settings.interval
            _buffers.propose(self.state, self.param_groups, self._noise, interval,
                             advance.propose, self.sa_momentum)

    def _sa_params(self, exploring: bool = False) -> list[Tensor]:
        return [
            p for group in self.param_groups if not exploring or group["sigma"] > 0
            for p in group["params"] if p.requires_grad
        ]

    # -- the quasi-Newton descent (azure_sciml._relax) -----------------------------------------

    def _last_step(self) -> bool:
        """This stage's last step (``total_steps`` follows the stage: ``new_stage``, resume)."""
        return self.total_steps is not None and self._controller.state.step == self.total_steps - 1

    def _relax_params(self) -> list[Tensor]:
        return self._sa_params(exploring=True)

    def _relax_update(self) -> None:
        """The exploring groups take the quasi-Newton step; the others Adam's."""
        lengths = step_lengths(self.param_groups, self._controller.settings.interval)
        self._relax.update(self._relax_params(), *lengths)
        self._adam_all(1.0, include_exploring=False)

    # -- Adam ----------------------------------------------------------------------------------

    def _adam_all(self, lr_factor: float, include_exploring: bool = True) -> None:
        """Adam's update of every group (``include_exploring=False``: those with ``sigma=0``)."""
        scratch = self.__dict__.setdefault("_adam_scratch", {})  # a cache, never in state_dict
        for group in self.param_groups:
            if group["sigma"] > 0 and not include_exploring:
                continue
            _adam.adam_group(group, self.state, lr_factor if group["sigma"] > 0 else 1.0, scratch)

    def _judged_value(self, loss: Tensor | float, raised: bool) -> tuple[float, bool]:
        """The loss the controller sees: this process's, or under a process group the mean over
        the ranks (and whether any rank's closure raised)."""
        if self._group is not None:
            return mean_loss(loss, raised, self._group, self._first_device())
        if "late_group" not in self._warned and default_group_started_later(
            self._group, self._independent
        ):
            self._warned.add("late_group")
            warn_late_group()
        return float(loss.detach()) if isinstance(loss, Tensor) else float(loss), raised

    def _first_device(self) -> torch.device:
        return self.param_groups[0]["params"][0].device

    def _warn_unjudged(self) -> None:
        if "unjudged" in self._warned or self._controller.done or self.sa_steps == 0:
            return
        if any(group["sigma"] > 0 for group in self.param_groups):
            self._warned.add("unjudged")
            _checks.warn_unjudged()
