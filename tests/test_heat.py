"""Heat PINN: the exact solution scores ~0, a wrong one does not, Adam learns, bad args fail."""

import copy
import functools
import math

import pytest
import torch
from torch import nn

from azure_sciml import Azure, fit
from azure_sciml.problems import heat as heat_module
from azure_sciml.problems.heat import VARIANTS, Heat

CPU, F64 = torch.device("cpu"), torch.float64
SMALL = dict(n_interior=200, n_boundary=20, n_initial=40, n_test_x=33, n_test_t=21)
ADAM_HEAT = functools.partial(torch.optim.Adam, lr=1e-2, foreach=True)
AZURE_HEAT = functools.partial(Azure, lr=1e-2, sa_steps=20, sa_interval=4)


class ExactSolution(nn.Module):
    """u(x, t) from the problem's closed form, plus optionally eps * x (1 - x) t and a constant."""

    def __init__(self, problem: Heat, eps: float = 0.0, shift: float = 0.0):
        super().__init__()
        self.problem, self.eps, self.shift = problem, eps, shift

    def forward(self, xt):
        x, t = xt[:, :1], xt[:, 1:]
        return self.problem.exact(xt) + self.eps * x * (1 - x) * t + self.shift


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_exact_solution_has_zero_error_and_residual(variant):
    problem = Heat(variant=variant, **SMALL)
    problem.build(CPU, F64)
    exact = ExactSolution(problem)
    metrics = problem.evaluate(exact)
    assert metrics["rel_l2"] < 1e-12
    assert metrics["max_abs_err"] < 1e-12
    assert float(problem.loss(exact).detach()) < 1e-20


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_perturbed_solution_is_penalised(variant):
    problem = Heat(variant=variant, **SMALL)
    problem.build(CPU, F64)
    perturbed = ExactSolution(problem, eps=0.1)
    metrics = problem.evaluate(perturbed)
    # max of 0.1 x (1 - x) t on the grid is 0.1 / 4 at x = 1/2, t = 1.
    assert metrics["max_abs_err"] == pytest.approx(0.025, rel=1e-6)
    assert metrics["rel_l2"] > 1e-3
    # residual of the perturbation: x (1 - x) + 2 a t, nonzero everywhere inside.
    assert float(problem.loss(perturbed).detach()) > 1e-3


def test_loss_sums_residual_boundary_and_initial_terms():
    problem = Heat(**SMALL)
    problem.build(CPU, F64)
    shifted = ExactSolution(problem, shift=0.1)
    # a constant shift solves the PDE but misses both boundary and initial values by 0.1
    assert float(problem.loss(shifted).detach()) == pytest.approx(2 * 0.1**2, rel=1e-9)


def test_exact_solution_matches_defaults_and_decays():
    problem = Heat()
    xt = torch.tensor([[0.5, 0.0], [0.5, 1.0], [0.0, 0.3], [1.0, 0.7]], dtype=F64)
    u = problem.exact(xt).squeeze(1)
    expected = [1.0, math.exp(-0.4 * math.pi**2), 0.0, 0.0]
    assert u.tolist() == pytest.approx(expected, abs=1e-12)


def test_multimode_initial_condition_is_the_fourier_sum():
    problem = Heat(variant="multimode")
    x = torch.linspace(0, 1, 7, dtype=F64)[:, None]
    u0 = problem.exact(torch.cat([x, torch.zeros_like(x)], dim=1))
    expected = sum(c * torch.sin(k * math.pi * x) for k, c in VARIANTS["multimode"])
    torch.testing.assert_close(u0, expected)
    assert len(VARIANTS["multimode"]) > 1


def test_points_lie_on_their_sets_and_grid_has_requested_shape():
    problem = Heat(**SMALL)
    problem.build(CPU, torch.float32)
    interior, boundary, initial = problem.interior, problem.boundary, problem.initial
    assert interior.shape == (200, 2) and ((interior >= 0) & (interior <= 1)).all()
    assert boundary.shape == (20, 2) and set(boundary[:, 0].tolist()) == {0.0, 1.0}
    assert initial.shape == (40, 2) and (initial[:, 1] == 0).all()
    assert problem.test_points.shape == (33 * 21, 2)


def test_same_seed_same_points_and_weights():
    def build(seed):
        torch.manual_seed(seed)
        problem = Heat(**SMALL)
        model = problem.build(CPU, torch.float32)
        return problem.interior, next(model.parameters())

    (points_a, weight_a), (points_b, weight_b) = build(3), build(3)
    points_c, _ = build(4)
    assert torch.equal(points_a, points_b) and torch.equal(weight_a, weight_b)
    assert not torch.equal(points_a, points_c)


@pytest.mark.parametrize("every, until, expected", [(0, 1.0, 0), (50, 1.0, 3), (50, 0.5, 1)])
def test_fit_starts_a_new_stage_of_azures_at_each_resampling(every, until, expected):
    """n_resamples counts the fresh draws (before evaluations 51, 101, 151 of 200, those below
    resample_until); fit() calls Azure.new_stage after each, the new stage running to the end."""
    from azure_sciml import Azure

    built = []

    def azure(params):
        built.append(Azure(params, lr=1e-3))
        return built[0]

    problem = Heat(resample_every=every, resample_until=until, steps=200, **SMALL)
    fit(problem, azure, seed=0)
    assert problem.n_resamples == expected
    state = built[0]._controller.state
    assert state.stage == expected
    if expected:  # told after the step that drew them: evaluation 50 k + 1
        assert state.stage_total_steps == 200 - 50 * expected - 1


def test_resampling_draws_new_points_every_n_evaluations():
    torch.manual_seed(0)
    problem = Heat(resample_every=2, **SMALL)
    model = problem.build(CPU, torch.float32)
    seen = []
    for _ in range(4):
        problem.loss(model)
        seen.append(problem.interior.clone())
    assert torch.equal(seen[0], seen[1])
    assert not torch.equal(seen[1], seen[2])
    assert torch.equal(seen[2], seen[3])


def test_rad_puts_the_interior_points_where_the_residual_is_large_and_stops_at_until():
    """sampling='rad': the re-drawn interior points carry a larger mean squared residual than a
    uniform draw of the same size (p ∝ |r| + mean|r|); after resample_until of the budget the
    points stay, so a finisher sees a fixed loss."""
    torch.manual_seed(0)
    problem = Heat(resample_every=2, resample_until=0.5, sampling="rad", steps=8, **SMALL)
    model = problem.build(CPU, torch.float64)
    seen = []
    for _ in range(8):
        problem.loss(model)
        seen.append(problem.interior.clone())
    assert not torch.equal(seen[1], seen[2])  # re-drawn at evaluation 2 (of the first half)
    assert all(torch.equal(seen[3], later) for later in seen[4:])  # none at 4 and later

    def mean_square(points):
        return float(problem.residual(model, points).detach().square().mean())

    uniform = problem._uniform(problem.n_interior, 2)
    assert mean_square(seen[3]) > 1.2 * mean_square(uniform)


def test_resampling_off_keeps_points():
    torch.manual_seed(0)
    problem = Heat(**SMALL)
    model = problem.build(CPU, torch.float32)
    before = problem.interior.clone()
    for _ in range(3):
        problem.loss(model)
    assert torch.equal(before, problem.interior)


@pytest.mark.parametrize("resample_every", [0, 10])
def test_short_adam_run_reduces_loss_and_error(resample_every):
    problem = Heat(resample_every=resample_every, **SMALL)
    adam = functools.partial(torch.optim.Adam, lr=problem.lr)
    untrained = fit(problem, adam, seed=0, steps=1)
    result = fit(problem, adam, seed=0, steps=300)
    first_loss, last_loss = result.history[0][1], result.history[-1][1]
    assert result.status == "ok" and result.n_loss_evals == 300
    assert last_loss < 0.2 * first_loss
    assert result.metrics["rel_l2"] < untrained.metrics["rel_l2"]


def test_fit_is_seed_deterministic_with_resampling():
    problem = Heat(resample_every=3, **SMALL)
    adam = functools.partial(torch.optim.Adam, lr=problem.lr)
    runs = [fit(problem, adam, seed=7, steps=10).history for _ in range(2)]
    assert runs[0] == runs[1]


def test_plot_writes_png(tmp_path):
    torch.manual_seed(0)
    problem = Heat(**SMALL)
    model = problem.build(CPU, torch.float32)
    path = tmp_path / "heat.png"
    problem.plot(model, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_defaults_follow_deepxde():
    problem = Heat()
    counts = (problem.n_interior, problem.n_boundary, problem.n_initial)
    assert counts == (2540, 80, 160)
    assert (problem.n_test_x, problem.n_test_t, problem.diffusivity) == (256, 201, 0.4)
    assert problem.metric == "rel_l2" and problem.steps > 0 and problem.lr > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_interior=0), "n_interior must be a positive integer, got 0"),
        (dict(n_boundary=2.5), "n_boundary must be a positive integer, got 2.5"),
        (dict(width=True), "width must be a positive integer, got True"),
        (dict(steps=-1), "steps must be a positive integer, got -1"),
        (dict(n_test_x=1), "n_test_x must be an integer >= 2, got 1"),
        (dict(resample_every=-5), "resample_every must be an integer >= 0, got -5"),
        (dict(sampling="rad"),
         "resample_every must be a positive integer with sampling='rad', got 0"),
        (dict(resample_until=0.0), "resample_until must be a number in (0, 1], got 0.0"),
        (dict(diffusivity=0.0), "diffusivity must be a positive finite number, got 0.0"),
        (dict(lr=float("nan")), "lr must be a positive finite number, got nan"),
        (dict(variant="square"), "variant must be one of ['multimode', 'sine'], got 'square'"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError) as error:
        Heat(**kwargs)
    assert str(error.value) == message


def test_resumed_run_with_resampling_equals_uninterrupted(tmp_path):
    """The checkpoint carries the resampling position and the current collocation points."""
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    kwargs = dict(**SMALL, resample_every=7)
    reference = fit(Heat(**kwargs), adam, seed=0, steps=30)
    ckpt = tmp_path / "heat.pt"
    fit(Heat(**kwargs), adam, seed=0, steps=17, checkpoint=ckpt, checkpoint_every=5)
    resumed = fit(Heat(**kwargs), adam, seed=0, steps=30, checkpoint=ckpt, resume=True)
    assert resumed.metrics == reference.metrics
    assert resumed.history == reference.history


def _perturbed_model(problem, dtype, seed=1):
    torch.manual_seed(seed)
    model = problem.build(CPU, dtype)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))  # nonzero biases too
    return model


def _loss_and_grads(loss_fn, model):
    model.zero_grad()
    loss = loss_fn(model)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("depth", [1, 3])
def test_fast_loss_and_gradient_equal_nested_autograd_in_float64(variant, depth):
    """The hand-written forward-mode loss and its backward against the nested-autograd residual
    (the ground truth), at parameters away from the initial ones."""
    problem = Heat(variant=variant, depth=depth, width=7, **SMALL)
    model = _perturbed_model(problem, F64)
    assert heat_module.tanh_mlp_layers(model) is not None
    fast, fast_grads = _loss_and_grads(problem.loss, model)
    slow, slow_grads = _loss_and_grads(problem.autograd_loss, model)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-13)
    for got, expected in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_fast_loss_matches_autograd_in_float32_at_the_defaults():
    problem = Heat()
    model = _perturbed_model(problem, torch.float32)
    fast, fast_grads = _loss_and_grads(problem.loss, model)
    slow, slow_grads = _loss_and_grads(problem.autograd_loss, model)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-5)
    for got, expected in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())


def test_fast_loss_passes_gradcheck():
    problem = Heat(width=4, depth=2, n_interior=12, n_boundary=4, n_initial=5)
    model = _perturbed_model(problem, F64)
    linears = heat_module.tanh_mlp_layers(model)
    params = [t for layer in linears for t in (layer.weight, layer.bias)]
    inputs, target, weight = problem._stacked_points()

    def loss(*params):
        return heat_module.MLPHeatLoss.apply(inputs, target, weight, 0.4, None, *params)

    assert torch.autograd.gradcheck(loss, params)


def test_other_models_take_the_autograd_path():
    problem = Heat(**SMALL)
    problem.build(CPU, F64)
    plain = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    others = [
        ExactSolution(problem),
        nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1)),
        nn.Sequential(nn.Linear(2, 5, bias=False), nn.Tanh(), nn.Linear(5, 1)),
        nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 2)),
    ]
    assert heat_module.tanh_mlp_layers(plain) is not None
    assert all(heat_module.tanh_mlp_layers(model) is None for model in others)
    assert problem.loss(ExactSolution(problem)).item() < 1e-20


def test_fast_loss_follows_resampled_and_restored_points():
    """The stacked inputs the fast loss keeps are rebuilt when the points change (a resample, a
    checkpoint's points), so it keeps equal to the autograd loss on the current points."""
    problem = Heat(resample_every=1, **SMALL)
    model = _perturbed_model(problem, F64)
    for _ in range(3):
        fast = problem.loss(model)  # resamples before every evaluation after the first
        assert fast.item() == pytest.approx(problem.autograd_loss(model).item(), rel=1e-13)
    other = Heat(**SMALL)
    torch.manual_seed(5)
    other.build(CPU, F64)
    problem.load_state_dict(other.state_dict())
    problem.resample_every = 0
    assert problem.loss(model).item() == pytest.approx(other.autograd_loss(model).item(), rel=1e-13)


def test_fast_loss_backward_after_a_later_forward_pass():
    """The loss keeps its buffers between calls; a backward whose forward pass was overwritten by
    a later one (two losses built before either backward) still gets its own gradient."""
    problem = Heat(width=7, **SMALL)
    model = _perturbed_model(problem, F64)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.1)
    _, expected = _loss_and_grads(problem.autograd_loss, model)
    model.zero_grad()
    first = problem.loss(model)
    second = problem.loss(other)
    first.backward()
    second.backward()
    for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    grads = [p.grad.clone() for p in other.parameters()]
    _, expected = _loss_and_grads(problem.autograd_loss, other)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("depth", [1, 3])
def test_fast_loss_backward_twice_runs_its_forward_pass_again(depth):
    """The backward pass overwrites its forward pass's buffers (they hold its gradients): a second
    backward of the same loss (retain_graph) runs the forward pass again, the same gradient."""
    problem = Heat(width=7, depth=depth, **SMALL)
    model = _perturbed_model(problem, F64)
    loss = problem.loss(model)
    loss.backward(retain_graph=True)
    first = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    loss.backward()
    for p, want in zip(model.parameters(), first, strict=True):
        assert torch.equal(p.grad, want)


def test_fast_loss_backward_refuses_parameters_changed_since_its_buffers_were_reused():
    problem = Heat(width=7, **SMALL)
    model = _perturbed_model(problem, F64)
    other = copy.deepcopy(model)
    first = problem.loss(model)
    problem.loss(other)  # reuses the buffers the first loss left for its backward
    with torch.no_grad():
        next(model.parameters()).add_(0.1)
    with pytest.raises(RuntimeError, match="modified in place"):
        first.backward()


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("depth", [1, 3])
def test_loss_and_grad_equals_loss_and_backward_bit_for_bit(dtype, depth):
    """fit()'s evaluation without autograd: the same loss and the same .grad tensors (values,
    strides) as loss().backward(), over a few parameter moves and a resample."""
    problem = Heat(depth=depth, width=7, resample_every=2, **SMALL)
    model = _perturbed_model(problem, dtype)
    twin, twin_problem = copy.deepcopy(model), copy.deepcopy(problem)
    for _ in range(4):
        rng = torch.get_rng_state()  # the same fresh points for both
        loss, expected = _loss_and_grads(twin_problem.loss, twin)
        torch.set_rng_state(rng)
        model.zero_grad()
        got = problem.loss_and_grad(model)
        assert not got.requires_grad and torch.equal(got, loss)
        for p, want in zip(model.parameters(), expected, strict=True):
            assert torch.equal(p.grad, want) and p.grad.stride() == want.stride()
        with torch.no_grad():
            for p, q in zip(model.parameters(), twin.parameters(), strict=True):
                step = 0.05 * torch.randn_like(p)
                p.add_(step)
                q.add_(step)
    assert problem.n_loss_evals == twin_problem.n_loss_evals == 4


def test_loss_and_grad_declines_what_it_cannot_do_and_counts_nothing():
    problem = Heat(**SMALL)
    model = problem.build(CPU, F64)
    plain = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1)).double()
    frozen = copy.deepcopy(model)
    frozen[0].bias.requires_grad_(False)
    hooked = copy.deepcopy(model)
    hooked[2].weight.register_hook(lambda grad: grad)
    for other in (plain, frozen, hooked):
        assert problem.loss_and_grad(other) is None
        assert all(p.grad is None for p in other.parameters())
    assert problem.n_loss_evals == 0
    assert problem.loss_and_grad(model) is not None and problem.n_loss_evals == 1


@pytest.mark.parametrize("factory", [ADAM_HEAT, AZURE_HEAT], ids=["adam", "azure"])
def test_fit_with_loss_and_grad_equals_fit_with_backward(factory):
    """fit() evaluates the heat loss through loss_and_grad; a run that cannot (the method hidden)
    takes loss() and backward(): the same run, bit for bit."""

    class Backward(Heat):
        loss_and_grad = None

    runs = [fit(cls(steps=40, **SMALL), factory, seed=1) for cls in (Heat, Backward)]
    assert runs[0].history == runs[1].history
    assert runs[0].metrics == runs[1].metrics and runs[0].best_metrics == runs[1].best_metrics
    for p, q in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert torch.equal(p, q)
