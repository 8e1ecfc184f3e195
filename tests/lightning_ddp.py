"""Lightning's Trainer(strategy="ddp", devices=2, accelerator="cpu") with Azure from
configure_optimizers; run as a script (Lightning's launcher starts rank 1 by re-running it). Each
rank saves its parameters and Azure's counters to ``OUT/rank{r}.pt``."""

import os
import sys
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from azure_sciml import Azure


class Regression(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return ((self.net(x) - y) ** 2).mean()

    def configure_optimizers(self):
        return Azure(self.parameters(), lr=1e-2, total_steps=80, sa_patience=0, sa_interval=5)


def data():
    """128 points; Lightning's DistributedSampler gives each rank its half, as one batch."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 1, generator=g) * 4 - 2
    return DataLoader(TensorDataset(x, torch.sin(3 * x)), batch_size=64)


def main(out):
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(1234 + int(os.environ.get("LOCAL_RANK", 0)))  # per-rank global seeds
    model = Regression()
    trainer = L.Trainer(
        strategy="ddp", devices=2, accelerator="cpu", max_steps=80, logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(model, data())
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    stats = trainer.optimizers[0].stats()
    torch.save({"params": params, "stats": stats}, f"{out}/rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1])
