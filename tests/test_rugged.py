"""Rugged test functions: known minima, numpy reference formulas, domain, a short Adam run."""

import functools
import math

import numpy as np
import pytest
import torch

from azure_sciml import fit
from azure_sciml.problems.rugged import (
    FUNCTIONS,
    Ackley,
    Levy,
    Rastrigin,
    RuggedFunction,
    Schwefel,
)

NAMES = sorted(FUNCTIONS)


def np_rastrigin(x):
    return 10 * len(x) + np.sum(x**2 - 10 * np.cos(2 * np.pi * x))


def np_ackley(x):
    d = len(x)
    return (
        -20 * np.exp(-0.2 * np.sqrt(np.sum(x**2) / d))
        - np.exp(np.sum(np.cos(2 * np.pi * x)) / d)
        + 20
        + np.e
    )


def np_schwefel(x):  # Surjanovic & Bingham's form, shifted by the exact minimum (inside the box)
    return 418.98288727243374 * len(x) - np.sum(x * np.sin(np.sqrt(np.abs(x))))


def np_levy(x):
    w = 1 + (x - 1) / 4
    return (
        np.sin(np.pi * w[0]) ** 2
        + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
        + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    )


REFERENCE = {
    "rastrigin": np_rastrigin,
    "ackley": np_ackley,
    "schwefel": np_schwefel,
    "levy": np_levy,
}


def model_at(problem, x):
    model = problem.build(torch.device("cpu"), torch.float64)
    with torch.no_grad():
        model.x.copy_(torch.as_tensor(x, dtype=torch.float64))
    return model


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [2, 20])
def test_known_minimiser_scores_zero(name, dim):
    problem = RuggedFunction(name, dim=dim)
    model = model_at(problem, problem.minimiser())
    metrics = problem.evaluate(model)
    assert metrics["value"] == pytest.approx(0.0, abs=1e-9 * dim)
    assert metrics["distance"] == 0.0
    loss = problem.loss(model)
    loss.backward()
    assert torch.isfinite(model.x.grad).all()
    assert model.x.grad.abs().max() < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_minimiser_is_a_local_minimum(name):
    problem = RuggedFunction(name, dim=5)
    x0 = problem.minimiser()
    f0 = float(problem.function(x0))
    rng = np.random.default_rng(0)
    for _ in range(50):
        step = torch.as_tensor(rng.normal(size=5) * 1e-2 * problem.spec.half_width / 5.12)
        assert float(problem.function(x0 + step)) > f0


@pytest.mark.parametrize("name", NAMES)
def test_matches_numpy_reference_at_random_points(name):
    problem = RuggedFunction(name, dim=7)
    h = problem.spec.half_width
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.uniform(-h, h, size=7)
        got = float(problem.function(torch.as_tensor(x)))
        assert got == pytest.approx(REFERENCE[name](x), rel=1e-10, abs=1e-9)


def test_function_is_batched():
    problem = RuggedFunction("levy", dim=4)
    x = torch.rand(3, 4, dtype=torch.float64)
    values = problem.function(x)
    assert values.shape == (3,)
    for i in range(3):
        assert float(values[i]) == pytest.approx(float(problem.function(x[i])))


def test_schwefel_outside_the_box_is_penalised_and_nonnegative():
    problem = Schwefel(dim=2)
    x = torch.linspace(-3000, 3000, 60001, dtype=torch.float64)
    values = problem.function(torch.stack([x, torch.full_like(x, SCHWEFEL_MIN)], -1))
    assert values.min() >= -1e-9
    inside = torch.tensor([[499.0, SCHWEFEL_MIN]], dtype=torch.float64)
    assert float(problem.function(inside)) == pytest.approx(np_schwefel(inside[0].numpy()))


SCHWEFEL_MIN = 420.9687463599820


@pytest.mark.parametrize("name", NAMES)
def test_build_draws_from_the_domain_with_the_global_rng(name):
    problem = RuggedFunction(name, dim=50)
    torch.manual_seed(3)
    a = problem.build(torch.device("cpu"), torch.float32)
    torch.manual_seed(3)
    b = problem.build(torch.device("cpu"), torch.float32)
    assert torch.equal(a.x, b.x)
    assert a.x.shape == (50,) and a.x.dtype == torch.float32 and a.x.requires_grad
    assert a.x.abs().max() <= problem.spec.half_width
    assert a.x.std() > 0.3 * problem.spec.half_width  # spread over the domain, not near 0
    assert [n for n, _ in a.named_parameters()] == ["x"]


@pytest.mark.parametrize("cls", [Rastrigin, Ackley, Schwefel, Levy])
def test_short_adam_run_lowers_the_value(cls):
    problem = cls(dim=10, steps=200)
    torch.manual_seed(0)
    start = problem.evaluate(problem.build(torch.device("cpu"), torch.float32))["value"]
    result = fit(problem, functools.partial(torch.optim.Adam, lr=problem.lr), seed=0)
    assert result.status == "ok" and result.n_loss_evals == 200
    assert set(result.metrics) == {"value", "distance"}
    assert result.metrics["value"] < start
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_subclasses_and_defaults():
    for cls, name in [
        (Rastrigin, "rastrigin"),
        (Ackley, "ackley"),
        (Schwefel, "schwefel"),
        (Levy, "levy"),
    ]:
        problem = cls()
        assert problem.name == name and problem.dim == 20 and problem.steps == 3000
        assert problem.lr == FUNCTIONS[name].lr and problem.metric == "value"
    assert RuggedFunction("ackley", lr=0.1).lr == 0.1
    assert "ackley" in repr(Ackley())


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(name="sphere"), "name"),
        (dict(dim=1), "dim"),
        (dict(dim=2.5), "dim"),
        (dict(steps=0), "steps"),
        (dict(lr=0.0), "lr"),
        (dict(lr=float("nan")), "lr"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RuggedFunction(**kwargs)
