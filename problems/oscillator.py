"""Parameter estimation of a damped oscillator: a fit whose loss is multimodal in the frequency.

The physical model is the underdamped oscillator ``x'' + 2 gamma x' + (omega^2 + gamma^2) x = 0``,
solved in closed form: ``x(t) = A exp(-gamma t) sin(omega t + phi)``. Its four parameters
(``omega`` the damped angular frequency, ``gamma`` the decay rate, ``A`` the amplitude, ``phi``
the phase) are fitted to ``n_train`` noisy samples on ``[0, t_train]``; the noise is Gaussian with
standard deviation ``noise``, drawn from torch's global RNG (which :func:`azure_sciml.fit` seeds),
so a seed fixes the data and the initial guess and every optimizer sees the same ones.

Why it is hard: the least-squares loss as a function of ``omega`` (the other parameters held) has
a local minimum every ~``2 pi / t_train`` (about 0.63 for ``t_train = 10``): a trial frequency
that is wrong by a whole number of cycles over the window lines up with the data again, a little
worse. The initial guess draws ``omega`` uniformly from ``omega_range`` (default ``[1, 20]``, the
truth is 5), so a gradient method started far from the truth settles in one of those ripples.
The amplitude and phase enter almost convexly (``A`` linearly, ``phi`` smoothly); only
``omega`` is worth exploring. ``explore`` says which parameters Azure may move by its random
proposals (:meth:`param_groups`: the rest get ``sigma=0``; :func:`azure_sciml.fit` uses it).

``fixed`` parameters are held at the truth and not fitted (default: ``gamma``, the decay known
from a ring-down measurement). Fitting ``gamma`` too (``fixed=[]``) opens a path around the
ripples: a large decay shortens the window the fit sees, which widens the basins in ``omega``, and
gradient methods take it (measured: docs/algorithm.md, "Where exploring helps on SciML losses").

The model (:class:`DampedOscillator`) holds one scalar ``nn.Parameter`` per physical parameter
(a fixed one with ``requires_grad=False``). Initial guess: ``omega ~ U(omega_range)``,
``gamma = 0``, ``A = std(data) * sqrt(2)`` (the amplitude of an undamped sine of that spread),
``phi ~ U(-pi, pi)``.

Metrics (ground truth known): ``freq_rel_err`` (headline, ``| |omega| - omega* | / omega*``; the
sign of ``omega`` is a symmetry of the model), ``success`` (1 when ``freq_rel_err < tol``, default
1%), ``test_rmse`` (against the noiseless truth on the held-out ``(t_train, t_end]``),
``train_mse`` (the loss) and ``gamma_rel_err``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from azure_sciml.problems._checks import (
    check,
    check_positive_float,
    check_positive_int,
    check_real,
    is_real,
)

PARAMETERS = ("omega", "gamma", "amplitude", "phase")


class DampedOscillator(nn.Module):
    """``A exp(-gamma t) sin(omega t + phi)`` with one scalar parameter each."""

    def __init__(self, omega: float, gamma: float, amplitude: float, phase: float,
                 dtype: torch.dtype = torch.float32, device: torch.device | None = None):
        super().__init__()
        for name, value in zip(PARAMETERS, (omega, gamma, amplitude, phase), strict=True):
            setattr(self, name, nn.Parameter(torch.tensor(value, dtype=dtype, device=device)))

    def forward(self, t: Tensor) -> Tensor:
        return self.amplitude * torch.exp(-self.gamma * t) * torch.sin(self.omega * t + self.phase)


class Oscillator:
    """Fit a damped oscillator's frequency, decay, amplitude and phase (see module docstring)."""

    metric = "freq_rel_err"

    def __init__(
        self,
        *,
        omega_true: float = 5.0,
        gamma_true: float = 0.1,
        amplitude_true: float = 1.0,
        phase_true: float = 0.5,
        t_train: float = 10.0,
        t_end: float = 15.0,
        n_train: int = 200,
        n_test: int = 100,
        noise: float = 0.05,
        omega_range: Sequence[float] = (1.0, 20.0),
        fixed: Sequence[str] = ("gamma",),
        explore: Sequence[str] | None = None,
        tol: float = 0.01,
        steps: int = 2000,
        lr: float = 0.1,
    ):
        for name, value in (("omega_true", omega_true), ("amplitude_true", amplitude_true),
                            ("t_train", t_train), ("noise", noise), ("tol", tol), ("lr", lr)):
            check_positive_float(name, value)
        check_real("gamma_true", gamma_true, 0.0, math.inf, closed_low=True)
        check(is_real(t_end) and t_end > t_train, "t_end", t_end, f"above t_train={t_train}")
        for name, value in (("n_train", n_train), ("n_test", n_test), ("steps", steps)):
            check_positive_int(name, value)
        lo, hi = (float(v) for v in omega_range)
        check(0 < lo < hi, "omega_range", omega_range, "[lo, hi] with 0 < lo < hi")
        unknown = sorted(set(fixed) - set(PARAMETERS))
        check(not unknown and len(fixed) < len(PARAMETERS), "fixed", list(fixed),
              f"a list of {list(PARAMETERS)} that leaves one to fit")
        if explore is not None:
            unknown = sorted(set(explore) - set(PARAMETERS))
            check(bool(explore) and not unknown and not set(explore) & set(fixed), "explore",
                  list(explore), f"null or a non-empty list of fitted parameters (of "
                  f"{list(PARAMETERS)}, not fixed={list(fixed)})")
        self.truth = dict(omega=float(omega_true), gamma=float(gamma_true),
                          amplitude=float(amplitude_true), phase=float(phase_true))
        self.t_train, self.t_end = float(t_train), float(t_end)
        self.n_train, self.n_test, self.noise = n_train, n_test, float(noise)
        self.omega_range = (lo, hi)
        self.fixed = [n for n in PARAMETERS if n in fixed]
        self.explore = None if explore is None else list(explore)
        self.tol, self.steps, self.lr = float(tol), steps, float(lr)
        self.t: Tensor | None = None
        self.y: Tensor | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(omega_true={self.truth['omega']}, "
                f"omega_range={list(self.omega_range)}, fixed={self.fixed}, "
                f"explore={self.explore}, "
                f"steps={self.steps}, lr={self.lr})")

    def true_signal(self, t: Tensor) -> Tensor:
        p = self.truth
        return p["amplitude"] * torch.exp(-p["gamma"] * t) * torch.sin(p["omega"] * t + p["phase"])

    def build(self, device: torch.device, dtype: torch.dtype) -> DampedOscillator:
        t = torch.linspace(0.0, self.t_train, self.n_train, dtype=torch.float64)
        y = self.true_signal(t) + self.noise * torch.randn(self.n_train, dtype=torch.float64)
        lo, hi = self.omega_range
        omega0 = lo + (hi - lo) * float(torch.rand((), dtype=torch.float64))
        phase0 = math.pi * (2.0 * float(torch.rand((), dtype=torch.float64)) - 1.0)
        amplitude0 = float(y.std()) * math.sqrt(2.0)
        self.t, self.y = t.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
        guess = dict(omega=omega0, gamma=0.0, amplitude=amplitude0, phase=phase0)
        guess.update({n: self.truth[n] for n in self.fixed})
        model = DampedOscillator(*(guess[n] for n in PARAMETERS), dtype=dtype, device=device)
        for name in self.fixed:
            getattr(model, name).requires_grad_(False)
        return model

    def loss(self, model: DampedOscillator) -> Tensor:
        return (model(self.t) - self.y).square().mean()

    def param_groups(self, model: DampedOscillator) -> list[dict] | None:
        """Parameter groups for :func:`azure_sciml.fit`: with ``explore`` set, the named parameters
        in one group and the rest in a group with ``sigma=0`` (Azure never proposes a move there;
        Adam-like optimizers ignore the key). ``None`` (all parameters, one group) otherwise."""
        if self.explore is None:
            return None
        named = dict(model.named_parameters())
        fitted = [n for n in PARAMETERS if n not in self.fixed]
        explored = [named[n] for n in fitted if n in self.explore]
        held = [named[n] for n in fitted if n not in self.explore]
        groups = [{"params": explored}]
        if held:
            groups.append({"params": held, "sigma": 0.0})
        return groups

    @torch.no_grad()
    def evaluate(self, model: DampedOscillator) -> dict[str, float]:
        p = {name: float(getattr(model, name).detach()) for name in PARAMETERS}
        omega_true = self.truth["omega"]
        freq_rel_err = abs(abs(p["omega"]) - omega_true) / omega_true
        t_test = torch.linspace(self.t_train, self.t_end, self.n_test + 1, dtype=torch.float64)[1:]
        fitted = DampedOscillator(*(p[n] for n in PARAMETERS), dtype=torch.float64)
        test_rmse = float((fitted(t_test) - self.true_signal(t_test)).square().mean().sqrt())
        gamma_true = self.truth["gamma"]
        gamma_err = abs(p["gamma"] - gamma_true) / (gamma_true if gamma_true > 0 else 1.0)
        return {
            "freq_rel_err": freq_rel_err,
            "success": float(freq_rel_err < self.tol),
            "test_rmse": test_rmse,
            "train_mse": float(self.loss(model)),
            "gamma_rel_err": gamma_err,
            "omega": p["omega"],
        }

    def plot(self, model: DampedOscillator, path) -> None:
        """Data, truth and the fitted curve on ``[0, t_end]`` (held-out part shaded)."""
        from matplotlib.figure import Figure

        t = torch.linspace(0.0, self.t_end, 800, dtype=torch.float64)
        p = [float(getattr(model, n).detach()) for n in PARAMETERS]
        fitted = DampedOscillator(*p, dtype=torch.float64)
        fig = Figure(figsize=(7.0, 3.4))
        ax = fig.add_subplot()
        ax.axvspan(self.t_train, self.t_end, color="0.92", label="held out")
        if self.t is not None:
            ax.scatter(self.t.double().cpu(), self.y.double().cpu(), s=6, color="0.4",
                       label="data")
        ax.plot(t, self.true_signal(t), color="k", lw=1.2, label="truth")
        with torch.no_grad():
            ax.plot(t, fitted(t), color="C3", lw=1.2, ls="--", label=f"fit (omega={p[0]:.3f})")
        ax.set_xlabel("t")
        ax.set_ylabel("x(t)")
        ax.set_title(f"damped oscillator, omega* = {self.truth['omega']}", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
