"""Azure: simulated annealing blended into Adam, as a ``torch.optim.Optimizer``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

_GLOBAL = "azure"  # key of the optimizer-wide state in ``self.state`` (saved by ``state_dict``)
_BLEND_SHARPNESS = 10.0  # sigmoid slope of the hand-over, in units of the SA phase
_BLEND_CENTRE = 0.5  # fraction of the SA phase at which exploration is half handed over
_STALL_TOL = 1e-3  # relative improvement that resets the patience; also the stalled loss's
# largest mean step-to-step change (relative): Adam has settled, not bouncing or minibatch noise
_CONVERGE_FROM = 2  # sa_converge acts on descents of at least this many sa_interval blocks
_LONGEST = 20  # longest converging descent, in sa_interval blocks
_UPHILL_EMA = 0.1  # weight of the newest uphill loss change in the temperature's loss scale
_MOMENTS = ("exp_avg", "exp_avg_sq")
_COUNTERS = ("n_loss_evals", "n_proposals", "n_accepted", "n_rejected", "n_nonfinite", "n_spikes")


def temperature(step: int, T0: float, sa_steps: int) -> float:
    """Linear cooling from ``T0`` at step 0 to 0 at ``sa_steps``."""
    if sa_steps <= 0 or step >= sa_steps:
        return 0.0
    return T0 * (1.0 - step / sa_steps)


def exploration_weight(step: int, sa_steps: int, blend: bool = True) -> float:
    """Sigmoid hand-over from exploration (~1) to pure Adam (0 from ``sa_steps`` on);
    ``blend=False``: full-size proposals until ``sa_steps``."""
    if sa_steps <= 0 or step >= sa_steps:
        return 0.0
    if not blend:
        return 1.0
    return 1.0 / (1.0 + math.exp(_BLEND_SHARPNESS * (step / sa_steps - _BLEND_CENTRE)))


def metropolis_accept(delta: float, temp: float, u: float) -> bool:
    """Metropolis rule: accept with probability ``min(1, exp(-delta / temp))``; ``u ~ U(0,1)``."""
    if delta <= 0.0:
        return True
    if temp <= 0.0:
        return False
    return u < math.exp(-delta / temp)


class Azure(Optimizer):
    r"""Adam with simulated-annealing exploration during the first ``sa_steps`` steps.

    .. code-block:: text

        input: lr γ, betas (β1, β2), eps ε, weight_decay λ, T0, sigma σ, sa_steps S,
               sa_momentum μ, sa_interval K, sa_patience P, sa_relax c, sa_converge η,
               sa_descent_lr ρ, blend,
               target_accept a*, closure f (optional)
        for k = 0, 1, 2, ...
            L_k, g_k ← f(θ_k)                                  (one loss + gradient evaluation)
            if L_k is NaN/Inf or a spike:  restore θ ← anchor (if any); skip the step
            until exploring has started (k0 unset):                  (wait for Adam to settle)
                if min L has not dropped by 0.1% in the last P steps and the loss moved < 0.1%
                of it per step on average:  k0 ← k;  m, v, t ← 0;
                R ← clamp(round(c (k0 - P)), K, 10 K)     (descent length: a fraction of the steps
                                  Adam took to relax from the start; R = K if c is None)
                after R more steps  anchor ← best ← θ, L_anchor ← L
                                                     (P = 0: k0 = 0, explore from the start)
            if a proposal is pending and its descent is over:   (Metropolis on the descended loss)
                                  (over: R steps have passed; if R >= 2K and D is known, at the
                                   first of R, R+K, ... up to 20K steps where the last K steps
                                   lowered the loss by at most η D: judged once converged)
                Δ ← L_k - L_anchor;  if Δ > 0:  D ← D + 0.1 (Δ - D)   (D ← Δ at the first)
                T ← Σ_groups T0 (1 - (k-k0)/(S-k0)) · numel / Σ numel      (linear cooling)
                accept with prob min(1, exp(-Δ / (T D)))       (D: the typical uphill change)
                accept: anchor ← θ_k, L_anchor ← L_k;  best ← θ_k if L_k < L_best
                reject: θ ← anchor and skip the Adam update (g_k belongs to the rejected point)
                s ← s · exp(0.5 (accepted - a*))     (if a* is set: acceptance-rate-targeted scale)
            if a proposal is pending and K, 2K, ... steps have passed:  m, v, t ← 0
                                             (restarted descent: frees v of the first gradients)
            Adam update (identical to torch.optim.Adam):
                g ← g_k + λ θ;  m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²
                θ ← θ - γ'/(1-β1^t) · m / (sqrt(v/(1-β2^t)) + ε)
                    γ' = ρ γ for exploring groups while a proposal descends and R >= 2K,
                    else γ' = γ
            if anchor set, k < S - R (S - 20K if converging), no proposal pending:  (propose)
                d ← μ d + sqrt(1-μ²) ξ,  ξ ~ N(0, I) from the optimizer's own generator
                θ ← θ + w(k) σ s γ K d,   w(k) = 1 / (1 + exp(10 ((k-k0)/(S-k0) - 1/2)))
                           (w ≡ 1 if blend is False, or if descents are judged once converged)
                m, v, t ← 0                        (the proposal descends with a fresh Adam)
            at k = S: θ, m, v, t ← best's if L_best < L_anchor; SA buffers are freed

    Scale of a proposal: ``sigma · lr · sa_interval`` per coordinate, i.e. ``sigma`` is measured in
    the distance Adam can travel in one descent cycle (Adam moves every coordinate by about ``lr``
    per step whatever the weight scale), so one default suits problems with different weight scales,
    and ``lr = 0`` moves nothing. ``T0`` is measured in the problem's own loss scale: ``D``, a
    running mean of the loss increases that rejected-or-accepted uphill proposals produced, so a
    proposal that raises the loss by ``T0 · D`` is accepted with probability ``1/e`` at the start,
    whatever the units of the loss (measured better than a temperature relative to ``|L|``).

    Exploration waits until Adam has settled (``sa_patience``): while the loss keeps improving, or
    keeps moving (minibatch noise, Adam bouncing along a valley), Azure *is* Adam, bit for bit.

    A closure may also *raise* ``FloatingPointError`` on a non-finite loss or gradient (as
    ``azure_sciml.fit``'s does): while exploring, Azure treats that like a NaN loss (the proposal
    that produced it is rejected, the anchor restored, the run goes on); before and after exploring
    the error propagates, as with any optimizer.

    Without a closure there is no loss to judge a proposal by: Azure then adds the proposals
    unconditionally, scaled by the cooling schedule's shape ``T(k)/T0`` (annealed, Langevin-style
    noise; ``T0`` itself has no effect there). With a closure the loss is evaluated once per step,
    exactly as Adam's ``step(closure)`` does: the Metropolis test adds no loss evaluation, it spends
    the step it judges. ``sa_steps=0`` (or ``sigma=0`` with no closure) makes Azure exactly
    ``torch.optim.Adam``.

    Per-group hyperparameters: ``lr``, ``betas``, ``eps``, ``weight_decay``, ``T0``, ``sigma``,
    ``sa_steps``, ``sa_momentum``, ``max_grad_norm``. The Metropolis test is joint (one loss for all
    groups), at the numel-weighted mean temperature of the groups still annealing. Optimizer-wide:
    ``sa_interval``, ``sa_patience``, ``sa_relax``, ``sa_converge``, ``sa_descent_lr``, ``blend``,
    ``target_accept``, ``spike_factor``, ``seed``.

    Args:
        params: iterable of tensors, of ``(name, tensor)`` pairs, or of parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas, eps, weight_decay: as in ``torch.optim.Adam`` (L2 penalty added to the gradient).
        T0: initial temperature of the Metropolis test, in units of the typical uphill loss
            change of a descended proposal (default 0.2).
        sigma: proposal scale, in units of ``lr * sa_interval`` (default 2.4).
        sa_steps: length of the annealing phase in steps; 0 turns SA off (default 1000).
        sa_momentum: correlation of successive proposals, ``d ← μ d + sqrt(1-μ²) ξ`` (default 0:
            measured, correlated proposals explored less on Rastrigin-20).
        sa_interval: Adam steps between a proposal and its Metropolis judgement (default 10).
        sa_patience: steps the best loss must go without a 0.1% improvement, the loss moving
            less than 0.1% of it per step on average, before exploring starts; 0 explores from
            the first step (default 50). Without a closure exploring starts at once.
        sa_relax: descent length of a proposal as a fraction ``c`` of the steps Adam took to relax
            from the start: when exploring starts at step ``k0``, the settle and every proposal
            descend ``R = clamp(round(c · (k0 - sa_patience)), sa_interval, 10 · sa_interval)``
            steps before their judgement, a proposal's descent with Adam restarted (m, v, t
            zeroed) every ``sa_interval`` steps; the proposal size stays
            ``sigma · lr · sa_interval``. ``None``: R =
            ``sa_interval`` (default 0.125: measured on 200 fresh LJ13 seeds, 81/200 at the global
            minimum against Adam's 56/200 and 50/200 with ``None``; docs/algorithm.md).
        sa_converge: judge a long descent once it has converged: when ``R >= 2 · sa_interval``
            (proposals that relax slowly, e.g. atomic clusters), the descent goes on past ``R``
            until its last ``sa_interval`` steps lowered the loss by at most ``sa_converge · D``
            (``D``: the typical uphill change, the temperature's loss scale), at most
            ``20 · sa_interval`` steps; short descents are judged after ``R`` steps. ``None``:
            always after ``R`` steps (default 0.01: LJ13 135/200 at the global minimum against
            75/200 with ``None`` and Adam's 53/200 on fresh seeds; with the full-size proposals
            below, 181/200 against Adam's 52/200 in ``experiment=lj_odds``; docs/algorithm.md).
        sa_descent_lr: learning-rate factor of a long descent (``R >= 2 · sa_interval``, the
            descents ``sa_converge`` judges once converged): an exploring group's lr times this
            while a proposal descends; the proposal's size, groups that do not explore (sigma 0
            or past their ``sa_steps``) and every other step keep the lr (default 2: on 500
            seeds LJ13 464/500 at the global minimum against 434/500 with 1, p = 8e-4, LJ19 157
            vs 130/500, p = 0.035; on the 200 held-out seeds of ``experiment=lj_odds`` LJ13 182
            vs 181, LJ19 43 vs 55, p = 0.19; docs/algorithm.md). Short descents are unaffected.
        blend: ``True`` (default) shrinks proposals along a sigmoid centred mid-phase, handing
            over to pure Adam; ``False`` keeps them full-size until ``sa_steps``. Where long
            descents are judged once converged (``sa_converge``), proposals keep their full size
            either way: the cooling Metropolis test hands over by itself there, and a shrunken
            proposal would spend a whole descent returning to its anchor.
        target_accept: acceptance rate the proposal scale adapts towards; ``None`` (default)
            keeps it fixed (measured: adapting collapsed the scale, since a proposal too small to
            leave its basin descends back and is accepted).
        spike_factor: with a closure, a loss above ``spike_factor * L_anchor`` (for positive losses)
            is rejected like a NaN; ``None`` disables spike detection (default).
        max_grad_norm: clip the gradient the update uses to this global norm (per group) without
            touching ``p.grad``; ``None`` (default) disables clipping.
        seed: seed of the optimizer's own random generator (saved in ``state_dict``); ``None``
            draws one from torch's global generator, so ``torch.manual_seed`` makes runs repeatable.
        fused: ``True`` runs the Adam part with torch's fused kernel (per group, CPU and CUDA
            tensors; then equal to ``Adam(fused=True)``); ``None``/``False`` (default): the
            multi-tensor path, equal to ``Adam(foreach=True)``.

    Random stream: the optimizer's own generator, seeded by ``seed``. On CUDA with Triton installed
    (CUDA builds of torch ship it), an uncorrelated proposal is one kernel per device and dtype that
    makes its normals in registers from a counter-based Philox stream keyed by ``seed`` and a draw
    count kept in the state: no noise tensor is stored, and runs repeat exactly; the numbers differ
    from the CPU stream's.

    Counters (``stats()``): ``n_loss_evals`` (closure calls Azure made), ``n_proposals``,
    ``n_accepted``, ``n_rejected``, ``n_nonfinite``, ``n_spikes``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        T0: float = 0.2,
        sigma: float = 2.4,
        sa_steps: int = 1000,
        sa_momentum: float = 0.0,
        sa_interval: int = 10,
        sa_patience: int = 50,
        sa_relax: float | None = 0.125,
        sa_converge: float | None = 0.01,
        sa_descent_lr: float = 2.0,
        blend: bool = True,
        target_accept: float | None = None,
        spike_factor: float | None = None,
        max_grad_norm: float | None = None,
        seed: int | None = None,
        fused: bool | None = None,
    ):
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, T0=T0, sigma=sigma,
            sa_steps=sa_steps, sa_momentum=sa_momentum, max_grad_norm=max_grad_norm, fused=fused,
        )
        if fused is not None and not isinstance(fused, bool):
            raise ValueError(f"Invalid fused value: {fused!r} (True, False or None)")
        _check_group(defaults)
        _check_global(sa_interval, target_accept, spike_factor)
        if isinstance(sa_patience, bool) or not isinstance(sa_patience, int) or sa_patience < 0:
            raise ValueError(f"Invalid sa_patience value: {sa_patience!r} (an integer >= 0)")
        if not isinstance(blend, bool):
            raise ValueError(f"Invalid blend value: {blend!r} (True or False)")
        if sa_relax is not None:
            _check_real("sa_relax", sa_relax, lambda v: not v <= 0, "> 0 or None")
        if sa_converge is not None:
            _check_real("sa_converge", sa_converge, lambda v: 0 <= v < math.inf, ">= 0 or None")
        _check_real("sa_descent_lr", sa_descent_lr, lambda v: 0 < v < math.inf, "> 0")
        super().__init__(params, defaults)
        for group in self.param_groups:
            _check_group(group)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.state[_GLOBAL] = dict(
            step=0, sa_interval=sa_interval, sa_patience=sa_patience, blend=blend,
            target_accept=target_accept, spike_factor=spike_factor, seed=seed, generators={},
            sa_relax=sa_relax, descent=None, sa_converge=sa_converge, block_loss=None,
            sa_descent_lr=sa_descent_lr,
            scale=1.0,
            sa_start=None, watch_loss=None, watch_since=0, last_loss=None, jitter=0.0,
            anchor_loss=None, best_loss=None, uphill=None, pending_since=None, sa_done=False,
            warned=False,
            n_loss_evals=0, n_proposals=0, n_accepted=0, n_rejected=0, n_nonfinite=0, n_spikes=0,
        )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        _check_group(self.param_groups[-1])

    def state_dict(self) -> dict[str, Any]:
        """As ``Optimizer.state_dict``; the random generators are stored as their states."""
        sd = super().state_dict()
        g = dict(sd["state"][_GLOBAL])
        g["generators"] = {k: gen.get_state() for k, gen in g["generators"].items()}
        sd["state"] = {**sd["state"], _GLOBAL: g}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if _GLOBAL not in state_dict["state"]:
            raise ValueError("not an Azure state_dict: it has no 'azure' entry")
        super().load_state_dict(state_dict)
        g = self.state[_GLOBAL] = dict(self.state[_GLOBAL])
        g["generators"] = {
            k: torch.Generator(device=k).set_state(st) for k, st in g["generators"].items()
        }

    def stats(self) -> dict[str, int]:
        """Evaluation and Metropolis counters (also in ``state_dict()``)."""
        g = self.state[_GLOBAL]
        return {k: g[k] for k in _COUNTERS}

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        g = self.state[_GLOBAL]
        loss = None
        skip_update = raised = False
        if closure is not None:
            try:
                with torch.enable_grad():
                    loss = closure()
            except FloatingPointError:  # a closure that refuses a NaN/Inf loss or gradient
                if not self._can_restore():
                    raise
                loss, raised = torch.tensor(math.nan), True
            g["n_loss_evals"] += 1
            skip_update = self._judge(float(torch.as_tensor(loss).detach()))
            since = g["pending_since"]
            if since is not None and not skip_update and g.get("descent"):
                into = g["step"] - since  # a long descent restarts Adam every sa_interval steps
                if into > 0 and into % g["sa_interval"] == 0:
                    self._fresh_adam(self._exploring_params())
        if not skip_update:
            boost = self._descent_lr_factor()
            for group in self.param_groups:
                self._adam_group(group, boost if self._explores(group) else 1.0)
        if not raised:  # a closure that raised left no gradients: propose at the next step
            self._explore(with_closure=closure is not None)
        g["step"] += 1
        return loss

    # -- simulated annealing -------------------------------------------------------------------

    def _sa_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.requires_grad]

    def _explores(self, group: dict) -> bool:
        """Whether the group's proposals move it now (sigma > 0, still annealing)."""
        return group["sigma"] > 0 and self.state[_GLOBAL]["step"] < group["sa_steps"]

    def _exploring_params(self) -> list[Tensor]:
        return [
            p for group in self.param_groups if self._explores(group)
            for p in group["params"] if p.requires_grad
        ]

    def _descent_lr_factor(self) -> float:
        """``sa_descent_lr`` while a proposal descends and descents are judged once converged
        (long descents: a perturbed cluster relaxes in fewer steps); 1 otherwise."""
        g = self.state[_GLOBAL]
        if g["pending_since"] is None or not self._converging():
            return 1.0
        return g.get("sa_descent_lr") or 1.0

    def _judge(self, value: float) -> bool:
        """Metropolis bookkeeping for the loss of the current point; True means skip the update."""
        g = self.state[_GLOBAL]
        if not math.isfinite(value) or self._is_spike(value):
            self._reject_bad_loss(value)
            return True
        if g["sa_done"] or not self._annealing(g["step"]):
            return False
        if g["sa_start"] is None:
            if self._stalled(value):  # settle: K fresh-Adam steps, as every proposal gets
                g["sa_start"] = g["step"]
                if g.get("sa_relax"):  # descent length from Adam's own relaxation time
                    k = round(g["sa_relax"] * (g["step"] - g["sa_patience"]))
                    g["descent"] = min(max(k, g["sa_interval"]), 10 * g["sa_interval"])
                self._fresh_adam(self._sa_params())
            return False
        if g["anchor_loss"] is None:
            if g["step"] - g["sa_start"] >= self._descent():
                self._save("anchor", value)
                self._save("best", value)
            return False
        if g["pending_since"] is None:
            return False
        if not self._judgement_due(g["step"] - g["pending_since"], value):
            return False
        return not self._metropolis(value)

    def _judgement_due(self, into: int, value: float) -> bool:
        """Whether the proposal made ``into`` steps ago is judged now: after the descent's ``R``
        steps; with ``sa_converge`` (long descents only) once its last ``sa_interval`` steps
        lowered the loss by at most ``sa_converge · D``, at the latest after ``_LONGEST`` blocks."""
        g = self.state[_GLOBAL]
        descent, interval = self._descent(), g["sa_interval"]
        if not self._converging() or g["uphill"] is None:
            return into >= descent
        if into >= self._longest_descent():
            return True
        if into < descent - interval or (into - descent) % interval:
            return False
        previous, g["block_loss"] = g.get("block_loss"), value
        if into < descent:
            return False
        return previous - value <= g["sa_converge"] * g["uphill"]

    def _converging(self) -> bool:
        """``sa_converge`` applies to long descents (``R >= 2 sa_interval``: a problem whose
        proposals relax slowly); short ones are judged after exactly ``R`` steps."""
        g = self.state[_GLOBAL]
        long = self._descent() >= _CONVERGE_FROM * g["sa_interval"]
        return g.get("sa_converge") is not None and long

    def _blends(self) -> bool:
        """The sigmoid hand-over shrinks proposals unless descents are judged once converged:
        there the cooling Metropolis test hands over by itself, and a shrunken proposal would
        spend a whole descent returning to its anchor."""
        return self.state[_GLOBAL]["blend"] and not self._converging()

    def _longest_descent(self) -> int:
        g = self.state[_GLOBAL]
        return _LONGEST * g["sa_interval"] if self._converging() else self._descent()

    def _descent(self) -> int:
        """Steps a proposal descends before its judgement: ``sa_interval``, or with ``sa_relax``
        the length set when exploring started."""
        g = self.state[_GLOBAL]
        return g.get("descent") or g["sa_interval"]

    def _stalled(self, value: float) -> bool:
        """True once the best loss has not improved by ``_STALL_TOL`` (relative) for
        ``sa_patience`` steps while the loss kept quiet (moved less than ``_STALL_TOL · |best|``
        per step on average): Adam has settled in a minimum, so exploring starts. A loss that keeps
        moving (Adam still bouncing along a valley, or a fresh minibatch each step) means Adam is
        not stuck, or gives the Metropolis test nothing reliable to judge: no exploration."""
        g = self.state[_GLOBAL]
        best, last = g["watch_loss"], g["last_loss"]
        g["jitter"] += 0.0 if last is None else abs(value - last)
        g["last_loss"] = value
        if best is None or value < best - _STALL_TOL * abs(best):
            g["watch_loss"], g["watch_since"], g["jitter"] = value, g["step"], 0.0
            return g["sa_patience"] == 0
        waited = g["step"] - g["watch_since"]
        return waited >= g["sa_patience"] and g["jitter"] <= _STALL_TOL * abs(best) * waited

    def _metropolis(self, value: float) -> bool:
        g = self.state[_GLOBAL]
        delta = value - g["anchor_loss"]
        if 0.0 < delta < math.inf:  # the loss scale the temperature is measured in
            ups = g["uphill"]
            g["uphill"] = delta if ups is None else ups + _UPHILL_EMA * (delta - ups)
        temp = self._temperature(g["step"]) * (g["uphill"] or 0.0)
        u = float(torch.rand((), generator=self._generator(torch.device("cpu"))))
        accepted = metropolis_accept(delta, temp, u)
        g["pending_since"] = None
        if accepted:
            g["n_accepted"] += 1
            self._save("anchor", value)
            if value < g["best_loss"]:
                self._save("best", value)
        else:
            g["n_rejected"] += 1
            self._restore("anchor")
            self._fresh_adam(self._sa_params())
        if g["target_accept"] is not None:
            g["scale"] *= math.exp(0.5 * (float(accepted) - g["target_accept"]))
            g["scale"] = min(max(g["scale"], 1e-3), 1e3)
        return accepted

    def _can_restore(self) -> bool:
        """Whether a bad evaluation can be undone: exploring, with an anchor to go back to."""
        g = self.state[_GLOBAL]
        return g["anchor_loss"] is not None and not g["sa_done"]

    def _is_spike(self, value: float) -> bool:
        g = self.state[_GLOBAL]
        ref, factor = g["anchor_loss"], g["spike_factor"]
        return factor is not None and ref is not None and ref > 0 and value > factor * ref

    def _reject_bad_loss(self, value: float) -> None:
        g = self.state[_GLOBAL]
        kind = "n_nonfinite" if not math.isfinite(value) else "n_spikes"
        g[kind] += 1
        if not g["warned"]:
            g["warned"] = True
            warnings.warn(
                f"Azure: loss {value} at step {g['step']} rejected (non-finite or spike); "
                "parameters kept at the last accepted point. Further rejections are counted "
                "in stats() without warning.",
                RuntimeWarning,
                stacklevel=3,
            )
        if self._can_restore():
            self._restore("anchor")
            self._fresh_adam(self._sa_params())
            g["pending_since"] = None

    def _annealing(self, step: int) -> bool:
        return any(step < group["sa_steps"] for group in self.param_groups)

    def _temperature(self, step: int) -> float:
        total = weighted = 0.0
        for group in self.param_groups:
            if step < group["sa_steps"]:
                n = sum(p.numel() for p in group["params"])
                into, length = self._phase(step, group)
                weighted += n * temperature(into, group["T0"], length)
                total += n
        return weighted / total if total else 0.0

    def _save(self, name: str, value: float) -> None:
        """Keep a copy of the point as ``state[p][name]``; the best point keeps its Adam moments
        too, so the refinement after the SA phase resumes Adam where that point's descent was."""
        for p in self._sa_params():
            state = self.state[p]
            pairs = [(name, p)]
            if name == "best" and "step" in state:
                pairs += [(f"best_{k}", state[k]) for k in _MOMENTS]
                state["best_step"] = state["step"]
            for key, src in pairs:
                if key in state:
                    state[key].copy_(src)
                else:
                    state[key] = src.detach().clone()
        self.state[_GLOBAL][f"{name}_loss"] = value

    def _restore(self, name: str) -> None:
        params = [p for p in self._sa_params() if name in self.state[p]]
        if params:
            torch._foreach_copy_(params, [self.state[p][name] for p in params])

    def _explore(self, with_closure: bool) -> None:
        g = self.state[_GLOBAL]
        step, interval = g["step"], g["sa_interval"]
        if g["sa_done"]:
            return
        if not self._annealing(step + 1):
            self._finish_annealing()
            return
        if with_closure:
            if g["anchor_loss"] is None or g["pending_since"] is not None:
                return
            if step + 1 + self._longest_descent() >= self._sa_end():
                return
            g["pending_since"] = step + 1
        elif step % interval:
            return
        g["n_proposals"] += 1
        for group in self.param_groups:
            self._propose_group(group, step, g["scale"], with_closure)

    def _phase(self, step: int, group: dict) -> tuple[int, int]:
        """(steps into the SA phase, its length) for ``group``: the schedules run from the step
        exploring started (0 without a closure) to ``sa_steps``."""
        start = self.state[_GLOBAL]["sa_start"] or 0
        return step - start, group["sa_steps"] - start

    def _sa_end(self) -> int:
        return max(group["sa_steps"] for group in self.param_groups)

    def _propose_group(self, group: dict, step: int, scale: float, with_closure: bool) -> None:
        T0, (into, length) = group["T0"], self._phase(step, group)
        size = group["sigma"] * group["lr"] * self.state[_GLOBAL]["sa_interval"] * scale
        size *= exploration_weight(into, length, self._blends())
        if not with_closure:
            size *= temperature(into, T0, length) / T0 if T0 > 0 else 0.0
        params = [p for p in group["params"] if p.grad is not None]
        if size == 0.0 or not params:
            return
        mu = group["sa_momentum"]
        if mu == 0.0:  # uncorrelated proposals (the default): no direction buffer to keep
            self._add_noise(params, size)
        else:
            dirs = [self._direction(p) for p in params]
            torch._foreach_mul_(dirs, mu)
            torch._foreach_add_(dirs, self._noise(params), alpha=math.sqrt(1.0 - mu * mu))
            torch._foreach_add_(params, dirs, alpha=size)
        if with_closure:
            self._fresh_adam(params)

    def _fresh_adam(self, params: list[Tensor]) -> None:
        """Each judged proposal descends with a fresh Adam: moments and step count zeroed, so the
        huge gradients of a perturbed point do not linger in the second moment for hundreds of
        steps, and a rejected descent leaves nothing behind."""
        for p in params:
            state = self.state[p]
            if "step" in state:
                state["step"] = 0
                state["exp_avg"].zero_()
                state["exp_avg_sq"].zero_()

    def _direction(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "sa_dir" not in state:
            state["sa_dir"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state["sa_dir"]

    def _add_noise(self, params: list[Tensor], size: float) -> None:
        """``p += size · ξ``, ``ξ ~ N(0, I)``. CUDA tensors (with Triton installed): one kernel per
        device and dtype that makes the normals in registers from a counter-based stream (seed,
        draw count), so no noise is stored; otherwise normals written into a reused buffer."""
        for idx in _by_device_and_dtype(params).values():
            bucket = [params[i] for i in idx]
            if not self._add_noise_in_kernel(bucket, size):
                torch._foreach_add_(bucket, self._noise(bucket), alpha=size)

    def _add_noise_in_kernel(self, bucket: list[Tensor], size: float) -> bool:
        """The Triton path for one device and dtype; False where it cannot run (no CUDA, no
        Triton, or a Triton that fails to compile here: warned once, then the buffer path)."""
        device, dtype = bucket[0].device, bucket[0].dtype
        broken = self.__dict__.setdefault("_kernel_failed", set())
        kernel = None if device in broken else _noise_kernel_for(bucket)
        if kernel is None:
            return False
        g = self.state[_GLOBAL]
        draws = g.get("kernel_draws", {})  # replaced, never mutated: state_dict shares it
        draw = draws.get(str(device), -1) + 1
        key = g["seed"] + 1_000_003 * (device.index or 0)  # one stream per GPU
        tables = self.__dict__.setdefault("_noise_tables", {}).setdefault((device, dtype), {})
        try:
            kernel.add_normal_(bucket, size, key, draw, tables)
        except Exception as err:  # Triton installed but unable to build or launch the kernel
            broken.add(device)
            warnings.warn(
                f"Azure: Triton proposal kernel unavailable on {device} ({type(err).__name__}: "
                f"{err}); drawing the noise into a buffer instead.",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
        g["kernel_draws"] = {**draws, str(device): draw}
        return True

    def _noise(self, params: list[Tensor]) -> list[Tensor]:
        """Standard normal noise for every tensor, from one draw per device and dtype, written into
        a buffer kept between proposals (the same numbers as ``torch.randn``; no allocation)."""
        out: list[Tensor | None] = [None] * len(params)
        cache = self.__dict__.setdefault("_noise_buffers", {})  # reused memory, never saved
        for (device, dtype), idx in _by_device_and_dtype(params).items():
            sizes = [params[i].numel() for i in idx]
            flat = cache.get((device, dtype))
            if flat is None or flat.numel() < sum(sizes):
                flat = cache[device, dtype] = torch.empty(sum(sizes), device=device, dtype=dtype)
            flat = flat[: sum(sizes)].normal_(generator=self._generator(device))
            for i, piece in zip(idx, torch.split(flat, sizes), strict=True):
                out[i] = piece.view_as(params[i])
        return out  # type: ignore[return-value]

    def _generator(self, device: torch.device) -> torch.Generator:
        gens = self.state[_GLOBAL]["generators"]
        key = str(device)
        if key not in gens:
            offset = len(gens)
            gens[key] = torch.Generator(device=device).manual_seed(
                self.state[_GLOBAL]["seed"] + offset
            )
        return gens[key]

    def _finish_annealing(self) -> None:
        """End of the SA phase: keep the best point seen, free the SA buffers."""
        g = self.state[_GLOBAL]
        if g["best_loss"] is not None and g["best_loss"] < g["anchor_loss"]:
            self._restore("best")
            for p in self._sa_params():
                state = self.state[p]
                if "best_step" in state:
                    state["step"] = state["best_step"]
                    for k in _MOMENTS:
                        state[k].copy_(state[f"best_{k}"])
        for p in self._sa_params():
            for name in ("anchor", "best", "sa_dir", "best_step", *(f"best_{k}" for k in _MOMENTS)):
                self.state[p].pop(name, None)
        self.__dict__.pop("_noise_buffers", None)
        self.__dict__.pop("_noise_tables", None)
        g["sa_done"] = True
        g["pending_since"] = None

    # -- Adam ------------------------------------------------------------------------------------

    def _adam_group(self, group: dict, lr_factor: float = 1.0) -> None:
        if lr_factor != 1.0:  # a converging descent: the update at a multiple of the group's lr
            group = {**group, "lr": group["lr"] * lr_factor}
        params, grads, states = [], [], []
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError("Azure does not support sparse gradients")
            params.append(p)
            grads.append(grad)
            states.append(self._adam_state(p))
        if not params:
            return
        grads = _clip(grads, group["max_grad_norm"])
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for s in states:
            s["step"] += 1
            exp_avgs.append(s["exp_avg"])
            exp_avg_sqs.append(s["exp_avg_sq"])
            steps.append(s["step"])
        # scratch buffers of the update: a cache, not state (never in ``state_dict``)
        scratch = self.__dict__.setdefault("_adam_scratch", {})
        _adam_update(params, grads, exp_avgs, exp_avg_sqs, steps, group, scratch)

    def _adam_state(self, p: Tensor) -> dict:
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state


def _clip(grads: list[Tensor], max_norm: float | None) -> list[Tensor]:
    """Gradients scaled to global norm ``<= max_norm`` (new tensors; ``p.grad`` is untouched)."""
    if max_norm is None:
        return grads
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return torch._foreach_mul(grads, coef)


def _adam_update(
    params, grads, exp_avgs, exp_avg_sqs, steps, group, scratch=None, min_numel=1 << 15
) -> None:
    """``torch.optim.Adam``'s update, bit for bit: with ``group["fused"]`` its fused kernel
    (``Adam(fused=True)``, CPU and CUDA tensors), otherwise its multi-tensor arithmetic
    (``Adam(foreach=True)``: same operations, bias correction and eps placement).

    On CPU ``torch._foreach_*`` runs its operation tensor by tensor, so running all operations on
    one tensor before the next gives the same numbers. Contiguous real CPU tensors of at least
    ``min_numel`` elements are updated that way, while they are in cache, with the intermediate
    tensor written into a reused buffer from ``scratch`` (dtype -> flat tensor) instead of a new
    allocation each step; the others (small, strided, non-CPU) go through ``torch._foreach_*``.
    """
    beta1, beta2 = group["betas"]
    lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
    if group.get("fused"):
        _fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, group)
        return
    corr = {t: (-(lr / (1 - beta1**t)), (1 - beta2**t) ** 0.5) for t in set(steps)}
    rest = []
    for i, p in enumerate(params):
        g, m, v = grads[i], exp_avgs[i], exp_avg_sqs[i]
        n = p.numel()
        if (
            scratch is None or n < min_numel or not p.is_cpu or not p.is_floating_point()
            or not (p.is_contiguous() and g.is_contiguous() and m.is_contiguous()
                    and v.is_contiguous())
        ):
            rest.append(i)
            continue
        buf = scratch.get(p.dtype)
        if buf is None or buf.numel() < n:
            buf = scratch[p.dtype] = torch.empty(n, dtype=p.dtype)
        buf = buf[:n].view_as(p)
        step_size, bias_correction2_sqrt = corr[steps[i]]
        if weight_decay != 0:
            g = torch.add(g, p, alpha=weight_decay, out=buf)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2)
        v.addcmul_(g, g, value=1 - beta2)
        torch.sqrt(v, out=buf)  # g is no longer needed
        buf.div_(bias_correction2_sqrt)
        buf.add_(eps)
        p.addcdiv_(m, buf, value=step_size)
    if not rest:
        return
    if len(rest) < len(params):
        params, grads = [params[i] for i in rest], [grads[i] for i in rest]
        exp_avgs, exp_avg_sqs = [exp_avgs[i] for i in rest], [exp_avg_sqs[i] for i in rest]
        steps = [steps[i] for i in rest]
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    step_size = [corr[t][0] for t in steps]
    bias_correction2_sqrt = [corr[t][1] for t in steps]
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)


def _by_device_and_dtype(tensors: list[Tensor]) -> dict[tuple, list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype), in order: one kernel call per group."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return groups


def _fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, group) -> None:
    """``Adam(fused=True)``'s kernel, one call per device and dtype (CPU and CUDA tensors). The
    kernel reads each tensor's step from a float32 tensor on its device, as Adam keeps it; on CUDA
    that tensor is filled on the device (``torch.full``), so the host never waits for it."""
    beta1, beta2 = group["betas"]
    buckets = _by_device_and_dtype(params)
    for device, _ in buckets:
        if device.type not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Azure(fused=True) supports CPU and CUDA tensors, not {device.type}; "
                "use fused=None"
            )
    for (device, _), idx in buckets.items():
        step_t = {
            t: torch.full((), float(t), dtype=torch.float32, device=device)
            for t in {steps[i] for i in idx}
        }
        torch._fused_adam_(
            [params[i] for i in idx], [grads[i] for i in idx], [exp_avgs[i] for i in idx],
            [exp_avg_sqs[i] for i in idx], [], [step_t[steps[i]] for i in idx],
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
            eps=group["eps"], amsgrad=False, maximize=False,
        )


def _noise_kernel_for(params: list[Tensor]):
    """The Triton proposal kernel module when it can add the noise to ``params`` (CUDA tensors of
    one dtype, Triton importable), else ``None`` (normals drawn into a buffer)."""
    if not params[0].is_cuda:
        return None
    try:
        from azure_sciml import _noise_kernel
    except Exception:  # no Triton (a CPU-only install, a CUDA build without it) or a broken one
        return None
    ok = _noise_kernel.supported(params[0].device) and all(map(_noise_kernel.available, params))
    return _noise_kernel if ok else None


def _check_group(group: dict) -> None:
    """``ValueError`` naming the bad hyperparameter and its value."""
    checks = {
        "lr": lambda v: v >= 0,
        "eps": lambda v: v >= 0,
        "weight_decay": lambda v: v >= 0,
        "T0": lambda v: v >= 0,
        "sigma": lambda v: v >= 0,
        "sa_steps": lambda v: v >= 0 and float(v).is_integer(),
        "sa_momentum": lambda v: 0 <= v < 1,
        "max_grad_norm": lambda v: v is None or v > 0,
    }
    for key, ok in checks.items():
        value = group[key]
        if isinstance(value, Tensor) or not ok(value):
            raise ValueError(f"Invalid {key} value: {value!r}")
    for i, beta in enumerate(group["betas"]):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta!r}")


def _check_real(name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is a real number (no bool) that is ok."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
        raise ValueError(f"Invalid {name} value: {value!r} ({allowed})")


def _check_global(sa_interval: int, target_accept: float | None, spike_factor: float | None):
    if not (isinstance(sa_interval, int) and sa_interval >= 1):
        raise ValueError(f"Invalid sa_interval value: {sa_interval!r} (a positive integer)")
    if target_accept is not None and not 0.0 < target_accept < 1.0:
        raise ValueError(f"Invalid target_accept value: {target_accept!r} (in (0, 1) or None)")
    if spike_factor is not None and not spike_factor > 1.0:
        raise ValueError(f"Invalid spike_factor value: {spike_factor!r} (> 1 or None)")
