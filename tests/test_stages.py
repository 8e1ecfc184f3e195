"""Staged objectives (Azure.new_stage, Azure.settled): a masked refit, a curriculum, collocation
resampling, and exact resume across a stage change. The runs are small sparse regressions on a
Legendre term library, generated here."""

import copy

import pytest
import torch

from azure_sciml import Azure

N_TERMS = 8
TRUE = torch.zeros(N_TERMS, dtype=torch.float64)
TRUE[[1, 3, 6]] = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)


def legendre(x: torch.Tensor, n: int = N_TERMS) -> torch.Tensor:
    """Legendre polynomials P_0 .. P_{n-1} at ``x`` (Bonnet's recursion), one per column."""
    terms = [torch.ones_like(x), x]
    for k in range(1, n - 1):
        terms.append(((2 * k + 1) * x * terms[k] - k * terms[k - 1]) / (k + 1))
    return torch.stack(terms, -1)


def samples(n: int, noise: float, seed: int, coef: torch.Tensor = TRUE, grid: bool = True):
    g = torch.Generator().manual_seed(seed)
    if grid:
        x = torch.linspace(-1, 1, n, dtype=torch.float64)
    else:
        x = 2 * torch.rand(n, generator=g, dtype=torch.float64) - 1
    features = legendre(x)
    return features, features @ coef + noise * torch.randn(n, generator=g, dtype=torch.float64)


def start(seed: int) -> torch.nn.Parameter:
    torch.manual_seed(seed)
    return torch.nn.Parameter(torch.randn(N_TERMS, dtype=torch.float64))


def mse_closure(opt, coef, features, y):
    """The closure of a least-squares fit of ``coef`` to ``(features, y)``."""

    def closure():
        opt.zero_grad()
        loss = (features @ coef - y).square().mean()
        loss.backward()
        return loss

    return closure


def masked_refit(kind: str, seed: int, budget: int = 2000, lr: float = 0.03, tol: float = 0.03):
    """Sequential thresholding (SINDy, EQL): an L1-penalised fit; at 60% of the budget the terms
    under ``tol`` are masked, and the rest refitted. Returns the kept terms."""
    features, y = samples(200, 0.05, 0)
    coef, mask = start(seed), torch.ones(N_TERMS, dtype=torch.float64)
    first = int(0.6 * budget)
    if kind == "adam":
        opt = torch.optim.Adam([coef], lr=lr)
    elif kind == "protocol":  # the first stage gets its own length
        opt = Azure([coef], lr=lr, total_steps=first, seed=seed)
    else:  # the whole budget, and Adam descents (quasi-Newton ones hide the hazard here)
        opt = Azure([coef], lr=lr, total_steps=budget, seed=seed, descent="adam")

    def closure():
        opt.zero_grad()
        kept = coef * mask
        loss = (features @ kept - y).square().mean() + 1e-3 * kept.abs().sum()
        loss.backward()
        return loss

    for k in range(budget):
        if k == first:
            if kind == "protocol":
                opt.finish()  # the mask is computed from the best point judged
            with torch.no_grad():
                mask = (coef.abs() > tol).double()
                coef.mul_(mask)
            if kind == "protocol":
                opt.new_stage(total_steps=budget - first)
        opt.step(closure)
    return mask.bool()


def test_masked_refit_recovers_the_formula_with_the_protocol_and_not_without():
    truth = TRUE != 0
    recovered = {
        kind: sum(torch.equal(masked_refit(kind, seed), truth) for seed in range(4))
        for kind in ("adam", "protocol", "no_protocol")
    }
    assert recovered["adam"] == recovered["protocol"] == 4, recovered
    # without the protocol the mask is taken from a proposal in flight (measured: 1/4; 1/6 on
    # seeds 0-5). With the default quasi-Newton descents the unprotected run recovers 4/4 here
    # (a descent this late is converged), so the hazard is shown with Adam descents.
    assert recovered["no_protocol"] <= 2, recovered


def curriculum(kind: str, seed: int = 0, steps: int = 1500, lr: float = 0.03):
    """Easy to hard: the first half fits two terms' data, the second the full, noisier data (its
    losses all lie above the first stage's); the reports' step decay (10x at 90% and 95% of the
    run). Returns the final loss on the second stage's data."""
    easy = TRUE.clone()
    easy[[3, 6]] = 0.0
    stages = [samples(200, 0.05, 1, easy), samples(200, 0.3, 2)]
    coef = start(seed)
    if kind == "adam":
        opt = torch.optim.Adam([coef], lr=lr)
    elif kind == "protocol":
        opt = Azure([coef], lr=lr, total_steps=steps, seed=seed)
    else:  # Adam descents: with quasi-Newton ones this run ends equal to Adam's
        opt = Azure([coef], lr=lr, total_steps=2 * steps, seed=seed, descent="adam")
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, [int(1.8 * steps), int(1.9 * steps)], 0.1)
    for stage, (features, y) in enumerate(stages):
        if stage and kind == "protocol":
            opt.new_stage(total_steps=steps)

        closure = mse_closure(opt, coef, features, y)

        for _ in range(steps):
            opt.step(closure)
            decay.step()
    if kind != "adam":
        opt.finish()
    features, y = stages[1]
    return float((features @ coef.detach() - y).square().mean())


def test_curriculum_without_the_protocol_ends_at_the_first_stages_best_point():
    adam, protocol, no_protocol = (curriculum(k) for k in ("adam", "protocol", "no_protocol"))
    assert protocol <= 1.01 * adam
    # without new_stage the first stage's best (a lower loss of another objective) wins
    assert no_protocol > 1.05 * adam, (no_protocol, adam)


def resampled(kind: str, seed: int = 0, stages: int = 4, steps: int = 400, lr: float = 0.03):
    """Collocation resampling: fresh random points every ``steps``; held-out error at the end."""
    coef = start(seed)
    opt = torch.optim.Adam([coef], lr=lr) if kind == "adam" else Azure(
        [coef], lr=lr, total_steps=steps, seed=seed)
    for stage in range(stages):
        features, y = samples(64, 0.1, 10 + stage, grid=False)
        if stage and kind == "protocol":
            opt.new_stage(total_steps=steps)

        closure = mse_closure(opt, coef, features, y)

        for _ in range(steps):
            opt.step(closure)
    if kind != "adam":
        opt.finish()
        assert opt._controller.state.stage == stages - 1
    return float((coef.detach() - TRUE).square().sum())


def test_collocation_resampling_with_the_protocol_ends_no_worse_than_adam():
    adam, protocol = resampled("adam"), resampled("protocol")
    assert protocol <= 1.05 * adam + 1e-4, (protocol, adam)


def _run(opt, coef, closure, steps):
    for _ in range(steps):
        opt.step(closure)


@pytest.mark.parametrize("snapshot_at", [250, 450])  # before and after the stage change
def test_exact_resume_across_a_stage_change(snapshot_at):
    features, y = samples(200, 0.05, 0)

    def make(coef):
        opt = Azure([coef], lr=0.03, total_steps=300, seed=7)

        def closure():
            opt.zero_grad()
            loss = (features @ coef - y).square().mean() + 1e-3 * coef.abs().sum()
            loss.backward()
            return loss

        return opt, closure

    def rest(opt, coef, closure, done):
        for k in range(done, 700):
            if k == 300:
                opt.new_stage(total_steps=400)
            opt.step(closure)
        opt.finish()
        return coef.detach().clone(), opt.stats()

    coef = start(0)
    opt, closure = make(coef)
    saved = None
    for k in range(700):
        if k == snapshot_at:
            saved = (coef.detach().clone(), copy.deepcopy(opt.state_dict()))
        if k == 300:
            opt.new_stage(total_steps=400)
        opt.step(closure)
    opt.finish()
    assert opt.stats()["n_proposals"] > 0 and opt._controller.state.stage == 1
    full = (coef.detach().clone(), opt.stats())

    coef2 = torch.nn.Parameter(saved[0].clone())
    opt2, closure2 = make(coef2)
    opt2.load_state_dict(saved[1])
    assert torch.equal(rest(opt2, coef2, closure2, snapshot_at)[0], full[0])
    assert opt2.stats() == full[1] and opt2.sa_steps == 360 and opt2.total_steps == 400


def _exploring_run():
    features, y = samples(200, 0.05, 0)
    coef = start(3)
    opt = Azure([coef], lr=0.03, total_steps=1000, seed=3)

    def closure():
        opt.zero_grad()
        loss = (features @ coef - y).square().mean() + 1e-3 * coef.abs().sum()
        loss.backward()
        return loss

    return opt, coef, closure


def test_settled_shows_the_best_point_judged_and_gives_the_run_back():
    opt, coef, closure = _exploring_run()
    while opt._controller.state.phase != "descend":
        opt.step(closure)
    in_flight = coef.detach().clone()
    with opt.settled():
        assert not torch.equal(coef.detach(), in_flight)
        assert float(closure().detach()) == opt._controller.state.best_loss
    assert torch.equal(coef.detach(), in_flight)


def test_settled_is_a_no_op_while_adam_waits():
    opt, coef, closure = _exploring_run()
    opt.step(closure)
    before = coef.detach().clone()
    with opt.settled():
        assert torch.equal(coef.detach(), before)


def test_new_stage_ends_the_stage_at_its_best_point_like_finish():
    opt, coef, closure = _exploring_run()
    while opt._controller.state.phase != "descend":
        opt.step(closure)
    twin = copy.deepcopy((opt, coef))
    opt.new_stage(total_steps=100)
    twin[0].finish()
    assert torch.equal(coef.detach(), twin[1].detach())
    assert opt._controller.state.phase == "wait" and opt._controller.state.step == 0
    assert opt._controller.state.n_proposals == twin[0]._controller.state.n_proposals


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give total_steps or sa_steps"),
    ({"total_steps": 10, "sa_steps": 5}, "give total_steps or sa_steps"),
    ({"total_steps": 0}, "total_steps value: 0"),
    ({"sa_steps": -1}, "sa_steps value: -1"),
])
def test_new_stage_bad_arguments_name_the_value(kwargs, message):
    opt = Azure([torch.nn.Parameter(torch.zeros(2))], total_steps=10)
    with pytest.raises(ValueError, match=message):
        opt.new_stage(**kwargs)
