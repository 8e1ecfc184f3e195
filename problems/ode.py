"""Neural ODE: learn a vector field f so that dy/dt = f(y) reproduces a known system's trajectory.

Model and data follow torchdiffeq's demo (``examples/ode_demo.py``): the spiral dy/dt = y^3 A with
A = [[-0.1, 2], [-2, -0.1]] from y0 = [2, 0], 1000 time points on [0, 25], a field
Linear(2, 50)-Tanh-Linear(50, 2) applied to y^3 (weights N(0, 0.1^2), zero biases), windows of 10
consecutive time points, each solved from its first true state with dopri5. Departures from the
demo: the loss is the mean squared error (the demo uses the mean absolute error); windows come only
from the training part t <= t_train = 20, and (t_train, t_end] is held out to test extrapolation.

Training as the field fits trajectories (multiple shooting, DiffEqFlux's documented practice): by
default (``batch=0``) every loss evaluation solves the consecutive windows that cover the training
part (89 windows of 10 points; the last one overlaps its neighbour so that it ends at the last
training point), each from its true first state, so the loss is deterministic, the full batch that
L-BFGS needs; ``batch=20`` draws the demo's 20 random windows per evaluation instead. By default
(``loss_solver="grid_rk4"``) the loss solves its windows with classic RK4 at ``grid_substeps`` (2)
equal steps per interval of the data grid, for the :class:`NeuralField` with its backward written
out (a discrete adjoint, equal to autograd's): 1.5-5x less per loss + backward than dopri5 at rtol
1e-7 (whose step count grows as the field trains; at the true spiral field RK4 leaves a loss floor
of 7e-13), which keeps the main job (experiment=compare) within its 10 minutes, with the same Adam
results (extrap_mse to 3 digits, seeds 0-2). ``loss_solver="odeint"`` solves them as the metrics
solve, with ``solver`` at ``rtol``, ``atol``: the float64 Adam-then-L-BFGS chains ended lower with
it on seeds 0-2 (1.6e-5, 2.1e-5, 2.5e-6 against 1.1e-4, 2.1e-4, 1.1e-5; both far below 0.01, the
spiral target; docs/benchmarks.md). The metrics always solve with ``solver`` at ``rtol``,
``atol``. ``max_window`` grows the windows geometrically over the first ``grow_until`` of the
budget (longer horizons against the local minima of long-trajectory fits). ``horizon`` < 1 is a
horizon curriculum: for the first ``horizon_until`` of the budget the loss fits only the first
``horizon`` of the training part (its windows, consecutive or random, lie there), then all of it,
as diffrax's neural-ODE example trains (``length_strategy=(0.1, 1)``: the first 10% of each series
for its first 500 steps, against being caught in a local minimum, then the whole series; Kidger,
diffrax docs, examples/neural_ode); off by default (``horizon=1``). Keep ``horizon_until`` below a
chain's hand-over (``refine.at``): a quasi-Newton finisher wants the loss not to change under it.
Measured on the spiral, 1500 evaluations: Adam alone ends at extrap_mse 0.18 on the full batch
(seed 0; the compare report's median with the demo's random windows: 0.21); Adam for 750, then
float64 L-BFGS on the full batch, at 1.1e-4, 2.1e-4 and 1.1e-5 (seeds 0, 1, 2; odeint: see above).
The demo runs 2000 RMSprop steps at lr 1e-3; the default budget here is 1500 loss evaluations at
lr 1e-3.

Other systems (same y0 = [2, 0], same grid; their field sees y itself, not y^3):

- ``"pendulum"``: damped pendulum theta'' = -sin(theta) - 0.1 theta', state (theta, theta').
- ``"vdp"``: Van der Pol oscillator x'' = mu (1 - x^2) x' - x with mu = 1, state (x, x').

The true trajectory comes from a float64 dopri8 solve at rtol 1e-10, atol 1e-12. Metrics, from one
solve of the model from y0 over the whole grid: ``train_mse`` on t <= t_train, ``extrap_mse`` (the
headline: whether the learned dynamics are right beyond the data) on t > t_train, and ``nfe``, the
number of vector-field evaluations of that solve. A solve that fails (step-size underflow or more
than ``MAX_SOLVER_STEPS`` steps) raises :class:`~azure_sciml.train.NonFiniteLoss` during training
and scores ``inf`` in :meth:`NeuralODE.evaluate`.
"""

from __future__ import annotations

import math
import os

import torch
import torchdiffeq
from torch import Tensor, nn
from torch.nn import functional as F

from azure_sciml.problems._checks import (
    check,
    check_choice,
    check_positive_float,
    check_positive_int,
    is_real,
)
from azure_sciml.problems._rk4 import FieldRK4Loss, grid_rk4
from azure_sciml.train import NonFiniteLoss

ADAPTIVE_SOLVERS = ("dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_GRID_SOLVERS = (
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "explicit_adams",
    "implicit_adams",
)
SOLVERS = ADAPTIVE_SOLVERS + FIXED_GRID_SOLVERS
LOSS_SOLVERS = ("grid_rk4", "odeint")
MAX_SOLVER_STEPS = 20_000
Y0 = (2.0, 0.0)


class Spiral(nn.Module):
    """torchdiffeq's demo system dy/dt = y^3 A."""

    def __init__(self):
        super().__init__()
        self.register_buffer("A", torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64))

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return (y**3) @ self.A


class DampedPendulum(nn.Module):
    """theta'' = -sin(theta) - damping theta'."""

    def __init__(self, damping: float = 0.1):
        super().__init__()
        self.damping = damping

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        theta, velocity = y[..., 0], y[..., 1]
        return torch.stack([velocity, -torch.sin(theta) - self.damping * velocity], dim=-1)


class VanDerPol(nn.Module):
    """x'' = mu (1 - x^2) x' - x."""

    def __init__(self, mu: float = 1.0):
        super().__init__()
        self.mu = mu

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        x, velocity = y[..., 0], y[..., 1]
        return torch.stack([velocity, self.mu * (1 - x**2) * velocity - x], dim=-1)


SYSTEMS: dict[str, type[nn.Module]] = {
    "spiral": Spiral,
    "pendulum": DampedPendulum,
    "vdp": VanDerPol,
}


class NeuralField(nn.Module):
    """MLP vector field f(y) = Linear-Tanh-Linear applied to y (or to y^3 when ``cubic``)."""

    def __init__(self, hidden: int = 50, cubic: bool = False):
        super().__init__()
        self.cubic = cubic
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        for layer in (self.net[0], self.net[2]):
            nn.init.normal_(layer.weight, mean=0.0, std=0.1)
            nn.init.zeros_(layer.bias)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        first, last = self.net[0], self.net[2]  # the layers' functions, without module calls
        hidden = torch.tanh(F.linear(y**3 if self.cubic else y, first.weight, first.bias))
        return F.linear(hidden, last.weight, last.bias)


class CountingField(nn.Module):
    """Wraps a vector field ``field(t, y)`` and counts its evaluations in ``nfe``."""

    def __init__(self, field: nn.Module):
        super().__init__()
        self.field = field
        self.nfe = 0

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return self.field(t, y)


class NeuralODE:
    """Fit a neural vector field to one trajectory of a known system (see module docstring)."""

    metric = "extrap_mse"

    def __init__(
        self,
        *,
        system: str = "spiral",
        n_points: int = 1000,
        t_end: float = 25.0,
        t_train: float = 20.0,
        window: int = 10,
        batch: int = 0,
        max_window: int | None = None,
        grow_until: float = 0.5,
        horizon: float = 1.0,
        horizon_until: float = 0.25,
        hidden: int = 50,
        solver: str = "dopri5",
        rtol: float = 1e-7,
        atol: float = 1e-9,
        adjoint: bool = False,
        loss_solver: str = "grid_rk4",
        grid_substeps: int = 2,
        steps: int = 1500,
        lr: float = 1e-3,
    ):
        check_choice("system", system, sorted(SYSTEMS))
        check_choice("solver", solver, list(SOLVERS))
        check_choice("loss_solver", loss_solver, list(LOSS_SOLVERS))
        check(isinstance(adjoint, bool), "adjoint", adjoint, "a bool")
        # the adjoint is of torchdiffeq's solve
        check(not adjoint or loss_solver == "odeint", "adjoint", adjoint,
              "False unless loss_solver='odeint'")
        for name, value in [("t_end", t_end), ("rtol", rtol), ("atol", atol), ("lr", lr)]:
            check_positive_float(name, value)
        for name, value in [("hidden", hidden), ("steps", steps), ("grid_substeps", grid_substeps)]:
            check_positive_int(name, value)
        check_positive_int("batch", batch, minimum=0)
        for name, value in [("grow_until", grow_until), ("horizon", horizon),
                            ("horizon_until", horizon_until)]:
            check(is_real(value) and 0 < value <= 1, name, value, "a fraction in (0, 1]")
        check_positive_int("n_points", n_points, minimum=3)
        check_positive_int("window", window, minimum=2)
        check_positive_float("t_train", t_train)
        check(t_train < t_end, "t_train", t_train, f"below t_end = {t_end}")
        self.n_train = _count_train_points(n_points, float(t_end), float(t_train))
        for name, value in [("window", window), ("max_window", max_window)]:
            check(value is None or 2 <= value <= self.n_train, name, value,
                  f"between 2 and the {self.n_train} training points")
        if max_window is not None:
            check_positive_int("max_window", max_window, minimum=window)
        self.system, self.solver, self.adjoint = system, solver, adjoint
        self.loss_solver, self.grid_substeps = loss_solver, grid_substeps
        self.n_points, self.t_end, self.t_train = n_points, float(t_end), float(t_train)
        self.window, self.batch, self.hidden = window, batch, hidden
        self.max_window, self.grow_until = max_window, float(grow_until)
        self.horizon, self.horizon_until = float(horizon), float(horizon_until)
        self.rtol, self.atol = float(rtol), float(atol)
        self.steps, self.lr = steps, float(lr)

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module:
        self.device, self.dtype = torch.device(device), dtype
        t = torch.linspace(0.0, self.t_end, self.n_points, dtype=torch.float64)
        field = SYSTEMS[self.system]().to(torch.float64)
        y0 = torch.tensor(Y0, dtype=torch.float64)
        with torch.no_grad():
            y_true = torchdiffeq.odeint(field, y0, t, rtol=1e-10, atol=1e-12, method="dopri8")
        self.t = t.to(device=self.device, dtype=dtype)
        self.y_true = y_true.to(device=self.device, dtype=dtype)
        self.true_field = field.to(device=self.device, dtype=dtype)
        self.n_loss_evals = 0
        model = NeuralField(self.hidden, cubic=self.system == "spiral")
        return model.to(device=self.device, dtype=dtype)

    def loss(self, model: nn.Module) -> Tensor:
        """Mean squared error over training windows, each solved from its first true state:
        ``batch`` random ones, or (``batch=0``) consecutive ones covering the training part."""
        window = self.current_window()
        n_fitted = self.current_points(window)
        self.n_loss_evals += 1
        targets = self._windows(window, n_fitted)
        if self.loss_solver == "grid_rk4" and type(model) is NeuralField:
            h = float(self.t[1] - self.t[0]) / self.grid_substeps
            first, last = model.net[0], model.net[2]
            params = (first.weight, first.bias, last.weight, last.bias)
            return FieldRK4Loss.apply(targets, h, self.grid_substeps, model.cubic, *params)
        if self.loss_solver == "grid_rk4":
            predicted = grid_rk4(model, targets[0], self.t[:window], self.grid_substeps)
        else:
            predicted = self._solve(model, targets[0], self.t[:window], adjoint=self.adjoint)
        return (predicted - targets).pow(2).mean()

    def current_window(self) -> int:
        """The window length at this loss evaluation: ``window``, growing geometrically to
        ``max_window`` over the first ``grow_until`` of the budget when that is set."""
        if self.max_window is None:
            return self.window
        progress = min(1.0, self.n_loss_evals / (self.grow_until * self.steps))
        return round(self.window * (self.max_window / self.window) ** progress)

    def current_points(self, window: int) -> int:
        """The training points the loss fits at this loss evaluation: the first ``horizon`` of
        them (at least one window) during the first ``horizon_until`` of the budget, else all."""
        if self.horizon < 1 and self.n_loss_evals < self.horizon_until * self.steps:
            return max(window, round(self.horizon * self.n_train))
        return self.n_train

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the seed: the position in the window schedule."""
        return {"n_loss_evals": self.n_loss_evals}

    def load_state_dict(self, state: dict) -> None:
        self.n_loss_evals = state["n_loss_evals"]

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        counted = CountingField(model)
        try:
            predicted = self._solve(counted, self.y_true[0], self.t)
        except NonFiniteLoss:
            return {"train_mse": math.inf, "extrap_mse": math.inf, "nfe": float(counted.nfe)}
        squared_error = (predicted - self.y_true).pow(2).mean(dim=-1)
        return {
            "train_mse": _finite_or_inf(squared_error[: self.n_train].mean()),
            "extrap_mse": _finite_or_inf(squared_error[self.n_train :].mean()),
            "nfe": float(counted.nfe),
        }

    def plot(self, model: nn.Module, path: str | os.PathLike) -> None:
        """Save the phase portrait and the time series of the true and the learned trajectory."""
        from matplotlib.figure import Figure  # no pyplot: no global figure state, no backend

        with torch.no_grad():
            try:
                predicted = self._solve(model, self.y_true[0], self.t).cpu().float()
            except NonFiniteLoss:
                predicted = torch.full_like(self.y_true, math.nan).cpu().float()
        true, t = self.y_true.cpu().float(), self.t.cpu().float()
        fig = Figure(figsize=(12, 4.5), layout="constrained")
        phase, series = fig.subplots(1, 2)
        fitted, extrapolated = predicted[: self.n_train], predicted[self.n_train :]
        phase.plot(true[:, 0], true[:, 1], "k-", lw=1, label="true")
        phase.plot(fitted[:, 0], fitted[:, 1], "b--", label="fit")
        phase.plot(extrapolated[:, 0], extrapolated[:, 1], "r--", label="extrap")
        phase.set(title=f"{self.system}: phase portrait", xlabel="y1", ylabel="y2")
        phase.legend()
        for i, color in enumerate(("tab:blue", "tab:orange")):
            series.plot(t, true[:, i], color=color, lw=1, label=f"y{i + 1} true")
            series.plot(t, predicted[:, i], "--", color=color, label=f"y{i + 1} model")
        series.axvline(self.t_train, color="gray", ls=":", label="t_train")
        series.set(title="time series", xlabel="t")
        series.legend(fontsize="small")
        fig.savefig(path, dpi=120)

    def _windows(self, window: int, n_fitted: int | None = None) -> Tensor:
        """True states on windows of the first ``n_fitted`` (default: all) training points, shape
        (window, n_windows, 2): ``batch`` random ones, or with ``batch=0`` consecutive ones sharing
        their end points (multiple shooting from the true states: a deterministic, full-batch
        loss)."""
        n_fitted = self.n_train if n_fitted is None else n_fitted
        if self.batch:
            starts = torch.randint(0, n_fitted - window + 1, (self.batch,))
        else:
            last = n_fitted - window  # the start of a window that ends at the last point
            starts = torch.arange(0, last + 1, window - 1)
            if starts[-1] < last:  # cover the rest: a last window overlapping the one before
                starts = torch.cat([starts, torch.tensor([last])])
        index = starts[None, :] + torch.arange(window)[:, None]
        return self.y_true[index.to(self.device)]

    def _solve(self, field: nn.Module, y0: Tensor, t: Tensor, adjoint: bool = False) -> Tensor:
        options = {"max_num_steps": MAX_SOLVER_STEPS} if self.solver in ADAPTIVE_SOLVERS else None
        integrate = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
        try:
            return integrate(
                field, y0, t, rtol=self.rtol, atol=self.atol, method=self.solver, options=options
            )
        except AssertionError as err:  # torchdiffeq's "underflow in dt", "max_num_steps exceeded"
            raise NonFiniteLoss(f"{self.solver} solve failed: {err}") from err


def _count_train_points(n_points: int, t_end: float, t_train: float) -> int:
    """Number of points of ``linspace(0, t_end, n_points)`` at or below ``t_train``."""
    grid = torch.linspace(0.0, t_end, n_points, dtype=torch.float64)
    return int((grid <= t_train).sum())


def _finite_or_inf(value: Tensor) -> float:
    number = float(value)
    return number if math.isfinite(number) else math.inf

