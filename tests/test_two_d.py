"""2-D benchmark functions: exact minima, the bounded box, the recorded path and its picture."""

import functools
import json

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict

from azure_sciml import app, fit
from azure_sciml.problems.two_d import FUNCTIONS, PENALTY, TwoDFunction

NAMES = sorted(FUNCTIONS)


def adam(lr):
    return functools.partial(torch.optim.Adam, lr=lr)


@pytest.mark.parametrize("name", NAMES)
def test_minimisers_have_the_documented_minimum(name):
    problem = TwoDFunction(name)
    values = problem.function(problem.minimisers())
    assert torch.allclose(values, torch.full_like(values, problem.spec.minimum), atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_no_point_of_the_domain_or_beyond_is_below_the_minimum(name):
    problem = TwoDFunction(name)
    (x0, x1), (y0, y1) = problem.spec.box
    wx, wy = x1 - x0, y1 - y0  # the grid reaches half a domain beyond the box on every side
    xs = torch.linspace(x0 - wx / 2, x1 + wx / 2, 401, dtype=torch.float64)
    ys = torch.linspace(y0 - wy / 2, y1 + wy / 2, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    assert problem.function(grid).min() >= problem.spec.minimum - 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_every_small_move_from_a_minimiser_goes_uphill(name):
    problem = TwoDFunction(name)
    steps = 1e-4 * torch.tensor([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1]],
                                dtype=torch.float64)
    for point in problem.minimisers():
        assert (problem.function(point + steps) > problem.function(point)).all()


def test_adjiman_outside_its_box_costs_the_penalty():
    problem = TwoDFunction("adjiman")
    edge = torch.tensor([2.0, 0.5], dtype=torch.float64)
    outside = torch.tensor([2.5, 0.5], dtype=torch.float64)
    raw = problem.spec.function(outside)  # the unbounded formula keeps falling past x = 2
    assert raw < problem.function(edge)
    assert problem.function(outside) == pytest.approx(problem.function(edge) + PENALTY * 0.5)


def test_the_path_is_every_evaluated_point_from_the_seeded_start():
    problem = TwoDFunction("himmelblau")
    result = fit(problem, adam(problem.lr), seed=3, steps=25)
    path = problem.path()
    assert path.shape == (25, 2)
    torch.manual_seed(3)
    start = problem.build(torch.device("cpu"), torch.float32)().detach().double()
    assert torch.equal(path[0], start)  # fit's seed fixes the start
    assert len(problem.path()) == 0  # build starts a new path
    losses = [loss for _, loss in result.history]
    assert losses == pytest.approx(problem.function(path).tolist(), rel=1e-5)


def test_a_fixed_start_is_the_same_for_every_seed():
    problem = TwoDFunction("himmelblau", start=[1, 1])
    for seed in (0, 1):
        fit(problem, adam(problem.lr), seed=seed, steps=2)
        assert problem.path()[0].tolist() == [1.0, 1.0]


def test_resume_from_a_checkpoint_continues_the_path(tmp_path):
    problem = TwoDFunction("rosenbrock")
    ckpt = tmp_path / "ckpt.pt"
    fit(problem, adam(problem.lr), seed=1, steps=30, checkpoint=ckpt, checkpoint_every=5)
    resumed = TwoDFunction("rosenbrock")
    fit(resumed, adam(problem.lr), seed=1, steps=60, checkpoint=ckpt, resume=True)
    straight = TwoDFunction("rosenbrock")
    fit(straight, adam(problem.lr), seed=1, steps=60)
    assert torch.equal(resumed.path(), straight.path())


def test_adam_finds_a_himmelblau_minimum_and_the_metrics_say_so():
    problem = TwoDFunction("himmelblau")
    metrics = fit(problem, adam(problem.lr), seed=0).metrics  # 500 evaluations
    assert metrics["success"] == 1.0 and metrics["distance"] < 1e-3
    assert 0.0 <= metrics["gap"] < 1e-6 and metrics["value"] == pytest.approx(metrics["gap"])


def test_metrics_at_a_local_minimum_of_adjiman():
    problem = TwoDFunction("adjiman", start=[0.636, -1.0])
    model = problem.build(torch.device("cpu"), torch.float64)
    metrics = problem.evaluate(model)
    assert metrics["success"] == 0.0
    assert metrics["gap"] == pytest.approx(-0.9949 + 2.0218, abs=1e-3)


def test_plot_draws_the_path_and_figure_overlays_several(tmp_path):
    problem = TwoDFunction("adjiman")
    result = fit(problem, adam(problem.lr), seed=0, steps=40)
    problem.plot(result.model, tmp_path / "solution.png")
    assert (tmp_path / "solution.png").read_bytes()[:4] == b"\x89PNG"
    paths = {"Adam": problem.path(), "far": torch.tensor([[5.0, 5.0], [4.0, 4.0]])}
    fig = problem.figure(paths)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "Adam" in labels and "far" in labels
    assert ax.get_xlim()[1] > 5.0  # the window widens to a path that leaves the domain


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(name="nope"), "name"),
        (dict(steps=0), "steps"),
        (dict(steps=True), "steps"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(start=[1.0]), "start"),
        (dict(start="1,1"), "start"),
        (dict(start=[1.0, float("inf")]), "start"),
        (dict(tol=0), "tol"),
    ],
)
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        TwoDFunction(**kwargs)


def test_the_app_runs_problem_himmelblau(tmp_path):
    with initialize_config_module("azure_sciml.conf", version_base="1.3"):
        cfg = compose("config", overrides=["problem=himmelblau", "optimizer=adam",
                                           "problem.steps=30", "problem.start=[1,1]",
                                           "progress=false"], return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    app.run(cfg, tmp_path, choices, [])
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["problem"] == "himmelblau" and record["headline_metric"] == "gap"
    assert record["n_loss_evals"] == 30 and record["status"] == "ok"
    assert (tmp_path / "solution.png").stat().st_size > 1000


def test_the_experiment_pairs_three_optimizers_on_the_seed_benchmarks():
    with initialize_config_module("azure_sciml.conf", version_base="1.3"):
        cfg = compose("config", overrides=["experiment=two_d"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params["optimizer"] == "azure,adam,adamw"
    problems = params["problem"].split(",")
    assert {"himmelblau", "ackley_n2", "adjiman", "ackley_10d"} <= set(problems)
    for name in problems:
        with initialize_config_module("azure_sciml.conf", version_base="1.3"):
            node = compose("config", overrides=[f"problem={name}"]).problem
        assert node.steps == 500  # the seed's budget
