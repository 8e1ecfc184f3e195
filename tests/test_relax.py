"""Azure's quasi-Newton descents (azure_sciml._relax): one evaluation per step, a rise halved,
where Azure uses them (small real models without weight decay), exact resume mid-descent, and a
run that ends on an evaluated point."""

import io

import pytest
import torch
from torch import nn

from azure_sciml import Azure
from azure_sciml._relax import MAX_PARAMS, Relaxation, can_relax
from azure_sciml.problems.energy import lj_energy, random_cluster

CURVATURES = torch.logspace(-2, 0, 20, dtype=torch.float64)


def bowl(x):
    return 0.5 * (CURVATURES * x.square()).sum()


def relax_on(loss_of, x, steps, first=0.1, longest=10.0):
    """Drive a bare Relaxation: evaluate, observe, step. Returns the losses it reported."""
    relax, seen = Relaxation(), []
    for _ in range(steps):
        x.grad = None
        loss = loss_of(x)
        loss.backward()
        with torch.no_grad():
            seen.append(relax.observe([x], float(loss)))
            relax.update([x], first, longest)
    return seen


def test_a_quasi_newton_descent_reaches_the_bottom_of_an_ill_conditioned_bowl():
    """Curvatures 1e-2..1: 80 evaluations, one each step, take the loss from 10 below 1e-12,
    and the losses reported never rise."""
    torch.manual_seed(0)
    x = nn.Parameter(torch.empty(20, dtype=torch.float64).uniform_(-5, 5))
    seen = relax_on(bowl, x, 80)
    assert seen[0] > 1 and seen[-1] < 1e-12
    assert all(b <= a for a, b in zip(seen, seen[1:], strict=False))


def test_a_step_that_raises_the_loss_goes_back_and_is_halved():
    x = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    relax = Relaxation()
    x.grad = torch.tensor([2.0], dtype=torch.float64)  # f = x^2 at x = 1
    with torch.no_grad():
        assert relax.observe([x], 1.0) == 1.0
        relax.update([x], first=3.0, longest=10.0)  # to x = -2: f = 4, a rise
    assert x.item() == pytest.approx(-2.0)
    x.grad = torch.tensor([-4.0], dtype=torch.float64)
    with torch.no_grad():
        assert relax.observe([x], 4.0) == 1.0  # back to the kept point, which is reported
        assert x.item() == 1.0
        relax.update([x], first=3.0, longest=10.0)
    assert x.item() == pytest.approx(-0.5)  # half the step


def test_where_azure_uses_curvature():
    small = [nn.Parameter(torch.zeros(10))]
    assert can_relax(small)
    assert not can_relax([nn.Parameter(torch.zeros(MAX_PARAMS + 1))])
    assert not can_relax([nn.Parameter(torch.zeros(3, dtype=torch.complex64))])
    assert not can_relax([nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3).double())])

@pytest.mark.parametrize("kwargs, expected", [({}, True), ({"descent": "adam"}, False),
                                              ({"weight_decay": 0.01}, False)])
def test_azure_explores_with_curvature_by_default_only(kwargs, expected):
    x = nn.Parameter(torch.tensor([3.0, -2.0], dtype=torch.float64))
    opt = Azure([x], lr=0.05, total_steps=300, sa_patience=10, seed=0, **kwargs)

    def closure():
        opt.zero_grad()
        loss = (x.square() - 10 * torch.cos(2 * torch.pi * x)).sum()
        loss.backward()
        return loss

    for _ in range(300):
        opt.step(closure)
    assert opt._controller.state.n_proposals > 0
    assert opt._controller.state.curvature is expected


def test_bad_descent_value_is_named():
    with pytest.raises(ValueError, match="Invalid descent value: 'lbfgs'"):
        Azure([nn.Parameter(torch.zeros(2))], descent="lbfgs")


def lj_run(steps, total=1500, resume_at=None, seed=0):
    """Azure on LJ13 (float64) for ``steps`` steps; with ``resume_at``, through a state_dict
    saved, loaded with weights_only=True into a fresh optimizer, at that step."""
    torch.manual_seed(seed)
    x = nn.Parameter(random_cluster(13, 1.0, 0.8))
    opt = Azure([x], lr=0.01, total_steps=total, seed=seed)

    def f():
        opt.zero_grad()
        loss = lj_energy(x)
        loss.backward()
        return loss

    for k in range(steps):
        if k == resume_at:
            buffer = io.BytesIO()
            torch.save(opt.state_dict(), buffer)
            buffer.seek(0)
            opt = Azure([x], lr=0.01, total_steps=total, seed=seed + 1)
            opt.load_state_dict(torch.load(buffer, weights_only=True))
        opt.step(f)
    return x.detach().clone(), opt


def test_resume_in_the_middle_of_a_quasi_newton_descent_is_exact():
    _, probe = lj_run(900)
    st = probe._controller.state
    assert st.curvature and st.phase == "descend" and probe._relax.s  # mid-descent, memory kept
    straight, opt = lj_run(1000)
    resumed, _ = lj_run(1000, resume_at=900)
    assert torch.equal(straight, resumed)
    assert opt.stats()["n_proposals"] >= 2


def test_the_run_ends_on_its_last_kept_point():
    """The last step makes no trial step: the parameters are the last point evaluated and kept,
    at or below the best point judged."""
    x, opt = lj_run(1500)
    final = float(lj_energy(x))
    assert final == opt._relax.f
    assert final <= opt._controller.state.best_loss


def test_long_quasi_newton_descents_anneal_until_one_relaxation_before_the_end():
    """LJ13's descents are long and quasi-Newton: the phase that followed the run's length
    (0.9 N) runs to 10 K (100 steps) before the run's end, and ``sa_steps`` says so."""
    _, opt = lj_run(1500)
    assert opt._controller._long() and opt._controller.state.curvature
    assert opt.sa_steps == 1500 - 100 and opt.stats()["n_proposals"] >= 2
