"""Paired comparison: the Wilcoxon signed-rank test, ties, failures and the verdicts."""

import math

import numpy as np
import pytest
from report_runs import comparison_rows, write_sweep

from azure_sciml.report import paired, write_report


@pytest.mark.parametrize(("n", "p"), [(1, 1.0), (5, 0.0625), (6, 2 / 64), (10, 2 / 1024)])
def test_smallest_p_is_all_pairs_on_one_side(n, p):
    assert paired.smallest_p(n) == pytest.approx(p)
    assert paired.paired_test(-np.arange(1.0, n + 1))[0] == pytest.approx(p)


def test_paired_test_is_wilcoxon_and_leans_to_the_signed_ranks():
    p_value, test, lean = paired.paired_test(np.array([-1.0, -2.0, -0.5, -3.0, -1.5, -2.5]))
    assert test == "Wilcoxon signed-rank" and lean == -21
    assert p_value == pytest.approx(2 / 64)  # exact: all six ranks on one side


def test_ties_within_the_tolerance_and_failures():
    """Pairs within ``tie_tol`` are ties; a failed run (inf) loses to any finite one, two tie."""
    near = np.array([[1.0 + 1e-12, 1.0]] * 10)
    c = paired.compare("p", "azure", "adam", "gap", near, tie_tol=1e-9)
    assert (c.better, c.ties, c.worse, c.p_value, c.winner) == (0, 10, 0, 1.0, "")
    assert paired.compare("p", "azure", "adam", "gap", near).worse == 10  # no tolerance
    failed = np.array([[1.0, math.inf]] * 10 + [[math.inf, math.inf]])
    c = paired.compare("p", "azure", "adam", "gap", failed)
    assert (c.better, c.ties, c.winner) == (10, 1, "azure")
    assert c.verdict.startswith("Azure better (p=")


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
    azure = [-1e-6 + 1e-7 * (1 + i / 100) for i in range(21)] + [0.0] * 19
    adam = [-1e-6] * 21 + [2.85 + 0.1 * i for i in range(19)]
    write_sweep(tmp_path, azure, adam, problem="energy")
    write_report(tmp_path)
    row = comparison_rows(tmp_path)["energy"]
    assert int(row["better"]) == 19  # Azure lower on fewer seeds ...
    assert row["verdict"].startswith("Azure better")  # ... but by far more
