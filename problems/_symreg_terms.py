"""The symbolic regression's model: a sparse library of candidate terms, trained by gradient.

Model (:class:`TermLibrary`): a linear combination of

* monomials of total degree 0..3 in the input variables (fixed features), and
* three banks of ``n_units`` oscillator units per variable ``v``, each unit
  ``envelope(x_v) * (a sin(w x_v) + b cos(w x_v))`` with a learnable frequency ``w``:
  envelope 1 (``waves``), ``x_v`` (``modulated``) and ``exp(-g x_v)`` with a learnable rate ``g``
  (``damped``; ``w = 0`` leaves the pure exponential).

Outer coefficients are stored normalised (feature RMS and target RMS divided out), so every
parameter is O(1). Each bank reads itself out as sympy terms (``basis``), in the order of its
features.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy
import torch
from torch import Tensor, nn

MAX_DEGREE = 3
OMEGA_MAX = 4.0  # initial frequencies are uniform on (0, OMEGA_MAX)
RATE_MAX = 1.0  # initial decay rates are uniform on (0, RATE_MAX)
INIT_COEF = 0.1  # initial normalised coefficients are uniform on (-INIT_COEF, INIT_COEF)


def _monomial_exponents(n_vars: int) -> list[tuple[int, ...]]:
    powers = itertools.product(range(MAX_DEGREE + 1), repeat=n_vars)
    return sorted((p for p in powers if sum(p) <= MAX_DEGREE), key=lambda p: (sum(p), p[::-1]))


def rms(values: Tensor, dim=None) -> Tensor:
    return values.square().mean(dim).sqrt()


def _uniform(shape, like: Tensor, low: float, high: float) -> Tensor:
    return torch.rand(shape, dtype=like.dtype, device=like.device) * (high - low) + low


class Polynomial(nn.Module):
    """Monomials of total degree 0..MAX_DEGREE."""

    def __init__(self, x_train: Tensor, y_scale: Tensor):
        super().__init__()
        exponents = torch.tensor(_monomial_exponents(x_train.shape[1]), dtype=x_train.dtype)
        self.register_buffer("exponents", exponents.to(x_train.device))
        self.register_buffer("coef_scale", y_scale / rms(self.features(x_train), 0))
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
        x_scale = rms(x_train, 0) if envelope == "linear" else torch.ones_like(x_train[0])
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
        y_scale = rms(y_train)
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
