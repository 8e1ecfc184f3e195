"""Paired comparison: the exact sign test, Wilcoxon when scipy is there, and the verdicts."""

import sys

import numpy as np
import pytest
from report_runs import comparison_rows, write_sweep

from azure_sciml.report import paired, write_report


@pytest.mark.parametrize(("k", "n", "p"), [(0, 5, 0.0625), (5, 5, 0.0625), (1, 10, 0.021484375),
                                           (3, 6, 1.0), (0, 1, 1.0)])  # fmt: skip
def test_sign_test_is_exact_two_sided_binomial(k, n, p):
    assert paired.sign_test(k, n) == pytest.approx(p)


def test_paired_test_falls_back_to_sign_test_without_scipy(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # makes `from scipy.stats import` fail
    p_value, test, lean = paired.paired_test(np.array([-1.0, -2.0, -0.5, -3.0, -1.0, -2.0]))
    assert test == "exact sign test"
    assert p_value == pytest.approx(2 / 64)
    assert lean == -6  # six wins for the optimizer, no loss


def test_without_scipy_the_verdict_follows_the_sign_test(monkeypatch):
    """21 small wins against 9 large losses: the sign test counts seeds, so the optimizer wins."""
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    diffs = np.array([-float(k) for k in range(1, 22)] + [float(k) for k in range(22, 31)])
    p_value, test, lean = paired.paired_test(diffs)
    assert test == "exact sign test" and p_value < 0.05
    assert lean < 0 < paired.signed_rank_sum(diffs)  # the two statistics disagree here
    pairs = np.stack([diffs, np.zeros_like(diffs)], axis=1) - 100.0
    c = paired.compare("p", "azure", "adam", "err", pairs, alpha=0.05)
    assert c.verdict.startswith("Azure better")


def test_paired_test_uses_wilcoxon_when_scipy_is_there():
    pytest.importorskip("scipy")
    p_value, test, lean = paired.paired_test(np.array([-1.0, -2.0, -0.5, -3.0, -1.5, -2.5]))
    assert test == "Wilcoxon signed-rank" and lean == -21
    assert p_value == pytest.approx(2 / 64)  # exact: all six ranks on one side


def test_clear_azure_win_is_significant(tmp_path):
    write_sweep(tmp_path, azure_values=[0.01 * (s + 1) for s in range(8)], adam_values=[1.0] * 8)
    text = write_report(tmp_path).read_text()
    row = comparison_rows(tmp_path)["heat"]
    assert (row["n_pairs"], row["better"], row["worse"]) == ("8", "8", "0")
    assert float(row["median_ratio"]) == pytest.approx(0.045)
    assert row["verdict"].startswith("Azure better (p=")
    assert "**Azure better (p=" in text


def test_clear_adam_win_is_named(tmp_path):
    write_sweep(tmp_path, azure_values=[2.0 + s for s in range(8)], adam_values=[1.0] * 8)
    write_report(tmp_path)
    assert comparison_rows(tmp_path)["heat"]["verdict"].startswith("Adam better (p=")


def test_mixed_results_are_no_significant_difference(tmp_path):
    write_sweep(tmp_path, azure_values=[0.5, 2.0, 0.9, 1.1, 0.8, 1.3], adam_values=[1.0] * 6)
    write_report(tmp_path)
    assert comparison_rows(tmp_path)["heat"]["verdict"].startswith("no significant difference")


def test_five_seeds_cannot_be_significant_and_the_report_says_so(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1] * 5, adam_values=[1.0, 2.0, 3.0, 4.0, 5.0])
    text = write_report(tmp_path).read_text()
    row = comparison_rows(tmp_path)["heat"]
    assert row["better"] == "5"
    assert row["verdict"] == "no significant difference (p=0.062)"
    assert "smallest possible two-sided p is 0.0625" in text
    assert "run more seeds" in text


def test_each_problem_gets_a_verdict(tmp_path):
    write_sweep(tmp_path, [0.1] * 3, [1.0] * 3, problem="heat")
    write_sweep(tmp_path, [1.0] * 3, [1.0] * 3, problem="ode")
    write_report(tmp_path)
    rows = comparison_rows(tmp_path)
    assert set(rows) == {"heat", "ode"}
    assert rows["ode"]["verdict"].startswith("no significant difference (p=1")


def test_verdict_follows_the_signed_ranks_not_the_count_of_near_ties(tmp_path):
    """Lennard-Jones-like pairs: Adam is lower by ~1e-7 on 21 seeds where both reach the same
    minimum, Azure lower by ~3 on 19 seeds where only Azure reaches it. Azure is better (the
    median difference, a tiny Adam win, named Adam)."""
    pytest.importorskip("scipy")  # the Wilcoxon test; the sign test would count seeds
    azure = [-1e-6 + 1e-7 * (1 + i / 100) for i in range(21)] + [0.0] * 19
    adam = [-1e-6] * 21 + [2.85 + 0.1 * i for i in range(19)]
    write_sweep(tmp_path, azure, adam, problem="energy")
    write_report(tmp_path)
    row = comparison_rows(tmp_path)["energy"]
    assert int(row["better"]) == 19  # Azure lower on fewer seeds ...
    assert row["verdict"].startswith("Azure better")  # ... but by far more
