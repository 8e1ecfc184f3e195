"""Gradient-based symbolic regression: fit a sparse term library, read out a sympy expression.

Model: a linear combination of monomials and of oscillator units with learnable frequencies and
decay rates (:class:`TermLibrary`, :mod:`azure_sciml.problems._symreg_terms`). Read-out: thresholded
least squares, simplifications judged by the training objective, constants snapped to small
fractions (:meth:`SymbolicRegression.expression`, :mod:`azure_sciml.problems._symreg_readout`);
``recovered`` is 1.0 when ``sympy.simplify(read-out - truth) == 0``.

Outer coefficients are stored normalised (feature RMS and target RMS divided out), so every
parameter is O(1). Loss: mean squared error over the target's mean square, plus ``sparsity`` times
``sum_k sqrt(s_k)`` where ``s_k`` is term k's RMS over the target's RMS (an L1/2 penalty: unlike L1
it prefers one term to two near-copies sharing the work). The learnable frequencies and rates make
the landscape multi-modal: a unit stuck at a wrong frequency is a local minimum.

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

import math
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from torch import Tensor

from azure_sciml.problems import _symreg_readout as readout
from azure_sciml.problems._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_real,
)
from azure_sciml.problems._symreg_readout import (  # noqa: F401  (snap, snap_constants: API)
    is_recovered,
    snap,
    snap_constants,
)
from azure_sciml.problems._symreg_terms import TermLibrary, rms


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

SPARSITY_EPS = 1e-8  # smooths sqrt at 0


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
        y_train = y_train + self.noise * rms(y_train) * torch.randn_like(y_train)
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
        return readout.expression(
            model, self.x_train, self.y_train, self.threshold, self.sparsity, self.spec.symbols
        )

    def _refit(self, model: TermLibrary) -> np.ndarray:
        """Sequentially thresholded least squares on the training data (:func:`readout.refit`)."""
        return readout.refit(model, self.x_train, self.y_train, self.threshold)

    def _simplify(self, model: TermLibrary) -> tuple[TermLibrary, np.ndarray, list[str]]:
        """The read-out's terms, constants and simplifications taken (:func:`readout.simplify`)."""
        return readout.simplify(model, self.x_train, self.y_train, self.threshold, self.sparsity)

    def _polish(self, work: TermLibrary, keep: Tensor, x: Tensor, y: Tensor):
        """Least-squares refit of the kept terms' constants (:func:`readout.polish`)."""
        return readout.polish(work, keep, x, y, self.sparsity)

    def evaluate(self, model: TermLibrary) -> dict[str, float]:
        error = model(self.x_test) - self.y_test
        variance = (self.y_test - self.y_test.mean()).square().mean()
        expr = self.expression(model)
        spec = self.spec
        return {
            "test_rmse": float(rms(error)),
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
