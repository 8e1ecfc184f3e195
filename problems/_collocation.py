"""Residual-based adaptive distribution (RAD) of PINN collocation points.

Wu, Zhu, Tan, Kartha & Lu, "A comprehensive study of non-adaptive and residual-based adaptive
sampling for physics-informed neural networks" (CMAME 403, 2023), eq. (2): draw the collocation
points from a dense candidate pool with probability

    p(x) ∝ |r(x)|^k / mean(|r|^k) + c

where r is the PDE residual; k = 1, c = 1 are their defaults (k = 0 or a large c gives uniform
sampling back). Urbán, Stefanou & Pons (JCP 2025) re-draw this way every 500 Adam iterations.

The draw is :func:`torch.multinomial` without replacement on torch's global RNG (as DeepXDE's RAD
example draws with ``np.random.choice(..., replace=False)``), so a seeded run is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from azure_sciml.problems._checks import check, check_choice, check_positive_int, is_real

SAMPLINGS = ["rad", "uniform"]  # a PINN's ``sampling`` option (heat, convection, reaction)


def check_resampling(sampling: str, resample_every: int, resample_until: float) -> None:
    """The checks of a PINN's resampling options, one message format for every PINN."""
    check_choice("sampling", sampling, SAMPLINGS)
    check_positive_int("resample_every", resample_every, minimum=0)
    until = resample_until
    check(is_real(until) and 0 < until <= 1, "resample_until", until, "a number in (0, 1]")
    rad_needs = "a positive integer with sampling='rad'"
    check(sampling != "rad" or resample_every > 0, "resample_every", resample_every, rad_needs)


class Resampled:
    """The resampling schedule of a PINN (heat, convection, reaction), from its
    ``resample_every``, ``resample_until``, ``steps`` and ``n_loss_evals``."""

    resample_every: int
    resample_until: float
    steps: int
    n_loss_evals: int

    def _resample_due(self) -> bool:
        """Whether fresh points come before the next loss evaluation: every ``resample_every``
        evaluations (0: never) until ``resample_until`` of the ``steps`` budget."""
        every, done = self.resample_every, self.n_loss_evals
        return every > 0 and 0 < done < self.resample_until * self.steps and done % every == 0

    @property
    def n_resamples(self) -> int:
        """Times fresh points came so far (before evaluation d + 1 for d = every, 2 every, ...
        below ``resample_until · steps``): ``fit`` starts a new Azure stage at each."""
        every, done = self.resample_every, self.n_loss_evals
        if every <= 0 or done < 2:
            return 0
        last = min(done - 1, math.ceil(self.resample_until * self.steps) - 1)
        return max(last // every, 0)


def rad_sample(
    residual: Callable[[Tensor], Tensor],
    candidates: Tensor,
    n: int,
    *,
    k: float = 1.0,
    c: float = 1.0,
) -> Tensor:
    """``n`` rows of ``candidates`` (shape (M, d), M >= n) drawn without replacement with
    probability ∝ ``|residual(candidates)|^k / mean(|.|^k) + c``; returns shape (n, d).

    ``residual`` maps points (M, d) to residuals of M entries (any shape); it may build an
    autograd graph (derivatives by the points), which is dropped here.
    """
    _check(n, candidates, k, c)
    weights = _rad_weights(residual(candidates).detach().reshape(-1), k, c)
    if int((weights > 0).sum()) < n:  # only with c = 0
        raise ValueError(f"c = 0 needs n = {n} candidates with a nonzero residual; use c > 0")
    picked = torch.multinomial(weights.cpu(), n, replacement=False)  # the CPU RNG, any device
    return candidates[picked.to(candidates.device)]


def _rad_weights(residual: Tensor, k: float, c: float) -> Tensor:
    """|r|^k / mean|r|^k + c, in float64; uniform where the residual is zero everywhere."""
    power = residual.double().abs().pow(k)
    mean = power.mean()
    if not torch.isfinite(mean):
        raise FloatingPointError(f"rad_sample: the candidates' residual is not finite ({mean})")
    return (power / mean if mean > 0 else torch.ones_like(power)) + c


def _check(n: int, candidates: Tensor, k: float, c: float) -> None:
    check_positive_int("n", n)
    shape = tuple(candidates.shape)
    check(len(shape) == 2 and shape[0] >= n, "candidates", shape,
          f"of shape (M, d) with M >= n = {n}")
    for name, value in (("k", k), ("c", c)):
        check(is_real(value) and value >= 0, name, value, "a finite number >= 0")
