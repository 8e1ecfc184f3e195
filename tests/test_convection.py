"""Convection and reaction PINNs: the exact solutions solve the PDEs and score ~0, the loss sees
each of its three terms, Adam learns, seeds reproduce, RAD re-draws, bad arguments fail."""

import math

import pytest
import torch
from torch import nn

from azure_sciml import fit
from azure_sciml.problems.convection import Convection, Reaction

CPU, F64 = torch.device("cpu"), torch.float64
SMALL = dict(n_residual=200, n_initial=33, n_boundary=21, n_test_x=33, n_test_t=21, width=16)
CLASSES = [Convection, Reaction]


class ExactSolution(nn.Module):
    """u(x, t) from the problem's closed form, plus ``shift`` and ``eps * t``."""

    def __init__(self, problem, shift: float = 0.0, eps: float = 0.0):
        super().__init__()
        self.problem, self.shift, self.eps = problem, shift, eps
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))  # fit() needs a parameter

    def forward(self, xt):
        return self.problem.exact(xt) + self.shift + self.eps * xt[:, 1:] + 0 * self.dummy


def built(cls, **kwargs):
    problem = cls(**{**SMALL, **kwargs})
    problem.build(CPU, F64)
    return problem


def autograd_residual(problem, xt):
    """The PDE written out by autograd on the closed form, independent of the class's residual."""
    xt = xt.clone().requires_grad_(True)
    u = problem.exact(xt)
    (grad,) = torch.autograd.grad(u.sum(), xt)
    u_x, u_t = grad[:, :1], grad[:, 1:]
    if isinstance(problem, Convection):
        return u_t + problem.beta * u_x
    return u_t - problem.rho * u.detach() * (1 - u.detach())


@pytest.mark.parametrize("cls", CLASSES)
def test_exact_solution_solves_the_pde(cls):
    problem = built(cls)
    xt = torch.rand(500, 2, dtype=F64) * torch.tensor([2 * math.pi, 1.0], dtype=F64)
    assert autograd_residual(problem, xt).abs().max() < 1e-12
    assert problem.residual(ExactSolution(problem), xt).abs().max() < 1e-11


@pytest.mark.parametrize("cls", CLASSES)
def test_exact_solution_has_zero_loss_and_error(cls):
    problem = built(cls)
    exact = ExactSolution(problem)
    metrics = problem.evaluate(exact)
    assert metrics["rel_l2"] < 1e-14 and metrics["max_abs_err"] < 1e-14
    assert float(problem.loss(exact).detach()) < 1e-22


def test_exact_solutions_at_known_points():
    conv, react = Convection(beta=40.0), Reaction(rho=5.0)
    xt = torch.tensor([[0.3, 0.0], [0.3, 0.5], [math.pi, 1.0], [0.0, 0.2]], dtype=F64)
    expected = [math.sin(0.3), math.sin(0.3 - 20.0), math.sin(math.pi - 40.0), math.sin(-8.0)]
    assert conv.exact(xt).squeeze(1).tolist() == pytest.approx(expected, abs=1e-14)
    u0_edge = math.exp(-8.0)  # (pi / (pi / 4))^2 / 2 = 8
    grown = u0_edge * math.exp(1.0) / (u0_edge * math.exp(1.0) + 1 - u0_edge)
    # u0(pi) = 1 is a fixed point of the logistic equation; u0 small grows like e^(rho t)
    u0 = math.exp(-0.5 * ((0.3 - math.pi) / (math.pi / 4)) ** 2)
    at_half = u0 * math.exp(2.5) / (u0 * math.exp(2.5) + 1 - u0)
    expected = [u0, at_half, 1.0, grown]
    assert react.exact(xt).squeeze(1).tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_exact_solution_is_periodic(cls):
    problem = cls()
    t = torch.linspace(0, 1, 11, dtype=F64)[:, None]
    left = problem.exact(torch.cat([torch.zeros_like(t), t], dim=1))
    right = problem.exact(torch.cat([torch.full_like(t, 2 * math.pi), t], dim=1))
    torch.testing.assert_close(left, right, atol=1e-12, rtol=0)


def test_loss_sees_each_term():
    """A constant shift solves both PDEs' convection part but misses initial values; the
    boundary term sees a model that is not periodic; the residual term sees a wrong slope."""
    problem = built(Convection)
    # shift: residual 0, initial error 0.1 everywhere, periodic: loss = 0.01
    assert float(problem.loss(ExactSolution(problem, shift=0.1)).detach()) == pytest.approx(0.01)
    # eps * t: residual eps, initial error 0, periodic: loss = eps^2
    assert float(problem.loss(ExactSolution(problem, eps=0.2)).detach()) == pytest.approx(0.04)

    class Tilted(ExactSolution):  # + 0.1 x: residual 0.1 beta, initial 0.1 x, boundary 0.2 pi
        def forward(self, xt):
            return super().forward(xt) + 0.1 * xt[:, :1]

    x0 = problem.initial[:, 0]
    expected = (0.1 * problem.beta) ** 2 + (0.1 * x0).square().mean() + (0.2 * math.pi) ** 2
    assert float(problem.loss(Tilted(problem)).detach()) == pytest.approx(float(expected))


@pytest.mark.parametrize("cls", CLASSES)
def test_points_lie_on_their_sets(cls):
    problem = built(cls)
    inside = problem.residual_points
    assert inside.shape == (200, 2)
    assert (inside[:, 0] >= 0).all() and (inside[:, 0] < 2 * math.pi).all()
    assert (inside[:, 1] >= 0).all() and (inside[:, 1] <= 1).all()
    assert (problem.initial[:, 1] == 0).all() and problem.initial.shape == (33, 2)
    assert problem.initial[[0, -1], 0].tolist() == pytest.approx([0, 2 * math.pi])
    left, right = problem.boundary.chunk(2)
    assert (left[:, 0] == 0).all() and (right[:, 0] == 2 * math.pi).all()
    assert torch.equal(left[:, 1], right[:, 1]) and left.shape == (21, 2)
    assert problem.test_points.shape == (33 * 21, 2)


@pytest.mark.parametrize(
    ("cls", "coefficient"), [(Convection, {"beta": 1.0}), (Reaction, {"rho": 1.0})]
)
def test_adam_reduces_loss_and_error(cls, coefficient):
    """400 Adam steps learn slow convection and reaction; beta = 40 and rho = 5 need far more."""
    problem = cls(**SMALL, **coefficient, steps=400, lr=3e-3)
    result = fit(problem, lambda params: torch.optim.Adam(params, lr=3e-3), seed=0, dtype=F64)
    assert result.status == "ok"
    assert result.history[-1][1] < 0.1 * result.history[0][1]
    assert result.metrics["rel_l2"] < 0.5


@pytest.mark.parametrize("cls", CLASSES)
def test_same_seed_same_run_other_seed_other_run(cls):
    def run(seed, **kwargs):
        problem = cls(**SMALL, steps=20, **kwargs)
        result = fit(problem, lambda p: torch.optim.Adam(p, lr=1e-3), seed=seed, dtype=F64)
        return result.metrics["rel_l2"], problem.residual_points

    rad = dict(sampling="rad", resample_every=5, n_candidates=1000, resample_until=1.0)
    for kwargs in ({}, rad):
        (a, pa), (b, pb), (c, pc) = run(0, **kwargs), run(0, **kwargs), run(1, **kwargs)
        assert a == b and torch.equal(pa, pb)
        assert a != c and not torch.equal(pa, pc)


def test_rad_redraws_where_the_residual_is_large_and_stops_on_time():
    problem = built(Convection, sampling="rad", resample_every=2, resample_until=0.75, steps=8,
                    n_candidates=4000, n_residual=400)

    class Bump(nn.Module):  # residual beta * d/dx of a bump at x = 5: large near x = 5 only
        def forward(self, xt):
            return torch.exp(-((xt[:, :1] - 5.0) / 0.2) ** 2)

    torch.manual_seed(0)
    first = problem.residual_points.clone()
    drawn = []
    for _ in range(8):
        problem.loss(Bump())
        drawn.append(problem.residual_points.clone())
    changed = [not torch.equal(a, b) for a, b in zip([first] + drawn[:-1], drawn, strict=True)]
    # re-drawn before evaluations 2 and 4 (< 0.75 * 8), not after
    assert changed == [False, False, True, False, True, False, False, False]
    near = ((drawn[-1][:, 0] - 5.0).abs() < 0.4).float().mean()
    uniform_share = 0.8 / (2 * math.pi)
    assert drawn[-1].shape == first.shape
    assert near > 3 * uniform_share


def test_uniform_resampling_draws_fresh_points():
    problem = built(Reaction, resample_every=3, resample_until=1.0, steps=10)
    model = ExactSolution(problem)
    before = problem.residual_points.clone()
    counts = []
    for _ in range(10):
        current = problem.residual_points.clone()
        problem.loss(model)
        counts.append((problem.n_resamples, not torch.equal(current, problem.residual_points)))
    assert not torch.equal(before, problem.residual_points)
    # fresh points before evaluations 4 and 7 and 10: n_resamples counts each as it happens
    assert [n for n, _ in counts] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert [k for k, (_, fresh) in enumerate(counts) if fresh] == [3, 6, 9]


def test_state_dict_restores_the_points():
    problem = built(Convection, sampling="rad", resample_every=2, resample_until=1.0,
                    n_candidates=500)
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in problem.state_dict().items()}
    problem.loss(ExactSolution(problem))
    problem.loss(ExactSolution(problem, eps=0.1))
    problem.loss(ExactSolution(problem, eps=0.1))
    assert not torch.equal(problem.residual_points, state["residual_points"])  # re-drawn at 2
    other = built(Convection)
    other.load_state_dict(state)
    assert torch.equal(other.residual_points, state["residual_points"]) and other.n_loss_evals == 0


def test_plot_writes_a_png_without_pyplot(tmp_path):
    problem = built(Reaction)
    problem.plot(ExactSolution(problem), tmp_path / "u.png")
    assert (tmp_path / "u.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_residual": 0}, "n_residual must be a positive integer, got 0"),
        ({"width": 2.5}, "width must be a positive integer, got 2.5"),
        ({"n_initial": 1}, "n_initial must be an integer >= 2, got 1"),
        ({"sampling": "sobol"}, "sampling must be one of"),
        ({"sampling": "rad"}, "resample_every must be a positive integer with sampling='rad'"),
        ({"resample_every": -1}, "resample_every must be an integer >= 0, got -1"),
        ({"resample_until": 0}, r"resample_until must be a number in \(0, 1\], got 0"),
        ({"resample_until": 1.5}, r"resample_until must be a number in \(0, 1\], got 1.5"),
        ({"n_candidates": 10}, "n_candidates must be an integer >= 1000, got 10"),
        ({"rad_k": -1.0}, "rad_k must be a finite number >= 0, got -1.0"),
        ({"rad_c": float("nan")}, "rad_c must be a finite number >= 0, got nan"),
        ({"lr": 0.0}, "lr must be a positive finite number, got 0.0"),
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"n_test_t": 1}, "n_test_t must be an integer >= 2, got 1"),
    ],
)
def test_bad_arguments_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize(("cls", "name"), [(Convection, "beta"), (Reaction, "rho")])
@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), True])
def test_bad_coefficient_is_refused(cls, name, value):
    with pytest.raises(ValueError, match=f"{name} must be a positive finite number"):
        cls(**{name: value})
