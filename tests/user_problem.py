"""A user's own problem, outside azure_sciml, that tests join with ``+problem._target_=...``.

Fit y = sin(3x) on 32 points with a tiny MLP: cheap enough for many runs in a test.
``lr`` is a class attribute (not a config key): the app hands it to the optimizer.
"""

import math

import torch
from torch import nn


class TinyFit:
    metric = "mse"
    lr = 1e-2

    def __init__(self, steps=30, n_points=32, crash=False, nan_after=0):
        if n_points < 1:
            raise ValueError(f"n_points must be positive, got {n_points}")
        self.steps, self.n_points = steps, n_points
        self.crash, self.nan_after = crash, nan_after  # simulate a bug / a divergence
        self.n_evals = 0

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Module:
        self.x = torch.linspace(-1, 1, self.n_points, device=device, dtype=dtype)[:, None]
        self.y = torch.sin(3 * self.x)
        return nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1)).to(device, dtype)

    def loss(self, model: nn.Module) -> torch.Tensor:
        if self.crash:
            raise RuntimeError("simulated crash")
        self.n_evals += 1
        loss = ((model(self.x) - self.y) ** 2).mean()
        return loss * math.nan if self.nan_after and self.n_evals > self.nan_after else loss

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        error = model(self.x) - self.y
        return {"mse": float((error**2).mean()), "max_err": float(error.abs().max())}

    def plot(self, model: nn.Module, path: str) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(self.x.cpu(), self.y.cpu(), label="exact")
        ax.plot(self.x.cpu(), model(self.x).detach().cpu(), label="model")
        ax.legend()
        fig.savefig(path)
