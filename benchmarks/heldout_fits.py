"""Held-out MLP fits (``heldout_problems.py``): a curve fit, a noisy and a minibatch regression,
two-moons classifiers; data from fixed numpy seeds."""

from __future__ import annotations

import math

import numpy as np
import torch
from heldout_base import Problem, mlp
from torch import Tensor, nn

# --------------------------------------------------------------------------- MLP fits


def curve_data():
    """64 points of a smooth 1-D curve on [-2, 2] (no noise)."""
    x = torch.linspace(-2, 2, 64).unsqueeze(1)
    return x, torch.sin(2 * x) + 0.5 * torch.cos(5 * x) * torch.exp(-x.square() / 2)


def curve_problem() -> Problem:
    x, y = curve_data()

    def loss(m):
        return (m(x) - y).square().mean()

    return Problem(
        name="mlp_curve", description="1-32-32-1 tanh MLP fitting 64 points of "
        "sin(2x) + 0.5 cos(5x) exp(-x^2/2) on [-2, 2], full-batch MSE, float32",
        steps=300, lr=1e-2, build=lambda: mlp([1, 32, 32, 1], nn.Tanh), loss=loss,
        metric=_final_loss(loss), metric_name="final training MSE (no known minimum)",
        tie_tol=0.0,
    )


def noisy_regression_problem() -> Problem:
    x, y, x_test, y_test = _noisy_samples(seed=314, n=48, sd=0.3)

    def loss(m):
        return (m(x) - y).square().mean()

    def metric(m):
        with torch.no_grad():
            return {"metric": float((m(x_test) - y_test).square().mean()),
                    "train_mse": float(loss(m))}

    return Problem(
        name="noisy_regression", description="1-64-64-1 SiLU MLP on 48 noisy samples "
        "(sd 0.3) of sin(x) + 0.3 x cos(2x) on [-3, 3], full-batch MSE, float32",
        steps=800, lr=3e-3, build=lambda: mlp([1, 64, 64, 1], nn.SiLU), loss=loss,
        metric=metric, metric_name="test MSE against the noise-free function (512-point grid)",
    )


class BatchedMLP(nn.Module):
    """An MLP with its own minibatch generator, seeded from the run seed at build time, so every
    optimizer sees the same sequence of batches (one batch per loss evaluation)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.batches = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def minibatch_regression_problem() -> Problem:
    x, y, x_test, y_test = _noisy_samples(seed=1618, n=512, sd=0.1)

    def loss(m):
        batch = torch.randint(0, len(x), (32,), generator=m.batches)
        return (m(x[batch]) - y[batch]).square().mean()

    def metric(m):
        with torch.no_grad():
            return {"metric": float((m(x_test) - y_test).square().mean()),
                    "train_mse": float((m(x) - y).square().mean())}

    return Problem(
        name="minibatch_regression", description="1-32-32-1 tanh MLP on 512 noisy samples "
        "(sd 0.1) of sin(x) + 0.3 x cos(2x), minibatches of 32 (a new batch every loss "
        "evaluation, same sequence for every optimizer), MSE, float32",
        steps=1000, lr=1e-3, build=lambda: BatchedMLP(mlp([1, 32, 32, 1], nn.Tanh)), loss=loss,
        metric=metric, metric_name="test MSE against the noise-free function (512-point grid)",
        notes="the loss is stochastic: final_loss and best_loss are minibatch losses",
    )


def _noisy_target(x: Tensor) -> Tensor:
    return torch.sin(x) + 0.3 * x * torch.cos(2 * x)


def _noisy_samples(seed: int, n: int, sd: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``n`` samples of ``_noisy_target`` on [-3, 3] with noise of ``sd``, and the noise-free
    function on a 512-point test grid: (x, y, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.uniform(-3, 3, (n, 1))).float()
    y = _noisy_target(x) + sd * torch.from_numpy(rng.standard_normal((n, 1))).float()
    x_test = torch.linspace(-3, 3, 512).unsqueeze(1)
    return x, y, x_test, _noisy_target(x_test)


def two_moons(n: int, noise: float, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """``n`` points of two interleaved half circles with Gaussian noise, labels 0/1."""
    label = rng.integers(0, 2, n)
    angle = rng.uniform(0, math.pi, n)
    xy = np.stack([np.cos(angle), np.sin(angle)], 1)
    xy[label == 1] = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1)[label == 1]
    xy += noise * rng.standard_normal((n, 2))
    return torch.from_numpy(xy).float(), torch.from_numpy(label)


def moons_problem(lr: float) -> Problem:
    rng = np.random.default_rng(2718)
    x, y = two_moons(256, 0.2, rng)
    x_test, y_test = two_moons(2000, 0.2, rng)

    def loss(m):
        return nn.functional.cross_entropy(m(x), y)

    def metric(m):
        with torch.no_grad():
            acc = float((m(x_test).argmax(1) == y_test).float().mean())
            return {"metric": float(loss(m)), "test_accuracy": acc}

    return Problem(
        name=f"moons_lr{lr:g}", description="2-32-32-2 ReLU MLP classifying 256 two-moons "
        "points (noise 0.2), full-batch cross-entropy, float32",
        steps=500, lr=lr, build=lambda: mlp([2, 32, 32, 2], nn.ReLU), loss=loss,
        metric=metric, metric_name="final training cross-entropy (no known minimum); "
        "extra: test accuracy on 2000 fresh points",
    )


def _final_loss(loss):
    def metric(m):
        with torch.no_grad():
            return {"metric": float(loss(m))}

    return metric
