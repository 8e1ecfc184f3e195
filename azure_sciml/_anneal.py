"""Azure's annealing controller: when to explore, propose, judge and hand over. No tensors.

Each step the optimizer reports the loss it saw at the current point (:meth:`Controller.observe`)
and gets a :class:`Decision` back (restore a saved point, save one, restart Adam's moments, skip
the update); after the Adam update it asks :meth:`Controller.advance` whether to propose (and how
big, as a factor of the group's ``sigma · lr · sa_interval``) or to finish. All state lives in
:class:`ControllerState`, a dataclass of plain numbers saved in the optimizer's ``state_dict``.

Phases::

    wait ──(Adam has settled)──▶ settle ──(R steps)──▶ anchored ◀──(judged)── descend
                                                          └──(propose)──▶ descend
    any ──(end of the phase or finish())──▶ done         (back to the best point judged)
    done ──(new_stage(): the objective changed)──▶ wait    (a fresh schedule of its own length)

Every threshold is invariant to ``L → a·L`` (``a > 0``) and, for losses that do not head for 0,
to ``L → L + b``: the stall test measures progress against the distance the loss has come since
the first step, and the temperature's loss scale is a robust mean of the loss increases the
Metropolis test has judged. A positive loss that has fallen below 1% of its first value (a
residual or an MSE) is judged on a log scale instead, relative to its own size, so a slow, steady
descent towards 0 is not mistaken for a settled minimum.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any

WAIT, SETTLE, ANCHORED, DESCEND, DONE = "wait", "settle", "anchored", "descend", "done"


@dataclass(frozen=True)
class Settings:
    """The annealing schedule. ``sa_steps``, ``total_steps`` (where ``sa_steps`` follows it),
    ``T0``, ``interval`` (sa_interval) and ``patience`` (sa_patience) are Azure's arguments; the
    rest are the algorithm's fixed constants, exposed for ablation studies (docs/algorithm.md
    gives each one's evidence). The random key is state."""

    sa_steps: int = 1000
    total_steps: int | None = None  # the run's length N where the phase follows it (0.9 N)
    T0: float = 0.2
    interval: int = 10  # K: steps between restarts of a descent; shortest descent
    patience: int = 50  # P: steps without progress (and quiet) before exploring starts
    relax: float | None = 0.125  # c: descent length R = clamp(c (k0 - P), K, 10 K); None: R = K
    converge: float | None = 0.01  # η: long descents are judged once a block lowers L by <= η D
    descent_lr: float = 2.0  # ρ: lr factor of a long descent
    blend: bool = True  # short descents: proposals shrink along a sigmoid mid-phase
    stall_tol: float = 3e-4  # progress that counts, as a fraction of L_first - L_best
    log_below: float = 0.01  # a positive loss under this fraction of its first value heads for
    log_tol: float = 1e-3  # 0 (a residual, an MSE): progress that counts is this fraction of it
    longest: int = 20  # longest converging descent, in K
    converge_from: int = 2  # descents of at least this many K are "long"
    uphill_window: int = 20  # D: mean of the last this many uphill changes ...
    uphill_cap: float = 5.0  # ... each capped at this many times the others' median
    adapt: float | None = 0.1  # short descents' proposal scale: x (1 + adapt) after a proposal
    # that fell back into the anchor's basin, / (1 + adapt)^returns after one that did not;
    returns: float = 0.1  # so about returns / (1 + returns) of them fall back. None: scale 1
    scale_bounds: tuple[float, float] = (0.05, 4.0)
    polish: int | None = 10  # long quasi-Newton descents, a phase that follows the run's length:
    # it may run until this many K before the run (the best point's polish: one relaxation),
    # past 0.9 N only where they converge and found a better point; None: it ends at 0.9 N
    last_start: int = 8  # long quasi-Newton descents whose last one converged: the last proposal
    # starts at least this many K before the phase ends (one still descending is dropped)
    give_up: float | None = 0.75  # a phase whose proposals beat nothing by this fraction of it
    # ends there (back to Adam's settled point, plain Adam after); None: never

    @property
    def long_descents(self) -> bool:
        return self.converge is not None


@dataclass
class ControllerState:
    seed: int = 0  # key of the Metropolis test's uniform draws: u_n = U(seed, n)
    phase: str = WAIT
    step: int = 0  # steps observed
    first_loss: float | None = None  # stall test: scale = first_loss - best
    watch_loss: float | None = None  # best loss, and the step it was last improved on
    watch_since: int = 0
    last_loss: float | None = None
    jitter: float = 0.0  # sum of |ΔL| since the best loss last improved
    start: int | None = None  # k0: the step exploring started
    descent: int = 0  # R: steps a proposal descends before it can be judged
    since: int | None = None  # step the pending proposal was made
    block_loss: float | None = None  # loss at the previous block boundary of a long descent
    anchor_loss: float | None = None
    best_loss: float | None = None
    settled_loss: float | None = None  # the best loss before the first proposal
    curvature: bool = False  # this stage's descents are the optimizer's quasi-Newton ones
    recent: list[float] = field(default_factory=list)  # a quasi-Newton descent's last K+1 losses
    uphill: list[float] = field(default_factory=list)  # recent uphill changes (the loss scale)
    n_judged: int = 0  # counter of the Metropolis test's uniform draws
    n_proposals: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    n_nonfinite: int = 0
    stage: int = 0  # objectives so far, minus one (new_stage)
    stage_sa_steps: int | None = None  # this stage's annealing length (None: the settings')
    stage_total_steps: int | None = None  # and its number of steps, where given
    scale: float = 1.0  # short descents' proposal scale (Settings.adapt)
    found_by: int | None = None  # a phase extended for long quasi-Newton descents (polish) ends
    # at this step, its old end, unless exploring has paid by then (Controller._paid)
    converged: bool = False  # the last judged quasi-Newton descent converged (before `longest`)
    # (fields added after v3.1 keep their defaults when an older state_dict is loaded)


# what a new stage keeps: the Metropolis test's random stream and the counters
_CARRIED = ("seed", "n_judged", "n_proposals", "n_accepted", "n_rejected", "n_nonfinite", "stage")


@dataclass(frozen=True)
class Decision:
    """What the optimizer does with the point it just evaluated, in this order: restore a saved
    point, save the current one, restart Adam's moments, run the Adam update (or not)."""

    restore: str | None = None  # "anchor"
    save: tuple[str, ...] = ()  # "anchor", "best"
    restart: bool = False  # zero Adam's moments and step count (a fresh descent)
    restart_exploring: bool = False  # the same for the exploring groups only
    update: bool = True
    lr_factor: float = 1.0  # for exploring groups' Adam update


@dataclass(frozen=True)
class Advance:
    """After the update: add a proposal of ``propose`` times ``sigma · lr · K`` per coordinate
    (0: none), or ``finish`` the phase (restore ``best`` if it is better than where we are)."""

    propose: float = 0.0
    finish: bool = False
    restore_best: bool = False


def temperature(into: int, T0: float, length: int) -> float:
    """Linear cooling from ``T0`` at the phase start to 0 at its end."""
    if length <= 0 or into >= length:
        return 0.0
    return T0 * (1.0 - into / length)


def blend_weight(into: int, length: int) -> float:
    """Sigmoid hand-over of the proposal size, centred mid-phase (short descents only)."""
    if length <= 0 or into >= length:
        return 0.0
    return 1.0 / (1.0 + math.exp(10.0 * (into / length - 0.5)))


def metropolis_accept(delta: float, temp: float, u: float) -> bool:
    """Accept with probability ``min(1, exp(-delta / temp))``; ``u ~ U(0, 1)``."""
    if delta <= 0.0:
        return True
    if temp <= 0.0:
        return False
    return u < math.exp(-delta / temp)


def robust_scale(ups: list[float], cap: float) -> float | None:
    """Mean of ``ups`` with each value capped at ``cap`` times the median of the others; None
    when empty. One huge change cannot heat the test, the first included: from the second entry
    on it is capped against the others alone, so it counts as ``cap`` typical changes at most
    (D grows by at most ``1 + (cap - 1) / n`` where the others agree). A median over all of them
    would be the outlier itself while there are one or two."""
    if len(ups) < 2:
        return ups[0] if ups else None
    capped = (min(v, cap * _median(ups[:i] + ups[i + 1 :])) for i, v in enumerate(ups))
    return sum(capped) / len(ups)


def _median(values: list[float]) -> float:
    ordered, mid = sorted(values), len(values) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


class Controller:
    """Decides, from the losses it is shown, what Azure does each step (see module docstring)."""

    def __init__(self, settings: Settings, state: ControllerState | None = None):
        self.settings = settings
        self.state = state or ControllerState()

    # -- what the optimizer asks ---------------------------------------------------------------

    def observe(self, loss: float, curvature: bool = False) -> Decision:
        """The loss at the current point (before this step's update); NaN/Inf for a failed
        evaluation. ``curvature``: if exploring starts at this step, its descents are the
        optimizer's quasi-Newton ones (judged once converged from the first block on)."""
        st, s = self.state, self.settings
        if not math.isfinite(loss):
            return self._bad_loss()
        if st.phase == DONE or st.step >= s.sa_steps:
            return Decision()
        if st.phase == WAIT:
            decision = self._wait(loss, curvature)
            st.curvature = curvature and st.phase == SETTLE
            return decision
        if st.phase == SETTLE:
            if st.step - st.start >= st.descent:
                st.phase, st.anchor_loss = ANCHORED, loss
                save = ("anchor", "best") if loss < st.best_loss else ("anchor",)
                st.best_loss = st.settled_loss = min(loss, st.best_loss)
                return Decision(save=save)
            return Decision()
        if st.phase == DESCEND:
            return self._descend(loss)
        return Decision()

    def advance(self, can_propose: bool = True) -> Advance:
        """After the update of step ``k``: propose (``can_propose``: the point has gradients),
        finish at the end of the phase, or nothing. Moves the step counter on."""
        st, s = self.state, self.settings
        st.step += 1
        if st.phase == DONE:
            return Advance()
        if st.step >= s.sa_steps or self._given_up():
            return self.finish()
        if st.phase != ANCHORED or not can_propose:
            return Advance()
        if st.step + self._last_start() >= self._end_now():
            return Advance()  # too late for a proposal to be judged: descend to the end
        st.phase, st.since, st.block_loss, st.recent = DESCEND, st.step, None, []
        st.n_proposals += 1
        return Advance(propose=self._proposal_factor())

    def finish(self) -> Advance:
        """End the phase now: go back to the best point judged if it beats where the run is
        (a pending proposal is never kept unjudged)."""
        st = self.state
        if st.phase == DONE:
            return Advance()
        anchored = st.anchor_loss is not None
        back = anchored and (st.phase == DESCEND or st.best_loss < st.anchor_loss)
        st.phase, st.since = DONE, None
        return Advance(finish=True, restore_best=back)

    def new_stage(self, sa_steps: int, total_steps: int | None = None) -> None:
        """The objective changed: a fresh schedule (wait, then anneal) of ``sa_steps`` steps, as
        if a new controller started now; the stall test, the loss scale, the anchor and the best
        loss start over (they measured the old objective), the Metropolis test's random stream
        and the counters carry on. Call :meth:`finish` first."""
        if self.state.phase != DONE:
            raise RuntimeError("Controller.new_stage: finish() the current stage first")
        old = self.state
        self._keep_first_schedule()
        self.state = ControllerState(
            **{k: getattr(old, k) for k in _CARRIED},
            stage_sa_steps=sa_steps, stage_total_steps=total_steps,
        )
        self.state.stage += 1
        self.settings = replace(self.settings, sa_steps=sa_steps, total_steps=total_steps)

    def lr_factor(self) -> float:
        """The exploring groups' lr factor for this step's update."""
        if self.state.phase == DESCEND and self._long():
            return self.settings.descent_lr
        return 1.0

    def temperature_now(self) -> float:
        st, s = self.state, self.settings
        return temperature(st.step - st.start, s.T0, s.sa_steps - st.start)

    @property
    def exploring(self) -> bool:
        """Whether a bad point can be undone (an anchor to go back to)."""
        return self.state.anchor_loss is not None and self.state.phase != DONE

    @property
    def relaxing(self) -> bool:
        """Whether the optimizer takes quasi-Newton steps now: while settling and descending,
        and after the phase (the best point relaxed to the end of the run)."""
        return self.state.curvature and self.state.phase in (SETTLE, DESCEND, DONE)

    @property
    def exploring_or_settling(self) -> bool:
        """Whether a best point judged is saved apart from the parameters."""
        return self.state.phase in (SETTLE, ANCHORED, DESCEND)

    @property
    def done(self) -> bool:
        return self.state.phase == DONE

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        lists = {k: list(state.get(k, [])) for k in ("uphill", "recent")}
        self.state = ControllerState(**{**state, **lists})
        # this stage's schedule (a later stage's, a phase extended at k0), or back to the first's
        first_sa_steps, first_total = self.__dict__.get(
            "_first_schedule", (self.settings.sa_steps, self.settings.total_steps))
        sa_steps = self.state.stage_sa_steps
        total = self.state.stage_total_steps if self.state.stage else first_total
        self.settings = replace(self.settings, sa_steps=first_sa_steps if sa_steps is None
                                else sa_steps, total_steps=total)

    def _keep_first_schedule(self) -> None:
        """Remember the first stage's schedule before it changes (a resume may go back to it)."""
        self.__dict__.setdefault(
            "_first_schedule", (self.settings.sa_steps, self.settings.total_steps))

    # -- phases --------------------------------------------------------------------------------

    def _wait(self, loss: float, curvature: bool) -> Decision:
        st, s = self.state, self.settings
        if not self._stalled(loss):
            return Decision()
        descent = s.interval
        if s.relax is not None:  # descent length from Adam's own relaxation time
            r = round(s.relax * (st.step - s.patience))
            descent = min(max(r, s.interval), 10 * s.interval)
        end = self._planned_end(descent, curvature)
        if st.step + descent + self._last_start(descent, curvature) >= end:
            return Decision()  # no proposal could be judged before the end: stay Adam
        st.phase, st.start, st.descent, st.best_loss = SETTLE, st.step, descent, loss
        if end != s.sa_steps:  # saved in the state: a resume keeps the longer phase
            self._keep_first_schedule()
            st.stage_sa_steps, st.found_by = end, s.sa_steps
            self.settings = replace(s, sa_steps=end)
        return Decision(save=("best",), restart=True)  # Adam's settled point, with its moments

    def _planned_end(self, descent: int, curvature: bool) -> int:
        """Where the phase may end, planned when exploring starts: ``sa_steps``, or for long
        quasi-Newton descents in a phase that follows the run's length, ``polish`` K before the
        run ends (the best point's polish after it is one quasi-Newton relaxation, where Adam's
        needed the last 10%), if that is later; a phase whose proposals have beaten nothing by
        ``sa_steps`` still ends there (its polish, from Adam's settled point, keeps the 10%: see
        :meth:`_end_now` and :meth:`_given_up`)."""
        s = self.settings
        if curvature and self._long(descent) and s.polish is not None and s.total_steps:
            return max(s.sa_steps, s.total_steps - s.polish * s.interval)
        return s.sa_steps

    def _stalled(self, loss: float) -> bool:
        """The best loss has not improved by ``stall_tol (L_first - L_best)`` for ``patience``
        steps, and the loss moved less than that per step on average: Adam has settled. A
        positive loss that has fallen below ``log_below`` of its first value is heading for 0 (a
        PINN residual, an MSE) and keeps improving slowly for a long time: there the progress
        that counts is ``log_tol · L_best``, as in v1."""
        st, s = self.state, self.settings
        if st.first_loss is None:
            st.first_loss = loss
        st.jitter += 0.0 if st.last_loss is None else abs(loss - st.last_loss)
        st.last_loss = loss
        best = st.watch_loss
        low = min(loss, math.inf if best is None else best)
        if 0 < low < s.log_below * st.first_loss:  # heading for 0: judged on a log scale (v1)
            scale = s.log_tol * low
        else:  # an energy, a loss with an offset: against the distance come since the start
            scale = s.stall_tol * max(st.first_loss - low, 0)
        if best is None or loss < best - scale:
            st.watch_loss, st.watch_since, st.jitter = loss, st.step, 0.0
            return s.patience == 0
        waited = st.step - st.watch_since
        return waited >= s.patience and st.jitter <= scale * waited

    def _descend(self, loss: float) -> Decision:
        st, s = self.state, self.settings
        into = st.step - st.since
        if self._judgement_due(into, loss):
            return self._judge(loss)
        restart = into > 0 and into % s.interval == 0 and st.descent > s.interval
        return Decision(restart_exploring=restart, lr_factor=self.lr_factor())

    def _judgement_due(self, into: int, loss: float) -> bool:
        """After ``R`` steps; a long descent once its last block lowered the loss by at most
        ``converge · D``, at the latest after ``longest`` blocks."""
        st, s = self.state, self.settings
        scale = robust_scale(st.uphill, s.uphill_cap)
        if not self._long() or scale is None:
            return into >= st.descent
        if into >= self._longest_descent():
            st.converged = False
            return True
        if st.curvature:  # quasi-Newton: once its last K steps lowered L by at most η D
            st.recent = [*st.recent, loss][-(s.interval + 1) :]
            if into >= s.interval and st.recent[0] - loss <= s.converge * scale:
                st.converged = True
                return True
            return False
        if into < st.descent - s.interval or (into - st.descent) % s.interval:
            return False
        previous, st.block_loss = st.block_loss, loss
        if into < st.descent:
            return False
        return previous - loss <= s.converge * scale

    def _judge(self, loss: float) -> Decision:
        st, s = self.state, self.settings
        delta = loss - st.anchor_loss
        self._adapt_scale(delta)
        if delta > 0.0:
            st.uphill = [*st.uphill, delta][-s.uphill_window :]
        temp = self.temperature_now() * (robust_scale(st.uphill, s.uphill_cap) or 0.0)
        u = random.Random(f"{st.seed}:{st.n_judged}").random()
        st.n_judged += 1
        st.phase, st.since = ANCHORED, None
        if metropolis_accept(delta, temp, u):
            st.n_accepted += 1
            st.anchor_loss = loss
            save = ("anchor",)
            if loss < st.best_loss:
                st.best_loss, save = loss, ("anchor", "best")
            return Decision(save=save)
        st.n_rejected += 1
        return Decision(restore="anchor", restart=True, update=False)

    def _bad_loss(self) -> Decision:
        """NaN/Inf: never an update; while exploring, back to the anchor."""
        st = self.state
        st.n_nonfinite += 1
        if not self.exploring:
            return Decision(update=False)
        st.phase, st.since = ANCHORED, None
        return Decision(restore="anchor", restart=True, update=False)

    # -- helpers -------------------------------------------------------------------------------

    def _long(self, descent: int | None = None) -> bool:
        """Long descents (``R >= converge_from · K``: slowly relaxing proposals, e.g. atomic
        clusters) are judged once converged, at ``descent_lr``, with full-size proposals."""
        s = self.settings
        descent = self.state.descent if descent is None else descent
        return s.long_descents and descent >= s.converge_from * s.interval

    def _longest_descent(self, descent: int | None = None) -> int:
        """The most steps a proposal with descent length ``descent`` (default: the run's R) can
        descend before its judgement."""
        s, descent = self.settings, self.state.descent if descent is None else descent
        return s.longest * s.interval if self._long(descent) else descent

    def _last_start(self, descent: int | None = None, curvature: bool | None = None) -> int:
        """How many steps before the phase ends the last proposal may start: the longest
        descent, or for long quasi-Newton descents whose last one converged (most are judged
        within ~7 K) ``last_start`` K (a proposal still descending when the phase ends is
        dropped: back to the best point; descents that do not converge keep improving the
        loss, and dropping one loses its progress)."""
        st, s = self.state, self.settings
        curvature = st.curvature if curvature is None else curvature
        longest = self._longest_descent(descent)
        if curvature and self._long(descent) and st.converged:
            return min(s.last_start * s.interval, longest)
        return longest

    def _paid(self) -> bool:
        """Long quasi-Newton descents: a judged point beat the best from before the first
        proposal, and the last judged descent converged (a relaxation to a minimum)."""
        st = self.state
        return st.converged and st.best_loss < st.settled_loss

    def _end_now(self) -> int:
        """Where the phase ends as things stand: a phase extended for long quasi-Newton descents
        ends at its old end until (and unless) exploring has paid as relaxations."""
        st = self.state
        if st.found_by is not None and not self._paid():
            return st.found_by
        return self.settings.sa_steps

    def _given_up(self) -> bool:
        """Short descents: ``give_up`` of the phase has passed and no proposal judged so far beat
        the best point from before the first one: what is left goes to Adam's polish, from that
        point. A phase extended for long quasi-Newton descents: its old end has come and either
        nothing beat that point or the last descent was cut at ``longest`` (not a relaxation to a
        minimum, so the polish needs its 10%, as a PINN's). Other long descents already leave
        the polish the last ``longest`` blocks."""
        st, s = self.state, self.settings
        if st.phase not in (ANCHORED, DESCEND) or st.settled_loss is None:
            return False
        if self._long():
            return st.step >= self._end_now()
        into = st.step - st.start
        nothing = st.best_loss >= st.settled_loss
        return nothing and s.give_up is not None and into >= s.give_up * (s.sa_steps - st.start)

    def _adapt_scale(self, delta: float) -> None:
        """Short descents: a proposal judged within ``converge · D`` of the anchor's loss fell
        back into the anchor's basin (too small to leave it): the scale grows; any other shrinks
        it a little. Long descents keep full-size proposals."""
        st, s = self.state, self.settings
        if s.adapt is None or self._long():
            return
        loss_scale = robust_scale(st.uphill, s.uphill_cap)  # D
        back = loss_scale is not None and abs(delta) <= (s.converge or 0.0) * loss_scale
        st.scale *= (1 + s.adapt) ** (1 if back else -s.returns)
        st.scale = min(max(st.scale, s.scale_bounds[0]), s.scale_bounds[1])

    def _proposal_factor(self) -> float:
        st, s = self.state, self.settings
        if self._long():
            return 1.0
        if not s.blend:
            return st.scale
        # the sigmoid blend at the step just taken
        return st.scale * blend_weight(st.step - 1 - st.start, s.sa_steps - st.start)
