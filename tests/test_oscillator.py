"""The damped-oscillator fit (problems/oscillator.py) and fit()'s ``problem.param_groups`` hook."""

import functools
import math

import pytest
import torch

from azure_sciml import Azure, fit
from azure_sciml.problems.oscillator import PARAMETERS, DampedOscillator, Oscillator

CPU = torch.device("cpu")


def built(problem, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return problem.build(CPU, dtype)


def set_params(model, **values):
    with torch.no_grad():
        for name, value in values.items():
            getattr(model, name).fill_(value)


def loss_at_truth(problem, model):
    set_params(model, **problem.truth)
    return float(problem.loss(model).detach())


def test_the_truth_is_the_minimum_up_to_the_noise():
    problem = Oscillator(noise=0.05)
    model = built(problem)
    # at the truth the loss is the noise's variance; a least-squares fit lowers it only a little
    assert loss_at_truth(problem, model) == pytest.approx(0.05**2, rel=0.25)
    noiseless = Oscillator(noise=1e-9)
    model = built(noiseless)
    assert loss_at_truth(noiseless, model) < 1e-15
    for name, step in (("omega", 0.01), ("amplitude", 0.01), ("phase", 0.01)):
        for sign in (-1, 1):
            set_params(model, **noiseless.truth)
            set_params(model, **{name: noiseless.truth[name] + sign * step})
            assert float(noiseless.loss(model).detach()) > 1e-7
    metrics = noiseless.evaluate(model_at_truth(noiseless))
    assert metrics["freq_rel_err"] == 0 and metrics["success"] == 1.0
    assert metrics["test_rmse"] < 1e-12


def model_at_truth(problem):
    return DampedOscillator(*(problem.truth[n] for n in PARAMETERS), dtype=torch.float64)


def test_the_loss_is_multimodal_in_omega():
    """At the true decay, amplitude and phase, the loss over omega has a local minimum every
    ~2 pi / t_train: many strict local minima in [1, 20], the global one at omega*."""
    problem = Oscillator(noise=1e-9)
    model = built(problem)
    omegas = torch.linspace(1.0, 20.0, 4001, dtype=torch.float64)
    t, y = problem.t, problem.y
    p = problem.truth
    decay = p["amplitude"] * torch.exp(-p["gamma"] * t)
    curves = decay * torch.sin(omegas[:, None] * t + p["phase"])
    losses = (curves - y).square().mean(-1)
    inner = (losses[1:-1] < losses[:-2]) & (losses[1:-1] < losses[2:])
    minima = omegas[1:-1][inner]
    assert len(minima) >= 15
    assert float(omegas[losses.argmin()]) == pytest.approx(5.0, abs=0.01)
    gaps = minima.diff()
    assert float(gaps.median()) == pytest.approx(2 * math.pi / problem.t_train, rel=0.25)
    set_params(model, **p)
    assert float(problem.loss(model).detach()) <= float(losses.min())  # 5.0 is off the grid


def test_the_sign_of_omega_is_a_symmetry_of_the_model_and_the_metric():
    problem = Oscillator()
    built(problem)
    model = model_at_truth(problem)
    mirror = model_at_truth(problem)
    set_params(mirror, omega=-problem.truth["omega"], amplitude=-problem.truth["amplitude"],
               phase=-problem.truth["phase"])
    t = torch.linspace(0, 15, 50, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(t), mirror(t))
    assert problem.evaluate(mirror)["freq_rel_err"] < 1e-12


def test_a_seed_fixes_data_and_initial_guess_and_fixed_parameters_stay_at_the_truth():
    problem = Oscillator()
    model = built(problem, seed=3)
    lo, hi = problem.omega_range
    assert lo <= float(model.omega.detach()) <= hi
    assert not model.gamma.requires_grad and float(model.gamma) == problem.truth["gamma"]
    y = problem.y.clone()
    built(problem, seed=3)
    assert torch.equal(problem.y, y)
    free = Oscillator(fixed=[])
    model = built(free, seed=3)
    assert model.gamma.requires_grad and float(model.gamma.detach()) == 0.0


def test_param_groups_put_the_explored_parameters_apart_with_sigma_0_for_the_rest():
    problem = Oscillator(explore=["omega"])
    model = built(problem)
    groups = problem.param_groups(model)
    assert [g["params"] for g in groups] == [[model.omega], [model.amplitude, model.phase]]
    assert "sigma" not in groups[0] and groups[1]["sigma"] == 0.0
    assert Oscillator().param_groups(model) is None  # explore null: every parameter, one group


@pytest.mark.parametrize("bad", [dict(explore=["gamma"]), dict(explore=["mass"]),
                                 dict(explore=[]), dict(fixed=list(PARAMETERS)),
                                 dict(omega_range=[5.0, 1.0]), dict(t_end=5.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Oscillator(**bad)


class Recording(torch.optim.Adam):
    """Adam that remembers the groups it was built with."""

    built_with: list = []

    def __init__(self, params, **kwargs):
        params = list(params)
        Recording.built_with = params
        super().__init__(params, **kwargs)


def test_fit_builds_the_optimizer_on_the_problems_param_groups():
    problem = Oscillator(explore=["omega"], steps=5)
    result = fit(problem, functools.partial(Recording, lr=0.01), seed=0)
    groups = Recording.built_with
    assert isinstance(groups[0], dict) and len(result.optimizer.param_groups) == 2
    assert result.optimizer.param_groups[0]["params"] == [result.model.omega]
    assert result.optimizer.param_groups[1]["sigma"] == 0.0
    fit(Oscillator(steps=5), functools.partial(Recording, lr=0.01), seed=0)
    assert all(isinstance(p, torch.Tensor) for p in Recording.built_with)  # no hook: the tensors


def test_fit_refuses_groups_that_miss_a_parameter():
    class Missing(Oscillator):
        def param_groups(self, model):
            return [{"params": [model.omega]}]

    with pytest.raises(ValueError, match="exactly once"):
        fit(Missing(steps=3), functools.partial(torch.optim.Adam, lr=0.01), seed=0)


def test_azure_proposals_move_only_the_explored_group():
    moved = []

    def make(params):
        opt = Azure(params, lr=0.1, sa_patience=0, seed=1)
        add = opt._noise.add

        def recording_add(tensors, *args, **kwargs):
            moved.append([t.data_ptr() for t in tensors])
            return add(tensors, *args, **kwargs)

        opt._noise.add = recording_add
        return opt

    result = fit(Oscillator(explore=["omega"], steps=200), make, seed=2)
    assert result.optimizer.stats()["n_proposals"] > 0 and moved
    assert all(ptrs == [result.model.omega.data_ptr()] for ptrs in moved)
    moved.clear()
    result = fit(Oscillator(steps=200), make, seed=2)  # explore null: all three fitted ones
    assert moved and all(len(ptrs) == 3 for ptrs in moved)


def test_a_short_fit_recovers_omega_from_a_nearby_start():
    problem = Oscillator(omega_range=(4.9, 5.1), steps=300)
    for make in (functools.partial(torch.optim.Adam, lr=0.1), functools.partial(Azure, lr=0.1)):
        result = fit(problem, make, seed=0)
        assert result.metrics["success"] == 1.0, result.metrics
        assert result.metrics["test_rmse"] < 0.02


def test_adam_from_a_far_start_stays_in_a_ripple():
    """What makes the problem hard: from omega0 ~ 12, Adam settles in a local minimum."""
    problem = Oscillator(omega_range=(11.9, 12.1), steps=300)
    result = fit(problem, functools.partial(torch.optim.Adam, lr=0.1), seed=0)
    assert result.metrics["success"] == 0.0 and abs(result.metrics["omega"] - 12) < 1.0
