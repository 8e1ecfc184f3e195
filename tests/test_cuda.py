"""Azure on CUDA: the Adam paths equal torch's, no host-device synchronisation inside
``step(loss=<float>)`` (annealing included), and the Triton proposal kernel's noise is standard
normal and reproducible.

Skipped without a CUDA device (CI has none): run on a GPU machine with
``pytest -q tests/test_cuda.py``; the last run's output is recorded in docs/benchmarks.md.
"""

import io

import pytest
import torch
from optim_helpers import make_driver
from torch import nn

from azure_sciml import Azure, _noise, fit
from azure_sciml.problems.rugged import Rastrigin

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
SA = dict(lr=1e-2, sa_steps=10**6, sa_interval=3, sa_patience=0, seed=7)  # always annealing


def make_params(dtype=torch.float32, seed=0):
    gen = torch.Generator(device=CUDA).manual_seed(seed)
    shapes = [(300, 256), (4096,), (5000,), (7, 3), ()]
    return [nn.Parameter(torch.randn(s, generator=gen, device=CUDA).to(dtype)) for s in shapes]


def loss_of(params):
    return sum(((p.float() - 0.3) ** 2).sum() + torch.cos(3 * p.float()).sum() for p in params)


drive = make_driver(loss_of)


def clone(params):
    return [nn.Parameter(p.detach().clone()) for p in params]


def equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sa_steps_zero_is_exactly_adam(fused, weight_decay):
    kw = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=weight_decay)
    a, b = make_params(), make_params()
    adam = torch.optim.Adam(a, fused=fused, foreach=None if fused else True, **kw)
    drive(adam, a, 25)
    drive(Azure(b, fused=fused, sa_steps=0, **kw), b, 25)
    assert equal(a, b)


@pytest.mark.parametrize("fused", [False, True])
def test_after_sa_phase_update_is_adams(fused):
    params = make_params()
    opt = Azure(params, fused=fused, **{**SA, "sa_steps": 9})
    drive(opt, params, 10, closure=False)
    assert opt._controller.done
    twin = clone(params)
    adam = torch.optim.Adam(twin, lr=SA["lr"], fused=fused, foreach=None if fused else True)
    adam.load_state_dict(_adam_state(opt, adam))
    drive(opt, params, 5, closure=False)
    drive(adam, twin, 5, closure=False)
    assert equal(params, twin)


def _adam_state(azure, adam):
    sd = adam.state_dict()
    for i, p in enumerate(azure.param_groups[0]["params"]):
        s = azure.state[p]
        step = torch.tensor(float(s["step"]), device=CUDA if adam.defaults["fused"] else "cpu")
        sd["state"][i] = dict(step=step, exp_avg=s["exp_avg"].clone(),
                              exp_avg_sq=s["exp_avg_sq"].clone())
    return sd


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_step_with_a_float_loss_never_synchronises(fused, momentum, dtype):
    params = make_params(dtype)
    opt = Azure(params, fused=fused, sa_momentum=momentum, **SA)
    for p in params:
        p.grad = torch.randn_like(p)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(12):  # a constant loss: settle, then proposals judged and accepted
            opt.step(loss=1.0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert opt.stats()["n_proposals"] >= 2
    assert all(torch.isfinite(p.float()).all() for p in params)


def test_proposals_use_the_kernel_when_triton_is_there():
    pytest.importorskip("triton")
    params = make_params()
    assert _noise._kernel_for(params[:1]) is not None
    opt = Azure(params, **SA)
    drive(opt, params, 12)
    assert opt.stats()["n_proposals"] >= 2
    assert opt._noise.kernel_draws["cuda:0"] == opt.stats()["n_proposals"] - 1
    assert opt._noise._buffers == {}  # no noise tensor stored


@pytest.mark.parametrize("n", [1, 1023, 4096, 4097, 3_000_001])
def test_kernel_noise_is_standard_normal(n):
    kernel = pytest.importorskip("azure_sciml._noise_kernel")
    x = torch.zeros(n, device=CUDA)
    kernel.add_normal_([x], 1.0, seed=123, draw=0, cache={})
    if n < 1000:
        assert torch.isfinite(x).all() and x.abs().max() < 10
        return
    tol = 5 / n**0.5
    assert abs(x.mean().item()) < tol
    assert abs(x.std().item() - 1) < 2 * tol
    assert abs((x.abs() > 1.96).float().mean().item() - 0.05) < 0.01
    if n >= 2048:  # the kernel's sub-blocks of 1024: uncorrelated, no two alike
        chunks = x[: n // 1024 * 1024].view(-1, 1024)
        assert abs((chunks[1:] * chunks[:-1]).mean().item()) < tol
        assert not (chunks[1:] == chunks[:-1]).all(dim=1).any()


def test_kernel_stream_is_keyed_by_seed_and_draw_and_covers_every_tensor():
    kernel = pytest.importorskip("azure_sciml._noise_kernel")

    def draw(seed, d, sizes=(5000, 5000, 70)):
        xs = [torch.zeros(s, device=CUDA) for s in sizes]
        kernel.add_normal_(xs, 2.0, seed=seed, draw=d, cache={})
        return torch.cat(xs)

    a = draw(1, 0)
    assert torch.equal(a, draw(1, 0))
    assert (a != 0).float().mean() > 0.999  # every element of every tensor got noise
    assert not torch.equal(a[:5000], a[5000:10000])  # tensors of a bucket differ
    for other in (draw(1, 1), draw(2, 0)):
        corr = torch.corrcoef(torch.stack([a, other]))[0, 1].item()
        assert abs(corr) < 0.05
    assert abs(a.std().item() - 2.0) < 0.1  # scaled by size


@pytest.mark.parametrize("closure", [True, "loss"])
def test_state_dict_resume_mid_sa_is_exact(closure):
    params = make_params()
    opt = Azure(params, **SA)
    drive(opt, params, 10, closure)
    buf = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buf)
    drive(opt, params, 20, closure)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=False)
    twin = [nn.Parameter(t) for t in ckpt["params"]]
    opt2 = Azure(twin, **{**SA, "seed": 99})
    opt2.load_state_dict(ckpt["opt"])
    drive(opt2, twin, 20, closure)
    assert equal(params, twin)
    assert opt2.stats() == opt.stats() and opt.stats()["n_proposals"] > 2


def test_annealing_fit_on_cuda_explores_and_finishes():
    result = fit(Rastrigin(dim=20, steps=600), lambda ps: Azure(ps, lr=0.05, sa_steps=540),
                 seed=0, device="cuda")
    assert result.status == "ok"
    assert result.optimizer.stats()["n_proposals"] > 5
