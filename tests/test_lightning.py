"""Azure in PyTorch Lightning's real Trainer: closure, counters in the logger, exact resume."""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from azure_sciml import Azure

L = pytest.importorskip("lightning")
from azure_sciml.lightning import AzureStats, counters  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "lightning.md"  # the example moved there
STEPS = 60
AZURE = dict(lr=1e-2, sa_steps=50, sa_patience=0, sa_interval=5, seed=7)


def xor_data(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def full_batch():
    x, y = xor_data()
    return DataLoader(TensorDataset(x, y), batch_size=len(y))


def network(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))


class Classifier(L.LightningModule):
    def __init__(self, seed=0):
        super().__init__()
        self.net = network(seed)

    def training_step(self, batch, batch_idx):
        inputs, labels = batch
        return nn.functional.cross_entropy(self.net(inputs), labels)

    def configure_optimizers(self):
        return Azure(self.parameters(), **AZURE)


def trainer(steps=STEPS, **kwargs):
    options = dict(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )
    return L.Trainer(**{**options, **kwargs})


def parameters(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def plain_loop(steps=STEPS):
    """The same training as a torch loop with ``step(closure)``: what Lightning must reproduce."""
    model = network()
    opt = Azure(model.parameters(), **AZURE)
    x, y = xor_data()

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return model, opt


def test_azure_gets_lightnings_closure_and_judges_proposals():
    model = Classifier()
    fitted = trainer()
    fitted.fit(model, full_batch())
    stats = fitted.optimizers[0].stats()
    assert stats["n_loss_evals"] == STEPS  # one closure call per step: Lightning passed it
    assert stats["n_proposals"] > 3
    assert stats["n_accepted"] + stats["n_rejected"] >= stats["n_proposals"] - 1
    reference, opt = plain_loop()
    assert opt.stats() == stats
    assert torch.equal(parameters(model.net), parameters(reference))  # bit for bit


def read_metrics(log_dir: Path) -> list[dict]:
    (path,) = log_dir.rglob("metrics.csv")
    with path.open() as f:
        return list(csv.DictReader(f))


def test_callback_logs_the_counters_to_the_lightning_logger(tmp_path):
    model = Classifier()
    logger = L.pytorch.loggers.CSVLogger(tmp_path)
    fitted = trainer(logger=logger, callbacks=[AzureStats()], log_every_n_steps=10)
    fitted.fit(model, full_batch())
    rows = read_metrics(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(9, STEPS, 10))
    last, stats = rows[-1], counters(fitted.optimizers[0])
    for key, value in stats.items():
        assert float(last[f"azure/{key}"]) == pytest.approx(value), key
    assert 0 < stats["accept_rate"] <= 1
    assert float(rows[0]["azure/n_loss_evals"]) == 10


class Manual(Classifier):
    """Manual optimization, stepping as ``how`` says."""

    def __init__(self, how):
        super().__init__()
        self.automatic_optimization = False
        self.how = how

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()

        def closure():
            opt.zero_grad()
            loss = super(Manual, self).training_step(batch, batch_idx)
            self.manual_backward(loss)
            return loss

        if self.how == "closure":
            opt.step(closure=closure)
        elif self.how == "bare":
            closure()
            opt.step()
        else:
            opt.step(loss=closure())


def test_manual_optimization_with_a_closure_judges_proposals():
    model = Manual("closure")
    fitted = trainer()
    fitted.fit(model, full_batch())
    stats = fitted.optimizers[0].stats()
    assert stats["n_proposals"] > 3 and stats["n_accepted"] + stats["n_rejected"] > 0
    assert torch.equal(parameters(model.net), parameters(plain_loop()[0]))


def test_manual_bare_step_warns_and_steps_as_adam():
    model = Manual("bare")
    with pytest.warns(UserWarning, match="cannot judge"):
        trainer(steps=10).fit(model, full_batch())
    assert model.trainer.optimizers[0].stats()["n_proposals"] == 0


def test_manual_step_with_a_loss_is_refused_through_lightnings_wrapper():
    with pytest.raises(ValueError, match="not both"):
        trainer(steps=2).fit(Manual("loss"), full_batch())


def test_resume_from_a_lightning_checkpoint_continues_exactly(tmp_path):
    straight = Classifier()
    saver = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=tmp_path, every_n_train_steps=STEPS // 2, save_top_k=-1, filename="{step}"
    )
    first = trainer(enable_checkpointing=True, callbacks=[saver])
    first.fit(straight, full_batch())
    half = tmp_path / f"step={STEPS // 2}.ckpt"
    assert half.exists()

    resumed = Classifier(seed=123)  # other weights: everything must come from the checkpoint
    second = trainer()
    second.fit(resumed, full_batch(), ckpt_path=half)
    assert second.global_step == STEPS
    assert torch.equal(parameters(resumed), parameters(straight))
    assert second.optimizers[0].stats() == first.optimizers[0].stats()
    assert first.optimizers[0].stats()["n_proposals"] > 3  # the halves straddle the annealing


def page_block(marker: str) -> str:
    text = PAGE.read_text()
    found = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"no python block after <!-- {marker} --> in {PAGE.name}"
    return found.group(1)


def test_docs_lightning_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(page_block("lightning-example"), "docs/lightning.md", "exec"), namespace)
    stats = namespace["trainer"].optimizers[0].stats()
    assert stats["n_proposals"] > 0 and stats["n_accepted"] + stats["n_rejected"] > 0
    rows = read_metrics(tmp_path / "logs")
    assert float(rows[-1]["azure/n_proposals"]) == stats["n_proposals"]


def test_import_azure_sciml_does_not_import_lightning():
    code = "import sys, azure_sciml; sys.exit('lightning' in sys.modules)"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0


def test_ddp_with_two_cpu_processes_keeps_the_ranks_bit_identical(tmp_path):
    """Trainer(strategy="ddp", devices=2, accelerator="cpu"): each rank its half of the data,
    Azure from configure_optimizers exploring; both ranks end with the same parameters."""
    script = Path(__file__).resolve().parent / "lightning_ddp.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert first["stats"]["n_proposals"] > 0 and first["stats"]["n_accepted"] > 0
    assert first["stats"] == second["stats"]
    assert torch.equal(first["params"], second["params"])
