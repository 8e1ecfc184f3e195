import functools

import numpy as np
import pytest
import sympy
import torch

from azure_sciml.problems.symreg import (
    TARGETS,
    SymbolicRegression,
    Target,
    TermLibrary,
    is_recovered,
    snap,
    snap_constants,
)
from azure_sciml.train import fit

CPU = torch.device("cpu")
t, x = sympy.symbols("t x", real=True)


def build(target: str, seed: int = 0, dtype=torch.float64, **kwargs):
    problem = SymbolicRegression(target=target, **kwargs)
    torch.manual_seed(seed)
    return problem, problem.build(CPU, dtype)


def recovered(target: str, expr) -> bool:
    spec = TARGETS[target]
    return is_recovered(expr, spec.truth, spec.symbols, spec.domain)


def set_unit(bank, unit: int, omega: float, sin=0.0, cos=0.0, rate=None, var: int = 0) -> None:
    bank.omega[var, unit] = omega
    if rate is not None:
        bank.rate[var, unit] = rate
    bank.coef[var, unit] = torch.tensor([sin, cos]) / bank.coef_scale[var, unit]


def set_monomial(model: TermLibrary, exponents: tuple[int, ...], value: float) -> None:
    poly = model.polynomial
    (index,) = [i for i, row in enumerate(poly.exponents.tolist()) if tuple(row) == exponents]
    poly.coef[index] = value / poly.coef_scale[index]


TRUTH_BY_HAND = {
    "nguyen1": lambda m: [set_monomial(m, (d,), 1.0) for d in (1, 2, 3)],
    "x_sin_x": lambda m: set_unit(m.modulated, 1, omega=1.0, sin=1.0),
    "square_wave": lambda m: [set_unit(m.waves, 0, 3.0, sin=1 / 3), set_unit(m.waves, 1, 1.0, 1.0)],
    "damped_oscillation": lambda m: set_unit(m.damped, 0, omega=3.0, rate=0.5, sin=1.0),
    "rc_charging": lambda m: [
        set_monomial(m, (0,), 1.0),
        set_unit(m.damped, 1, omega=0.0, rate=0.5, cos=-1.0),
    ],
    "spring_energy": lambda m: set_monomial(m, (1, 2), 0.5),
}


def model_set_to_truth(target: str, **kwargs):
    problem, model = build(target, **kwargs)
    with torch.no_grad():
        for bank in model.banks():
            bank.coef.zero_()
        TRUTH_BY_HAND[target](model)
    return problem, model


def test_every_target_has_a_hand_set_truth():
    assert set(TRUTH_BY_HAND) == set(TARGETS)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_ground_truth_counts_as_recovered(target):
    assert recovered(target, TARGETS[target].truth)


@pytest.mark.parametrize(
    "target, wrong",
    [
        ("x_sin_x", x * sympy.sin(2 * x)),
        ("x_sin_x", x * sympy.sin(x) + sympy.Rational(1, 100)),
        ("damped_oscillation", sympy.exp(-t / 3) * sympy.sin(3 * t)),
        ("nguyen1", x**3 + x**2),
        ("rc_charging", 1 - sympy.exp(-t)),
    ],
)
def test_wrong_expression_is_not_recovered(target, wrong):
    assert not recovered(target, wrong)


def test_constants_that_round_to_the_truth_count():
    close = snap_constants(1.004 * sympy.exp(-0.499 * t) * sympy.sin(3.01 * t))
    assert recovered("damped_oscillation", close)
    too_far = snap_constants(1.004 * sympy.exp(-0.45 * t) * sympy.sin(3.01 * t))
    assert not recovered("damped_oscillation", too_far)


def test_snap_rule():
    assert snap(0.3334) == sympy.Rational(1, 3)
    assert snap(2.96) == 3
    assert snap(-0.0049) == 0
    assert snap(0.077) == pytest.approx(0.077, rel=1e-3) and isinstance(snap(0.077), sympy.Float)
    assert snap(123.45) == pytest.approx(123.0, abs=0.5)  # 3 significant digits


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_readout_of_hand_set_truth_recovers_it(target):
    problem, model = model_set_to_truth(target)
    with torch.no_grad():
        metrics = problem.evaluate(model)
    truth = TARGETS[target].truth
    assert metrics["recovered"] == 1.0
    assert metrics["test_rmse"] < 1e-6 and metrics["expr_rmse"] < 1e-6
    assert metrics["r2"] == pytest.approx(1.0)
    assert sympy.simplify(problem.expression(model) - truth) == 0
    assert metrics["complexity"] == sympy.count_ops(truth)


def test_readout_refits_nearby_parameters_but_not_distant_ones():
    problem, model = model_set_to_truth("damped_oscillation")
    with torch.no_grad():
        set_unit(model.damped, 0, omega=3.03, rate=0.505, sin=0.99)
        assert problem.evaluate(model)["recovered"] == 1.0
        # the read-out's least-squares refit of the kept terms' constants finds the truth's
        set_unit(model.damped, 0, omega=3.2, rate=0.6, sin=1.0)
        assert problem.evaluate(model)["recovered"] == 1.0
        # ... but not from another basin of the frequency
        set_unit(model.damped, 0, omega=0.3, rate=0.5, sin=1.0)
        assert problem.evaluate(model)["recovered"] == 0.0


def test_readout_is_the_same_on_every_call():
    """The read-out's least squares give the same digits on repeated calls (torch's CPU lstsq,
    MKL, did not: its result moved with the inputs' memory alignment)."""
    problem, model = model_set_to_truth("damped_oscillation")
    with torch.no_grad():
        set_unit(model.damped, 0, omega=3.2, rate=0.6, sin=1.0)
    first = problem._simplify(model)
    for _ in range(5):
        again = problem._simplify(model)
        assert again[2] == first[2] and np.array_equal(again[1], first[1])
        assert all(torch.equal(a, b) for a, b in zip(again[0].parameters(), first[0].parameters(),
                                                     strict=True))


def test_readout_does_not_change_the_model():
    problem, model = model_set_to_truth("damped_oscillation")
    with torch.no_grad():
        set_unit(model.damped, 0, omega=3.2, rate=0.6, sin=1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    problem.expression(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_model_loads_its_own_state_dict():  # checkpoints resume (no expanded buffers)
    _, model = build("x_sin_x")
    model.load_state_dict(model.state_dict())


def split_units(bank, omega: float, rates: tuple[float, float], shares: tuple[float, float]):
    for unit, (rate, share) in enumerate(zip(rates, shares, strict=True)):
        set_unit(bank, unit, omega=omega, rate=rate, sin=share)


@pytest.mark.parametrize("rates", [(0.469, 0.522), (0.45, 0.56)])
def test_degenerate_split_of_one_term_reads_out_as_that_term(rates):
    # exp(-t/2) sin(3t) carried by two near-copies with close rates (seen in trained runs)
    problem, model = model_set_to_truth("damped_oscillation")
    with torch.no_grad():
        split_units(model.damped, 3.0, rates, (5 / 8, 3 / 8))
    kept = problem._refit(model) != 0
    assert kept.sum() == 2  # thresholding alone keeps both copies
    with torch.no_grad():
        assert problem.evaluate(model)["recovered"] == 1.0
    assert problem.expression(model) == TARGETS["damped_oscillation"].truth


@pytest.mark.parametrize("second", ["exp(-t)*sin(3*t)/2", "exp(-3*t/2)*sin(3*t)"])
def test_genuine_pair_of_rates_is_not_merged(monkeypatch, second):
    formula = f"exp(-t/2)*sin(3*t) + {second}"
    monkeypatch.setitem(TARGETS, "two_rates", Target(formula, ("t",), ((0.0, 6.0),), "test"))
    problem, model = build("two_rates")
    amplitude = 0.5 if second.endswith("/2") else 1.0
    rate = 1.0 if second.startswith("exp(-t)") else 1.5
    with torch.no_grad():
        for bank in model.banks():
            bank.coef.zero_()
        split_units(model.damped, 3.0, (0.5, rate), (1.0, amplitude))
    _, _, log = problem._simplify(model)
    assert log == []
    with torch.no_grad():
        assert problem.evaluate(model)["recovered"] == 1.0


def test_genuine_pair_survives_a_perturbed_start(monkeypatch):
    formula = "exp(-t/2)*sin(3*t) + exp(-t)*sin(3*t)/2"
    monkeypatch.setitem(TARGETS, "two_rates", Target(formula, ("t",), ((0.0, 6.0),), "test"))
    problem, model = build("two_rates")
    with torch.no_grad():
        for bank in model.banks():
            bank.coef.zero_()
        split_units(model.damped, 3.05, (0.55, 0.9), (0.9, 0.6))
        assert problem.evaluate(model)["recovered"] == 1.0


def test_loss_is_mse_plus_sparsity_penalty():
    problem, model = model_set_to_truth("damped_oscillation", sparsity=0.01)
    with torch.no_grad():
        # one term carrying the whole signal: zero error, penalty sparsity * 1 ** 0.5
        assert float(problem.loss(model)) == pytest.approx(0.01, rel=1e-3)
        model.damped.coef *= 2  # residual = truth: normalised MSE 1, penalty 0.01 * 2 ** 0.5
        assert float(problem.loss(model)) == pytest.approx(1 + 0.01 * 2**0.5, rel=1e-5)


def test_short_adam_run_reduces_the_loss():
    problem = SymbolicRegression(target="x_sin_x")
    result = fit(problem, functools.partial(torch.optim.Adam, lr=problem.lr), seed=0, steps=300)
    assert result.status == "ok"
    assert result.history[-1][1] < 0.5 * result.history[0][1]


def test_same_seed_same_data_and_initial_parameters():
    models = [build("square_wave", seed)[1] for seed in (0, 0, 1)]
    params = [torch.cat([p.flatten() for p in m.parameters()]) for m in models]
    assert torch.equal(params[0], params[1]) and not torch.equal(params[0], params[2])
    p0, p1 = build("spring_energy", 3)[0], build("spring_energy", 3)[0]
    assert torch.equal(p0.x_train, p1.x_train) and torch.equal(p0.y_test, p1.y_test)


def test_noise_is_added_to_training_targets_only():
    clean, noisy = build("x_sin_x")[0], build("x_sin_x", noise=0.1)[0]
    assert torch.equal(clean.x_train, noisy.x_train)
    assert not torch.allclose(clean.y_train, noisy.y_train)
    assert torch.equal(clean.x_test, noisy.x_test) and torch.equal(clean.y_test, noisy.y_test)
    truth = sympy.lambdify(x, TARGETS["x_sin_x"].truth, "numpy")
    assert torch.allclose(noisy.y_test, torch.from_numpy(truth(noisy.x_test[:, 0].numpy())))


@pytest.mark.parametrize("target", ["x_sin_x", "spring_energy"])
def test_metrics_types_and_plot(target, tmp_path):
    problem, model = build(target, dtype=torch.float32)
    with torch.no_grad():
        metrics = problem.evaluate(model)
    assert set(metrics) == {"test_rmse", "r2", "expr_rmse", "recovered", "complexity", "expression"}
    assert all(isinstance(v, float) for k, v in metrics.items() if k != "expression")
    assert isinstance(metrics["expression"], str)
    problem.plot(model, tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 1000


def test_unknown_target_lists_the_choices():
    with pytest.raises(ValueError, match="nguyen1.*'nope'"):
        SymbolicRegression(target="nope")


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_train", 2),
        ("n_test", 0),
        ("noise", -0.1),
        ("n_units", 0),
        ("sparsity", -1.0),
        ("threshold", 1.5),
        ("steps", 0),
        ("lr", 0.0),
    ],
)
def test_bad_arguments_are_rejected(name, value):
    with pytest.raises(ValueError, match=rf"{name}.*{value}"):
        SymbolicRegression(**{name: value})
