"""RAD (Wu et al. 2023): points go where the residual is large, as many as asked, distinct,
reproducible by seed; k = 0 is uniform; bad arguments fail."""

import pytest
import torch

from azure_sciml.problems._collocation import rad_sample


def peaked(points):
    """A residual that is large on x in [0, 0.1) and small elsewhere on [0, 1)."""
    return torch.where(points[:, 0] < 0.1, 10.0, 0.1)


def candidates(n=5000, seed=0):
    torch.manual_seed(seed)
    return torch.rand(n, 2, dtype=torch.float64)


def share_in_peak(points):
    return float((points[:, 0] < 0.1).double().mean())


def test_points_concentrate_where_the_residual_is_large():
    pool = candidates()
    drawn = rad_sample(peaked, pool, 500)
    # weights |r| / mean|r| + 1: ~10 / 1.09 + 1 in the peak, ~0.09 + 1 outside: about 49% drawn
    # there against 10% uniformly
    assert share_in_peak(pool) == pytest.approx(0.1, abs=0.02)
    assert share_in_peak(drawn) > 0.35


def test_larger_k_concentrates_more_and_k_zero_is_uniform():
    pool = candidates()
    torch.manual_seed(1)
    k2 = share_in_peak(rad_sample(peaked, pool, 200, k=2.0))
    torch.manual_seed(1)
    k1 = share_in_peak(rad_sample(peaked, pool, 200, k=1.0))
    torch.manual_seed(1)
    k0 = share_in_peak(rad_sample(peaked, pool, 200, k=0.0))
    assert k2 > k1 > 0.35 and k0 < 0.15


def test_count_is_kept_and_points_are_distinct_candidates():
    pool = candidates(1000)
    drawn = rad_sample(peaked, pool, 300)
    assert drawn.shape == (300, 2) and drawn.dtype == pool.dtype
    assert torch.unique(drawn, dim=0).shape[0] == 300
    assert torch.isin(drawn[:, 0], pool[:, 0]).all()


def test_same_seed_same_points():
    pool = candidates()
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        runs.append(rad_sample(peaked, pool, 200))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_zero_residual_draws_uniformly_and_gradients_are_dropped():
    pool = candidates(2000).requires_grad_(True)
    drawn = rad_sample(lambda p: 0 * p.sum(1), pool, 1000)
    assert 0.05 < share_in_peak(drawn.detach()) < 0.15
    weight = torch.ones((), requires_grad=True)
    rad_sample(lambda p: weight * p[:, 0], candidates(), 10)  # a graph to the weight: no error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive integer, got 0"),
        ({"n": 2.0}, "n must be a positive integer, got 2.0"),
        ({"n": 6000}, r"candidates must be of shape \(M, d\) with M >= n = 6000"),
        ({"k": -1.0}, "k must be a finite number >= 0, got -1.0"),
        ({"c": float("inf")}, "c must be a finite number >= 0, got inf"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rad_sample(peaked, candidates(), **{"n": 10, **kwargs})


def test_c_zero_needs_enough_nonzero_residuals():
    only_ten = lambda p: (torch.arange(p.shape[0]) < 10).double()  # noqa: E731
    assert rad_sample(only_ten, candidates(100), 10, c=0.0).shape == (10, 2)
    with pytest.raises(ValueError, match="c = 0 needs n = 11 candidates"):
        rad_sample(only_ten, candidates(100), 11, c=0.0)


def test_non_finite_residual_is_an_error():
    with pytest.raises(FloatingPointError, match="not finite"):
        rad_sample(lambda p: p[:, 0] / 0, candidates(), 10)
