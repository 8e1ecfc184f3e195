"""Smoke runs of the benchmark scripts: they run and print their tables (timings not checked)."""

import re

import pytest
import torch
from bench_scripts import load


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield ["--device", "cpu", "--threads", "1"]
    torch.set_num_threads(before)


def tables(text):
    """The Markdown tables printed: lists of rows, each a list of cell strings."""
    out, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip("|").split("|")])
        elif current:
            out.append(current)
            current = []
    return out


def test_step_speed_smoke(capsys, one_thread):
    step_speed = load("step_speed")
    assert step_speed.main(["--smoke", *one_thread]) == 0
    text = capsys.readouterr().out
    ms, ratios, bandwidth = tables(text)
    expected = [step_speed.shape_label(c, s) for c, s in step_speed.SMOKE_SHAPES]
    for _, _, label in step_speed.MODELS:  # the problems' models: a row, or a note saying why not
        if f"skipped row '{label}'" not in text:
            expected.append(label)
    for t in (ms, ratios, bandwidth):
        assert [row[0] for row in t[2:]] == expected
    assert ms[0][:7] == ["shape", "params", "Adam single", "Adam foreach", "Adam fused",
                         "Azure SA", "Azure"]
    assert {"Azure fused SA", "Azure fused"} <= set(ms[0])
    assert "Azure SA / Adam foreach" in ratios[0] and "Azure fused / Adam fused" in ratios[0]
    assert all(re.fullmatch(r"[\d.]+", cell) for row in ms[2:] for cell in row[2:])
    assert expected[:3] == ["10x1k", "200x10", "4x2.5k"]


def test_run_speed_smoke(capsys, one_thread):
    run_speed = load("run_speed")
    assert run_speed.main(["--smoke", *one_thread]) == 0
    text = capsys.readouterr().out
    listed = re.search(r"^# problems: (.*)$", text, re.M).group(1)
    problems = [] if listed == "none" else listed.split(", ")
    if "azure_sciml.problems does not import" in text:  # then every missing one is named
        for _, name in run_speed.discover_problems.__globals__["EXPECTED_PROBLEMS"]:
            assert name in problems or f"skipped {name}" in text
    found = tables(text)
    rows = [row[0] for row in found[0][2:]] if found else []
    assert rows == [p for p in problems if f"skipped {p}" not in text]
    if rows:
        assert found[0][0][:4] == ["problem", "params", "Adam", "Azure"]
        assert "Azure / Adam" in found[0][0]


def test_run_speed_losses_times_the_heat_loss_three_ways(capsys, one_thread):
    run_speed = load("run_speed")
    argv = ["--losses", "--problems", "Heat", "--steps", "2", "--device", "cpu", *one_thread]
    assert run_speed.main(argv) == 0
    text = capsys.readouterr().out
    rows = [row[0] for row in tables(text)[0][2:]]
    assert rows == [f"Heat {dtype}{variant}" for dtype in ("float32", "float64")
                    for variant in ("", " loss_and_grad", " nested autograd")]
    assert "Heat float32 loss_and_grad / nested autograd:" in text


def test_staged_prints_one_row_per_variant(capsys):
    load("staged").main(["--seeds", "1"])
    rows = tables(capsys.readouterr().out)[0]
    assert [r[:2] for r in rows[2:]] == [["adam", "–"], ["protocol", "auto"],
                                          ["no_protocol", "auto"], ["protocol", "adam"],
                                          ["no_protocol", "adam"]]
    assert all(r[2] in ("0/1", "1/1") for r in rows[2:])


def test_descent_cost_prints_three_rows_a_problem(capsys):
    load("descent_cost").main(["--steps", "200", "--repeats", "1"])
    rows = tables(capsys.readouterr().out)[0][2:]
    assert [r[0] for r in rows] == ["LJ13"] * 3 + ["MLP"] * 3
    assert all(float(r[3]) > 0 for r in rows) and rows[0][3] == "1.00"


def test_relax_vs_lbfgs_relaxes_the_same_moves_with_both_methods(capsys):
    load("relax_vs_lbfgs").main(["--anchors", "3", "--moves", "2"])
    text = capsys.readouterr().out
    rows = tables(text)[0][2:]
    assert [r[0] for r in rows] == ["L-BFGS-B (float64)", "Azure's descent (float32)"]
    for row in rows:
        assert float(row[1]) > 10  # a relaxation takes more than a few evaluations
        shares = [float(cell.rstrip("%")) for cell in row[2:]]
        assert all(0 <= s <= 100 for s in shares) and shares[0] + shares[1] <= 100
    assert "# 2 relaxations each" in text
