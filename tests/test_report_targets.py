"""Targets: each kind judged on the runs with the numbers; bad entries are rows saying why."""

import pytest
from report_runs import (
    comparison_rows,
    targets_table,
    write_missing_job,
    write_run,
    write_sweep,
    write_targets,
)

from azure_sciml.report import write_report

RATE = {"text": "recovers in 60% of runs", "problems": ["heat"], "kind": "rate_at_least",
        "metric": "recovered", "value": 0.6}  # fmt: skip


@pytest.mark.parametrize(("azure", "met"), [([0.1, 0.1, 0.1, 0.9, 0.9], "met"),
                                            ([0.1, 0.1, 0.9, 0.9, 0.9], "not met")])  # fmt: skip
def test_rate_target_is_judged_on_the_runs_with_the_counts(tmp_path, azure, met):
    write_sweep(tmp_path, azure_values=azure, adam_values=[0.9] * 5)  # recovered: value < 0.5
    write_targets(tmp_path, RATE)
    rows = targets_table(write_report(tmp_path).read_text())
    k = sum(v < 0.5 for v in azure)
    assert rows[1] == (
        f"| recovers in 60% of runs | Azure {k}/5 ({20.0 * k:.1f}%), Adam 0/5 (0.0%) | **{met}** |"
    )


def test_failed_runs_count_as_misses_in_a_rate(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.1, 0.1], adam_values=[0.9] * 3)
    write_run(tmp_path, "heat_azure_3", "heat", "azure", 3, 0.1, status="failed", metrics={})
    write_missing_job(tmp_path, "heat_azure_4", optimizer="azure", seed=4)
    write_targets(tmp_path, RATE)
    rows = targets_table(write_report(tmp_path).read_text())
    assert "Azure 3/5 (60.0%)" in rows[1] and rows[1].endswith("**met** |")
    write_run(tmp_path, "heat_azure_5", "heat", "azure", 5, 0.1, status="failed", metrics={})
    rows = targets_table(write_report(tmp_path).read_text())
    assert "Azure 3/6 (50.0%)" in rows[1] and rows[1].endswith("**not met** |")


def test_rate_above_baseline_is_summed_over_problems_and_a_tie_is_not_met(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.9], adam_values=[0.9, 0.1], problem="a")
    write_sweep(tmp_path, azure_values=[0.1, 0.9], adam_values=[0.9, 0.9], problem="b")
    above = {"text": "more recoveries", "kind": "rate_above_baseline", "metric": "recovered"}
    write_targets(tmp_path, {**above, "problems": ["a"]}, {**above, "problems": ["a", "b"]})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == "| more recoveries | Azure 1/2 (50.0%), Adam 1/2 (50.0%) | **not met** |"
    assert rows[2] == "| more recoveries | Azure 2/4 (50.0%), Adam 1/4 (25.0%) | **met** |"


def test_median_ratio_target_compares_medians_of_the_headline_metric(tmp_path):
    write_sweep(tmp_path, azure_values=[1.0, 2.0, 9.0], adam_values=[3.0, 6.0, 6.0])
    third = {"text": "a third", "problems": ["heat"], "kind": "median_ratio_at_most"}
    write_targets(tmp_path, {**third, "value": 1 / 3}, {**third, "value": 0.34})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == "| a third | heat: Azure 2, Adam 6 (0.333x) | **met** |"
    write_targets(tmp_path, {**third, "value": 0.33})
    assert targets_table(write_report(tmp_path).read_text())[1].endswith("**not met** |")


@pytest.mark.parametrize(("azure", "met"), [([2.0 + s for s in range(8)], "not met"),
                                            ([0.5, 2.0, 0.9, 1.1, 0.8, 1.3, 1.0, 1.0], "met"),
                                            ([0.1] * 8, "met")])  # fmt: skip
def test_not_worse_fails_only_when_adam_is_significantly_better(tmp_path, azure, met):
    write_sweep(tmp_path, azure_values=azure, adam_values=[1.0] * 8)
    write_targets(tmp_path, {"text": "no worse", "problems": ["heat"], "kind": "not_worse"})
    row = targets_table(write_report(tmp_path).read_text())[1]
    verdict = comparison_rows(tmp_path)["heat"]["verdict"]
    better = sum(a < 1 for a in azure)
    assert row == f"| no worse | heat: {verdict}, better on {better}/8 | **{met}** |"


def test_targets_of_problems_not_run_are_not_measured(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    write_targets(tmp_path, {**RATE, "problems": ["heat", "ode"]})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == (
        "| recovers in 60% of runs | not run here (no Azure runs of ['ode']) | not judged |"
    )


def test_no_targets_no_section(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    assert "## Targets" not in write_report(tmp_path).read_text()
    write_targets(tmp_path)
    assert "## Targets" not in write_report(tmp_path).read_text()


@pytest.mark.parametrize(("entry", "words"), [
    ({**RATE, "kind": "rate_at_best"}, "kind='rate_at_best'"),
    ({**RATE, "value": None}, "rate_at_least needs 'value' (got None)"),
    ({**RATE, "value": "0.6"}, "needs 'value' (got '0.6')"),
    ({**RATE, "problems": []}, "needs 'problems'"),
    ({**RATE, "problems": "heat"}, "needs 'problems' (got 'heat')"),
    ({**RATE, "optimiser": "adam"}, "unknown key(s) ['optimiser']"),
    ({"text": "x", "problems": ["heat"], "kind": "rate_above_baseline"}, "needs 'metric'"),
    ("LJ13 90%", "'LJ13 90%' is not a mapping"),
])  # fmt: skip
def test_a_bad_target_is_a_row_naming_what_is_wrong_and_the_report_is_kept(
    tmp_path, entry, words
):
    write_sweep(tmp_path, azure_values=[0.1], adam_values=[1.0])
    write_targets(tmp_path, entry, RATE)
    text = write_report(tmp_path).read_text()
    rows = targets_table(text)
    assert "| invalid target: " in rows[1] and words in rows[1]
    assert rows[1].endswith("| not judged |")
    assert rows[2].endswith("| **met** |")  # the good target is still judged
    assert "## heat" in text


def test_rates_need_a_reported_metric_and_compare_as_fractions(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.1, 0.9, 0.9], adam_values=[0.1, 0.9, 0.9, 0.9])
    write_run(tmp_path, "heat_adam_9", "heat", "adam", 9, 0.1)  # Adam 2/5 = 40% < Azure 50%
    above = {"text": "more", "problems": ["heat"], "kind": "rate_above_baseline"}
    write_targets(tmp_path, {**above, "metric": "recoverd"}, {**above, "metric": "recovered"})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == "| more | no run reports `recoverd` | not judged |"
    assert rows[2] == "| more | Azure 2/4 (50.0%), Adam 2/5 (40.0%) | **met** |"


def test_a_rate_exactly_at_the_threshold_is_met(tmp_path):
    azure = [0.1] * 7 + [0.9] * 93  # 7/100: 0.07 * 100 is 7.000000000000001 in floating point
    write_sweep(tmp_path, azure_values=azure, adam_values=[0.9] * 100)
    write_targets(tmp_path, {**RATE, "value": 0.07})
    assert targets_table(write_report(tmp_path).read_text())[1].endswith("| **met** |")


def test_targets_are_judged_against_adam_whatever_the_report_baseline(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1] * 8, adam_values=[1.0] * 8)
    write_targets(tmp_path, {"text": "no worse", "problems": ["heat"], "kind": "not_worse"})
    rows = targets_table(write_report(tmp_path, baseline="azure").read_text())
    assert rows[1].startswith("| no worse | heat: Azure better (p=")
    assert rows[1].endswith("**met** |")


def test_failed_runs_are_the_worst_in_a_median_and_no_baseline_is_not_judged(tmp_path):
    write_sweep(tmp_path, azure_values=[0.01], adam_values=[6.0])
    for seed in range(1, 5):  # four of Azure's five runs failed: its median is no success
        write_run(tmp_path, f"heat_azure_{seed}", "heat", "azure", seed, 0.01, status="failed")
        write_run(tmp_path, f"heat_adam_{seed}", "heat", "adam", seed, 6.0)
    third = {"text": "a third", "kind": "median_ratio_at_most", "value": 1 / 3}
    write_targets(tmp_path, {**third, "problems": ["heat"]})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == "| a third | heat: Azure inf, Adam 6 (infx) | **not met** |"
    other = tmp_path / "all_adam_runs_failed"
    for seed in range(5):  # no ratio, no pairs
        write_run(other, f"azure_{seed}", "heat", "azure", seed, 0.01)
        write_run(other, f"adam_{seed}", "heat", "adam", seed, 6.0, status="failed")
    no_worse = {"text": "no worse", "problems": ["heat"], "kind": "not_worse"}
    write_targets(other, {**third, "problems": ["heat"]}, no_worse)
    rows = targets_table(write_report(other).read_text())
    assert rows[1] == "| a third | heat: Adam's median is inf: no ratio | not judged |"
    assert rows[2] == "| no worse | heat: no paired runs | not judged |"


def test_an_absolute_median_goal_is_judged_on_each_problem(tmp_path):
    write_sweep(tmp_path, azure_values=[5e-4, 8e-4, 2e-3], adam_values=[5e-3] * 3)
    goal = {"text": "rel_l2 at most 1e-3", "problems": ["heat"], "kind": "median_at_most"}
    write_targets(tmp_path, {**goal, "value": 1e-3}, {**goal, "text": "tighter", "value": 5e-4})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == "| rel_l2 at most 1e-3 | heat: Azure 0.0008 (at most 0.001) | **met** |"
    assert rows[2] == "| tighter | heat: Azure 0.0008 (at most 0.0005) | **not met** |"


def test_absolute_goals_need_no_baseline_runs(tmp_path):
    """median_at_most and rate_at_least judge the named optimizer alone: a sweep without Adam
    (e.g. only finishers) is judged; a goal comparing with Adam is not."""
    for seed, value in enumerate([5e-4, 8e-4, 2e-3]):
        write_run(tmp_path, f"heat_azure_{seed}", "heat", "azure", seed, value)
    goal = {"text": "rel_l2 at most 1e-3", "problems": ["heat"], "kind": "median_at_most"}
    write_targets(tmp_path, {**goal, "value": 1e-3}, {**RATE, "value": 0.5},
                  {"text": "no worse", "problems": ["heat"], "kind": "not_worse"})
    rows = targets_table(write_report(tmp_path).read_text())
    assert rows[1] == "| rel_l2 at most 1e-3 | heat: Azure 0.0008 (at most 0.001) | **met** |"
    assert rows[2] == "| recovers in 60% of runs | Azure 3/3 (100.0%) | **met** |"
    assert rows[3] == "| no worse | not run here (no Adam runs of ['heat']) | not judged |"


def test_targets_set_after_the_sweep_ran_are_judged_and_kept_with_the_page(tmp_path):
    from azure_sciml.report.cli import main

    sweep, page = tmp_path / "sweep", tmp_path / "page"
    write_sweep(sweep, azure_values=[5e-4, 8e-4, 2e-3], adam_values=[5e-3] * 3)
    write_targets(sweep, {"text": "old", "problems": ["heat"], "kind": "not_worse"})
    later = tmp_path / "experiment.yaml"  # an experiment config: defaults, hydra, targets
    later.write_text(
        "# @package _global_\ndefaults:\n  - override /scheduler: step_decay\n"
        "targets:\n  - text: new\n    problems: [heat]\n    kind: median_at_most\n"
        "    value: 1.0e-3\nhydra:\n  sweep:\n    dir: multirun/${now:%Y}\n"
    )
    main([str(sweep), "--export", str(page), "--targets", str(later)])
    text = (page / "report.md").read_text()
    rows = targets_table(text)
    assert len(rows) == 2 and rows[1] == "| new | heat: Azure 0.0008 (at most 0.001) | **met** |"
    assert "set after the sweep ran (`targets.yaml` beside the runs)" in text
    assert write_report(page).read_text() == text  # a rebuild from the page judges the same
    main([str(sweep), "--export", str(page)])  # re-exported without: the sweep's own again
    assert targets_table((page / "report.md").read_text())[1].startswith("| old |")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - text: x\n    problems: [heat]\n    kind: best\n")
    with pytest.raises(SystemExit, match="kind='best', not one of"):
        main([str(sweep), "--targets", str(bad)])
