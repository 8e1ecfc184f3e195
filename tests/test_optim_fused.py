"""Azure's two Adam paths are torch.optim.Adam's, bit for bit.

Default (``fused=None``): ``Adam(foreach=True)``, including the tensor-by-tensor CPU route for large
contiguous tensors. ``fused=True``: ``Adam(fused=True)`` (torch's fused kernel; the CUDA checks are
in tests/test_cuda.py).
"""

import copy
import io

import pytest
import torch
from optim_helpers import make_driver
from torch import nn

from azure_sciml import Azure

BIG = (300, 256)  # 76_800 elements: the CPU path updates tensors from 2**15 elements one by one


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def make_params(dtype=torch.float32, seed=0):
    """Large, small, 0-d and non-contiguous (transposed) parameters."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [BIG, (256,), (7, 3), (), (1 << 15,), ((1 << 15) - 1,)]
    ps = [torch.randn(s, dtype=dtype, generator=gen) for s in shapes]
    ps.append(torch.randn(BIG, dtype=dtype, generator=gen).t())  # strided
    return [nn.Parameter(p) for p in ps]


def loss_of(params):
    return sum(((p - 0.3) ** 2).sum() + torch.cos(3 * p).sum() for p in params)


drive = make_driver(loss_of)


def equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


KW = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("fused", [None, True])
def test_sa_steps_zero_is_exactly_adam(threads, fused, weight_decay, dtype):
    kw = dict(KW, weight_decay=weight_decay)
    a, b = make_params(dtype), make_params(dtype)
    drive(Azure(a, sa_steps=0, fused=fused, **kw), a, 12)
    adam = dict(fused=True) if fused else dict(foreach=True)
    drive(torch.optim.Adam(b, **adam, **kw), b, 12)
    assert equal(a, b)


@pytest.mark.parametrize("fused", [None, True])
def test_groups_and_no_closure_are_exactly_adam(fused):
    a, b = make_params(), make_params()
    adam = dict(fused=True) if fused else dict(foreach=True)
    drive(Azure([{"params": a[:3], "lr": 3e-3}, {"params": a[3:], "weight_decay": 0.05}],
                sa_steps=0, fused=fused, **KW), a, 8, closure=False)
    drive(torch.optim.Adam([{"params": b[:3], "lr": 3e-3},
                            {"params": b[3:], "weight_decay": 0.05}], **adam, **KW),
          b, 8, closure=False)
    assert equal(a, b)


def test_fused_group_setting_is_per_group():
    a, b = make_params(), make_params()
    drive(Azure([{"params": a[:3], "fused": True}, {"params": a[3:]}], sa_steps=0, **KW), a, 6)
    drive(torch.optim.Adam(b[:3], fused=True, **KW), b[:3], 6)
    drive(torch.optim.Adam(b[3:], foreach=True, **KW), b[3:], 6)
    assert equal(a, b)


@pytest.mark.parametrize("fused", [None, True])
def test_after_sa_phase_update_is_adams(fused):
    """Once the SA phase is over, steps equal Adam's from the same moments."""
    a = make_params()
    opt = Azure(a, sa_steps=10, sa_interval=2, seed=0, fused=fused, **KW)
    drive(opt, a, 14)
    b = [nn.Parameter(p.detach().clone()) for p in a]
    adam = torch.optim.Adam(b, **(dict(fused=True) if fused else dict(foreach=True)), **KW)
    sd = adam.state_dict()
    for i, p in enumerate(a):
        s = opt.state[p]
        sd["state"][i] = dict(step=torch.tensor(float(s["step"])), exp_avg=s["exp_avg"].clone(),
                              exp_avg_sq=s["exp_avg_sq"].clone())
    adam.load_state_dict(sd)
    drive(opt, a, 5)
    drive(adam, b, 5)
    assert equal(a, b)


@pytest.mark.parametrize("closure", [True, False])
def test_fused_state_dict_resume_mid_sa_is_exact(closure):
    kw = dict(KW, sa_steps=40, sa_interval=4, sigma=1.0, fused=True)
    a = make_params()
    opt = Azure(a, seed=3, **kw)
    drive(opt, a, 10, closure)
    buf = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in a], "opt": opt.state_dict()}, buf)
    assert not any(isinstance(k, str) and "scratch" in k for k in opt.state_dict())
    drive(opt, a, 40, closure)

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=False)
    b = [nn.Parameter(p) for p in ckpt["params"]]
    opt2 = Azure(b, seed=99, **kw)
    opt2.load_state_dict(ckpt["opt"])
    drive(opt2, b, 40, closure)
    assert equal(a, b)
    assert opt2.stats() == opt.stats()


def test_fused_setting_travels_with_state_dict():
    """Like Adam's, ``fused`` is a group setting: loading a state_dict restores it."""
    a, b = make_params(), make_params()
    opt = Azure(a, sa_steps=0, fused=True, **KW)
    drive(opt, a, 3)
    twin = Azure(b, sa_steps=0, **KW)
    twin.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert twin.param_groups[0]["fused"] is True
    for p, q in zip(a, b, strict=True):
        q.data.copy_(p)
    drive(opt, a, 3)
    drive(twin, b, 3)
    assert equal(a, b)


def test_fused_and_default_paths_agree_to_rounding_during_sa():
    a, b = make_params(), make_params()
    drive(Azure(a, seed=1, sa_steps=30, sa_interval=3, **KW), a, 30)
    drive(Azure(b, seed=1, sa_steps=30, sa_interval=3, fused=True, **KW), b, 30)
    assert all(torch.allclose(x, y, rtol=1e-4, atol=1e-5) for x, y in zip(a, b, strict=True))


def test_deepcopy_and_scratch_reuse():
    a = make_params()
    opt = Azure(a, sa_steps=0, **KW)
    drive(opt, a, 2)
    # the large tensors went tensor by tensor, through one reused buffer of the largest one's size
    assert opt.__dict__["_adam_scratch"][torch.float32].numel() == BIG[0] * BIG[1]
    twin = copy.deepcopy(opt)  # the scratch cache is not state: deepcopy drops it
    assert "_adam_scratch" not in twin.__dict__
    b = [p for g in twin.param_groups for p in g["params"]]
    drive(opt, a, 3)
    drive(twin, b, 3)
    assert equal(a, b)


def test_invalid_fused_value():
    with pytest.raises(ValueError, match="fused.*'yes'"):
        Azure([nn.Parameter(torch.zeros(1))], fused="yes")


def test_fused_rejects_devices_other_than_cpu_and_cuda():
    p = nn.Parameter(torch.zeros(3, device="meta"))
    p.grad = torch.zeros(3, device="meta")
    with pytest.raises(RuntimeError, match="`fused=True` requires.*on meta"):
        Azure([p], fused=True, sa_steps=0).step()
