"""Azure with DistributedDataParallel, launched by torchrun:

    torchrun --nproc_per_node=2 --standalone examples/ddp_torchrun.py

Each rank fits sin(3x) on its own shard of the data. Azure, built after ``init_process_group``,
judges the mean loss over the ranks and draws rank 0's proposals, so every rank takes the same
decisions and ends with the same parameters, bit for bit; the script checks that at the end.
Runs on CPU (gloo) or, with one GPU per rank, on CUDA (NCCL).
"""

import argparse
import gc
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from azure_sciml import Azure


def main(steps: int) -> None:
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(1234 + rank)  # per-rank seeds for the data; Azure's seed is rank 0's

    x = torch.rand(256, 1, device=device) * 4 - 2  # this rank's shard
    y = torch.sin(3 * x)
    model = DDP(nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1)).to(device))
    opt = Azure(model.parameters(), lr=1e-2, total_steps=steps, sa_patience=0, sa_interval=5)

    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step(loss=loss)  # or opt.step(closure)
    opt.finish()

    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(params) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, params)
    if rank == 0:
        same = all(torch.equal(gathered[0], other) for other in gathered[1:])
        print(f"ranks bit-identical: {same}; stats: {opt.stats()}")
    # DDP's reducer sits in reference cycles: free it before the process group goes, or gloo's
    # threads may meet it at interpreter exit and abort the process (seen: 3-5 runs in 20)
    del model, opt, loss
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
