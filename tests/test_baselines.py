"""Baselines (azure_sciml.baselines): scipy's real basin-hopping, charged per energy+gradient
evaluation through fit()'s counting closure and stopped exactly at the budget."""

import functools
import json
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict

from azure_sciml import LossProblem, fit
from azure_sciml.baselines import BasinHopping
from azure_sciml.problems import LennardJones
from azure_sciml.problems.energy import lj_energy


class CountedLJ(LennardJones):
    """LJ cluster that counts its own loss calls."""

    calls = 0

    def loss(self, model):
        self.calls += 1
        return super().loss(model)


def basinhopping(total_steps, **kwargs):
    return functools.partial(BasinHopping, total_steps=total_steps, **kwargs)


def test_every_evaluation_is_charged_and_the_budget_is_exact():
    problem = CountedLJ(n_atoms=7)
    result = fit(problem, basinhopping(250), seed=0, steps=250)
    assert result.n_loss_evals == result.n_grad_evals == problem.calls == 250
    assert result.n_steps == 1  # one basin-hopping run per fit
    assert result.optimizer.n_evals == 250


def test_ends_at_the_lowest_energy_it_evaluated():
    result = fit(LennardJones(n_atoms=7), basinhopping(250), seed=1, steps=250,
                 dtype=torch.float64)
    final = float(lj_energy(result.model.positions.detach()))
    assert final == result.best_loss == min(loss for _, loss in result.history)


def test_finds_the_lj7_global_minimum_within_a_small_budget():
    result = fit(LennardJones(n_atoms=7), basinhopping(300), seed=0, steps=300,
                 dtype=torch.float64)
    assert result.metrics["success"] == 1.0, result.metrics


def test_same_seed_same_run_other_seed_other_run():
    runs = [fit(LennardJones(n_atoms=7), basinhopping(120), seed=s, steps=120).history
            for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_no_second_run_past_the_budget():
    x = torch.ones(3, requires_grad=True)
    opt = BasinHopping([x], total_steps=20, seed=0)

    def closure():
        x.grad = None
        loss = (x - 2).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert opt.n_evals == 20 and torch.allclose(x.detach(), torch.full((3,), 2.0), atol=1e-4)
    with pytest.raises(RuntimeError, match="total_steps=20"):
        opt.step(closure)


def _lj7_runs(model_dtype, float64):
    """Basin-hopping from one float32-representable LJ7 start, the model held in model_dtype."""
    torch.manual_seed(5)
    start = LennardJones(n_atoms=7).build(torch.device("cpu"), torch.float32).positions.detach()
    x = torch.nn.Parameter(start.to(model_dtype))
    seen, losses = set(), []

    def closure():
        x.grad = None
        seen.add(x.dtype)
        loss = lj_energy(x)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    BasinHopping([x], total_steps=200, seed=0, float64=float64).step(closure)
    return x, seen, losses


def test_evaluates_in_float64_whatever_the_parameters_dtype():
    x32, seen32, losses32 = _lj7_runs(torch.float32, float64=True)
    x64, seen64, losses64 = _lj7_runs(torch.float64, float64=True)
    assert seen32 == seen64 == {torch.float64}
    assert losses32 == losses64  # the same float64 run: the model's dtype does not matter
    assert x32.dtype == torch.float32 and x32.grad is None  # handed back in its own dtype
    assert torch.equal(x32.detach(), x64.detach().float())  # at the same best point
    assert float(lj_energy(x64.detach())) == min(losses64)


def test_float64_false_evaluates_in_the_parameters_dtype():
    _, seen, losses = _lj7_runs(torch.float32, float64=False)
    _, _, losses64 = _lj7_runs(torch.float32, float64=True)
    assert seen == {torch.float32} and losses != losses64


def test_a_loss_that_refuses_float64_runs_in_its_own_dtype_with_a_warning():
    """A float32 model with float32 data cannot take float64 weights: basin-hopping warns, runs in
    float32 and charges exactly the budget through fit (the refused evaluation never counted)."""
    torch.manual_seed(0)
    data = torch.randn(32, 3)
    target = data @ torch.tensor([1.0, -2.0, 0.5])
    problem = LossProblem(
        model=lambda: torch.nn.Linear(3, 1),
        loss_fn=lambda m: ((m(data).squeeze(-1) - target) ** 2).mean(),
        steps=60,
    )
    with pytest.warns(RuntimeWarning, match="refused float64 parameters"):
        result = fit(problem, functools.partial(BasinHopping, total_steps=60, seed=0))
    assert result.n_loss_evals == 60
    assert result.model.weight.dtype == torch.float32
    assert result.metrics["loss"] < 1e-6  # a least-squares fit: L-BFGS-B solves it


@pytest.mark.parametrize("kwargs, message", [
    ({"total_steps": 0}, "total_steps value: 0"),
    ({"T": -1.0}, "T value: -1.0"),
    ({"stepsize": 0}, "stepsize value: 0"),
    ({"target_accept_rate": 1.5}, "target_accept_rate value: 1.5"),
    ({"float64": "yes"}, "float64 value: 'yes'"),
])
def test_bad_arguments_raise_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BasinHopping([torch.zeros(1, requires_grad=True)], **{"total_steps": 10, **kwargs})


def test_import_azure_sciml_does_not_import_scipy():
    code = "import sys, azure_sciml; assert 'scipy' not in sys.modules, 'scipy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_app_runs_basinhopping_on_the_energy_problem(tmp_path):
    from azure_sciml import app

    overrides = ["problem=energy", "problem.steps=150", "optimizer=basinhopping",
                 "progress=false", "save_plot=false"]
    with initialize_config_module("azure_sciml.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    task = OmegaConf.to_container(cfg.hydra.overrides.task)
    with open_dict(cfg):
        del cfg["hydra"]
    app.run(cfg, tmp_path, choices, task)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "ok" and record["optimizer"] == "basinhopping"
    assert record["n_loss_evals"] == 150 and record["n_steps"] == 1
