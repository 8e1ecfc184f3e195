"""Checks every shipped problem passes; adding a problem to ``problems.ALL`` adds it here."""

import functools
import inspect
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import get_class
from omegaconf import OmegaConf

import azure_sciml.conf
from azure_sciml import Azure, Problem, fit
from azure_sciml.problems import ALL

OPTIMIZERS = {
    "adam": lambda lr: functools.partial(torch.optim.Adam, lr=lr),
    "azure": lambda lr: functools.partial(Azure, lr=lr, sa_steps=30, sa_interval=5),
}


def params_of(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.fixture(params=ALL, ids=lambda cls: cls.__name__)
def problem_cls(request):
    return request.param


def test_follows_the_protocol(problem_cls):
    problem = problem_cls()
    assert isinstance(problem, Problem)
    assert problem.steps > 0 and problem.lr > 0
    assert isinstance(problem.metric, str)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_loss_and_gradients_flow(problem_cls, dtype):
    problem = problem_cls()
    torch.manual_seed(0)
    model = problem.build(torch.device("cpu"), dtype)
    loss = problem.loss(model)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.dtype == dtype
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_same_seed_same_parameters_and_data(problem_cls):
    a, b, c = problem_cls(), problem_cls(), problem_cls()
    models = []
    for problem, seed in ((a, 1), (b, 1), (c, 2)):
        torch.manual_seed(seed)
        models.append(problem.build(torch.device("cpu"), torch.float32))
    assert torch.equal(params_of(models[0]), params_of(models[1]))
    assert not torch.equal(params_of(models[0]), params_of(models[2]))
    torch.manual_seed(5)
    loss_a = a.loss(models[0])
    torch.manual_seed(5)
    loss_b = b.loss(models[1])
    assert torch.equal(loss_a, loss_b)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_short_run_reduces_the_loss(problem_cls, name):
    problem = problem_cls()
    result = fit(problem, OPTIMIZERS[name](problem.lr), seed=0, steps=40)
    first = result.history[0][1]
    assert result.status == "ok"
    assert result.best_loss < first
    assert result.n_loss_evals == 40


def test_evaluate_returns_the_documented_metrics(problem_cls):
    problem = problem_cls()
    result = fit(problem, OPTIMIZERS["adam"](problem.lr), seed=0, steps=3)
    numbers = {k: v for k, v in result.metrics.items() if not isinstance(v, str)}
    assert problem.metric in numbers
    assert all(isinstance(v, float) for v in numbers.values())
    assert math.isfinite(numbers[problem.metric])
    assert set(result.best_metrics) == set(result.metrics)


def test_plot_writes_a_png(problem_cls, tmp_path):
    problem = problem_cls()
    result = fit(problem, OPTIMIZERS["adam"](problem.lr), seed=0, steps=2)
    path = tmp_path / "solution.png"
    problem.plot(result.model, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- one source of truth for defaults: the class; conf/problem/*.yaml shows the same values -------

CONF_PROBLEMS = sorted((Path(azure_sciml.conf.__file__).parent / "problem").glob("*.yaml"))


def class_defaults(target: str) -> dict:
    parameters = inspect.signature(get_class(target)).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not p.empty}


@pytest.mark.parametrize("path", CONF_PROBLEMS, ids=lambda p: p.stem)
def test_problem_config_shows_the_class_defaults(path):
    """A base config (no defaults list) holds exactly the class defaults; a variant config
    (``defaults: [base]``) differs from them only in the keys its own file sets."""
    with initialize_config_module("azure_sciml.conf", version_base="1.3"):
        node = compose("config", overrides=[f"problem={path.stem}"]).problem
    own = set(OmegaConf.load(path)) - {"defaults"}
    is_variant = "defaults" in OmegaConf.load(path)
    defaults = class_defaults(node._target_)
    drift = {
        key: (node[key], defaults[key])
        for key in set(node) - {"_target_"}
        if key in defaults and _plain(node[key]) != _plain(defaults[key])
        and not (is_variant and key in own)
    }
    assert not drift, f"{path.name} drifts from {node._target_}'s defaults (yaml, class): {drift}"


def _plain(value):
    value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return list(value) if isinstance(value, tuple) else value
