"""The quasi-Newton matrices of :class:`azure_sciml.BFGS`: the dense inverse-Hessian update of the
self-scaled Broyden family, and the limited-memory form's two-loop recursion.

The dense ``H`` (``n x n``, ``H_0 = I``) is updated after each step ``s = x_new - x``,
``y = g_new - g`` of length ``t`` along ``d = -H g`` by the self-scaled Broyden family (Al-Baali,
J. Optim. Theory Appl. 96 (1998) 533-553; the notation of Urbán et al., Sec. 3)::

    rho = 1 / y's,   h = rho y'Hy,   b = -t rho s'g,   a = b h - 1 (>= 0),   v = rho s - Hy / y'Hy
    H_new = (H - Hy y'H / y'Hy + phi y'Hy v v') / tau + rho s s'

- ``update="bfgs"``: ``phi = 1, tau = 1``, the BFGS update (scipy's ``minimize(method="BFGS")``).
- ``update="ssbfgs"``: ``phi = 1, tau = min(1, 1/b)``: Al-Baali's self-scaled BFGS (SSBFGS).
- ``update="ssbroyden"``: the self-scaled Broyden update (SSBroyden) of Urbán et al. and Kiyani
  et al. (their code's ``SSBroyden2``)::

      rho_m = min(1, h (1 - sqrt(a / (1 + a)))),  theta_m = (rho_m - 1) / a,  theta_p = 1 / rho_m
      theta = max(theta_m, min(theta_p, (1 - b) / b)),  sigma = 1 + a theta
      tau = min(min(1, 1/b) |sigma|^(1/(1-n)), sigma)    if theta <= 0
            min(1, 1/b) min(|sigma|^(1/(1-n)), 1/theta)  otherwise
      phi = (1 - theta) / (1 + a theta)

  (``a = 0``, where every member of the family coincides: ``theta = 0``, SSBFGS's ``tau``).

The limited-memory form (above ``BFGS``'s ``max_dense``) keeps the last pairs ``(s, y)`` and
applies their BFGS matrix with ``H_0 = (s'y / y'y) I`` by the two-loop recursion (Nocedal &
Wright, Numerical Optimization, Alg. 7.4).
"""

from __future__ import annotations

import math

from torch import Tensor


def inverse_update(H: Tensor, s: Tensor, y: Tensor, g: Tensor, t: float, update: str) -> None:
    """The self-scaled Broyden-family update of ``H`` in place (module docstring): ``s`` the step,
    ``y`` the gradient change, ``g`` the gradient at the step's start, ``t`` its length."""
    rho = 1.0 / float(y.dot(s))
    Hy = H @ y
    yHy = float(y.dot(Hy))
    if update == "bfgs":
        phi, tau = 1.0, 1.0
    else:
        b = -t * rho * float(s.dot(g))
        phi, tau = _scaling(update, b, rho * yHy, H.shape[0])
    v = rho * s - Hy / yHy
    H.addr_(Hy, Hy, alpha=-1.0 / yHy)
    if phi != 0.0:
        H.addr_(v, v, alpha=phi * yHy)
    if tau != 1.0:
        H.div_(tau)
    H.addr_(s, s, alpha=rho)


def _scaling(update: str, b: float, h: float, n: int) -> tuple[float, float]:
    """(phi, tau) of SSBFGS or SSBroyden from b and h (module docstring)."""
    rho_kk = min(1.0, 1.0 / b)
    a = max(b * h - 1.0, 0.0)
    if update == "ssbfgs" or a < 1e-12:
        return 1.0, rho_kk
    rho_m = min(1.0, h * (1.0 - math.sqrt(a / (1.0 + a))))
    theta_m, theta_p = (rho_m - 1.0) / a, 1.0 / rho_m
    theta = max(theta_m, min(theta_p, (1.0 - b) / b))
    sigma = 1.0 + a * theta
    root = abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else 1.0
    tau = min(rho_kk * root, sigma) if theta <= 0 else rho_kk * min(root, 1.0 / theta)
    return (1.0 - theta) / (1.0 + a * theta), tau


def two_loop(
    s_list: list[Tensor], y_list: list[Tensor], g: Tensor, gamma: float,
    ys: list[float] | None = None,
) -> Tensor:
    """H g of the limited-memory BFGS matrix with H_0 = gamma I (``ys``: the pairs' y's, if the
    caller keeps them)."""
    if ys is None:
        ys = [float(y.dot(s)) for s, y in zip(s_list, y_list, strict=True)]
    q = g.clone()
    alphas = []
    for s, y, sy in zip(reversed(s_list), reversed(y_list), reversed(ys), strict=True):
        alpha = float(s.dot(q)) / sy
        q.add_(y, alpha=-alpha)
        alphas.append(alpha)
    q.mul_(gamma)
    for s, y, sy, alpha in zip(s_list, y_list, ys, reversed(alphas), strict=True):
        beta = float(y.dot(q)) / sy
        q.add_(s, alpha=alpha - beta)
    return q
