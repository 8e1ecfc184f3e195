"""Property-based checks of Azure: random shapes, dtypes, groups and hyperparameters."""

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optim_helpers import MODES, make_driver

from azure_sciml import Azure

shapes = st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3), min_size=1, max_size=4)
dtypes = st.sampled_from([torch.float32, torch.float64])
hyper = st.fixed_dictionaries(
    {
        "lr": st.floats(0.0, 0.5),
        "T0": st.floats(0.0, 10.0),
        "sigma": st.floats(0.0, 5.0),
        "sa_steps": st.integers(0, 30),
        "sa_momentum": st.floats(0.0, 0.99),
        "weight_decay": st.floats(0.0, 0.1),
    }
)
globals_ = st.fixed_dictionaries(
    {"sa_interval": st.integers(1, 6), "sa_patience": st.integers(0, 3)}
)
group_hyper = st.fixed_dictionaries({"lr": st.floats(0.0, 0.5), "sigma": st.floats(0.0, 5.0)})


def make_params(shape_list, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, dtype=dtype, generator=gen).requires_grad_() for s in shape_list]


def loss_of(params):
    return sum(((p - 0.5) ** 2).sum() + torch.cos(3 * p).sum() for p in params)


drive = make_driver(loss_of)


def split_groups(params, group_hyper):
    """Two groups when there are at least two tensors, the second with its own hyperparameters."""
    if len(params) < 2:
        return params
    return [{"params": params[:1]}, {"params": params[1:], **group_hyper}]


@settings(max_examples=25, deadline=None)
@given(shapes, dtypes, hyper, group_hyper, globals_, st.sampled_from(MODES), st.integers(0, 2**16))
def test_finite_in_finite_out(shape_list, dtype, h, h2, g, closure, seed):
    params = make_params(shape_list, dtype, seed)
    opt = Azure(split_groups(params, h2), seed=seed, **h, **g)
    drive(opt, params, 12, closure)
    assert all(torch.isfinite(p).all() for p in params)


@settings(max_examples=20, deadline=None)
@given(shapes, dtypes, hyper, globals_, st.sampled_from(MODES), st.integers(0, 2**16))
def test_state_dict_round_trip_is_exact(shape_list, dtype, h, g, closure, seed):
    params = make_params(shape_list, dtype, seed)
    opt = Azure(params, seed=seed, **h, **g)
    drive(opt, params, 7, closure)
    saved_params = [p.detach().clone() for p in params]
    saved = copy.deepcopy(opt.state_dict())
    drive(opt, params, 9, closure)
    expected = [p.detach().clone() for p in params]

    twins = [p.clone().detach().requires_grad_() for p in saved_params]
    opt2 = Azure(twins, seed=seed + 1, **h, **g)
    opt2.load_state_dict(saved)
    drive(opt2, twins, 9, closure)
    assert all(torch.equal(a, b) for a, b in zip(twins, expected, strict=True))


@settings(max_examples=20, deadline=None)
@given(shapes, hyper, st.sampled_from(MODES), st.integers(0, 2**16))
def test_sa_steps_zero_equals_adam(shape_list, h, closure, seed):
    adam_kw = {k: h[k] for k in ("lr", "weight_decay")}
    a = make_params(shape_list, torch.float64, seed)
    b = make_params(shape_list, torch.float64, seed)
    drive(Azure(a, **{**h, "sa_steps": 0}), a, 10, closure)
    drive(torch.optim.Adam(b, **adam_kw), b, 10, closure is True)  # Adam takes no loss=
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
