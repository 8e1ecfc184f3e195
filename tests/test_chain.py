"""Optimizer chains (azure_sciml.chain.Chain): the budget counts every closure call, line searches
included, and is never exceeded; the hand-over happens where asked and is recorded; a run resumed
from a checkpoint on either side of the hand-over equals the uninterrupted run; the app builds a
chain from the ``refine`` group."""

import functools
import json

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict
from torch import nn

from azure_sciml import LossProblem, fit
from azure_sciml.chain import BudgetSpent, Chain

ADAM = functools.partial(torch.optim.Adam, lr=1e-2)
LBFGS = functools.partial(torch.optim.LBFGS, lr=1.0, line_search_fn="strong_wolfe")
X = torch.linspace(-1, 1, 64).unsqueeze(1)


class CountedFit(LossProblem):
    """Fit sin(3x) on a fixed grid (a deterministic loss, as L-BFGS wants); counts its own calls."""

    def __init__(self, steps: int = 60):
        super().__init__(model=self._model, loss_fn=self._loss, evaluate_fn=self._score,
                         steps=steps, lr=1e-2)
        self.calls = 0

    @staticmethod
    def _model():
        return nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))

    def _loss(self, model):
        self.calls += 1
        return mse(model)

    @staticmethod
    def _score(model):
        with torch.no_grad():
            return {"loss": float(mse(model))}


def mse(model):
    return (model(X) - torch.sin(3 * X)).pow(2).mean()


def chain(at=0.5, total_steps=60, first=ADAM, then=LBFGS):
    return functools.partial(Chain, first=first, then=then, at=at, total_steps=total_steps)


def squared_distance(opt, x, to=0.0):
    """The closure of ``|x - to|^2`` that ``opt`` steps with."""

    def closure():
        opt.zero_grad()
        loss = (x - to).pow(2).sum()
        loss.backward()
        return loss

    return closure


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_every_closure_call_is_charged_and_the_budget_is_exact():
    problem = CountedFit()
    result = fit(problem, chain(at=0.5, total_steps=60), seed=0, steps=60)
    stats = result.optimizer.stats()
    assert result.n_loss_evals == problem.calls == 60  # line-search calls included
    assert stats["handover_eval"] == stats["switch_at"] == 30
    assert stats["evals_first"] == 30 and stats["evals_then"] == 30
    assert stats["first"] == "Adam" and stats["then"] == "LBFGS" and stats["phase"] == "then"
    assert result.n_steps < 60  # L-BFGS steps evaluate many times each
    assert result.best_loss < result.history[29][1]  # L-BFGS improved on Adam's end point


def test_a_step_cut_at_the_budget_ends_on_its_best_evaluated_point():
    problem = CountedFit(steps=37)
    make = chain(at=0.0, total_steps=37, then=functools.partial(LBFGS, max_iter=50))
    result = fit(problem, make, seed=0, steps=37)
    assert result.n_loss_evals == problem.calls == 37
    assert result.optimizer.stats()["steps_cut_at_budget"] == 1
    final = float(mse(result.model).detach())
    assert final == result.best_loss  # the best point the cut step evaluated, not a trial point


def test_at_one_is_the_first_optimizer_alone():
    alone = fit(CountedFit(), ADAM, seed=3, steps=40)
    chained = fit(CountedFit(), chain(at=1.0, total_steps=40), seed=3, steps=40)
    assert torch.equal(flat(alone.model), flat(chained.model))
    assert chained.optimizer.stats()["handover_eval"] is None


@pytest.mark.parametrize("stop_at", [20, 45], ids=["before_handover", "after_handover"])
def test_resume_on_either_side_of_the_handover_equals_the_uninterrupted_run(tmp_path, stop_at):
    reference = fit(CountedFit(), chain(), seed=1, steps=60)
    ckpt = tmp_path / "run.pt"
    fit(CountedFit(), chain(), seed=1, steps=stop_at, checkpoint=ckpt, checkpoint_every=4)
    resumed = fit(CountedFit(), chain(), seed=1, steps=60, checkpoint=ckpt, checkpoint_every=4,
                  resume=True)
    assert torch.equal(flat(resumed.model), flat(reference.model))
    assert resumed.history == reference.history
    assert resumed.optimizer.stats() == reference.optimizer.stats()


class RunLengthAdam(torch.optim.Adam):
    """Adam that records the run length handed over (azure_sciml.run_length)."""

    run_length = None

    def set_run_length(self, total_steps):
        self.run_length = total_steps


@pytest.mark.parametrize("given", ["total_steps", "set_run_length"])
def test_a_run_length_aware_phase_gets_its_phase_length(given):
    params = [torch.zeros(1, requires_grad=True)]
    if given == "total_steps":
        opt = Chain(params, RunLengthAdam, RunLengthAdam, at=0.75, total_steps=200)
    else:  # as fit() hands its budget over
        opt = Chain(params, RunLengthAdam, RunLengthAdam, at=0.75)
        opt.set_run_length(200)
    assert (opt.first.run_length, opt.then.run_length) == (150, 50)
    opt.set_run_length(400)  # the first length stays
    assert (opt.total_steps, opt.switch_at) == (200, 150)


def test_azure_in_a_chain_from_fit_anneals_over_its_phase():
    from azure_sciml import Azure

    first = functools.partial(Azure, lr=1e-2)  # no total_steps: fit's budget reaches it
    result = fit(CountedFit(), chain(at=0.5, total_steps=None, first=first), seed=0, steps=60)
    assert result.optimizer.total_steps == 60
    assert (result.optimizer.first.total_steps, result.optimizer.first.sa_steps) == (30, 27)


def test_a_scheduler_schedules_the_first_phase():
    opt = chain()([torch.zeros(2, requires_grad=True)])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step(lambda: torch.zeros(()).requires_grad_())
    sched.step()
    assert opt.first.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert opt.then.param_groups[0]["lr"] == 1.0


def test_no_step_past_the_budget_and_no_step_without_a_closure():
    x = torch.zeros(1, requires_grad=True)
    opt = Chain([x], ADAM, ADAM, at=0.5, total_steps=2)
    closure = squared_distance(opt, x, to=1.0)
    opt.step(closure)
    opt.step(closure)
    with pytest.raises(BudgetSpent, match="total_steps=2"):
        opt.step(closure)
    with pytest.raises(ValueError, match="closure"):
        opt.step()


@pytest.mark.parametrize("kwargs, message", [
    ({"at": 1.5}, "at value: 1.5"),
    ({"at": True}, "at value: True"),
    ({"total_steps": 0}, "total_steps value: 0"),
    ({"total_steps": None, "at": 0.5}, "without total_steps"),
    ({"then": "lbfgs"}, "then value: 'lbfgs'"),
])
def test_bad_arguments_raise_naming_the_value(kwargs, message):
    """At construction, or (a fraction of no run length) at the first step."""
    args = {"first": ADAM, "then": LBFGS, "at": 0.5, "total_steps": 10, **kwargs}
    x = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        opt = Chain([x], **args)
        opt.step(squared_distance(opt, x))


def test_a_state_dict_of_another_chain_is_refused():
    params = [torch.zeros(1, requires_grad=True)]
    saved = Chain(params, ADAM, LBFGS, at=0.5, total_steps=10).state_dict()
    with pytest.raises(ValueError, match="switch_at=5"):
        Chain(params, ADAM, LBFGS, at=0.8, total_steps=10).load_state_dict(saved)


# ---------------------------------------------------------------- the app's refine group


def run_app(out_dir, *overrides):
    from azure_sciml import app

    with initialize_config_module("azure_sciml.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    task = OmegaConf.to_container(cfg.hydra.overrides.task)
    with open_dict(cfg):
        del cfg["hydra"]
    app.run(cfg, out_dir, choices, task)
    return json.loads((out_dir / "result.json").read_text())


def test_refine_group_chains_the_run_and_records_the_handover(tmp_path):
    record = run_app(
        tmp_path, "problem=heat", "problem.steps=40", "problem.n_interior=64",
        "optimizer=adam", "refine=lbfgs", "refine.at=0.5", "progress=false", "save_plot=false",
    )
    stats = record["optimizer_stats"]
    assert record["status"] == "ok" and record["optimizer"] == "adam+lbfgs"
    assert record["n_loss_evals"] == 40
    assert stats["handover_eval"] == 20 and stats["then"] == "LBFGS"


def test_refine_group_reports_a_bad_fraction_by_name(tmp_path):
    from azure_sciml.app import ConfigError

    with pytest.raises(ConfigError, match=r"refine.at=1.5"):
        run_app(tmp_path, "problem=heat", "problem.steps=10", "optimizer=adam", "refine=lbfgs",
                "refine.at=1.5", "progress=false", "save_plot=false")


class StallsAfterOneStep(torch.optim.Optimizer):
    """Searches (two evaluations, a move) in its first step, then evaluates once and stays put
    for as long as it keeps its state: torch's float32 L-BFGS once its direction is useless."""

    def __init__(self, params):
        super().__init__(params, {"lr": 0.1})

    def step(self, closure):
        p = self.param_groups[0]["params"][0]
        state = self.state[p]
        closure()
        if state.get("stuck"):
            return None
        with torch.no_grad():
            p.sub_(0.1 * p.grad)
        closure()
        state["stuck"] = True
        return None


def test_a_searching_optimizer_that_stalls_is_restarted():
    x = torch.ones(1, requires_grad=True)
    opt = Chain([x], ADAM, StallsAfterOneStep, at=0.0, total_steps=10)
    closure = squared_distance(opt, x)
    opt.step(closure)  # searches and moves
    moved = x.detach().clone()
    opt.step(closure)  # stalls: one evaluation, no move -> restarted
    assert torch.equal(x.detach(), moved) and opt.stats()["restarts"] == 1
    opt.step(closure)  # fresh state: moves again
    assert x.item() < moved.item()


def test_refine_none_is_the_optimizer_alone(tmp_path):
    record = run_app(
        tmp_path, "problem=heat", "problem.steps=6", "problem.n_interior=32", "optimizer=adam",
        "refine=none", "progress=false", "save_plot=false",
    )
    assert record["optimizer"] == "adam" and record["optimizer_stats"] is None


def test_the_docs_chain_example_runs():
    import re
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "finisher.md").read_text()
    block = re.search(r"<!-- chain-example -->\s*```python\n(.*?)```", page, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "docs/finisher.md chain-example", "exec"), namespace)
    result = namespace["result"]
    assert result.n_loss_evals == 600 and result.optimizer.stats()["handover_eval"] == 300
    assert result.metrics["rel_l2"] < 0.1


class ClimbsUphill(torch.optim.Optimizer):
    """Evaluates, steps uphill, evaluates again and stays there: a failed line search."""

    def __init__(self, params):
        super().__init__(params, {"lr": 0.1})

    def step(self, closure):
        p = self.param_groups[0]["params"][0]
        closure()
        self.state[p]["history"] = torch.ones(1)
        with torch.no_grad():
            p.add_(0.5 * p.grad)
        closure()
        return None


def test_a_search_that_finds_nothing_lower_goes_back_to_its_start_and_restarts():
    x = torch.ones(1, requires_grad=True)
    opt = Chain([x], ADAM, ClimbsUphill, at=0.0, total_steps=10)
    closure = squared_distance(opt, x)
    opt.step(closure)
    assert x.item() == 1.0 and opt.stats()["restarts"] == 1 and not opt.then.state
