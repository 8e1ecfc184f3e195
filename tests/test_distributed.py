"""Azure under torch.distributed, with real processes: 2 gloo ranks on CPU, each with its own data
shard, a DDP-wrapped MLP and a run that explores. Every rank must end with the same parameters,
bit for bit, as torch.optim.Adam's ranks do."""

import os
import subprocess
import sys
from pathlib import Path

import distributed_worker as worker
import pytest
import torch
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The worker's runs on both ranks (one spawn for all the tests here)."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker.run, args=(str(out),), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def explored(stats, rejected=True):
    return stats["n_proposals"] > 0 and stats["n_accepted"] > 0 and (
        stats["n_rejected"] > 0 or not rejected)


@pytest.mark.parametrize("name", ["seed_closure", "seed_loss", "none_closure", "none_loss",
                                  "adam_closure", "adam_loss"])
def test_ranks_stay_bit_identical_through_a_run_that_explores(ranks, name):
    """Quasi-Newton descents (the default) accept every proposal on this fit; Adam descents
    also reject some (a rejection restores the anchor on every rank)."""
    first, second = (r[name] for r in ranks)
    assert explored(first["stats"], rejected=name.startswith("adam")), first["stats"]
    assert first["stats"] == second["stats"]
    assert torch.equal(first["params"], second["params"])


def test_a_seed_of_none_under_per_rank_global_seeds_is_rank_zeros_draw(ranks):
    """seed=None draws from torch's global generator, seeded per rank here: the ranks still
    agree, and on a different chain from seed=0's."""
    assert not torch.equal(ranks[0]["none_closure"]["params"], ranks[0]["seed_closure"]["params"])


def test_the_loss_and_the_closure_give_the_same_run(ranks):
    assert torch.equal(ranks[0]["seed_loss"]["params"], ranks[0]["seed_closure"]["params"])


def test_one_all_reduce_per_step_given_a_loss_and_none_for_a_bare_step(ranks):
    for rank in ranks:
        calls = rank["all_reduces"]
        assert calls["seed_closure"] == calls["seed_loss"] == worker.STEPS
        assert calls["bare_step"] == calls["independent"] == 0


def test_a_bare_step_stays_adam_and_bit_identical(ranks):
    first, second = (r["bare_step"] for r in ranks)
    assert first["stats"]["n_proposals"] == 0
    assert torch.equal(first["params"], second["params"])


def test_independent_chains_drift_apart(ranks):
    """process_group=False: each rank judges its own loss with its own seed (what Azure did
    before it agreed across ranks), so the ranks diverge: the check above would catch it."""
    first, second = (r["independent"] for r in ranks)
    assert explored(first["stats"], rejected=False)
    assert not torch.equal(first["params"], second["params"])


def test_a_sharded_parameter_is_refused_naming_the_problem(ranks):
    for rank in ranks:
        assert rank["sharded"] is not None and "sharded parameter (DTensor" in rank["sharded"]


def test_an_azure_built_before_the_process_group_warns(ranks):
    assert all(rank["late_warning"] for rank in ranks)


def test_the_readmes_torchrun_example_ends_with_identical_ranks(tmp_path):
    command = "torchrun --nproc_per_node=2 --standalone examples/ddp_torchrun.py"
    assert command in (ROOT / "README.md").read_text()  # the command run here, as the README has it
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         str(ROOT / "examples" / "ddp_torchrun.py"), "--steps", "100"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks bit-identical: True" in done.stdout, done.stdout
    assert "n_proposals" in done.stdout
