"""Gradient-based symbolic regression: fit a sparse term library, read out a sympy expression.

Model (:class:`TermLibrary`): a linear combination of

* monomials of total degree 0..3 in the input variables (fixed features), and
* three banks of ``n_units`` oscillator units per variable ``v``, each unit
  ``envelope(x_v) * (a sin(w x_v) + b cos(w x_v))`` with a learnable frequency ``w``:
  envelope 1 (``waves``), ``x_v`` (``modulated``) and ``exp(-g x_v)`` with a learnable rate ``g``
  (``damped``; ``w = 0`` leaves the pure exponential).

Outer coefficients are stored normalised (feature RMS and target RMS divided out), so every
parameter is O(1). Loss: mean squared error over the target's mean square, plus ``sparsity`` times
``sum_k sqrt(s_k)`` where ``s_k`` is term k's RMS over the target's RMS (an L1/2 penalty: unlike L1
it prefers one term to two near-copies sharing the work). The learnable frequencies and rates make
the landscape multi-modal: a unit stuck at a wrong frequency is a local minimum.

Read-out (:meth:`SymbolicRegression.expression`): sequentially thresholded least squares (as in
SINDy) starting from the trained coefficients, with the trained frequencies and rates: drop terms
whose RMS on the training inputs is below ``threshold`` times the target's RMS, refit the others'
outer coefficients, repeat 3 times. Then every constant of the kept terms (frequencies and rates
too) is refitted by least squares, and simplifications are taken greedily while they lower the
training objective without worsening the fit (at most doubling its MSE, or keeping it under 1e-8
of the target's mean square): drop a term, or merge two units of one bank whose rates or
frequencies split one term's work between them (a degenerate split, which the L1/2 penalty
disfavours but gradient descent leaves in place). Then snap every constant, sum (units sharing a
basis function merge), simplify, snap again. Rounding rule (:func:`snap`): a constant ``c``
becomes the closest fraction ``p/q`` with ``q <= 10`` if ``|c - p/q| <= 0.02 * max(1, |c|)``,
else it is kept to 3 significant digits. All ground truths use rational constants with
denominators <= 10. ``recovered`` is 1.0 when ``sympy.simplify(read-out - truth) == 0``.

Defaults: ``target="damped_oscillation"``, 256 training and 1024 held-out points (uniform on the
target's domain, noise-free; ``noise`` adds Gaussian noise of that fraction of the target's RMS to
the training targets), ``n_units=2``, ``sparsity=1e-3``, ``threshold=0.03``, ``steps=6000``,
``lr=0.01``. Metrics: ``test_rmse`` (model on held-out points, headline), ``r2``, ``expr_rmse``
(read-out expression on held-out points), ``recovered``, ``complexity`` (``sympy.count_ops`` of the
read-out) and ``expression`` (the read-out as a string, not a float).

Targets: Nguyen-1 (Uy et al., Genet. Program. Evolvable Mach. 12, 2011); ``x sin x`` and the
Fourier square-wave partial sum (classic SR test functions); a damped oscillation and RC charging
(textbook physics); Feynman I.14.4 spring energy (Udrescu & Tegmark, Sci. Adv. 6, 2020).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy
import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_real,
)


@dataclass(frozen=True)
class Target:
    """A ground-truth formula (sympy syntax), its variables, sampling box and provenance."""

    formula: str
    variables: tuple[str, ...]
    domain: tuple[tuple[float, float], ...]
    source: str

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(sympy.Symbol(name, real=True) for name in self.variables)

    @property
    def truth(self) -> sympy.Expr:
        return sympy.sympify(
            self.formula, locals=dict(zip(self.variables, self.symbols, strict=True))
        )


TARGETS: dict[str, Target] = {
    "nguyen1": Target("x**3 + x**2 + x", ("x",), ((-1.0, 1.0),), "Nguyen-1"),
    "x_sin_x": Target("x*sin(x)", ("x",), ((-5.0, 5.0),), "classic SR test function"),
    "square_wave": Target(
        "sin(x) + sin(3*x)/3", ("x",), ((-math.pi, math.pi),), "square wave, 2 Fourier terms"
    ),
    "damped_oscillation": Target(
        "exp(-t/2)*sin(3*t)", ("t",), ((0.0, 6.0),), "underdamped oscillator"
    ),
    "rc_charging": Target("1 - exp(-t/2)", ("t",), ((0.0, 6.0),), "RC circuit, tau = 2"),
    "spring_energy": Target("k*x**2/2", ("k", "x"), ((1.0, 5.0), (1.0, 5.0)), "Feynman I.14.4"),
}

MAX_DEGREE = 3
OMEGA_MAX = 4.0  # initial frequencies are uniform on (0, OMEGA_MAX)
RATE_MAX = 1.0  # initial decay rates are uniform on (0, RATE_MAX)
INIT_COEF = 0.1  # initial normalised coefficients are uniform on (-INIT_COEF, INIT_COEF)
SPARSITY_EPS = 1e-8  # smooths sqrt at 0
REFIT_ROUNDS = 3
POLISH_ITERS = 100  # L-BFGS iterations of a read-out refit (all constants of the kept terms)
# a read-out simplification may at most double the normalised MSE, or keep it under MSE_FLOOR
# (relative RMS error 1e-4: what float32 training resolves)
MSE_GROWTH = 2.0
MSE_FLOOR = 1e-8
SIMPLIFY_MAX_TERMS = 6


def snap(value: float, max_denominator: int = 10, tol: float = 0.02) -> sympy.Number:
    """Closest p/q (q <= max_denominator) within tol * max(1, |value|); else 3 digits."""
    if not math.isfinite(value):
        return sympy.Float(value)
    fraction = Fraction(value).limit_denominator(max_denominator)
    if abs(value - fraction) <= tol * max(1.0, abs(value)):
        return sympy.Rational(fraction.numerator, fraction.denominator)
    return sympy.Float(float(f"{value:.3g}"), 3)


def snap_constants(expr: sympy.Expr) -> sympy.Expr:
    """Apply :func:`snap` to every floating-point constant in ``expr``."""
    return expr.xreplace({c: snap(float(c)) for c in expr.atoms(sympy.Float)})


def is_recovered(expr: sympy.Expr, truth: sympy.Expr, symbols, domain) -> bool:
    """Whether ``expr`` equals ``truth`` symbolically (after a cheap numerical pre-check)."""
    points = _grid(domain, 7)
    f = sympy.lambdify(symbols, expr - truth, "numpy")
    scale = 1.0 + np.abs(sympy.lambdify(symbols, truth, "numpy")(*points))
    if not np.all(np.abs(f(*points)) <= 1e-6 * scale):
        return False
    return sympy.simplify(expr - truth) == 0


def _grid(domain, n: int) -> list[np.ndarray]:
    axes = [np.linspace(lo, hi, n) for lo, hi in domain]
    return [g.ravel() for g in np.meshgrid(*axes, indexing="ij")]


def _monomial_exponents(n_vars: int) -> list[tuple[int, ...]]:
    powers = itertools.product(range(MAX_DEGREE + 1), repeat=n_vars)
    return sorted((p for p in powers if sum(p) <= MAX_DEGREE), key=lambda p: (sum(p), p[::-1]))


def _rms(values: Tensor, dim=None) -> Tensor:
    return values.square().mean(dim).sqrt()


def _uniform(shape, like: Tensor, low: float, high: float) -> Tensor:
    return torch.rand(shape, dtype=like.dtype, device=like.device) * (high - low) + low


class Polynomial(nn.Module):
    """Monomials of total degree 0..MAX_DEGREE."""

    def __init__(self, x_train: Tensor, y_scale: Tensor):
        super().__init__()
        exponents = torch.tensor(_monomial_exponents(x_train.shape[1]), dtype=x_train.dtype)
        self.register_buffer("exponents", exponents.to(x_train.device))
        self.register_buffer("coef_scale", y_scale / _rms(self.features(x_train), 0))
        self.coef = nn.Parameter(_uniform(self.coef_scale.shape, x_train, -INIT_COEF, INIT_COEF))

    def features(self, x: Tensor) -> Tensor:
        return (x[:, None, :] ** self.exponents).prod(-1)

    def coefficients(self) -> Tensor:
        return self.coef * self.coef_scale

    def basis(self, symbols) -> list[sympy.Expr]:
        rows = self.exponents.int().tolist()
        return [sympy.Mul(*(s**e for s, e in zip(symbols, row, strict=True))) for row in rows]


class Oscillators(nn.Module):
    """Units ``envelope(x_v) * (a sin(w x_v) + b cos(w x_v))``, ``n_units`` per input variable.

    Features are ordered (variable, unit, sin/cos); ``envelope`` is "one", "linear" or "exp".
    """

    def __init__(self, envelope: str, n_units: int, x_train: Tensor, y_scale: Tensor):
        super().__init__()
        shape = (x_train.shape[1], n_units)
        self.envelope = envelope
        self.omega = nn.Parameter(_uniform(shape, x_train, 0.0, OMEGA_MAX))
        if envelope == "exp":
            self.rate = nn.Parameter(_uniform(shape, x_train, 0.0, RATE_MAX))
        self.coef = nn.Parameter(_uniform((*shape, 2), x_train, -INIT_COEF, INIT_COEF))
        x_scale = _rms(x_train, 0) if envelope == "linear" else torch.ones_like(x_train[0])
        self.register_buffer(
            "coef_scale", (y_scale / x_scale)[:, None, None].expand_as(self.coef).clone()
        )

    def features(self, x: Tensor) -> Tensor:
        phase = x[:, :, None] * self.omega
        waves = torch.stack((torch.sin(phase), torch.cos(phase)), -1)
        return (self._envelope(x)[..., None] * waves).flatten(1)

    def _envelope(self, x: Tensor) -> Tensor:
        if self.envelope == "linear":
            return x[:, :, None].expand(-1, -1, self.omega.shape[1])
        if self.envelope == "exp":
            return torch.exp((-x[:, :, None] * self.rate).clamp(max=30.0))
        return torch.ones_like(x[:, :, None]).expand(-1, -1, self.omega.shape[1])

    def coefficients(self) -> Tensor:
        return (self.coef * self.coef_scale).flatten()

    def basis(self, symbols) -> list[sympy.Expr]:
        omegas = self.omega.detach().tolist()
        rates = self.rate.detach().tolist() if self.envelope == "exp" else None
        basis = []
        for v, k in np.ndindex(*self.omega.shape):
            x = symbols[v]
            envelope = {"one": sympy.Integer(1), "linear": x}.get(self.envelope)
            if rates is not None:
                envelope = sympy.exp(-sympy.Float(rates[v][k]) * x)
            phase = sympy.Float(omegas[v][k]) * x
            basis += [envelope * sympy.sin(phase), envelope * sympy.cos(phase)]
        return basis


class TermLibrary(nn.Module):
    """Linear combination of a :class:`Polynomial` and three :class:`Oscillators` banks."""

    def __init__(self, x_train: Tensor, y_train: Tensor, n_units: int):
        super().__init__()
        y_scale = _rms(y_train)
        self.register_buffer("y_scale", y_scale)
        self.polynomial = Polynomial(x_train, y_scale)
        self.waves = Oscillators("one", n_units, x_train, y_scale)
        self.modulated = Oscillators("linear", n_units, x_train, y_scale)
        self.damped = Oscillators("exp", n_units, x_train, y_scale)

    def banks(self) -> tuple[Polynomial | Oscillators, ...]:
        return (self.polynomial, self.waves, self.modulated, self.damped)

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([bank.features(x) for bank in self.banks()], 1)

    def coefficients(self) -> Tensor:
        return torch.cat([bank.coefficients() for bank in self.banks()])

    def basis(self, symbols) -> list[sympy.Expr]:
        return [term for bank in self.banks() for term in bank.basis(symbols)]

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x) @ self.coefficients()


class SymbolicRegression:
    """Recover a known formula from samples with a sparse, gradient-trained term library."""

    metric = "test_rmse"

    def __init__(
        self,
        target: str = "damped_oscillation",
        n_train: int = 256,
        n_test: int = 1024,
        noise: float = 0.0,
        n_units: int = 2,
        sparsity: float = 1e-3,
        threshold: float = 0.03,
        steps: int = 6000,
        lr: float = 0.01,
    ):
        check_choice("target", target, sorted(TARGETS))
        check_positive_int("n_train", n_train, minimum=8)
        check_positive_int("n_test", n_test)
        check_real("noise", noise, 0.0, math.inf, closed_low=True)
        check_positive_int("n_units", n_units)
        check_real("sparsity", sparsity, 0.0, math.inf, closed_low=True)
        check_real("threshold", threshold, 0.0, 1.0, closed_low=True)
        check_positive_int("steps", steps)
        check_positive_float("lr", lr)
        self.target, self.spec = target, TARGETS[target]
        self.n_train, self.n_test, self.noise = int(n_train), int(n_test), float(noise)
        self.n_units, self.sparsity = int(n_units), float(sparsity)
        self.threshold, self.steps, self.lr = float(threshold), int(steps), float(lr)

    def build(self, device: torch.device, dtype: torch.dtype) -> TermLibrary:
        x_train, y_train = self._sample(self.n_train)
        x_test, y_test = self._sample(self.n_test)
        y_train = y_train + self.noise * _rms(y_train) * torch.randn_like(y_train)
        to = {"device": device, "dtype": dtype}
        self.x_train, self.y_train = x_train.to(**to), y_train.to(**to)
        self.x_test, self.y_test = x_test.to(**to), y_test.to(**to)
        return TermLibrary(self.x_train, self.y_train, self.n_units)

    def _sample(self, n: int) -> tuple[Tensor, Tensor]:
        low, high = torch.tensor(self.spec.domain, dtype=torch.float64).T
        x = low + (high - low) * torch.rand(n, len(low), dtype=torch.float64)
        return x, torch.from_numpy(self._truth_numpy(x.numpy()))

    def _truth_numpy(self, x: np.ndarray) -> np.ndarray:
        f = sympy.lambdify(self.spec.symbols, self.spec.truth, "numpy")
        return np.broadcast_to(f(*x.T), x.shape[:1]).astype(np.float64)

    def loss(self, model: TermLibrary) -> Tensor:
        features, coefficients = model.features(self.x_train), model.coefficients()
        residual = (features @ coefficients - self.y_train) / model.y_scale
        feature_rms = features.square().mean(0).add(SPARSITY_EPS).sqrt()
        share = coefficients.abs() * feature_rms / model.y_scale
        penalty = (share + SPARSITY_EPS).sqrt().sum() - len(share) * SPARSITY_EPS**0.5
        return residual.square().mean() + self.sparsity * penalty

    def expression(self, model: TermLibrary) -> sympy.Expr:
        """Read-out: thresholded least squares, then simplifications judged by the objective
        (:meth:`_simplify`), snapped, simplified (``sympy.latex`` for LaTeX)."""
        readout, coefficients, _ = self._simplify(model)
        pairs = zip(coefficients, readout.basis(self.spec.symbols), strict=True)
        terms = [snap_constants(sympy.Float(c) * b) for c, b in pairs if c != 0]
        summed = snap_constants(sympy.Add(*terms))
        if len(summed.as_ordered_terms()) > SIMPLIFY_MAX_TERMS:
            return summed  # simplify is slow on long sums and has nothing to gain there
        return snap_constants(sympy.simplify(summed, ratio=1))

    def _refit(self, model: TermLibrary) -> np.ndarray:
        """Sequentially thresholded least squares on the training data, from the model's terms."""
        with torch.no_grad():
            features = model.features(self.x_train).double().cpu().numpy()
            coefficients = model.coefficients().double().cpu().numpy()
        y = self.y_train.double().cpu().numpy()
        cutoff = self.threshold * float(np.sqrt(np.mean(y**2)))
        for _ in range(REFIT_ROUNDS):
            keep = np.abs(coefficients) * np.sqrt(np.mean(features**2, 0)) >= cutoff
            coefficients = np.zeros_like(coefficients)
            if keep.any():
                coefficients[keep] = np.linalg.lstsq(features[:, keep], y, rcond=None)[0]
        return coefficients

    def _simplify(self, model: TermLibrary) -> tuple[TermLibrary, np.ndarray, list[str]]:
        """The read-out's terms and constants: a float64 CPU copy of ``model`` and coefficients.

        Start: the terms :meth:`_refit` keeps. Every constant of the kept terms (outer
        coefficients and the units' frequencies and rates) is refitted by least squares
        (:meth:`_polish`). Then, greedily, of the simplifications that keep the fit (normalised
        MSE at most ``MSE_GROWTH`` times the current one, or under ``MSE_FLOOR``) the one that
        lowers the training objective (normalised MSE + ``sparsity * sum sqrt(share)``, at
        least-squares constants) most is taken, until none is left. Candidates: drop one term (a
        monomial or a whole unit; the others' refit can take over its work), or merge two kept
        units of one bank and variable (one unit at their share-weighted frequency and rate
        replaces both). A degenerate split of one term into near-copies (close rates sharing its
        amplitude) merges back at no cost in MSE; a genuine pair of terms costs MSE when merged
        and stays. No knowledge of the target is used. Returns the copy, its coefficients and a
        log of the simplifications taken.
        """
        work = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
        for param in work.parameters():
            param.requires_grad_(False)
        x = self.x_train.detach().to(device="cpu", dtype=torch.float64)
        y = self.y_train.detach().to(device="cpu", dtype=torch.float64)
        keep = torch.from_numpy(self._refit(model) != 0)
        if not keep.any():
            return work, np.zeros(len(keep)), []
        best = self._polish(work, keep, x, y)
        log = []
        while keep.sum() > 1:
            trials = [
                (self._polish(trial, trial_keep, x, y), trial, trial_keep, what)
                for trial, trial_keep, what in self._candidates(work, keep, best[1], x)
            ]
            limit = MSE_GROWTH * best[2] + MSE_FLOOR
            trials = [t for t in trials if t[0][0] < best[0] and t[0][2] <= limit]
            if not trials:
                break
            best, work, keep, what = min(trials, key=lambda t: t[0][0])
            log.append(what)
        return work, best[1].numpy(), log

    def _candidates(self, work: TermLibrary, keep: Tensor, coefficients: Tensor, x: Tensor):
        """Simplifications of the kept terms: (model copy, kept mask, description) each."""
        units, offset = [], 0
        for bank in work.banks():
            n = len(bank.coefficients())
            if isinstance(bank, Polynomial):
                for i in range(n):
                    if keep[offset + i]:
                        mask = torch.zeros_like(keep)
                        mask[offset + i] = True
                        yield copy.deepcopy(work), keep & ~mask, f"drop monomial {i}"
            else:
                n_units = bank.omega.shape[1]
                for v, k in np.ndindex(*bank.omega.shape):
                    mask = torch.zeros_like(keep)
                    start = offset + 2 * (v * n_units + k)
                    mask[start : start + 2] = True
                    if (keep & mask).any():
                        units.append((bank, v, k, mask))
                        yield (
                            copy.deepcopy(work),
                            keep & ~mask,
                            f"drop {bank.envelope} unit {v},{k}",
                        )
            offset += n
        features = work.features(x)
        shares = (coefficients.abs() * _rms(features, 0)).tolist()
        for (bank, v, k, mask_a), (bank_b, v_b, k_b, mask_b) in itertools.combinations(units, 2):
            if bank is not bank_b or v != v_b:
                continue
            weight_a = sum(s for s, m in zip(shares, mask_a.tolist(), strict=True) if m)
            weight_b = sum(s for s, m in zip(shares, mask_b.tolist(), strict=True) if m)
            trial = copy.deepcopy(work)
            trial_bank = trial.banks()[work.banks().index(bank)]
            names = ("omega", "rate") if bank.envelope == "exp" else ("omega",)
            for name in names:
                values = getattr(trial_bank, name)
                values[v, k] = (weight_a * values[v, k] + weight_b * values[v, k_b]) / (
                    weight_a + weight_b
                )
            both = keep & (mask_a | mask_b)
            merged = torch.zeros_like(keep)
            merged[mask_a] = both[mask_a] | both[mask_b]
            yield (
                trial,
                (keep & ~mask_a & ~mask_b) | merged,
                f"merge {bank.envelope} units {k},{k_b}",
            )

    def _polish(self, work: TermLibrary, keep: Tensor, x: Tensor, y: Tensor):
        """Least-squares refit of the kept terms' constants, in place on ``work`` (frequencies and
        rates by L-BFGS, outer coefficients solved exactly); returns (objective, coefficients,
        normalised MSE)."""
        scale = _rms(y)
        inner = [
            p
            for bank in work.banks()
            if isinstance(bank, Oscillators)
            for p in (bank.omega, getattr(bank, "rate", None))
            if p is not None
        ]
        start = [p.clone() for p in inner]

        def solve() -> tuple[Tensor, Tensor]:
            features = work.features(x)[:, keep]
            return features, torch.linalg.lstsq(features, y[:, None]).solution[:, 0]

        def mse() -> float:
            with torch.no_grad():
                features, c = solve()
                return float(((features @ c - y) / scale).square().mean())

        before = mse()
        with torch.no_grad():
            c = solve()[1].clone()
        c.requires_grad_(True)
        for p in inner:
            p.requires_grad_(True)
        opt = torch.optim.LBFGS(
            inner + [c],
            max_iter=POLISH_ITERS,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-16,
        )

        def closure() -> Tensor:
            opt.zero_grad()
            value = ((work.features(x)[:, keep] @ c - y) / scale).square().mean()
            value.backward()
            return value

        opt.step(closure)
        for p in inner:
            p.requires_grad_(False)
        after = mse()
        if not after <= before:  # keep the start's constants when the refit did not help
            with torch.no_grad():
                for p, p0 in zip(inner, start, strict=True):
                    p.copy_(p0)
            after = before
        with torch.no_grad():
            features, c_kept = solve()
            coefficients = torch.zeros(len(keep), dtype=torch.float64)
            coefficients[keep] = c_kept
            share = c_kept.abs() * _rms(features, 0) / scale
            objective = after + self.sparsity * float(share.sqrt().sum())
        return objective, coefficients, after

    def evaluate(self, model: TermLibrary) -> dict[str, float]:
        error = model(self.x_test) - self.y_test
        variance = (self.y_test - self.y_test.mean()).square().mean()
        expr = self.expression(model)
        spec = self.spec
        return {
            "test_rmse": float(_rms(error)),
            "r2": float(1 - error.square().mean() / variance),
            "expr_rmse": self._expr_rmse(expr),
            "recovered": float(is_recovered(expr, spec.truth, spec.symbols, spec.domain)),
            "complexity": float(sympy.count_ops(expr)),
            "expression": str(expr),
        }

    def _expr_rmse(self, expr: sympy.Expr) -> float:
        x = self.x_test.detach().cpu().double().numpy()
        f = sympy.lambdify(self.spec.symbols, expr, "numpy")
        predicted = np.broadcast_to(f(*x.T), x.shape[:1])
        y = self.y_test.detach().cpu().double().numpy()
        return float(np.sqrt(np.mean(np.square(predicted - y))))

    def plot(self, model: TermLibrary, path) -> None:
        from matplotlib.figure import Figure

        with torch.no_grad():
            predicted = model(self.x_test).cpu().numpy()
            expr = self.expression(model)
        x, y = self.x_test.cpu().numpy(), self.y_test.cpu().numpy()
        fig = Figure(figsize=(6, 4))  # no pyplot: no global backend or figure registry
        ax = fig.add_subplot()
        if x.shape[1] == 1:
            order = np.argsort(x[:, 0])
            ax.plot(x[order, 0], y[order], "k-", lw=2, label=f"truth: {self.spec.truth}")
            ax.plot(x[order, 0], predicted[order], "C1--", label="model")
            ax.plot(
                self.x_train.cpu().numpy()[:, 0],
                self.y_train.cpu().numpy(),
                "C0.",
                ms=3,
                label="training data",
            )
            ax.set_xlabel(self.spec.variables[0])
            ax.set_ylabel("value")
        else:
            ax.plot(y, predicted, "C1.", ms=3, label="model")
            ax.plot([y.min(), y.max()], [y.min(), y.max()], "k-", label=f"truth: {self.spec.truth}")
            ax.set_xlabel("true value")
            ax.set_ylabel("prediction")
        ax.set_title(f"read-out: {expr}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
