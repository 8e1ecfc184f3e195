"""One rank of tests/test_distributed.py: DDP runs of Azure on this rank's data shard, saved to
``OUT/rank{r}.pt`` for the test to compare across ranks."""

import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import azure_sciml.optim as optim
from azure_sciml import Azure

STEPS = 100
RUNS = {  # name: Azure's seed, how the loss reaches it, process_group (quasi-Newton descents)
    "seed_closure": (0, "closure", None),
    "seed_loss": (0, "loss", None),
    "none_closure": (None, "closure", None),
    "none_loss": (None, "loss", None),
    "independent": (None, "closure", False),
    "bare_step": (0, "bare", None),
}
ADAM_DESCENTS = ("adam_closure", "adam_loss")  # the same as seed_*, with descent="adam"


def shard(rank):
    """This rank's own data: 64 points of sin(3x)."""
    g = torch.Generator().manual_seed(100 + rank)
    x = torch.rand(64, 1, generator=g) * 4 - 2
    return x, torch.sin(3 * x)


def train(rank, seed, mode, process_group, descent="auto"):
    torch.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                              nn.Linear(32, 1)))
    torch.manual_seed(1234 + rank)  # per-rank global seeds, as nanoGPT and DeiT set them
    opt = Azure(model.parameters(), lr=1e-2, total_steps=STEPS, sa_patience=0, sa_interval=5,
                seed=seed, process_group=process_group, descent=descent)
    x, y = shard(rank)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(STEPS):
        if mode == "closure":
            opt.step(closure)
        elif mode == "loss":
            opt.step(loss=closure())
        else:
            closure()
            opt.step()
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return {"params": params, "stats": opt.stats()}


def refuses_a_sharded_parameter():
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    weight = nn.Parameter(distribute_tensor(torch.randn(4, 3), mesh, [Shard(0)]))
    try:
        Azure([weight], lr=1e-2)
    except ValueError as err:
        return str(err)
    return None


def warns_when_built_before_the_group(early):
    """An Azure built before init_process_group cannot agree with the other ranks: it says so."""
    x = early.param_groups[0]["params"][0]
    x.grad = torch.ones_like(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        early.step(loss=float(x.sum()))
    return any("init_process_group" in str(w.message) for w in caught)


def run(rank, out, world_size=2):
    torch.set_num_threads(1)
    early = Azure([nn.Parameter(torch.zeros(3))], lr=1e-2, sa_patience=0, total_steps=10)
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank,
                            world_size=world_size)
    calls = []
    mean_loss = optim.mean_loss

    def counted(*args, **kwargs):  # Azure's all_reduces of the loss
        calls.append(1)
        return mean_loss(*args, **kwargs)

    agreement_calls = {}
    results = {}
    try:
        optim.mean_loss = counted
        for name, (seed, mode, group) in RUNS.items():
            calls.clear()
            results[name] = train(rank, seed, mode, group)
            agreement_calls[name] = len(calls)
        for name in ADAM_DESCENTS:
            results[name] = train(rank, 0, name.split("_")[1], None, "adam")
        results["sharded"] = refuses_a_sharded_parameter()
        results["late_warning"] = warns_when_built_before_the_group(early)
    finally:
        optim.mean_loss = mean_loss
    results["all_reduces"] = agreement_calls
    torch.save(results, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()
