"""The shared loop: evaluation counting, seeding, best iterate, non-finite guards, exact resume."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from toy_problem import Toy

from azure_sciml import Azure, LossProblem, fit
from azure_sciml.train import Progress

HERE = Path(__file__).resolve().parent
ADAM = functools.partial(torch.optim.Adam, lr=1e-2)
AZURE = functools.partial(Azure, lr=1e-2, sa_steps=40, sa_interval=4, sigma=1.0)


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_every_closure_call_is_counted():
    result = fit(Toy(), ADAM, steps=25)
    assert result.n_loss_evals == result.n_grad_evals == result.n_steps == 25
    assert len(result.history) == 25 and result.wall_time_s > 0
    assert result.status == "ok"


def test_an_optimizer_that_evaluates_more_is_charged():
    lbfgs = functools.partial(torch.optim.LBFGS, lr=0.5, max_iter=5)
    result = fit(Toy(), lbfgs, steps=25)
    assert result.n_loss_evals >= 25
    assert result.n_steps < result.n_loss_evals


def test_azure_counts_agree_with_the_loop():
    result = fit(Toy(), AZURE, steps=30)
    assert result.optimizer.stats()["n_loss_evals"] == result.n_loss_evals == 30


def test_same_seed_same_start_and_data_for_every_optimizer():
    seen = {}

    def capture(name, factory):
        def make(params):
            params = list(params)
            seen[name] = torch.cat([p.detach().flatten().clone() for p in params])
            return factory(params)

        return make

    problems = {"adam": Toy(), "azure": Toy()}
    fit(problems["adam"], capture("adam", ADAM), seed=3, steps=2)
    fit(problems["azure"], capture("azure", AZURE), seed=3, steps=2)
    assert torch.equal(seen["adam"], seen["azure"])
    assert torch.equal(problems["adam"].x_test, problems["azure"].x_test)
    fit(Toy(), capture("other", ADAM), seed=4, steps=2)
    assert not torch.equal(seen["adam"], seen["other"])


def test_building_the_optimizer_does_not_shift_the_data_stream():
    """Toy draws a fresh minibatch from torch's RNG every evaluation; an optimizer factory that
    draws from the same RNG (as Azure with seed=None does) must not change those minibatches."""

    def rng_hungry(params):
        torch.rand(1000)
        return ADAM(params)

    plain = fit(Toy(), ADAM, seed=3, steps=30)
    hungry = fit(Toy(), rng_hungry, seed=3, steps=30)
    assert hungry.history == plain.history
    assert torch.equal(flat(hungry.model), flat(plain.model))


def test_training_reduces_loss_and_keeps_best_iterate():
    result = fit(Toy(), ADAM, steps=200)
    losses = [loss for _, loss in result.history]
    assert result.best_loss == min(losses)
    assert result.metrics["mse"] < 0.5 * losses[0]
    assert set(result.best_metrics) == {"mse"}


@pytest.mark.parametrize("factory", [ADAM, AZURE], ids=["adam", "azure"])
def test_nonfinite_loss_stops_cleanly_without_touching_weights(factory):
    result = fit(Toy(nan_after=10), factory, steps=50)
    assert result.status == "diverged"
    assert "step 10" in result.message and "nan" in result.message
    assert torch.isfinite(flat(result.model)).all()
    assert result.n_steps == 10


def test_nonfinite_skip_mode_goes_on():
    result = fit(Toy(nan_after=10), ADAM, steps=20, on_nonfinite="skip")
    assert result.status == "ok" and result.n_loss_evals == 20
    assert torch.isfinite(flat(result.model)).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="on_nonfinite.*'maybe'"):
        fit(Toy(), ADAM, on_nonfinite="maybe")
    with pytest.raises(ValueError, match="steps.*0"):
        fit(Toy(), ADAM, steps=0)
    with pytest.raises(ValueError, match="checkpoint_every.*-1"):
        fit(Toy(), ADAM, checkpoint="x.pt", checkpoint_every=-1)
    with pytest.raises(ValueError, match="callback_every.*0"):
        fit(Toy(), ADAM, callback=print, callback_every=0)


def test_users_plain_loss_function_goes_through_the_loop():
    target = torch.tensor([1.0, -2.0, 3.0])

    class Point(nn.Module):
        def __init__(self):
            super().__init__()
            self.x = nn.Parameter(torch.zeros(3))

    problem = LossProblem(model=Point, loss_fn=lambda m: ((m.x - target) ** 2).sum(), steps=400)
    result = fit(problem, functools.partial(Azure, lr=0.05, sa_steps=100, sa_interval=10))
    assert result.metrics["loss"] < 1e-6
    assert torch.allclose(result.model.x, target, atol=1e-3)


# -- checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [ADAM, AZURE], ids=["adam", "azure"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, factory):
    reference = fit(Toy(), factory, seed=1, steps=60)
    ckpt = tmp_path / "run.pt"
    fit(Toy(), factory, seed=1, steps=24, checkpoint=ckpt, checkpoint_every=8)  # stops mid-SA
    resumed = fit(Toy(), factory, seed=1, steps=60, checkpoint=ckpt, checkpoint_every=8,
                  resume=True)
    assert torch.equal(flat(resumed.model), flat(reference.model))
    assert resumed.metrics == reference.metrics
    assert resumed.history == reference.history
    assert resumed.n_loss_evals == 60


def test_sigkill_mid_run_then_resume_gives_the_same_result(tmp_path):
    reference = fit(Toy(), AZURE, seed=2, steps=60)
    ckpt = tmp_path / "run.pt"
    script = (
        "import functools, torch; from toy_problem import Toy; from azure_sciml import Azure, fit;"
        "f = functools.partial(Azure, lr=1e-2, sa_steps=40, sa_interval=4, sigma=1.0);"
        f"fit(Toy(kill_at=27), f, seed=2, steps=60, checkpoint={str(ckpt)!r}, checkpoint_every=5)"
    )
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp"))
    resumed = fit(Toy(), AZURE, seed=2, steps=60, checkpoint=ckpt, checkpoint_every=5,
                  resume=True)
    assert torch.equal(flat(resumed.model), flat(reference.model))
    assert resumed.metrics == reference.metrics


def test_corrupt_checkpoint_is_reported(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(Toy(), ADAM, steps=5, checkpoint=ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        fit(Toy(), ADAM, steps=10, checkpoint=ckpt, resume=True)


def test_checkpoint_of_another_optimizer_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(Toy(), ADAM, steps=5, checkpoint=ckpt)
    with pytest.raises(ValueError, match="optimizer_class 'Adam', not 'Azure'"):
        fit(Toy(), AZURE, steps=10, checkpoint=ckpt, resume=True)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(Toy(), ADAM, steps=5, checkpoint=ckpt)

    class Wider(Toy):
        def build(self, device, dtype):
            super().build(device, dtype)
            return nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))

    Wider.__name__ = "Toy"
    with pytest.raises(ValueError, match="does not fit this model"):
        fit(Wider(), ADAM, steps=10, checkpoint=ckpt, resume=True)


@pytest.mark.parametrize("make", [
    lambda ps: Azure(ps, lr=1e-2),
    functools.partial(Azure, lr=1e-2),
], ids=["lambda", "partial"])  # fmt: skip
def test_any_factory_gets_the_run_length(make):
    """The run-length protocol (azure_sciml.run_length): fit hands its budget to the optimizer."""
    result = fit(Toy(), make, steps=50)
    assert (result.optimizer.total_steps, result.optimizer.sa_steps) == (50, 45)


def test_an_explicit_run_length_wins():
    result = fit(Toy(), functools.partial(Azure, lr=1e-2, total_steps=20), steps=50)
    assert (result.optimizer.total_steps, result.optimizer.sa_steps) == (20, 18)
    result = fit(Toy(), AZURE, steps=50)  # sa_steps=40 given
    assert result.optimizer.sa_steps == 40


def test_the_callback_sees_progress_and_can_stop_the_run():
    seen: list[Progress] = []

    def stop_at_20(progress):
        seen.append(progress)
        return progress.n_loss_evals >= 20

    result = fit(Toy(), ADAM, steps=50, callback=stop_at_20, callback_every=5)
    assert [p.n_loss_evals for p in seen] == [5, 10, 15, 20]
    assert all(p.budget == 50 and p.best_loss <= p.loss for p in seen)
    assert result.status == "stopped" and result.n_loss_evals == 20
    assert "callback" in result.message and result.metrics  # evaluated as usual


def test_the_callback_is_called_after_the_last_step():
    calls = []
    fit(Toy(), ADAM, steps=12, callback=calls.append, callback_every=5)
    assert [p.n_loss_evals for p in calls] == [5, 10, 12]


class _Fingerprinted(Toy):
    """Toy whose metric is a fingerprint of the parameters, and which records the fingerprint
    of every evaluation: the best metrics must be the best loss's parameters'."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def loss(self, model):
        self.seen.append(float(flat(model).double().sum()))
        return super().loss(model)

    def evaluate(self, model):
        return {"mse": float(flat(model).double().sum())}


def test_best_metrics_are_those_of_the_best_evaluations_parameters():
    problem = _Fingerprinted()
    result = fit(problem, ADAM, steps=80)
    losses = [loss for _, loss in result.history]
    best = losses.index(min(losses))
    assert best < len(losses) - 1 and result.best_metrics["mse"] == problem.seen[best]


class _Fused(Toy):
    """Toy with ``loss_and_grad`` (loss and backward in one call); ``decline``: it returns None."""

    def __init__(self, decline=False, **kwargs):
        super().__init__(**kwargs)
        self.decline, self.fused_calls = decline, 0

    def loss_and_grad(self, model):
        if self.decline:
            return None
        self.fused_calls += 1
        loss = self.loss(model)
        loss.backward()
        return loss.detach()


def test_fit_takes_loss_and_grad_when_the_problem_offers_it():
    fused, declined = _Fused(), _Fused(decline=True)
    runs = [fit(problem, ADAM, steps=30, seed=2) for problem in (fused, declined, Toy())]
    assert fused.fused_calls == 30 and declined.fused_calls == 0
    assert runs[0].history == runs[1].history == runs[2].history
    assert torch.equal(flat(runs[0].model), flat(runs[2].model))


def test_a_nonfinite_loss_from_loss_and_grad_leaves_no_gradient():
    from azure_sciml.train import NonFiniteLoss, _Counter

    problem = _Fused(nan_after=0)
    model = problem.build(torch.device("cpu"), torch.float32)
    counter = _Counter(problem, model, None)
    with pytest.raises(NonFiniteLoss, match="loss is nan"):
        counter()
    assert all(p.grad is None for p in model.parameters()) and counter.n_grad == 0
    result = fit(_Fused(nan_after=10), ADAM, steps=20, on_nonfinite="skip")
    assert result.status == "ok" and torch.isfinite(flat(result.model)).all()
