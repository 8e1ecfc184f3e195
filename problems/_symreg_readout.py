"""The symbolic regression's read-out: a sympy expression from a trained :class:`TermLibrary`.

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
"""

from __future__ import annotations

import copy
import itertools
import math
from fractions import Fraction

import numpy as np
import sympy
import torch
from torch import Tensor

from azure_sciml.problems._symreg_terms import Oscillators, Polynomial, TermLibrary, rms

REFIT_ROUNDS = 3
POLISH_ITERS = 100  # L-BFGS iterations of a read-out refit (all constants of the kept terms)
# a read-out simplification may at most double the normalised MSE, or keep it under MSE_FLOOR
# (relative RMS error 1e-4: what float32 training resolves)
MSE_GROWTH = 2.0
MSE_FLOOR = 1e-8
SIMPLIFY_MAX_TERMS = 6


def expression(
    model: TermLibrary, x_train: Tensor, y_train: Tensor, threshold: float, sparsity: float, symbols
) -> sympy.Expr:
    """Read-out: thresholded least squares, then simplifications judged by the objective
    (:func:`simplify`), snapped, simplified (``sympy.latex`` for LaTeX)."""
    readout, coefficients, _ = simplify(model, x_train, y_train, threshold, sparsity)
    pairs = zip(coefficients, readout.basis(symbols), strict=True)
    terms = [snap_constants(sympy.Float(c) * b) for c, b in pairs if c != 0]
    summed = snap_constants(sympy.Add(*terms))
    if len(summed.as_ordered_terms()) > SIMPLIFY_MAX_TERMS:
        return summed  # simplify is slow on long sums and has nothing to gain there
    return snap_constants(sympy.simplify(summed, ratio=1))


def refit(model: TermLibrary, x_train: Tensor, y_train: Tensor, threshold: float) -> np.ndarray:
    """Sequentially thresholded least squares on the training data, from the model's terms."""
    with torch.no_grad():
        features = model.features(x_train).double().cpu().numpy()
        coefficients = model.coefficients().double().cpu().numpy()
    y = y_train.double().cpu().numpy()
    cutoff = threshold * float(np.sqrt(np.mean(y**2)))
    for _ in range(REFIT_ROUNDS):
        keep = np.abs(coefficients) * np.sqrt(np.mean(features**2, 0)) >= cutoff
        coefficients = np.zeros_like(coefficients)
        if keep.any():
            coefficients[keep] = np.linalg.lstsq(features[:, keep], y, rcond=None)[0]
    return coefficients


def simplify(
    model: TermLibrary, x_train: Tensor, y_train: Tensor, threshold: float, sparsity: float
) -> tuple[TermLibrary, np.ndarray, list[str]]:
    """The read-out's terms and constants: a float64 CPU copy of ``model`` and coefficients.

    Start: the terms :func:`refit` keeps. Every constant of the kept terms (outer
    coefficients and the units' frequencies and rates) is refitted by least squares
    (:func:`polish`). Then, greedily, of the simplifications that keep the fit (normalised
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
    x = x_train.detach().to(device="cpu", dtype=torch.float64)
    y = y_train.detach().to(device="cpu", dtype=torch.float64)
    keep = torch.from_numpy(refit(model, x_train, y_train, threshold) != 0)
    if not keep.any():
        return work, np.zeros(len(keep)), []
    best = polish(work, keep, x, y, sparsity)
    log = []
    while keep.sum() > 1:
        trials = [
            (polish(trial, trial_keep, x, y, sparsity), trial, trial_keep, what)
            for trial, trial_keep, what in _candidates(work, keep, best[1], x)
        ]
        limit = MSE_GROWTH * best[2] + MSE_FLOOR
        trials = [t for t in trials if t[0][0] < best[0] and t[0][2] <= limit]
        if not trials:
            break
        best, work, keep, what = min(trials, key=lambda t: t[0][0])
        log.append(what)
    return work, best[1].numpy(), log


def _candidates(work: TermLibrary, keep: Tensor, coefficients: Tensor, x: Tensor):
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
    shares = (coefficients.abs() * rms(features, 0)).tolist()
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


def polish(work: TermLibrary, keep: Tensor, x: Tensor, y: Tensor, sparsity: float):
    """Least-squares refit of the kept terms' constants, in place on ``work`` (frequencies and
    rates by L-BFGS, outer coefficients solved exactly); returns (objective, coefficients,
    normalised MSE)."""
    scale = rms(y)
    inner = [
        p
        for bank in work.banks()
        if isinstance(bank, Oscillators)
        for p in (bank.omega, getattr(bank, "rate", None))
        if p is not None
    ]
    start = [p.clone() for p in inner]

    def solve() -> tuple[Tensor, Tensor]:
        # numpy's lstsq: torch's CPU lstsq (MKL) returns different digits on repeated calls
        # with the same inputs (memory alignment), which made the read-out irreproducible
        features = work.features(x)[:, keep]
        a, b = features.detach().double().cpu().numpy(), y.detach().double().cpu().numpy()
        c = torch.from_numpy(np.linalg.lstsq(a, b, rcond=None)[0])
        return features, c.to(device=features.device, dtype=features.dtype)

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
        share = c_kept.abs() * rms(features, 0) / scale
        objective = after + sparsity * float(share.sqrt().sum())
    return objective, coefficients, after


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
