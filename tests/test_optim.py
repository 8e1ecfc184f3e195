"""Azure as a torch.optim drop-in: Adam equivalence, annealing behaviour, state, validation."""

import functools
import io
import math
import statistics
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from azure_sciml import Azure, fit
from azure_sciml.optim import exploration_weight, metropolis_accept, temperature
from azure_sciml.problems.energy import LennardJones


def make_problem(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)
    x, y = torch.randn(64, 3, dtype=dtype), torch.randn(64, 1, dtype=dtype)
    return model, x, y


def train(model, x, y, opt, steps, closure=True):
    losses = []
    for _ in range(steps):

        def loss_fn():
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            return loss

        if closure:
            losses.append(opt.step(loss_fn).item())
        else:
            losses.append(loss_fn().item())
            opt.step()
    return losses


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def run(steps=120, closure=True, seed=0, **kw):
    """Azure on the toy regression; exploring from the first step unless ``sa_patience`` is given
    (the toy loss keeps improving, so the default patience would never start the SA phase)."""
    model, x, y = make_problem()
    kw.setdefault("lr", 1e-2)
    kw.setdefault("sa_patience", 0)
    opt = Azure(model.parameters(), seed=seed, **kw)
    train(model, x, y, opt, steps, closure)
    return flat(model), opt


def run_adam(steps=120, closure=True, **kw):
    model, x, y = make_problem()
    opt = torch.optim.Adam(model.parameters(), **kw)
    train(model, x, y, opt, steps, closure)
    return flat(model)


SA = dict(sa_steps=100, sa_interval=5, sa_patience=0)


# -- Adam equivalence -----------------------------------------------------------------------------


@pytest.mark.parametrize("closure", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sa_steps_zero_is_exactly_adam(closure, weight_decay):
    kw = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=weight_decay)
    azure, _ = run(closure=closure, sa_steps=0, **kw)
    assert torch.equal(azure, run_adam(closure=closure, **kw))


def test_after_sa_phase_update_is_adams():
    """Once the SA phase is over, one step equals Adam's step from the same moments."""
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=10, sa_interval=2, seed=0)
    train(model, x, y, opt, 20)
    twin, _, _ = make_problem()
    twin.load_state_dict(model.state_dict())
    adam = torch.optim.Adam(twin.parameters(), lr=1e-2)
    adam.load_state_dict(_as_adam_state(opt, adam))
    train(model, x, y, opt, 5)
    train(twin, x, y, adam, 5)
    assert torch.equal(flat(model), flat(twin))
    assert all(set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"} for p in model.parameters())


def _as_adam_state(azure, adam):
    sd = adam.state_dict()
    for i, p in enumerate(azure.param_groups[0]["params"]):
        s = azure.state[p]
        sd["state"][i] = dict(
            step=torch.tensor(float(s["step"])), exp_avg=s["exp_avg"].clone(),
            exp_avg_sq=s["exp_avg_sq"].clone(),
        )
    return sd


# -- the annealing -------------------------------------------------------------------------------


def test_schedules():
    assert temperature(0, 2.0, 100) == 2.0
    assert temperature(50, 2.0, 100) == 1.0
    assert temperature(100, 2.0, 100) == 0.0
    assert exploration_weight(0, 100) > 0.99
    assert exploration_weight(50, 100) == pytest.approx(0.5)
    assert exploration_weight(99, 100) < 0.01
    assert exploration_weight(100, 100) == 0.0
    assert temperature(5, 1.0, 0) == exploration_weight(5, 0) == 0.0


def test_metropolis_rule():
    assert metropolis_accept(-1.0, 0.0, 0.99)
    assert metropolis_accept(0.0, 0.0, 0.99)
    assert not metropolis_accept(1e-12, 0.0, 0.0)
    assert metropolis_accept(1.0, 1.0, math.exp(-1.0) - 1e-9)
    assert not metropolis_accept(1.0, 1.0, math.exp(-1.0) + 1e-9)


class RecordingMetropolis:
    """Wraps Azure._metropolis to record (loss, anchor loss, accepted) of every judgement."""

    def __init__(self, opt):
        self.opt, self.calls, self.inner = opt, [], opt._metropolis
        opt._metropolis = self

    def __call__(self, value):
        anchor = self.opt.state["azure"]["anchor_loss"]
        accepted = self.inner(value)
        self.calls.append((value, anchor, accepted))
        return accepted


def judged(steps=400, **kw):
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=steps, sa_interval=1, seed=1,
                sa_patience=0, **kw)
    rec = RecordingMetropolis(opt)
    train(model, x, y, opt, steps)
    return rec.calls, opt


def test_very_high_temperature_accepts_nearly_everything():
    calls, opt = judged(T0=1e9, sigma=20.0, target_accept=None)
    worse = [c for c in calls if c[0] > c[1]]
    assert len(worse) > 20
    assert sum(c[2] for c in calls) / len(calls) > 0.97
    assert opt.stats()["n_accepted"] == sum(c[2] for c in calls)


def test_zero_temperature_accepts_only_non_increasing_losses():
    calls, opt = judged(T0=0.0, sigma=20.0, target_accept=None)
    assert any(not c[2] for c in calls), "large proposals must sometimes be rejected"
    assert all(c[2] == (c[0] <= c[1]) for c in calls)
    assert opt.stats()["n_rejected"] == sum(not c[2] for c in calls)


def test_rejection_restores_parameters_exactly():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=50, sa_interval=3, T0=0.0, sigma=50.0,
                seed=0, sa_patience=0)
    train(model, x, y, opt, 10)
    anchors = [opt.state[p]["anchor"].clone() for p in model.parameters()]
    opt.state["azure"]["pending_since"] = opt.state["azure"]["step"] - 3
    with torch.no_grad():
        opt._metropolis(math.inf)
    assert all(torch.equal(p, a) for p, a in zip(model.parameters(), anchors, strict=True))


def test_intermediate_temperature_accepts_some_uphill_moves():
    calls, _ = judged(T0=0.05, sigma=5.0)
    uphill = [c for c in calls if c[0] > c[1]]
    assert 0 < sum(c[2] for c in uphill) < len(uphill)


@pytest.mark.parametrize(
    "change",
    [dict(T0=5.0), dict(sigma=2.0), dict(sa_steps=60), dict(sa_momentum=0.0),
     dict(sa_interval=3), dict(target_accept=None)],
)
def test_every_sa_hyperparameter_acts_with_closure(change):
    base = dict(T0=0.01, sigma=1.0, sa_steps=100, sa_momentum=0.9, sa_interval=5,
                target_accept=0.5)
    a, _ = run(**base)
    b, _ = run(**{**base, **change})
    assert not torch.equal(a, b)


@pytest.mark.parametrize(
    "change", [dict(sigma=2.0), dict(sa_steps=60), dict(sa_momentum=0.0), dict(sa_interval=3)]
)
def test_every_sa_hyperparameter_acts_without_closure(change):
    base = dict(sigma=1.0, sa_steps=100, sa_momentum=0.9, sa_interval=5)
    a, _ = run(closure=False, **base)
    b, _ = run(closure=False, **{**base, **change})
    assert not torch.equal(a, b)


def test_sa_phase_changes_trajectory_and_then_stops():
    azure, opt = run(sa_steps=100, sa_interval=5, sigma=1.0)
    assert not torch.equal(azure, run_adam(lr=1e-2))
    stats = opt.stats()
    assert stats["n_proposals"] > 5
    assert stats["n_accepted"] + stats["n_rejected"] == stats["n_proposals"]
    assert stats["n_loss_evals"] == 120


def test_no_exploration_while_the_loss_keeps_improving():
    """The default patience: while Adam improves the loss, Azure is Adam, bit for bit."""
    azure, opt = run(steps=60, sa_steps=100, sa_patience=20)
    assert opt.state["azure"]["sa_start"] is None and opt.stats()["n_proposals"] == 0
    assert torch.equal(azure, run_adam(steps=60, lr=1e-2))


def test_exploration_starts_once_the_loss_stalls_for_patience_steps():
    w = nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = Azure([w], lr=1e-2, sa_steps=200, sa_interval=5, sa_patience=30, seed=0)

    def flat_loss():  # a plateau: the loss never improves
        opt.zero_grad()
        loss = (w * 0.0).sum() + 1.0
        loss.backward()
        return loss

    for _ in range(35):
        opt.step(flat_loss)
    assert opt.state["azure"]["sa_start"] == 30
    assert opt.stats()["n_proposals"] == 0  # 5 settling steps, then the first proposal
    opt.step(flat_loss)
    assert opt.stats()["n_proposals"] == 1


def test_trajectory_does_not_depend_on_the_loss_units():
    """Adam (eps=0), the stall test and the Metropolis temperature all read the loss relative to
    its own scale: multiplying the loss by 2**10 (exact in floating point) changes nothing."""
    def go(factor):
        model, x, y = make_problem()
        opt = Azure(model.parameters(), lr=1e-2, eps=0.0, sa_steps=150, sa_interval=3,
                    sa_patience=0, sigma=5.0, T0=1.0, seed=2)

        def loss_fn():
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean() * factor
            loss.backward()
            return loss

        for _ in range(160):
            opt.step(loss_fn)
        return flat(model), opt.stats()

    (a, stats), (b, stats_b) = go(1.0), go(2.0**10)
    assert stats["n_accepted"] > 0 and stats["n_rejected"] > 0
    assert torch.equal(a, b) and stats == stats_b


def test_blend_off_keeps_proposals_full_size():
    assert exploration_weight(99, 100, blend=False) == 1.0
    assert exploration_weight(100, 100, blend=False) == 0.0
    assert exploration_weight(99, 100) < 0.01
    a, _ = run(sa_steps=100, sa_interval=5, sigma=1.0)
    b, _ = run(sa_steps=100, sa_interval=5, sigma=1.0, blend=False)
    assert not torch.equal(a, b)


def test_end_of_phase_restores_the_best_point_with_its_adam_moments():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=60, sa_interval=2, sa_patience=0,
                T0=1e9, sigma=30.0, seed=0)  # accepts everything: the chain ends above its best
    saved = []
    inner = opt._save

    def spy(name, value):
        inner(name, value)
        if name == "best":
            saved.append([(p.detach().clone(), opt.state[p]["exp_avg"].clone(),
                           opt.state[p]["exp_avg_sq"].clone(), opt.state[p]["step"])
                          for p in model.parameters()])

    opt._save = spy
    train(model, x, y, opt, 59)
    g = opt.state["azure"]
    assert g["best_loss"] < g["anchor_loss"]
    train(model, x, y, opt, 1)  # the phase ends after this step's update
    for p, (point, m, v, t) in zip(model.parameters(), saved[-1], strict=True):
        assert torch.equal(p, point) and torch.equal(opt.state[p]["exp_avg"], m)
        assert torch.equal(opt.state[p]["exp_avg_sq"], v) and opt.state[p]["step"] == t
        assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}  # SA buffers freed


def test_noise_buffer_is_reused_during_the_phase_and_freed_after():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=30, sa_interval=2, sigma=1.0, seed=0)
    train(model, x, y, opt, 10, closure=False)
    (buffer,) = opt.__dict__["_noise_buffers"].values()
    pointer = buffer.data_ptr()
    train(model, x, y, opt, 10, closure=False)
    assert next(iter(opt.__dict__["_noise_buffers"].values())).data_ptr() == pointer
    train(model, x, y, opt, 15, closure=False)
    assert "_noise_buffers" not in opt.__dict__


def test_lr_zero_moves_nothing_even_while_annealing():
    model, x, y = make_problem()
    before = flat(model)
    opt = Azure(model.parameters(), lr=0.0, sa_steps=50, sa_interval=1, sigma=10.0)
    train(model, x, y, opt, 20, closure=False)
    assert torch.equal(flat(model), before)


# -- parameters, groups, closures -----------------------------------------------------------------


def test_accepts_parameter_lists_and_named_parameters():
    w = nn.Parameter(torch.randn(2, 2))
    Azure([w]).step()  # no grad: nothing happens, no error
    model, _, _ = make_problem()
    opt = Azure(model.named_parameters())
    assert opt.param_groups[0]["param_names"][0] == "0.weight"


def test_group_settings_act_per_group():
    """Group 0 frozen by lr=0; group 1 has sigma=0 so it follows Adam exactly (no closure)."""
    model, x, y = make_problem()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    before = [p.detach().clone() for p in first]
    opt = Azure(
        [{"params": first, "lr": 0.0}, {"params": second, "sigma": 0.0}],
        lr=1e-2, sa_steps=100, sa_interval=1, sigma=5.0,
    )
    train(model, x, y, opt, 30, closure=False)
    assert all(torch.equal(p, b) for p, b in zip(first, before, strict=True))
    twin, _, _ = make_problem()
    adam = torch.optim.Adam([{"params": twin[0].parameters(), "lr": 0.0},
                             {"params": twin[2].parameters()}], lr=1e-2)
    train(twin, x, y, adam, 30, closure=False)
    assert all(torch.equal(p, q) for p, q in zip(second, twin[2].parameters(), strict=True))


def test_sa_steps_per_group():
    """On a separable loss, the group with sa_steps=0 follows Adam exactly; the other does not."""
    target = torch.linspace(-1, 1, 6, dtype=torch.float64)

    def go(opt_factory):
        ws = [nn.Parameter(torch.zeros(6, dtype=torch.float64)) for _ in range(2)]
        opt = opt_factory(ws)
        for _ in range(30):
            opt.zero_grad()
            sum(((w - target) ** 2).sum() for w in ws).backward()
            opt.step()
        return ws

    azure = go(lambda ws: Azure([{"params": [ws[0]], "sa_steps": 0}, {"params": [ws[1]]}],
                                lr=1e-2, sa_steps=100, sa_interval=1))
    adam = go(lambda ws: torch.optim.Adam(ws, lr=1e-2))
    assert torch.equal(azure[0], adam[0])
    assert not torch.equal(azure[1], adam[1])


def test_grad_none_parameters_untouched():
    model, x, y = make_problem()
    unused = nn.Parameter(torch.randn(4))
    before = unused.detach().clone()
    opt = Azure([*model.parameters(), unused], lr=1e-2, sa_steps=50, sa_interval=1, sigma=5.0)
    train(model, x, y, opt, 20, closure=False)
    train(model, x, y, opt, 20, closure=True)
    assert torch.equal(unused, before)


def test_closure_loss_is_returned():
    model, x, y = make_problem()
    opt = Azure(model.parameters())
    expected = ((model(x) - y) ** 2).mean().item()
    loss = opt.step(lambda: ((model(x) - y) ** 2).mean().requires_grad_())
    assert loss.item() == expected
    assert opt.step() is None


def test_lr_scheduler_drives_lr():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.0)
    train(model, x, y, opt, 1)
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.0
    before = flat(model)
    train(model, x, y, opt, 5)
    assert torch.equal(flat(model), before)


def test_max_grad_norm_clips_update_but_not_grad():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1.0, sa_steps=0, max_grad_norm=1e-9, betas=(0.0, 0.0),
                eps=1.0)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    before = flat(model)
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert (flat(model) - before).abs().max() < 1e-8


# -- stability ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("sa_steps", [0, 100])
def test_nonfinite_loss_leaves_parameters_unchanged(bad, sa_steps):
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=sa_steps, sa_interval=3)
    train(model, x, y, opt, 4)
    before = flat(model)

    def poisoned():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean() * bad
        loss.backward()
        return loss

    with pytest.warns(RuntimeWarning, match="rejected"):
        opt.step(poisoned)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(poisoned)  # warned once only
    after = flat(model)
    assert torch.isfinite(after).all()
    if sa_steps == 0:
        assert torch.equal(after, before)
    assert opt.stats()["n_nonfinite"] == 2


def test_a_closure_that_raises_on_a_proposal_is_rejected_not_fatal():
    """fit()'s closure raises FloatingPointError on a NaN/Inf loss or gradient. While exploring,
    Azure rejects the proposal behind it and restores the anchor; before exploring it propagates."""
    p = nn.Parameter(torch.zeros(4))
    opt = Azure([p], lr=0.01, sa_steps=300, sa_patience=0, sa_interval=5, sigma=50.0, seed=0)

    def closure():
        opt.zero_grad()
        if p.abs().max() > 0.5:  # a proposal went too far: "atoms overlap"
            raise FloatingPointError("non-finite gradient")
        loss = ((p - 0.1) ** 2).sum()
        loss.backward()
        return loss

    still = 0  # proposals that left the parameters at their anchor
    with pytest.warns(RuntimeWarning, match="rejected"):
        for _ in range(200):
            opt.step(closure)
            g = opt.state["azure"]
            if g["pending_since"] == g["step"]:  # a proposal was made at the end of this step
                still += torch.equal(p.detach(), opt.state[p]["anchor"])
    stats = opt.stats()
    assert stats["n_nonfinite"] > 0 and stats["n_loss_evals"] == 200
    assert stats["n_proposals"] > 10 and still == 0  # every proposal moved the parameters
    assert p.abs().max() <= 0.5  # back at an anchor whenever a proposal broke the closure

    def broken():
        raise FloatingPointError("loss is nan")

    fresh = Azure([nn.Parameter(torch.ones(4))], lr=0.01, sa_patience=0, seed=0)
    with pytest.raises(FloatingPointError):  # no anchor yet: nothing to go back to
        fresh.step(broken)


def test_descent_restarts_leave_groups_that_do_not_explore_alone():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3))
    opt = Azure([{"params": [a]}, {"params": [b], "sigma": 0.0}], lr=0.01, sa_steps=600,
                sa_patience=20, sa_relax=0.3, sa_converge=None, T0=1e12, seed=0)  # all accepted
    steps_a, steps_b = [], []
    for _ in range(600):
        def closure():
            opt.zero_grad()
            loss = ((a - 1) ** 2).sum() + ((b - 1) ** 2).sum() + 1.0
            loss.backward()
            return loss

        opt.step(closure)
        if opt.state["azure"]["pending_since"] is not None:  # within a proposal's descent
            steps_a.append(opt.state[a]["step"])
            steps_b.append(opt.state[b]["step"])
    assert opt.stats()["n_rejected"] == 0 and opt.state["azure"]["descent"] > 10
    assert max(steps_a) == 10  # the exploring group restarts every sa_interval steps
    assert steps_b == sorted(steps_b) and steps_b[-1] > 300  # the other one never does


def test_a_noise_kernel_that_cannot_run_falls_back_to_the_buffer(monkeypatch):
    """Triton present but unable to build or launch: warned once, then the noise buffer."""
    import azure_sciml.optim as optim

    class Broken:
        calls = 0

        @staticmethod
        def add_normal_(*args):
            Broken.calls += 1
            raise RuntimeError("ptxas not found")

    monkeypatch.setattr(optim, "_noise_kernel_for", lambda params: Broken)
    p = nn.Parameter(torch.zeros(5))
    p.grad = torch.zeros(5)
    opt = Azure([p], lr=0.1, sa_interval=1, seed=0)
    with pytest.warns(RuntimeWarning, match="kernel unavailable.*ptxas"):
        opt.step()
    before = p.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()  # no second attempt, no second warning
    assert Broken.calls == 1
    assert not torch.equal(p.detach(), before)  # the buffer path made the proposal
    assert "kernel_draws" not in opt.state["azure"]


def test_spike_is_rejected_and_restores_anchor():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), lr=1e-2, sa_steps=100, sa_interval=3, spike_factor=10.0,
                sigma=0.0, sa_patience=0)
    train(model, x, y, opt, 4)
    anchors = [opt.state[p]["anchor"].clone() for p in model.parameters()]
    with pytest.warns(RuntimeWarning):
        opt.step(lambda: ((model(x) - y) ** 2).mean().detach() * 1e6)
    assert opt.stats()["n_spikes"] == 1
    assert all(torch.equal(p, a) for p, a in zip(model.parameters(), anchors, strict=True))


# -- state -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("closure", [True, False])
def test_state_dict_resume_mid_sa_is_exact(closure):
    kw = dict(lr=1e-2, sa_steps=100, sa_interval=4, sigma=1.0, seed=3)
    model, x, y = make_problem()
    opt = Azure(model.parameters(), **kw)
    train(model, x, y, opt, 30, closure)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    train(model, x, y, opt, 90, closure)
    reference = flat(model)

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=False)
    model2, _, _ = make_problem(seed=99)
    model2.load_state_dict(ckpt["model"])
    opt2 = Azure(model2.parameters(), **{**kw, "seed": 12345})
    opt2.load_state_dict(ckpt["opt"])
    train(model2, x, y, opt2, 90, closure)
    assert torch.equal(flat(model2), reference)
    assert opt2.stats() == opt.stats()


def test_state_dict_is_a_snapshot_of_the_generator():
    model, x, y = make_problem()
    opt = Azure(model.parameters(), sa_steps=100, sa_interval=1, seed=0)
    train(model, x, y, opt, 3, closure=False)
    sd = opt.state_dict()
    state = sd["state"]["azure"]["generators"]["cpu"].clone()
    train(model, x, y, opt, 3, closure=False)
    assert torch.equal(sd["state"]["azure"]["generators"]["cpu"], state)


def test_load_rejects_foreign_state_dict():
    model, _, _ = make_problem()
    adam = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="not an Azure state_dict"):
        Azure(model.parameters()).load_state_dict(adam.state_dict())


def test_deterministic_under_seed():
    a, _ = run(seed=5, **SA)
    b, _ = run(seed=5, **SA)
    c, _ = run(seed=6, **SA)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_seed_none_follows_torch_manual_seed():
    def go():
        torch.manual_seed(11)
        model, x, y = make_problem()
        torch.manual_seed(11)
        opt = Azure(model.parameters(), lr=1e-2, **SA)
        train(model, x, y, opt, 30)
        return flat(model)

    assert torch.equal(go(), go())


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=-1e-3), "lr"),
        (dict(T0=-1.0), "T0"),
        (dict(sigma=-0.1), "sigma"),
        (dict(eps=-1.0), "eps"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(betas=(1.0, 0.999)), "beta"),
        (dict(betas=(0.9, -0.1)), "beta"),
        (dict(sa_steps=-1), "sa_steps"),
        (dict(sa_steps=2.5), "sa_steps"),
        (dict(sa_momentum=1.0), "sa_momentum"),
        (dict(sa_momentum=-0.1), "sa_momentum"),
        (dict(sa_interval=0), "sa_interval"),
        (dict(sa_patience=-1), "sa_patience"),
        (dict(blend="yes"), "blend"),
        (dict(target_accept=1.5), "target_accept"),
        (dict(spike_factor=0.5), "spike_factor"),
        (dict(max_grad_norm=0.0), "max_grad_norm"),
    ],
)
def test_invalid_hyperparameters_name_key_and_value(kwargs, name):
    value = next(iter(kwargs.values()))
    shown = value[0] if name == "beta" and value[0] >= 1 else value
    shown = value[1] if name == "beta" and value[0] < 1 else shown
    with pytest.raises(ValueError, match=rf"{name}.*{shown}"):
        Azure([nn.Parameter(torch.zeros(1))], **kwargs)


def test_invalid_group_hyperparameter_is_rejected():
    with pytest.raises(ValueError, match="sigma.*-1"):
        Azure([{"params": [nn.Parameter(torch.zeros(1))], "sigma": -1.0}])


# -- convergence -----------------------------------------------------------------------------------


@pytest.mark.parametrize("closure", [True, False])
def test_converges_on_quadratic(closure):
    target = torch.linspace(-2, 2, 10, dtype=torch.float64)
    w = nn.Parameter(torch.zeros(10, dtype=torch.float64))
    opt = Azure([w], lr=0.02, sa_steps=200, sa_interval=10, seed=0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2500)
    for _ in range(2500):

        def loss_fn():
            opt.zero_grad()
            loss = ((w - target) ** 2).sum()
            loss.backward()
            return loss

        opt.step(loss_fn) if closure else (loss_fn(), opt.step())
        schedule.step()
    assert torch.allclose(w, target, atol=1e-4)


@pytest.mark.parametrize("closure", [True, False])
def test_converges_on_rosenbrock(closure):
    xy = nn.Parameter(torch.tensor([-1.5, 2.0], dtype=torch.float64))
    opt = Azure([xy], lr=0.02, sa_steps=500, sa_interval=20, seed=0)
    for _ in range(10000):

        def loss_fn():
            opt.zero_grad()
            loss = (1 - xy[0]) ** 2 + 100 * (xy[1] - xy[0] ** 2) ** 2
            loss.backward()
            return loss

        opt.step(loss_fn) if closure else (loss_fn(), opt.step())
    assert loss_fn().item() < 1e-5  # the minimum's value is 0
    assert torch.allclose(xy, torch.ones(2, dtype=torch.float64), atol=3e-3)


def test_import_and_annealing_need_only_torch():
    """``import azure_sciml`` and an annealing run on CPU load none of the app's or the GPU
    kernel's dependencies (hydra, matplotlib, torchdiffeq, triton) beyond what torch.optim.Adam's
    own machinery loads (``zero_grad`` imports torch._dynamo, which loads triton if present)."""
    code = (
        "import sys, torch\n"
        "def run(opt, p):\n"
        "    for _ in range(6):\n"
        "        opt.zero_grad(); loss = (p ** 2).sum(); loss.backward(); opt.step(lambda: loss)\n"
        "q = torch.nn.Parameter(torch.ones(10))\n"
        "run(torch.optim.Adam([q]), q)\n"
        "before = set(sys.modules)\n"
        "import azure_sciml\n"
        "p = torch.nn.Parameter(torch.ones(10))\n"
        "opt = azure_sciml.Azure([p], sa_patience=0, sa_interval=2, seed=0)\n"
        "run(opt, p)\n"
        "assert opt.stats()['n_proposals'] > 0\n"
        "heavy = ('hydra', 'omegaconf', 'matplotlib', 'torchdiffeq', 'triton')\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sa_relax_sets_the_descent_from_adams_relaxation_time():
    for bad in (0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="sa_relax"):
            Azure([nn.Parameter(torch.zeros(1))], sa_relax=bad)
    prob = LennardJones(n_atoms=13, steps=1500)
    runs = {}
    for relax in (None, 1 / 6, 1 / 100):
        make = functools.partial(Azure, lr=prob.lr, sa_steps=1350, sa_patience=50, sa_relax=relax)
        runs[relax] = fit(prob, make, seed=0)
    g = {k: r.optimizer.state["azure"] for k, r in runs.items()}
    assert g[None]["descent"] is None
    k0 = g[1 / 6]["sa_start"]
    assert k0 == g[None]["sa_start"]  # same Adam trajectory up to the stall
    assert g[1 / 6]["descent"] == min(max(round((k0 - 50) / 6), 10), 100) > 10
    assert g[1 / 100]["descent"] == 10  # clamped to sa_interval: judged as without sa_relax
    assert runs[1 / 100].final_loss == runs[None].final_loss
    n_proposals = {k: r.optimizer.stats()["n_proposals"] for k, r in runs.items()}
    assert n_proposals[1 / 6] < n_proposals[None]


def test_long_descents_restart_adam_every_sa_interval_steps():
    p = nn.Parameter(torch.zeros(3))
    opt = Azure([p], lr=0.01, sa_steps=600, sa_patience=20, sa_relax=0.3, sa_converge=None, seed=0)
    adam_steps, judged = [], []
    for _ in range(600):
        def closure():
            opt.zero_grad()
            loss = ((p - 1) ** 2).sum() + 1.0  # settles after ~100 steps
            loss.backward()
            return loss

        before = opt.stats()["n_accepted"] + opt.stats()["n_rejected"]
        opt.step(closure)
        g = opt.state["azure"]
        if g["pending_since"] is not None:
            adam_steps.append(opt.state[p]["step"])
        judged.append(opt.stats()["n_accepted"] + opt.stats()["n_rejected"] - before)
    descent = opt.state["azure"]["descent"]
    assert descent >= 25  # 0.3 of the ~100 steps Adam took to settle
    assert max(adam_steps) == 10  # restarted every sa_interval steps of the descent
    at = [i for i, j in enumerate(judged) if j]
    assert len(at) >= 5
    # a judgement every descent + 1 steps: R Adam steps after the proposal, then the judged step
    assert {b - a for a, b in zip(at, at[1:], strict=False)} == {descent + 1}


def judged_descents(steps=600, factor=1.0, falling=False, **kw):
    """(steps into its descent at which each proposal was judged, the descent R, the optimizer)
    for Azure on a quadratic that Adam takes ~100 steps to settle on (R = 0.3 of that), the loss
    times ``factor``; ``falling``: plus a term that keeps falling through every descent."""
    p = nn.Parameter(torch.zeros(3))
    opt = Azure([p], lr=0.01, sa_steps=steps, sa_patience=20, seed=0, **kw)
    g, finish, opt.pending_at_end = opt.state["azure"], opt._finish_annealing, []

    def finish_and_record():  # is a proposal still pending when the SA phase ends?
        opt.pending_at_end.append(g["pending_since"])
        finish()

    opt._finish_annealing = finish_and_record

    def closure():
        opt.zero_grad()
        loss = ((p - 1) ** 2).sum() + 1.0
        if falling and g["pending_since"] is not None:  # 0.01 lower every step of a descent
            loss = loss + 0.01 * max(0, 400 - (g["step"] - g["pending_since"]))
        loss = loss * factor
        loss.backward()
        return loss

    into = []
    for _ in range(steps):
        g = opt.state["azure"]
        since, before = g["pending_since"], opt.stats()["n_accepted"] + opt.stats()["n_rejected"]
        opt.step(closure)
        if opt.stats()["n_accepted"] + opt.stats()["n_rejected"] > before:
            into.append(g["step"] - 1 - since)
    return into, opt.state["azure"]["descent"], opt


def test_sa_converge_judges_long_descents_once_they_stop_falling():
    for bad in (-0.1, True, "0.1", math.inf, math.nan):
        with pytest.raises(ValueError, match="sa_converge"):
            Azure([nn.Parameter(torch.zeros(1))], sa_converge=bad)
    fixed, descent, _ = judged_descents(sa_relax=0.3, sa_converge=None)
    assert descent >= 20 and set(fixed) == {descent}
    # 0: judged once a block did not lower the loss at all, at the latest after 20 K steps
    never, _, _ = judged_descents(steps=1500, sa_relax=0.3, sa_converge=0.0)
    at_once, _, _ = judged_descents(steps=1500, sa_relax=0.3, sa_converge=1e9)
    assert at_once[1:] == [descent] * (len(at_once) - 1)  # the first: D unknown, judged at R
    assert all(d >= descent and (d - descent) % 10 == 0 and d <= 200 for d in never)
    assert max(never) > descent  # some descents were still falling at R: they went on
    # default 0.01: judged between R and 20 K steps, at a block boundary after R
    default, _, opt = judged_descents(steps=1500, sa_relax=0.3)
    assert opt.state["azure"]["sa_converge"] == 0.01
    assert all(d >= descent and (d - descent) % 10 == 0 and d <= 200 for d in default)


def test_sa_converge_leaves_short_descents_alone():
    runs = {}
    for converge in (None, 0.01):  # R = sa_interval (< 2 K): judged after R steps either way
        into, descent, opt = judged_descents(sa_relax=None, sa_converge=converge)
        runs[converge] = (into, descent, [t.clone() for t in opt.param_groups[0]["params"]])
    assert runs[None][0] == runs[0.01][0] and set(runs[None][0]) == {10}
    assert torch.equal(runs[None][2][0], runs[0.01][2][0])


def test_state_dict_resume_inside_a_converging_descent_is_exact():
    def run(opt, p, steps):
        for _ in range(steps):
            def closure():
                opt.zero_grad()
                loss = ((p - 1) ** 2).sum() + 1.0
                loss.backward()
                return loss

            opt.step(closure)

    p = nn.Parameter(torch.zeros(3))
    opt = Azure([p], lr=0.01, sa_steps=1500, sa_patience=20, sa_relax=0.3, sa_converge=0.0, seed=0)
    g = opt.state["azure"]
    while not (g["pending_since"] is not None and g["uphill"] is not None
               and g["step"] - g["pending_since"] > g["descent"]):  # past R, not yet judged
        run(opt, p, 1)
    buf, p_saved = io.BytesIO(), p.detach().clone()
    torch.save(opt.state_dict(), buf)
    run(opt, p, 400)
    q = nn.Parameter(p_saved)
    resumed = Azure([q], lr=0.01, sa_steps=1500, sa_patience=20, sa_relax=0.3, sa_converge=0.0,
                    seed=99)
    buf.seek(0)
    resumed.load_state_dict(torch.load(buf, weights_only=False))
    run(resumed, q, 400)
    assert torch.equal(q, p) and resumed.stats() == opt.stats()


def proposal_sizes(**kw):
    """Norm of each proposal's jump (steps exploring, jump) on the slow-settling quadratic."""
    p = nn.Parameter(torch.zeros(3))
    opt = Azure([p], lr=0.01, sa_steps=3000, sa_patience=20, sa_relax=0.3, seed=0, **kw)
    sizes = []
    for _ in range(3000):
        def closure():
            opt.zero_grad()
            loss = ((p - 1) ** 2).sum() + 1.0
            loss.backward()
            return loss

        before, made = p.detach().clone(), opt.stats()["n_proposals"]
        opt.step(closure)
        if opt.stats()["n_proposals"] > made:
            sizes.append((opt.state["azure"]["step"], (p - before).norm().item()))
    return sizes


def test_converging_descents_keep_full_size_proposals():
    late = {}
    for converge in (None, 0.01):
        sizes = proposal_sizes(sa_converge=converge)
        late[converge] = [s for step, s in sizes if step > 2400]  # the blend's tail (< 1%)
        early = [s for step, s in sizes if step < 600]
        assert len(late[converge]) >= 5 and statistics.median(early) > 0.1  # 0.24·|ξ|, ξ in 3-D
    assert max(late[None]) < 0.05  # short judgement: the sigmoid hand-over shrank them
    assert statistics.median(late[0.01]) > 0.1  # converged judgement: full size to the end


def test_converging_descents_end_at_the_longest_and_within_the_phase():
    for steps in range(1140, 1340, 3):  # proposals made near the end must be judged before it
        into, descent, opt = judged_descents(steps=steps, falling=True, sa_relax=0.3,
                                             sa_converge=0.0)
        assert descent % 10 and max(into) == 200  # R not a multiple of K; capped at 20 K
        assert all(d == 200 or (d - descent) % 10 == 0 for d in into)
        assert opt.pending_at_end == [None], steps  # nothing left half-descended, unjudged


def test_the_convergence_threshold_is_in_the_losss_own_units():
    runs = [judged_descents(steps=1500, factor=f, sa_relax=0.3, eps=0.0) for f in (1.0, 2.0**10)]
    (a, descent, opt_a), (b, _, opt_b) = runs
    assert a == b and max(a) > descent  # same judgement steps; some went on past R
    assert torch.equal(opt_a.param_groups[0]["params"][0], opt_b.param_groups[0]["params"][0])


def steps_while_descending(lr_factor, sigmas=(2.4,), n_steps=3):
    """Per group, the largest coordinate move of the first ``n_steps`` Adam updates after the
    first proposal of a converging descent (R >= 2 K) on a quadratic; and the proposal's jump."""
    params = [nn.Parameter(torch.zeros(3)) for _ in sigmas]
    groups = [{"params": [p], "sigma": s} for p, s in zip(params, sigmas, strict=True)]
    opt = Azure(groups, lr=0.01, sa_steps=1500, sa_patience=20, sa_relax=0.3, seed=0,
                sa_descent_lr=lr_factor)  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = sum(((p - 1) ** 2).sum() for p in params) + 1.0
        loss.backward()
        return loss

    g = opt.state["azure"]
    while g["pending_since"] is None:
        before = [p.detach().clone() for p in params]
        opt.step(closure)
    jump = (params[0] - before[0]).norm().item()
    moves = [0.0] * len(params)
    for _ in range(n_steps):
        before = [p.detach().clone() for p in params]
        opt.step(closure)
        for i, (p, b) in enumerate(zip(params, before, strict=True)):
            moves[i] = max(moves[i], (p - b).abs().max().item())
    return moves, jump, opt


def test_sa_descent_lr_scales_the_steps_of_a_converging_descent_only():
    for bad in (0, -1.0, True, "2", math.inf, math.nan, None):
        with pytest.raises(ValueError, match="sa_descent_lr"):
            Azure([nn.Parameter(torch.zeros(1))], sa_descent_lr=bad)
    (plain,), jump_1, opt = steps_while_descending(1.0)
    (double,), jump_2, _ = steps_while_descending(2.0)
    assert opt._converging() and opt.state["azure"]["sa_descent_lr"] == 1.0
    assert 0.009 < plain <= 0.0101  # a fresh Adam moves each coordinate by ~lr
    assert double == pytest.approx(2 * plain, rel=1e-4)
    assert jump_2 == jump_1 > 0.1  # the proposal itself keeps the lr's size
    # a group that does not explore (sigma 0) steps at its own lr meanwhile: as with factor 1
    (exploring, still), _, _ = steps_while_descending(2.0, sigmas=(2.4, 0.0))
    (_, still_1), _, _ = steps_while_descending(1.0, sigmas=(2.4, 0.0))
    assert exploring > 0.018 and still == still_1 > 0


def test_sa_descent_lr_acts_on_every_descent_step_and_no_other():
    """Over a whole phase: the factor on the steps after each proposal up to its judgement,
    the group's lr on the proposal's own step, on the judged step and everywhere else."""
    p = nn.Parameter(torch.zeros(3))
    opt = Azure([p], lr=0.01, sa_steps=1500, sa_patience=20, sa_relax=0.3, T0=1e12, seed=0)
    factors, adam_group = {}, opt._adam_group  # T0 1e12: every proposal accepted

    def recording(group, lr_factor=1.0):
        factors[opt.state["azure"]["step"]] = lr_factor
        adam_group(group, lr_factor)

    opt._adam_group = recording
    proposed, judged = [], []
    for step in range(1500):
        def closure():
            opt.zero_grad()
            loss = ((p - 1) ** 2).sum() + 1.0
            loss.backward()
            return loss

        before = dict(opt.stats())
        opt.step(closure)
        if opt.stats()["n_proposals"] > before["n_proposals"]:
            proposed.append(step)
        if opt.stats()["n_accepted"] > before["n_accepted"]:
            judged.append(step)  # accepted: the judged step makes an Adam update
        elif opt.stats()["n_rejected"] > before["n_rejected"]:
            judged.append(step)
    assert len(proposed) >= 5 and opt.stats()["n_accepted"] == len(judged) >= 5
    descending = {k for a, b in zip(proposed, judged, strict=False) for k in range(a + 1, b)}
    assert {k for k, f in factors.items() if f == 2.0} == descending
    assert {f for k, f in factors.items() if k not in descending} == {1.0}


def test_sa_descent_lr_leaves_short_descents_alone():
    runs = {}
    for factor in (1.0, 2.0):  # R = sa_interval (< 2 K): the lr is the group's throughout
        into, _, opt = judged_descents(sa_relax=None, sa_descent_lr=factor)
        runs[factor] = (into, opt.param_groups[0]["params"][0].detach().clone())
    assert runs[1.0][0] == runs[2.0][0] and len(runs[1.0][0]) > 5
    assert torch.equal(runs[1.0][1], runs[2.0][1])
