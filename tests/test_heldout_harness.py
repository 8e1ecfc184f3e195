"""The held-out benchmark harness (benchmarks/heldout.py): structure of its table and JSON, paired
initial points, the paired statistics, and problems that build (results are not checked)."""

import inspect
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import heldout  # noqa: E402
import heldout_problems  # noqa: E402

from azure_sciml import Azure  # noqa: E402


def table_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_smoke_run_table_json_and_pairing(tmp_path, capsys, one_thread):
    out = tmp_path / "dev.json"
    argv = ["--set", "dev", "--seeds", "1", "--problems", "rastrigin10,mlp_curve",
            "--steps", "15", "--jobs", "1", "--out", str(out)]
    assert heldout.main(argv) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[0] == heldout.header("adam", "azure")
    assert rows[0][2:4] == ["Adam median [IQR]", "Azure median [IQR]"]
    body = rows[2:]
    assert [(r[0], r[1]) for r in body] == [
        (p, m) for p in ("rastrigin10", "mlp_curve") for m in heldout.MODES
    ]
    has_loss = "loss" in inspect.signature(Azure.step).parameters
    for r in body:
        if r[1] == "plain_loss" and not has_loss:
            assert r[7] == "unavailable"
        else:
            assert r[7] in {"better", "not worse", "WORSE"}
            w, t, losses = map(int, r[5].split("/"))
            assert w + t + losses == 1

    data = json.loads(out.read_text())
    assert data["set"] == "dev" and data["seeds"] == [0]
    assert set(data["problems"]) == {"rastrigin10", "mlp_curve"}
    runs = data["runs"]
    assert len(runs) == 2 * (1 + len(heldout.MODES))  # one Adam run per seed serves every mode
    for run in runs:
        assert run["steps"] == 15
        if run["status"] == "unavailable":
            assert run["mode"] == "plain_loss" and not has_loss
            continue
        assert run["status"] == "ok", run
        assert run["evals"] == 15
        assert math.isfinite(run["metric"]) and math.isfinite(run["best_loss"])
    for problem in ("rastrigin10", "mlp_curve"):  # pairing: one initial point per seed
        hashes = {r["init_hash"] for r in runs if r["problem"] == problem and "init_hash" in r}
        assert len(hashes) == 1
    assert len(data["summary"]) == len(body)


def test_azure_kw_adds_two_comparisons(capsys, one_thread):
    argv = ["--set", "val", "--seeds", "1", "--problems", "fk32_offset", "--modes", "closure",
            "--steps", "10", "--jobs", "1", "--azure-kw", "sa_steps=0"]
    assert heldout.main(argv) == 0
    text = capsys.readouterr().out
    assert [line for line in text.splitlines() if line.startswith("### ")] == [
        "### Azure vs Adam", "### Azure+kw vs Adam", "### Azure+kw vs Azure"]
    assert table_rows(text)[-3][2:4] == ["Azure median [IQR]", "Azure+kw median [IQR]"]
    assert "fk32_offset: 10 steps" in text


def test_seeds_give_distinct_starts_and_repeat():
    problem = heldout_problems.development()["lj13"]
    a, b, a_again = (heldout_problems.build_seeded(problem, s) for s in (0, 1, 0))
    fp = heldout_problems.fingerprint
    assert fp(a) == fp(a_again) != fp(b)


@pytest.mark.parametrize("set_name", sorted(heldout_problems.SETS))
def test_every_problem_builds_with_a_finite_loss_and_metric(set_name):
    for name, problem in heldout_problems.SETS[set_name]().items():
        model = heldout_problems.build_seeded(problem, 0)
        loss = problem.loss(model)
        loss.backward()
        assert loss.ndim == 0 and math.isfinite(float(loss.detach())), name
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()), name
        assert math.isfinite(problem.metric(model)["metric"]), name
        assert problem.steps >= 1 and problem.lr > 0 and set(problem.modes) <= set(heldout.MODES)


def test_offset_problems_metric_ignores_the_offset():
    problems = heldout_problems.validation()
    egg = problems["eggcrate16_offset"]
    model = heldout_problems.build_seeded(egg, 3)
    f = float(heldout_problems.egg_crate(model.x.detach()))
    assert float(egg.loss(model).detach()) == pytest.approx(f + 1e4, rel=1e-12)
    assert egg.metric(model)["metric"] == pytest.approx(f, rel=1e-12)
    fk = problems["fk32_offset"]
    model = heldout_problems.build_seeded(fk, 3)
    e = float(heldout_problems.fk_energy(model.x.detach()))
    assert float(fk.loss(model).detach()) == pytest.approx(e - 1e5, rel=1e-12)
    gap = e - heldout_problems.REFERENCE_MINIMA["fk32"]
    assert fk.metric(model)["metric"] == pytest.approx(gap, rel=1e-9, abs=1e-9)


def test_compare_counts_ties_failures_and_direction():
    all_ties = heldout.compare({s: (1.0, 1.0 + 1e-12) for s in range(10)}, tie_tol=1e-9)
    assert (all_ties["wins"], all_ties["ties"], all_ties["losses"]) == (0, 10, 0)
    assert all_ties["p"] == 1.0 and all_ties["verdict"] == "not worse"
    worse = heldout.compare({s: (1.0 + s, 2.0 + 2 * s) for s in range(10)}, tie_tol=0.0)
    assert worse["losses"] == 10 and worse["p"] < 0.05 and worse["verdict"] == "WORSE"
    assert worse["ratio"] == pytest.approx(np.median(2.0 + 2 * np.arange(10)) / 5.5)
    better = heldout.compare({s: (math.inf, 1.0) for s in range(10)}, tie_tol=0.0)
    assert better["wins"] == 10 and better["verdict"] == "better"  # a failed baseline run loses
    both_failed = heldout.compare({0: (math.inf, math.inf), 1: (1.0, 2.0)}, tie_tol=0.0)
    assert (both_failed["ties"], both_failed["losses"]) == (1, 1)


def test_azure_kw_parsed_as_literals():
    assert heldout.parse_kw(["T0=0.5", "sa_relax=None", "betas=(0.9, 0.99)"]) == {
        "T0": 0.5, "sa_relax": None, "betas": (0.9, 0.99)}
    with pytest.raises(SystemExit, match="T0"):
        heldout.parse_kw(["T0=hot"])
    with pytest.raises(SystemExit, match="key=value"):
        heldout.parse_kw(["T0"])


def test_azure_kw_reaches_the_optimizer():
    task = heldout.Task("dev", "rastrigin10", "azure_kw", "closure", 0, (("no_such_knob", 1),), 5)
    problem = heldout.get_problem("dev", "rastrigin10", 5)
    model = heldout_problems.build_seeded(problem, 0)
    with pytest.raises(TypeError, match="no_such_knob"):
        heldout.make_optimizer(task, list(model.parameters()), problem)
    record = heldout.run_task(task)  # a run that fails is recorded, not raised
    assert record["status"] == "error" and "no_such_knob" in record["reason"]


@pytest.mark.slow
def test_two_worker_processes(tmp_path, capsys, one_thread):
    argv = ["--set", "val", "--seeds", "2", "--problems", "fk32_offset,moons_lr0.1",
            "--steps", "20", "--jobs", "2", "--modes", "closure", "--out", str(tmp_path / "v.json")]
    assert heldout.main(argv) == 0
    runs = json.loads((tmp_path / "v.json").read_text())["runs"]
    assert len(runs) == 2 * 2 * 2 and all(r["status"] == "ok" for r in runs)


def test_adam_closure_and_plain_loops_agree():
    """Why one Adam run per seed serves every mode."""
    problem = heldout.get_problem("dev", "mlp_curve", 10)
    ends = []
    for loop in (heldout.closure_loop, heldout.plain_loop):
        model = heldout_problems.build_seeded(problem, 0)
        losses = loop(torch.optim.Adam(model.parameters(), lr=problem.lr), model, problem)
        ends.append((losses, [p.detach().clone() for p in model.parameters()]))
    assert ends[0][0] == ends[1][0]
    assert all(torch.equal(a, b) for a, b in zip(ends[0][1], ends[1][1], strict=True))
