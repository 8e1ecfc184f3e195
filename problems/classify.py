"""Classification: Two Moons and scikit-learn's 8x8 digits, an MLP trained on cross-entropy.

* ``two_moons`` (:class:`TwoMoons`): scikit-learn's ``make_moons``, 5,000 points, noise 0.2, the
  original Azure's benchmark (its README: "Two Moons dataset (5000 samples, 20% noise)"). The points
  are drawn afresh for every seed (``random_state`` from torch's global RNG, which :func:`fit`
  seeds), so a sweep over seeds also samples the data.
* ``digits`` (:class:`Digits`): the 1,797 8x8 grey-scale handwritten digits bundled with
  scikit-learn (``load_digits``, no download), ten classes: a small stand-in for MNIST. The
  images are fixed; the seed draws the split and the weights.

Both: a random ``val_fraction`` (20%) of the samples is held out for validation, the features are
centred on the training split's mean and divided by its overall standard deviation (one scale
for all features: a per-pixel scale blows up on pixels nearly constant in the training images),
and the model is an MLP (``depth`` hidden ReLU layers of ``width`` units, torch's default
initialisation). The loss is the
mean cross-entropy over the whole training split (full batch: the loss is a deterministic function
of the weights, which Azure's Metropolis test needs to judge a proposal); ``batch_size=n`` draws a
fresh random minibatch of n training samples at every loss evaluation instead (from the global RNG,
so runs stay seed-deterministic).

Metrics, on the validation split: ``val_loss`` (mean cross-entropy, headline, lower is better),
``val_accuracy``, ``val_error`` (1 - accuracy), and ``best_val_loss``: the lowest validation loss
seen during training (checked every ``track_every`` loss evaluations and at the end), the
original README's "best validation loss". It is selected on the validation split, hence
optimistic; ``val_loss`` at the end of the budget is the honest number. Also ``train_loss`` and
``train_accuracy``.

Defaults: ``width=64``, ``depth=2``, ``steps=1000`` loss evaluations at ``lr=1e-3`` (torch's Adam
default; the original Azure's tuned lr was 7.5e-4). Measured with Adam on development seeds
100-102 (not the reported ones): on Two Moons the validation loss bottoms out after about 500
steps and creeps up slightly by 1000 or 2000 (lr 1e-2 overfits: 0.08-0.11 against 0.07-0.10);
at 1000 loss evaluations full batch reached validation losses 0.072/0.096/0.079, minibatches of
64 0.078/0.096/0.087 (noisier, and no better). On digits the training loss reaches ~5e-4 by
1000 steps.

scikit-learn is an optional dependency (``pip install "azure_sciml[classify]"``), imported when a
problem is created.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from azure_sciml.problems._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_real,
)

INSTALL_HINT = 'the classification problems need scikit-learn: pip install "azure_sciml[classify]"'
DATASETS = ("two_moons", "digits")


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return datasets


def mlp(n_in: int, n_out: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` hidden ReLU layers of ``width`` units, then a linear layer to the logits."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU()]
    layers.append(nn.Linear(width if depth else n_in, n_out))
    return nn.Sequential(*layers)


class Classification:
    """Train an MLP classifier on ``dataset`` (see module docstring)."""

    metric = "val_loss"

    def __init__(
        self,
        dataset: str = "two_moons",
        *,
        n_samples: int = 5000,
        noise: float = 0.2,
        val_fraction: float = 0.2,
        width: int = 64,
        depth: int = 2,
        batch_size: int | None = None,
        track_every: int = 10,
        steps: int = 1000,
        lr: float = 1e-3,
    ):
        check_choice("dataset", dataset, list(DATASETS))
        check_positive_int("n_samples", n_samples, minimum=10)
        check_real("noise", noise, 0.0, math.inf, closed_low=True)
        check_real("val_fraction", val_fraction, 0.0, 1.0)
        check_positive_int("width", width)
        check_positive_int("depth", depth, minimum=0)
        if batch_size is not None:
            check_positive_int("batch_size", batch_size)
        check_positive_int("track_every", track_every)
        check_positive_int("steps", steps)
        check_positive_float("lr", lr)
        _sklearn_datasets()  # fail here, before any training, when scikit-learn is missing
        self.dataset, self.n_samples, self.noise = dataset, n_samples, float(noise)
        self.val_fraction, self.width, self.depth = float(val_fraction), width, depth
        self.batch_size, self.track_every = batch_size, track_every
        self.steps, self.lr = steps, float(lr)
        self.n_loss_evals, self.tracked_val_loss = 0, math.inf

    def __repr__(self) -> str:
        keys = ("dataset", "width", "depth", "batch_size", "steps", "lr")
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in keys)
        return f"{type(self).__name__}({args})"

    # -- data and model --------------------------------------------------------------------

    def load(self) -> tuple[Tensor, Tensor]:
        """Features (float64) and integer labels of the whole dataset."""
        datasets = _sklearn_datasets()
        if self.dataset == "two_moons":
            random_state = int(torch.randint(0, 2**31 - 1, ()).item())
            x, y = datasets.make_moons(self.n_samples, noise=self.noise, random_state=random_state)
        else:
            x, y = datasets.load_digits(return_X_y=True)
        return torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.long)

    def build(self, device: torch.device, dtype: torch.dtype) -> nn.Sequential:
        x, y = self.load()
        order = torch.randperm(len(y))
        n_val = max(1, round(self.val_fraction * len(y)))
        val, train = order[:n_val], order[n_val:]
        # one scale for all features: a pixel almost constant in the training images would
        # otherwise be divided by its tiny spread and blow up on a validation image
        self.mean = x[train].mean(0)
        self.scale = float((x[train] - self.mean).std())
        x = (x - self.mean) / self.scale
        self.device = device
        self.x_train, self.y_train = x[train].to(device, dtype), y[train].to(device)
        self.x_val, self.y_val = x[val].to(device, dtype), y[val].to(device)
        self.n_classes = int(y.max()) + 1
        self.n_loss_evals, self.tracked_val_loss = 0, math.inf
        return mlp(x.shape[1], self.n_classes, self.width, self.depth).to(device, dtype)

    # -- training --------------------------------------------------------------------------

    def loss(self, model: nn.Module) -> Tensor:
        if self.n_loss_evals % self.track_every == 0:
            self._track(model)
        self.n_loss_evals += 1
        x, y = self.x_train, self.y_train
        if self.batch_size is not None and self.batch_size < len(y):
            pick = torch.randint(0, len(y), (self.batch_size,)).to(self.device)
            x, y = x[pick], y[pick]
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def _track(self, model: nn.Module) -> None:
        value = float(F.cross_entropy(model(self.x_val), self.y_val))
        if math.isfinite(value):
            self.tracked_val_loss = min(self.tracked_val_loss, value)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        val_logits, train_logits = model(self.x_val).double(), model(self.x_train).double()
        val_loss = float(F.cross_entropy(val_logits, self.y_val))
        val_accuracy = float((val_logits.argmax(1) == self.y_val).double().mean())
        return {
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "val_error": 1.0 - val_accuracy,
            "best_val_loss": min(self.tracked_val_loss, val_loss),
            "train_loss": float(F.cross_entropy(train_logits, self.y_train)),
            "train_accuracy": float((train_logits.argmax(1) == self.y_train).double().mean()),
        }

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the seed: the loss count and the tracked minimum."""
        return {"n_loss_evals": self.n_loss_evals, "tracked_val_loss": self.tracked_val_loss}

    def load_state_dict(self, state: dict) -> None:
        self.n_loss_evals = state["n_loss_evals"]
        self.tracked_val_loss = state["tracked_val_loss"]

    # -- picture ---------------------------------------------------------------------------

    def plot(self, model: nn.Module, path: str | os.PathLike) -> None:
        """Two Moons: class probability over the plane with the validation points; digits:
        validation images with their predicted labels, the misclassified ones first (in red)."""
        from matplotlib.figure import Figure

        metrics = self.evaluate(model)
        title = (f"{self.dataset}: validation loss {metrics['val_loss']:.4f}, "
                 f"accuracy {100 * metrics['val_accuracy']:.1f}%")
        fig = Figure(layout="constrained")  # no pyplot: no global backend or figure registry
        if self.x_val.shape[1] == 2:
            self._plot_plane(fig, model)
        else:
            self._plot_images(fig, model)
        fig.suptitle(title)
        fig.savefig(path, dpi=120)

    @torch.no_grad()
    def _plot_plane(self, fig, model: nn.Module):
        x, y = self.x_val.cpu().double(), self.y_val.cpu()
        lo, hi = x.min(0).values - 0.5, x.max(0).values + 0.5
        u, v = torch.meshgrid(
            torch.linspace(float(lo[0]), float(hi[0]), 200),
            torch.linspace(float(lo[1]), float(hi[1]), 200),
            indexing="xy",
        )
        grid = torch.stack([u.flatten(), v.flatten()], 1).to(self.device, self.x_val.dtype)
        prob = torch.softmax(model(grid).double(), 1)[:, 1].reshape(u.shape).cpu()
        fig.set_size_inches(6, 4.8)
        ax = fig.add_subplot()
        shown = ax.contourf(u.numpy(), v.numpy(), prob.numpy(), levels=20, cmap="RdBu_r",
                            alpha=0.45)
        ax.contour(u.numpy(), v.numpy(), prob.numpy(), levels=[0.5], colors="k")
        ax.scatter(x[:, 0], x[:, 1], c=y.numpy(), cmap="bwr", s=7, edgecolors="w",
                   linewidths=0.3)
        ax.set(xlabel="x1 (standardised)", ylabel="x2 (standardised)")
        fig.colorbar(shown, ax=ax, label="P(class 1)")

    @torch.no_grad()
    def _plot_images(self, fig, model: nn.Module, rows: int = 4, cols: int = 8):
        predicted = model(self.x_val).argmax(1).cpu()
        truth = self.y_val.cpu()
        wrong_first = torch.argsort((predicted == truth).to(torch.int8), stable=True)
        shown = wrong_first[: rows * cols]
        images = self.x_val.cpu().double()[shown] * self.scale + self.mean  # undo the scaling
        side = math.isqrt(images.shape[1])
        fig.set_size_inches(cols * 1.1, rows * 1.25)
        axes = fig.subplots(rows, cols)
        for ax, image, i in zip(axes.flat, images, shown.tolist(), strict=False):
            ax.imshow(image.reshape(side, side).numpy(), cmap="gray_r")
            ok = int(predicted[i]) == int(truth[i])
            ax.set_title(f"{int(predicted[i])} (true {int(truth[i])})", fontsize=7,
                         color="black" if ok else "red")
        for ax in axes.flat:
            ax.axis("off")


class TwoMoons(Classification):
    """Two interleaved half circles, 5,000 points, noise 0.2 (the original Azure benchmark)."""

    def __init__(
        self,
        *,
        n_samples: int = 5000,
        noise: float = 0.2,
        val_fraction: float = 0.2,
        width: int = 64,
        depth: int = 2,
        batch_size: int | None = None,
        track_every: int = 10,
        steps: int = 1000,
        lr: float = 1e-3,
    ):
        super().__init__(
            "two_moons", n_samples=n_samples, noise=noise, val_fraction=val_fraction,
            width=width, depth=depth, batch_size=batch_size, track_every=track_every,
            steps=steps, lr=lr,
        )


class Digits(Classification):
    """scikit-learn's 1,797 8x8 handwritten digits, ten classes (an offline MNIST stand-in)."""

    def __init__(
        self,
        *,
        val_fraction: float = 0.2,
        width: int = 64,
        depth: int = 2,
        batch_size: int | None = None,
        track_every: int = 10,
        steps: int = 1000,
        lr: float = 1e-3,
    ):
        super().__init__(
            "digits", val_fraction=val_fraction, width=width, depth=depth,
            batch_size=batch_size, track_every=track_every, steps=steps, lr=lr,
        )
