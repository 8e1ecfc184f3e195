"""A tiny problem with a known answer for loop tests (importable by subprocesses too)."""

import os
import signal

import torch
from torch import nn


class Toy:
    """Fit y = sin(2x) with a small MLP; data resampled from the global RNG each evaluation.

    ``kill_at``: the process SIGKILLs itself at that loss evaluation (a real interruption).
    ``nan_after``: the loss turns NaN after that many evaluations.
    """

    metric = "mse"
    lr = 1e-2

    def __init__(self, steps=60, kill_at=None, nan_after=None):
        self.steps, self.kill_at, self.nan_after = steps, kill_at, nan_after
        self.n_evals = 0

    def build(self, device, dtype):
        self.device, self.dtype = device, dtype
        self.x_test = torch.linspace(-1, 1, 50, device=device, dtype=dtype).unsqueeze(1)
        return nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1)).to(device, dtype)

    def loss(self, model):
        self.n_evals += 1
        if self.kill_at is not None and self.n_evals == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        x = torch.rand(32, 1, device=self.device, dtype=self.dtype) * 2 - 1
        loss = ((model(x) - torch.sin(2 * x)) ** 2).mean()
        if self.nan_after is not None and self.n_evals > self.nan_after:
            loss = loss * float("nan")
        return loss

    def evaluate(self, model):
        return {"mse": float(((model(self.x_test) - torch.sin(2 * self.x_test)) ** 2).mean())}

    def state_dict(self):
        return {"n_evals": self.n_evals}

    def load_state_dict(self, state):
        self.n_evals = state["n_evals"]
