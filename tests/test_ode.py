"""Neural ODE: true field scores ~0, nfe is counted, Adam learns, adjoint agrees, bad args fail."""

import functools
import math

import pytest
import torch
import torchdiffeq
from torch import nn
from torchdiffeq import odeint_adjoint
from torchdiffeq._impl.odeint import SOLVERS as TORCHDIFFEQ_SOLVERS

from azure_sciml import NonFiniteLoss, fit
from azure_sciml.problems import _rk4
from azure_sciml.problems import ode as ode_module
from azure_sciml.problems.ode import SOLVERS, SYSTEMS, CountingField, NeuralODE

CPU, F64 = torch.device("cpu"), torch.float64
SMALL = dict(n_points=101, t_end=5.0, t_train=4.0, batch=8, hidden=16)


class ScaledField(nn.Module):
    """``scale`` times a field: scale 1 is the truth, anything else runs at the wrong speed."""

    def __init__(self, field: nn.Module, scale: float):
        super().__init__()
        self.field, self.scale = field, scale

    def forward(self, t, y):
        return self.scale * self.field(t, y)


def built(dtype=F64, seed=0, **kwargs):
    torch.manual_seed(seed)
    problem = NeuralODE(**kwargs)
    model = problem.build(CPU, dtype)
    return problem, model


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_true_field_scores_zero(system):
    problem, _ = built(system=system, rtol=1e-10, atol=1e-12, loss_solver="odeint")
    metrics = problem.evaluate(problem.true_field)
    assert metrics["train_mse"] < 1e-12
    assert metrics["extrap_mse"] < 1e-12
    assert metrics["nfe"] > 0
    assert float(problem.loss(problem.true_field)) < 1e-12


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_true_field_scores_near_zero_with_defaults_in_float32(system):
    problem, _ = built(torch.float32, system=system)
    metrics = problem.evaluate(problem.true_field)
    assert metrics["train_mse"] < 1e-5 and metrics["extrap_mse"] < 1e-5


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_wrong_field_is_penalised(system):
    problem, _ = built(system=system)
    metrics = problem.evaluate(ScaledField(problem.true_field, 1.1))
    assert metrics["extrap_mse"] > 1e-2
    assert metrics["train_mse"] > 1e-3


class Still(nn.Module):
    """dy/dt = 0: the state stays at y0."""

    def forward(self, t, y):
        return torch.zeros_like(y)


def test_metrics_split_the_grid_at_t_train():
    problem, _ = built()
    squared_error = (problem.y_true - problem.y_true[0]).pow(2).mean(dim=1)
    metrics = problem.evaluate(Still())
    assert metrics["train_mse"] == pytest.approx(float(squared_error[:800].mean()), rel=1e-12)
    assert metrics["extrap_mse"] == pytest.approx(float(squared_error[800:].mean()), rel=1e-12)


@pytest.mark.parametrize("solver, evals_per_step", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_nfe_counts_every_field_evaluation(solver, evals_per_step):
    problem, model = built(solver=solver, **SMALL)
    assert problem.evaluate(model)["nfe"] == evals_per_step * (SMALL["n_points"] - 1)


def test_counting_field_counts_and_passes_through():
    problem, model = built(**SMALL)
    counted = CountingField(model)
    y = torch.randn(3, 2, dtype=F64)
    torch.testing.assert_close(counted(torch.tensor(0.0), y), model(torch.tensor(0.0), y))
    counted(torch.tensor(0.0), y)
    assert counted.nfe == 2


def test_data_split_and_windows_stay_in_training_part():
    problem, _ = built(batch=20)
    assert (problem.n_points, problem.n_train) == (1000, 800)
    last_train, first_extrap = problem.t[problem.n_train - 1 : problem.n_train + 1].tolist()
    assert last_train <= problem.t_train < first_extrap
    torch.testing.assert_close(problem.y_true[0], torch.tensor([2.0, 0.0], dtype=F64))
    windows = problem._windows(problem.window)
    assert windows.shape == (problem.window, problem.batch, 2)
    is_train_state = windows[:, :, None, :] == problem.y_true[None, None, : problem.n_train, :]
    assert is_train_state.all(dim=-1).any(dim=-1).all()


def test_full_batch_windows_cover_the_training_part_and_the_loss_is_deterministic():
    problem, model = built(batch=0)
    windows = problem._windows(10)
    assert windows.shape == (10, 89, 2)  # consecutive windows sharing end points: 9 steps each
    torch.testing.assert_close(windows[0, 0], problem.y_true[0])
    # each ends where the next starts, but the last, which ends at the last training point
    torch.testing.assert_close(windows[-1, :-2], windows[0, 1:-1])
    assert windows[-1, -2].equal(problem.y_true[88 * 9])
    assert windows[0, -1].equal(problem.y_true[800 - 10])
    assert windows[-1, -1].equal(problem.y_true[800 - 1])
    torch.manual_seed(1)
    first = problem.loss(model)
    torch.manual_seed(2)
    assert torch.equal(problem.loss(model), first)  # no random draw: what L-BFGS needs


def test_windows_grow_geometrically_then_stay_and_resume_where_they_were():
    problem, model = built(window=10, max_window=160, grow_until=0.5, steps=100)
    sizes = []
    for _ in range(60):
        sizes.append(problem.current_window())
        problem.loss(model)
    assert sizes[0] == 10 and sizes[25] == 40 and sizes[50:] == [160] * 10
    assert sizes == sorted(sizes)
    resumed, _ = built(window=10, max_window=160, grow_until=0.5, steps=100)
    resumed.load_state_dict(problem.state_dict())
    assert resumed.current_window() == 160


def last_state_index(problem, windows):
    """The largest index into ``y_true`` of any state in ``windows``."""
    hits = (windows[..., None, :] == problem.y_true[: problem.n_train]).all(-1)
    return int(hits.float().argmax(-1).max())


@pytest.mark.parametrize("batch", [0, 5])
def test_horizon_curriculum_fits_the_first_part_then_all_and_resumes(batch):
    """horizon=0.1 for the first half of a 10-evaluation budget: the loss's windows lie in the
    first 80 of the 800 training points for evaluations 1-5, then cover all of them."""
    problem, model = built(horizon=0.1, horizon_until=0.5, steps=10, batch=batch)
    seen, losses = [], []
    for _ in range(10):
        n_fitted = problem.current_points(problem.window)
        seen.append(last_state_index(problem, problem._windows(problem.window, n_fitted)))
        losses.append(float(problem.loss(model).detach()))
    assert all(i < 80 for i in seen[:5]) and all(i >= 80 for i in seen[5:])
    if batch == 0:
        assert seen[:5] == [79] * 5 and seen[5:] == [799] * 5
        assert losses[:5] == [losses[0]] * 5 and losses[5] != losses[0]  # another loss after
    resumed, _ = built(horizon=0.1, horizon_until=0.5, steps=10, batch=batch)
    resumed.load_state_dict(problem.state_dict())
    assert resumed.current_points(problem.window) == problem.n_train


def test_horizon_curriculum_is_off_by_default():
    problem, model = built()
    assert problem.horizon == 1.0
    assert problem.current_points(problem.window) == problem.n_train
    assert torch.equal(problem._windows(10, problem.current_points(10)), problem._windows(10))


def test_same_seed_same_windows_and_weights():
    (a, model_a), (b, model_b) = built(seed=5, batch=20), built(seed=5, batch=20)
    c, model_c = built(seed=6, batch=20)
    windows = []
    for problem, seed in [(a, 1), (b, 1), (c, 2)]:
        torch.manual_seed(seed)
        windows.append(problem._windows(problem.window))
    assert torch.equal(windows[0], windows[1])
    assert not torch.equal(windows[0], windows[2])
    assert torch.equal(model_a.net[0].weight, model_b.net[0].weight)
    assert not torch.equal(model_a.net[0].weight, model_c.net[0].weight)


@pytest.mark.parametrize("system", ["spiral", "pendulum"])
def test_short_adam_run_reduces_loss(system):
    problem = NeuralODE(system=system, **SMALL)
    adam = functools.partial(torch.optim.Adam, lr=1e-2)
    untrained = fit(problem, adam, seed=0, steps=1)
    result = fit(problem, adam, seed=0, steps=150)
    losses = [loss for _, loss in result.history]
    assert result.status == "ok"
    assert sum(losses[-10:]) < 0.2 * sum(losses[:10])
    assert result.metrics["train_mse"] < 0.5 * untrained.metrics["train_mse"]


def test_adjoint_gradient_matches_backprop():
    grads = []
    for adjoint in (False, True):
        problem, model = built(
            adjoint=adjoint, rtol=1e-9, atol=1e-11, loss_solver="odeint", **SMALL
        )
        problem.loss(model).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-8)


def test_adjoint_fit_runs_through_odeint_adjoint(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs["method"])
        return odeint_adjoint(*args, **kwargs)

    monkeypatch.setattr(torchdiffeq, "odeint_adjoint", spy)
    problem = NeuralODE(adjoint=True, loss_solver="odeint", **SMALL)
    result = fit(problem, functools.partial(torch.optim.Adam, lr=1e-2), seed=0, steps=5)
    assert calls == ["dopri5"] * 5
    assert result.status == "ok" and result.n_loss_evals == 5
    assert math.isfinite(result.metrics["extrap_mse"])


class Explosive(nn.Module):
    """dy/dt = 10 (1 + y^2): y = tan(10 t + c) blows up within t = pi / 10, inside every window."""

    def forward(self, t, y):
        return 10 * (1 + y**2)


def test_failed_solve_is_nonfinite_in_loss_and_inf_in_evaluate():
    problem, _ = built(loss_solver="odeint", **SMALL)
    with pytest.raises(NonFiniteLoss, match="dopri5 solve failed"):
        problem.loss(Explosive())
    # the fixed-grid loss blows up instead: fit() stops at a NaN/Inf
    grid, _ = built(loss_solver="grid_rk4", **SMALL)
    assert not math.isfinite(float(grid.loss(Explosive())))
    metrics = problem.evaluate(Explosive())
    assert metrics["train_mse"] == metrics["extrap_mse"] == math.inf
    assert metrics["nfe"] > 0


def test_solver_names_are_torchdiffeq_methods():
    assert set(SOLVERS) <= set(TORCHDIFFEQ_SOLVERS)


def test_plot_writes_png(tmp_path):
    problem, model = built(torch.float32, **SMALL)
    path = tmp_path / "ode.png"
    problem.plot(model, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_defaults_follow_torchdiffeq_demo():
    problem = NeuralODE()
    assert (problem.system, problem.n_points, problem.t_end) == ("spiral", 1000, 25.0)
    assert (problem.window, problem.batch, problem.hidden, problem.solver) == (10, 0, 50, "dopri5")
    assert (problem.loss_solver, problem.grid_substeps) == ("grid_rk4", 2)  # compare: 10 min
    assert problem.metric == "extrap_mse" and problem.steps > 0 and problem.lr > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(system="duffing"), "system must be one of ['pendulum', 'spiral', 'vdp'], got 'duff"),
        (dict(solver="rk45"), "solver must be one of ['dopri8', 'dopri5', "),
        (dict(adjoint=1), "adjoint must be a bool, got 1"),
        (dict(adjoint=True, loss_solver="grid_rk4"),
         "adjoint must be False unless loss_solver='odeint', got True"),
        (dict(loss_solver="rk4"), "loss_solver must be one of ['grid_rk4', 'odeint'], got 'rk4'"),
        (dict(batch=-1), "batch must be an integer >= 0, got -1"),
        (dict(max_window=5), "max_window must be an integer >= 10, got 5"),
        (dict(max_window=900), "max_window must be between 2 and the 800 training points"),
        (dict(grow_until=0), "grow_until must be a fraction in (0, 1], got 0"),
        (dict(horizon=0.0), "horizon must be a fraction in (0, 1], got 0.0"),
        (dict(horizon=1.5), "horizon must be a fraction in (0, 1], got 1.5"),
        (dict(horizon_until=True), "horizon_until must be a fraction in (0, 1], got True"),
        (dict(window=1), "window must be an integer >= 2, got 1"),
        (dict(window=801), "window must be between 2 and the 800 training points, got 801"),
        (dict(n_points=2), "n_points must be an integer >= 3, got 2"),
        (dict(rtol=-1e-6), "rtol must be a positive finite number, got -1e-06"),
        (dict(grid_substeps=0), "grid_substeps must be a positive integer, got 0"),
        (dict(t_train=25.0), "t_train must be below t_end = 25.0, got 25.0"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError) as error:
        NeuralODE(**kwargs)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("window, batch", [(10, 0), (7, 0), (2, 0), (10, 5)])
def test_windows_cover_every_training_point(window, batch):
    problem, _ = built(window=window, batch=0)
    starts = (problem._windows(window)[0, :, None, :] == problem.y_true[None]).all(-1)
    starts = starts.float().argmax(-1)  # the index of each window's first state
    covered = torch.zeros(problem.n_train, dtype=torch.bool)
    for start in starts.tolist():
        covered[start : start + window] = True
    assert covered.all() and starts.max() + window == problem.n_train
    assert len(set(starts.tolist())) == len(starts.tolist())


class Linear(nn.Module):
    def forward(self, t, y):
        return -3.0 * y


def test_grid_rk4_is_classic_rk4_and_fourth_order():
    t = torch.linspace(0, 0.5, 6, dtype=F64)
    z = -3.0 * 0.1  # one step of y' = -3 y multiplies y by RK4's stability polynomial
    states = _rk4.grid_rk4(Linear(), torch.ones(2, dtype=F64), t)
    expected = (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24) ** torch.arange(6, dtype=F64)
    torch.testing.assert_close(states, expected[:, None].expand(6, 2), rtol=1e-14, atol=0)
    field = ode_module.Spiral()
    y0 = torch.tensor([[2.0, 0.0], [1.0, 0.5]], dtype=F64)
    reference = torchdiffeq.odeint(
        field, y0, torch.linspace(0, 0.2, 3, dtype=F64), rtol=1e-12, atol=1e-14, method="dopri8"
    )[-1]
    errors = []
    for n in (5, 9, 17):
        ours = _rk4.grid_rk4(field, y0, torch.linspace(0, 0.2, n, dtype=F64))
        errors.append(float((ours[-1] - reference).abs().max()))
    assert 12 < errors[0] / errors[1] < 20 and 12 < errors[1] / errors[2] < 20


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_grid_rk4_loss_is_near_the_accurate_solve(system):
    """At the true field the fixed-grid loss sits far below a trained model's; at the initial
    field it agrees with the accurate adaptive solve's loss to within 2 %."""
    grid, model = built(system=system, loss_solver="grid_rk4")
    accurate, _ = built(system=system, rtol=1e-10, atol=1e-12)
    assert float(grid.loss(grid.true_field)) < 1e-9
    with torch.no_grad():
        assert float(grid.loss(model)) == pytest.approx(float(accurate.loss(model)), rel=2e-2)


def test_neural_field_equals_its_sequential_net():
    _, model = built(**SMALL)
    y = torch.randn(5, 3, 2, dtype=F64)
    torch.testing.assert_close(model(torch.tensor(0.0), y), model.net(y**3))


@pytest.mark.parametrize("system, batch, substeps", [("spiral", 0, 2), ("pendulum", 6, 1),
                                                     ("vdp", 0, 3)])
def test_neural_field_loss_and_gradient_equal_autograd_through_rk4(system, batch, substeps):
    """The hand-written discrete adjoint against autograd through grid_rk4, float64."""
    problem, model = built(system=system, batch=batch, loss_solver="grid_rk4",
                           grid_substeps=substeps, **{
        k: v for k, v in SMALL.items() if k != "batch"})
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    grads, losses = [], []
    for fast in (True, False):
        torch.manual_seed(3)  # the same random windows
        model.zero_grad()
        if fast:
            loss = problem.loss(model)
        else:
            targets = problem._windows(problem.window)
            states = _rk4.grid_rk4(model, targets[0], problem.t[: problem.window], substeps)
            loss = (states - targets).pow(2).mean()
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert losses[0] == pytest.approx(losses[1], rel=1e-13)
    for got, expected in zip(*grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-11, atol=1e-15)


def test_neural_field_loss_passes_gradcheck():
    problem, model = built(n_points=21, t_end=1.0, t_train=0.8, window=4, hidden=3)
    targets = problem._windows(4)
    first, last = model.net[0], model.net[2]
    params = (first.weight, first.bias, last.weight, last.bias)

    def loss(*params):
        return _rk4.FieldRK4Loss.apply(targets, 0.025, 2, True, *params)

    assert torch.autograd.gradcheck(loss, params)


def test_grid_rk4_substeps_refine_the_grid():
    t = torch.linspace(0, 0.6, 4, dtype=F64)
    y0 = torch.ones(3, 2, dtype=F64)
    coarse = _rk4.grid_rk4(Linear(), y0, torch.linspace(0, 0.6, 7, dtype=F64))
    torch.testing.assert_close(_rk4.grid_rk4(Linear(), y0, t, 2), coarse[::2])
