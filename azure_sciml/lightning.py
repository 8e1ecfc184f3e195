"""PyTorch Lightning: Azure's counters in the logger (``pip install "azure_sciml[lightning]"``).

Azure needs no adapter: return it from ``configure_optimizers`` and train with automatic
optimization. Lightning then calls ``optimizer.step(closure)`` with a closure that zeroes the
gradients, runs ``training_step`` and backpropagates (gradient clipping included), so every step
hands Azure the loss it needs to judge a proposal with its Metropolis test. The loss must be a
deterministic function of the weights for that test to mean anything: give the DataLoader the
whole training set as one batch (``batch_size=len(dataset)``), as the classification problems do.
With minibatches Azure judges one proposal by another batch's loss; with
``accumulate_grad_batches > 1`` by the last micro-batch's loss only.

Manual optimization: call ``opt.step(closure=closure)`` with a closure that zeroes the gradients,
computes the loss, calls ``self.manual_backward(loss)`` and returns the loss. A bare
``opt.step()`` hands Azure a closure that returns nothing, so it has no loss to judge and steps as
Adam (Azure warns); ``opt.step(loss=loss)`` through Lightning's optimizer wrapper fails, since
the wrapper always adds a closure.

Azure's ``state_dict`` holds its random generator and schedule, so a Lightning checkpoint resumes
a run exactly (``trainer.fit(model, ckpt_path=...)``).

.. code-block:: python

    class Model(lightning.LightningModule):
        def configure_optimizers(self):
            return Azure(self.parameters(), lr=1e-3, sa_steps=900)

    trainer = lightning.Trainer(max_steps=1000, callbacks=[AzureStats()])

This module is the only one that imports lightning; ``import azure_sciml`` never does.
"""

from __future__ import annotations

from typing import Any

try:
    import lightning.pytorch as pl
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'azure_sciml.lightning needs PyTorch Lightning: pip install "azure_sciml[lightning]"'
    ) from err

from azure_sciml.optim import Azure

__all__ = ["AzureStats"]


class AzureStats(pl.Callback):
    """Log every Azure optimizer's ``stats()`` counters after each training batch.

    Keys are ``{prefix}/{counter}`` (``azure/n_proposals``, ``azure/n_accepted``, ...) plus
    ``{prefix}/accept_rate`` (accepted over judged proposals, once one was judged); with several
    Azure optimizers the prefix gets the optimizer's index (``azure1/...``). The values go through
    ``LightningModule.log`` (``on_step``), so every logger gets them at the Trainer's
    ``log_every_n_steps``.
    """

    def __init__(self, prefix: str = "azure"):
        self.prefix = prefix

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:
        azures = [opt for opt in trainer.optimizers if isinstance(opt, Azure)]
        for index, opt in enumerate(azures):
            name = self.prefix if index == 0 else f"{self.prefix}{index}"
            metrics = {f"{name}/{key}": float(value) for key, value in counters(opt).items()}
            pl_module.log_dict(metrics, on_step=True, on_epoch=False)


def counters(opt: Azure) -> dict[str, float]:
    """``opt.stats()`` plus the acceptance rate of the judged proposals (once there is one)."""
    stats: dict[str, float] = dict(opt.stats())
    judged = stats["n_accepted"] + stats["n_rejected"]
    if judged:
        stats["accept_rate"] = stats["n_accepted"] / judged
    return stats
