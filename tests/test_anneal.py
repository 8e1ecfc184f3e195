"""The annealing controller on its own: plain numbers in, decisions out (no tensors)."""

import math
from dataclasses import replace

import pytest

from azure_sciml._anneal import (
    ANCHORED,
    DESCEND,
    DONE,
    SETTLE,
    WAIT,
    Controller,
    ControllerState,
    Decision,
    Settings,
    blend_weight,
    metropolis_accept,
    robust_scale,
    temperature,
)


def feed(ctl, losses, can_propose=True):
    """Observe each loss, then advance; returns [(phase after, decision, advance)]."""
    out = []
    for loss in losses:
        d = ctl.observe(loss)
        a = ctl.advance(can_propose)
        out.append((ctl.state.phase, d, a))
    return out


@pytest.mark.parametrize(
    "delta, temp, u, accepted",
    [(-1.0, 0.0, 0.99, True), (0.0, 0.0, 0.99, True), (1.0, 0.0, 0.0, False),
     (1.0, 1.0, math.exp(-1) - 1e-9, True), (1.0, 1.0, math.exp(-1) + 1e-9, False),
     (2.0, 1.0, 0.1, True), (2.0, 1.0, 0.2, False)],
)
def test_metropolis_rule(delta, temp, u, accepted):
    assert metropolis_accept(delta, temp, u) is accepted


@pytest.mark.parametrize(
    "into, length, expected",
    [(0, 100, 0.2), (50, 100, 0.1), (100, 100, 0.0), (150, 100, 0.0), (0, 0, 0.0)],
)
def test_linear_cooling(into, length, expected):
    assert temperature(into, 0.2, length) == pytest.approx(expected)


def test_blend_hands_over_mid_phase():
    assert blend_weight(0, 100) > 0.99
    assert blend_weight(50, 100) == pytest.approx(0.5)
    assert blend_weight(100, 100) == 0.0


@pytest.mark.parametrize(
    "ups, expected",
    [([], None), ([2.0], 2.0), ([1.0, 2.0, 3.0], 2.0),
     ([1.0] * 19 + [1e6], (19 + 5.0) / 20),  # one outlier counts as 5x the median at most
     ([1e6, 2.0], 6.0), ([2.0, 1e6], 6.0),  # ... from the second on, against the others
     ([1.0, 2.0, 3.0, 40.0], (1.0 + 2.0 + 3.0 + 10.0) / 4)],
)
def test_robust_scale(ups, expected):
    assert robust_scale(ups, 5.0) == (None if expected is None else pytest.approx(expected))


AFTER = [1.0, 2.0, 0.5, 1.5, 3.0, 1.0, 0.8, 2.5]  # uphill changes judged after the outlier


def loss_scales(changes):
    """D after each judgement of a run whose proposals come back ``changes`` from the anchor
    (T0 = 0: downhill ones are accepted, uphill ones rejected, the same path in every run)."""
    ctl = Controller(Settings(sa_steps=10_000, patience=0, interval=2, relax=None, T0=0.0))
    feed(ctl, [10.0, 9.0, 8.0])  # settled, anchored at 8.0, the first proposal descending
    scales = []
    for delta in changes:
        anchor = ctl.state.anchor_loss
        feed(ctl, [anchor + 1.0, anchor + 1.0, anchor + delta])  # the third step judges it
        scales.append(robust_scale(ctl.state.uphill, ctl.settings.uphill_cap))
    assert ctl.state.n_judged == len(changes)
    return scales


@pytest.mark.parametrize("before", [[], [-0.5], [1.0], [-0.5, -0.3], [-0.5, 1.0], [1.0, 2.0]])
def test_one_huge_loss_at_an_early_judgement_changes_the_later_loss_scale_little(before):
    """A loss 1e6 above the anchor at judgement 0, 1 or 2 (after downhill or uphill ones):
    every later judgement's D stays within a factor 2.5 of the run where that change was a
    typical 2.0 (with a plain median it was the outlier itself, 1e5x, while it was the first or
    second uphill change)."""
    clean = loss_scales([*before, 2.0, *AFTER])
    hot = loss_scales([*before, 1e6, *AFTER])
    later = len(before) + 1
    factors = [h / c for h, c in zip(hot[later:], clean[later:], strict=True)]
    assert max(factors) < 2.5
    assert factors[-1] < 1.5  # fading as typical changes accumulate


def test_waits_while_the_loss_improves_then_settles():
    ctl = Controller(Settings(sa_steps=1000, patience=5, interval=2))
    steps = feed(ctl, [100.0 - k for k in range(20)])  # steady progress: Adam is not stuck
    assert all(phase == WAIT for phase, _, _ in steps)
    steps = feed(ctl, [80.0] * 6)  # flat for the patience: exploring starts with a restart
    assert [phase for phase, _, _ in steps][-1] == SETTLE
    assert steps[-1][1] == Decision(save=("best",), restart=True)  # Adam's point stays a candidate
    assert ctl.state.best_loss == 80.0


def test_no_exploring_without_time_to_judge_a_proposal():
    ctl = Controller(Settings(sa_steps=40, patience=5, interval=10))
    feed(ctl, [100.0 - k for k in range(20)] + [80.0] * 20)  # stalls at step ~25: 25 + 10 + 10 > 40
    assert ctl.state.phase == DONE and ctl.state.start is None


def test_a_loss_heading_for_zero_is_judged_on_a_log_scale():
    """A residual's slow power-law descent after a fast drop (a PINN) is not a stall; scaling the
    loss does not change that, and an energy with the same shape (offset below 0) does stall."""
    pinn = [1.0 / (1.0 + k) ** 1.2 for k in range(3000)]

    def start(losses):
        ctl = Controller(Settings(sa_steps=10_000, patience=50, interval=10))
        feed(ctl, losses)
        return ctl.state.start

    assert start(pinn) is None and start([1000.0 * x for x in pinn]) is None
    assert start([x - 5.0 for x in pinn]) is not None  # not heading for 0: the offset rule


def test_a_noisy_loss_never_starts_exploring():
    ctl = Controller(Settings(sa_steps=1000, patience=5, interval=2))
    feed(ctl, [100.0 - k for k in range(20)])
    feed(ctl, [80.0 + (5.0 if k % 2 else -0.0) for k in range(200)])  # bouncing, no progress
    assert ctl.state.phase == WAIT


def test_the_stall_test_is_affine_invariant():
    losses = [10.0 + 50.0 * math.exp(-k / 15.0) + 1e-3 * math.sin(k) for k in range(300)]

    def start(a, b):
        ctl = Controller(Settings(sa_steps=1000, patience=20, interval=5))
        feed(ctl, [a * x + b for x in losses])
        return ctl.state.start, ctl.state.descent

    reference = start(1.0, 0.0)
    assert reference[0] is not None
    for a, b in [(1.0, 1e5), (1.0, -150.0), (1000.0, 0.0), (0.01, -1e4)]:
        assert start(a, b) == reference


def test_settle_anchor_propose_judge_cycle():
    s = Settings(sa_steps=1000, patience=0, interval=2, relax=None, T0=0.0)
    ctl = Controller(s)
    (phase, d, a), = feed(ctl, [10.0])  # patience 0: settle at once
    assert phase == SETTLE and d.restart and a.propose == 0.0
    (phase, d, a), = feed(ctl, [9.0])
    assert phase == SETTLE
    (phase, d, a), = feed(ctl, [8.0])  # R = K = 2 steps settled: anchor, then propose
    assert d.save == ("anchor", "best") and phase == DESCEND and a.propose > 0
    assert ctl.state.n_proposals == 1
    for loss in (12.0, 10.0):  # descending: R = 2 updates
        (phase, d, a), = feed(ctl, [loss])
        assert phase == DESCEND and d.update
    (phase, d, a), = feed(ctl, [9.0])  # judged: uphill at T = 0 -> rejected, anchor restored
    assert d == Decision(restore="anchor", restart=True, update=False)
    assert phase == DESCEND and ctl.state.n_rejected == 1  # and proposed again from the anchor
    feed(ctl, [11.0, 9.0])
    (phase, d, a), = feed(ctl, [7.0])  # downhill: accepted, a new best
    assert d.save == ("anchor", "best") and ctl.state.best_loss == 7.0


def test_nonfinite_losses_restore_the_anchor_only_while_exploring():
    ctl = Controller(Settings(sa_steps=1000, patience=0, interval=2, relax=None))
    (_, d, _), = feed(ctl, [math.nan])  # nothing to go back to: just no update
    assert d == Decision(update=False) and ctl.state.n_nonfinite == 1
    feed(ctl, [10.0, 9.0, 8.0])
    assert ctl.state.phase == DESCEND
    d = ctl.observe(math.inf)
    assert d == Decision(restore="anchor", restart=True, update=False)
    assert ctl.state.phase == ANCHORED
    assert ctl.advance(can_propose=False).propose == 0.0  # a closure that raised: next step
    assert ctl.state.phase == ANCHORED


def test_the_phase_ends_with_the_best_point():
    s = Settings(sa_steps=12, patience=0, interval=2, relax=None, T0=1e9, give_up=None)
    ctl = Controller(s)
    out = feed(ctl, [10.0, 9.0, 5.0, 8.0, 9.0, 8.5, 8.0, 8.8, 8.4, 8.2, 8.1, 8.0])
    assert ctl.state.phase == DONE
    final = out[-1][2]
    assert final.finish and final.restore_best  # best 5.0 beats the last anchor
    assert ctl.observe(1.0) == Decision() and ctl.advance().propose == 0.0


def finished_at(settings, losses):
    """The step whose advance ended the phase, and that advance."""
    ctl = Controller(settings)
    out = feed(ctl, losses)
    return next((k, a) for k, (_, _, a) in enumerate(out) if a.finish)


@pytest.mark.parametrize("give_up, at", [(0.75, 29), (0.5, 19), (None, 39)])
def test_a_phase_that_beats_nothing_hands_over_early(give_up, at):
    """Short descents, every proposal judged above the settled point (8.0): the phase ends at
    give_up of its length, back to the best point, and leaves Adam the rest."""
    s = Settings(sa_steps=40, patience=0, interval=2, relax=None, T0=1e9, give_up=give_up)
    k, a = finished_at(s, [10.0, 9.0, 8.0] + [9.0, 8.5, 8.2] * 20)
    assert (k, a.restore_best) == (at, True)


def test_a_phase_that_found_a_better_point_runs_to_its_end():
    s = Settings(sa_steps=40, patience=0, interval=2, relax=None, T0=1e9)
    assert finished_at(s, [10.0, 9.0, 8.0, 9.0, 8.5, 7.0] + [9.0, 8.5, 8.2] * 20)[0] == 39


def test_long_descents_keep_their_own_hand_over():
    """Long descents already leave Adam the phase's last ``longest`` blocks: no early end."""
    s = Settings(sa_steps=400, patience=0, interval=2, relax=None, converge=0.01, longest=3)
    ctl = Controller(s, ControllerState(phase=ANCHORED, step=100, start=0, descent=4,
                                        anchor_loss=1.0, best_loss=1.0, settled_loss=1.0,
                                        uphill=[1.0]))
    assert not ctl._given_up() and ctl._long()
    short = Controller(replace(s, interval=4), ControllerState(**{**ctl.state_dict(), "step": 300}))
    assert short._given_up() and not short._long()


def test_no_proposal_too_late_to_be_judged():
    ctl = Controller(Settings(sa_steps=10, patience=0, interval=2, relax=None, give_up=None))
    out = feed(ctl, [10.0, 9.0, 8.0] + [8.0] * 7)
    proposed = [a.propose > 0 for _, _, a in out]
    assert proposed == [False, False, True, False, False, True, False, False, False, False]
    assert out[-1][2].finish


def test_finish_mid_descent_goes_back_to_the_best():
    ctl = Controller(Settings(sa_steps=10_000, patience=0, interval=2, relax=None))
    feed(ctl, [10.0, 9.0, 8.0])
    assert ctl.state.phase == DESCEND
    a = ctl.finish()
    assert a.finish and a.restore_best and ctl.done
    assert ctl.finish().finish is False  # once


@pytest.mark.parametrize("k0, expected", [(50, 10), (90, 10), (210, 20), (850, 100), (5000, 100)])
def test_descent_length_follows_adams_relaxation_time(k0, expected):
    ctl = Controller(Settings(sa_steps=10_000, patience=50, interval=10))
    ctl.state.step = k0
    ctl.state.watch_loss, ctl.state.watch_since, ctl.state.first_loss = 1.0, k0 - 50, 2.0
    ctl.state.last_loss = 1.0
    d = ctl.observe(1.0)
    assert d.restart and ctl.state.descent == expected


def test_long_descents_are_judged_once_converged_at_twice_the_lr():
    s = Settings(sa_steps=10_000, patience=0, interval=2)
    ctl = Controller(s, ControllerState(phase=DESCEND, step=100, start=0, descent=4, since=100,
                                        anchor_loss=1.0, best_loss=1.0, uphill=[1.0]))
    assert ctl.lr_factor() == 2.0
    losses = [5.0, 4.0, 3.0, 2.5, 2.0, 1.9, 1.5, 1.497, 1.496]
    judged_at = None
    for k, loss in enumerate(losses):
        ctl.observe(loss)
        ctl.advance(can_propose=False)
        if ctl.state.phase != DESCEND:
            judged_at = k
            break
    assert judged_at == 8  # the block 6..8 is the first to lower the loss by <= 0.01 D


def test_state_round_trips_through_plain_dicts():
    ctl = Controller(Settings(sa_steps=100, patience=0, interval=2, relax=None))
    feed(ctl, [10.0, 9.0, 8.0, 12.0, 9.5, 11.0])
    twin = Controller(ctl.settings)
    twin.load_state_dict(ctl.state_dict())
    assert twin.state == ctl.state
    losses = [9.0, 8.5, 8.7, 8.1, 7.9]
    assert feed(twin, losses) == feed(ctl, losses)


def judge_proposals(settings, deltas, long=False, a=1.0, b=0.0):
    """A controller that judged proposals whose losses sit ``a · delta`` from the anchor's loss
    ``a + b`` (loss scale D = a), each against that anchor; and its proposal scale after each."""
    anchor = a + b
    ctl = Controller(settings, ControllerState(phase=ANCHORED, step=100, start=0,
                                               descent=40 if long else 2, anchor_loss=anchor,
                                               best_loss=anchor, uphill=[a, a]))
    scales = []
    for delta in deltas:
        ctl.state.phase, ctl.state.since = DESCEND, ctl.state.step
        ctl._judge(anchor + a * delta)
        ctl.state.anchor_loss = anchor
        scales.append(ctl.state.scale)
    ctl.state.phase = ANCHORED
    return ctl, scales


def judged_scale(settings, deltas, long=False):
    """The proposal scale after :func:`judge_proposals`, and the size factor of the next
    proposal."""
    ctl, _ = judge_proposals(settings, deltas, long)
    return ctl.state.scale, ctl.advance().propose


def test_short_descents_scale_their_proposals_to_leave_the_anchors_basin():
    s = Settings(sa_steps=10_000, interval=2, blend=False)
    # one that fell back (|delta| <= 0.01 D) grows the scale by 1.1; one that left shrinks it
    assert judged_scale(s, [0.005])[0] == pytest.approx(1.1)
    assert judged_scale(s, [0.5])[0] == pytest.approx(1.1 ** -0.1)
    assert judged_scale(s, [-0.3])[0] == pytest.approx(1.1 ** -0.1)
    # balanced where about 1 in 11 falls back: ten that left, one that fell back
    scale, propose = judged_scale(s, [0.5] * 10 + [0.0])
    assert scale == pytest.approx(1.0) and propose == pytest.approx(scale)
    # kept within its bounds
    assert judged_scale(s, [0.0] * 100)[0] == s.scale_bounds[1]
    assert judged_scale(s, [0.5] * 10_000)[0] == s.scale_bounds[0]
    # with the blend, the scale multiplies the blend's weight
    blended = replace(s, blend=True)
    scale, propose = judged_scale(blended, [0.0, 0.0])
    assert propose == pytest.approx(scale * blend_weight(100, 10_000))


def test_long_descents_and_adapt_none_keep_full_size_proposals():
    s = Settings(sa_steps=10_000, interval=2, blend=False)
    assert judged_scale(s, [0.0, 0.5, 0.0], long=True) == (1.0, 1.0)
    assert judged_scale(replace(s, adapt=None), [0.0, 0.5, 0.0]) == (1.0, 1.0)


def test_the_proposal_scale_is_affine_invariant():
    s = Settings(sa_steps=10_000, interval=2, blend=False)
    deltas = [0.005, 0.5, -0.3, 0.009, 2.0, 0.0]
    reference = judge_proposals(s, deltas)[1]
    assert len(set(reference)) > 3
    for a, b in [(1.0, 1e5), (1.0, -150.0), (1000.0, 0.0), (0.01, -1e4)]:
        assert judge_proposals(s, deltas, a=a, b=b)[1] == pytest.approx(reference, rel=1e-12)


def settle(settings, k0=850, curvature=True):
    """A controller whose Adam settles at step ``k0`` (descent length R from k0, as Azure's)."""
    ctl = Controller(settings)
    st = ctl.state
    st.step, st.first_loss, st.last_loss = k0, 2.0, 1.0
    st.watch_loss, st.watch_since = 1.0, k0 - settings.patience
    ctl.observe(1.0, curvature)
    return ctl


def test_long_quasi_newton_descents_end_a_phase_that_follows_the_run_later():
    """Long quasi-Newton descents polish the best point with one relaxation, so a phase that
    follows the run's length (0.9 N) ends ``polish`` K (100 steps) before the run instead, never
    before 0.9 N; saved in the state."""
    follows = Settings(sa_steps=9000, total_steps=10_000)
    ctl = settle(follows)
    assert ctl.state.phase == SETTLE and ctl._long() and ctl.state.curvature
    assert ctl.settings.sa_steps == ctl.state.stage_sa_steps == 9900
    # anything else keeps its phase: Adam descents, short descents, a given sa_steps, polish None,
    # and a run too short for 0.9 N to leave more than one relaxation after the phase
    for settings, k0, curvature in [(follows, 850, False), (follows, 90, True),
                                    (replace(follows, total_steps=None), 850, True),
                                    (replace(follows, polish=None), 850, True),
                                    (replace(follows, polish=100), 850, True)]:
        other = settle(settings, k0, curvature)
        assert other.state.phase == SETTLE and other.settings.sa_steps == settings.sa_steps
        assert other.state.stage_sa_steps is None


def test_a_resume_keeps_the_longer_phase_and_an_earlier_state_goes_back():
    ctl = settle(Settings(sa_steps=9000, total_steps=10_000))
    before = Controller(Settings(sa_steps=9000, total_steps=10_000)).state_dict()
    twin = Controller(Settings(sa_steps=9000, total_steps=10_000))
    twin.load_state_dict(ctl.state_dict())
    assert twin.settings.sa_steps == 9900 and twin.state == ctl.state
    ctl.load_state_dict(before)  # a checkpoint from before exploring started
    assert ctl.settings.sa_steps == 9000 and ctl.settings.total_steps == 10_000


@pytest.mark.parametrize("curvature, converged, step, proposes",
                         [(True, True, 382, True), (True, True, 383, False),
                          (True, False, 358, True), (True, False, 359, False),
                          (False, True, 358, True), (False, True, 359, False)])
def test_the_last_long_proposal_starts_last_start_blocks_before_the_end(
        curvature, converged, step, proposes):
    """Long quasi-Newton descents whose last one converged (most are judged within ~7 K) may
    propose until ``last_start`` K before the phase ends; the others keep the longest descent
    (``longest`` K): dropping a descent that still improves the loss would lose its progress."""
    s = Settings(sa_steps=400, interval=2, longest=20, last_start=8)
    ctl = Controller(s, ControllerState(phase=ANCHORED, step=step, start=0, descent=40,
                                        anchor_loss=1.0, best_loss=1.0, curvature=curvature,
                                        converged=converged))
    assert (ctl.advance().propose > 0) is proposes


@pytest.mark.parametrize("best, converged, finishes",
                         [(1.0, True, True), (0.5, False, True), (0.5, True, False)])
def test_an_extended_phase_goes_on_only_where_relaxations_found_a_better_point(
        best, converged, finishes):
    """At the old end (0.9 N) a phase extended for long quasi-Newton descents goes on only if a
    proposal has beaten Adam's settled point and the last descent converged (a relaxation to a
    minimum); otherwise the polish keeps its 10%, as before (a PINN's descents, cut at
    ``longest``, keep improving the loss: their polish needs it)."""
    ctl = settle(Settings(sa_steps=9000, total_steps=10_000))
    st = ctl.state
    assert st.found_by == 9000
    st.phase, st.step, st.anchor_loss, st.settled_loss = ANCHORED, 8999, 1.0, 1.0
    st.best_loss, st.uphill, st.converged = best, [1.0], converged
    a = ctl.advance()
    assert a.finish is finishes and ctl.done is finishes
    if not finishes:
        assert a.propose > 0  # 9000 + 8 K < 9900: proposals go on


@pytest.mark.parametrize("losses, converged", [([3.0, 2.0, 1.5, 1.499, 1.4985, 1.498], True),
                                               ([3.0 - 0.1 * k for k in range(8)], False)])
def test_a_quasi_newton_descent_says_whether_it_converged(losses, converged):
    """Judged by the η D rule (its last K steps lowered L by at most 0.01 D): converged; cut at
    the longest descent: not."""
    s = Settings(sa_steps=10_000, interval=2, longest=3)
    ctl = Controller(s, ControllerState(phase=DESCEND, step=100, start=0, descent=4, since=100,
                                        anchor_loss=1.0, best_loss=1.0, uphill=[1.0],
                                        curvature=True))
    for loss in losses:
        ctl.observe(loss)
        ctl.advance(can_propose=False)
        if ctl.state.phase != DESCEND:
            break
    assert ctl.state.phase == ANCHORED and ctl.state.converged is converged
    ctl.state.phase, ctl.state.since = DESCEND, ctl.state.step  # the next descent, under way:
    for loss in [3.0, 2.0, 1.0]:  # the flag stays the last judged one's
        ctl.observe(loss)
        ctl.advance(can_propose=False)
    assert ctl.state.phase == DESCEND and ctl.state.converged is converged


@pytest.mark.parametrize("best, converged, proposes", [(1.0, False, False), (1.0, True, False),
                                                       (0.5, False, False), (0.5, True, True)])
def test_proposals_count_on_the_later_end_only_once_exploring_paid(best, converged, proposes):
    """Until exploring has paid as relaxations, the old end (0.9 N) is the end a proposal must be
    judged by: 60 steps before it none starts (the margin is 8 K = 80 or 20 K)."""
    ctl = settle(Settings(sa_steps=9000, total_steps=10_000))
    st = ctl.state
    st.phase, st.step, st.anchor_loss, st.settled_loss = ANCHORED, 8939, 1.0, 1.0
    st.best_loss, st.uphill, st.converged = best, [1.0], converged
    assert (ctl.advance().propose > 0) is proposes
