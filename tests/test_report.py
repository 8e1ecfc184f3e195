"""The report on synthetic run dirs: statistics, paired verdicts, and runs that are not ok."""

import csv
import json
import math
import subprocess
import sys

import pytest

from azure_sciml import report


def write_run(root, name, problem="heat", optimizer="azure", seed=0, value=1.0, **fields):
    """A result.json as azure_sciml.app writes it, with ``value`` as the headline metric."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    evals = list(range(1, 101))
    record = {
        "problem": problem,
        "optimizer": optimizer,
        "seed": seed,
        "status": "ok",
        "headline_metric": "err",
        "metrics": {"err": value, "recovered": float(value < 0.5), "formula": "x + 1"},
        "best_metrics": {"err": value},
        "final_loss": value,
        "n_loss_evals": 100,
        "n_grad_evals": 100,
        "wall_time_s": 0.5,
        "history": {"evals": evals, "loss": [value * (1 + 100 / e) for e in evals]},
        "optimizer_stats": {"n_proposals": 5, "n_accepted": 3} if optimizer == "azure" else None,
        **fields,
    }
    (run_dir / "result.json").write_text(json.dumps(record))
    return run_dir


def write_sweep(root, azure_values, adam_values, problem="heat"):
    for seed, (azure, adam) in enumerate(zip(azure_values, adam_values, strict=True)):
        write_run(root, f"{problem}_azure_{seed}", problem, "azure", seed, azure)
        write_run(root, f"{problem}_adam_{seed}", problem, "adam", seed, adam)


def write_missing_job(root, name, problem="heat", optimizer="adam", seed=7):
    """A job dir as Hydra leaves it when the job dies before writing result.json."""
    hydra_dir = root / name / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "config.yaml").write_text(
        f"seed: {seed}\nproblem:\n  _target_: azure_sciml.problems.heat.Heat\n"
    )
    (hydra_dir / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n"
        f"      problem: {problem}\n      optimizer: {optimizer}\n"
        "  overrides:\n    task: []\n"
    )


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def comparison_rows(root):
    return {row["problem"]: row for row in read_csv(root / "comparison.csv")}


@pytest.mark.parametrize(("k", "n", "p"), [(0, 5, 0.0625), (5, 5, 0.0625), (1, 10, 0.021484375),
                                           (3, 6, 1.0), (0, 1, 1.0)])  # fmt: skip
def test_sign_test_is_exact_two_sided_binomial(k, n, p):
    assert report.sign_test(k, n) == pytest.approx(p)


def test_paired_test_falls_back_to_sign_test_without_scipy(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # makes `from scipy.stats import` fail
    p_value, test, lean = report.paired_test(report.np.array([-1.0, -2.0, -0.5, -3.0, -1.0, -2.0]))
    assert test == "exact sign test"
    assert p_value == pytest.approx(2 / 64)
    assert lean == -6  # six wins for the optimizer, no loss


def test_without_scipy_the_verdict_follows_the_sign_test(monkeypatch):
    """21 small wins against 9 large losses: the sign test counts seeds, so the optimizer wins."""
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    diffs = report.np.array([-float(k) for k in range(1, 22)] + [float(k) for k in range(22, 31)])
    p_value, test, lean = report.paired_test(diffs)
    assert test == "exact sign test" and p_value < 0.05
    assert lean < 0 < report.signed_rank_sum(diffs)  # the two statistics disagree here
    pairs = report.np.stack([diffs, report.np.zeros_like(diffs)], axis=1) - 100.0
    c = report.compare("p", "azure", "adam", "err", pairs, alpha=0.05)
    assert c.verdict.startswith("Azure better")


def test_paired_test_uses_wilcoxon_when_scipy_is_there():
    pytest.importorskip("scipy")
    p_value, test, lean = report.paired_test(report.np.array([-1.0, -2.0, -0.5, -3.0, -1.5, -2.5]))
    assert test == "Wilcoxon signed-rank" and lean == -21
    assert p_value == pytest.approx(2 / 64)  # exact: all six ranks on one side


def test_clear_azure_win_is_significant(tmp_path):
    write_sweep(tmp_path, azure_values=[0.01 * (s + 1) for s in range(8)], adam_values=[1.0] * 8)
    text = report.write_report(tmp_path).read_text()
    row = comparison_rows(tmp_path)["heat"]
    assert (row["n_pairs"], row["better"], row["worse"]) == ("8", "8", "0")
    assert float(row["median_ratio"]) == pytest.approx(0.045)
    assert row["verdict"].startswith("Azure better (p=")
    assert "**Azure better (p=" in text


def test_clear_adam_win_is_named(tmp_path):
    write_sweep(tmp_path, azure_values=[2.0 + s for s in range(8)], adam_values=[1.0] * 8)
    report.write_report(tmp_path)
    assert comparison_rows(tmp_path)["heat"]["verdict"].startswith("Adam better (p=")


def test_mixed_results_are_no_significant_difference(tmp_path):
    write_sweep(tmp_path, azure_values=[0.5, 2.0, 0.9, 1.1, 0.8, 1.3], adam_values=[1.0] * 6)
    report.write_report(tmp_path)
    assert comparison_rows(tmp_path)["heat"]["verdict"].startswith("no significant difference")


def test_five_seeds_cannot_be_significant_and_the_report_says_so(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1] * 5, adam_values=[1.0, 2.0, 3.0, 4.0, 5.0])
    text = report.write_report(tmp_path).read_text()
    row = comparison_rows(tmp_path)["heat"]
    assert row["better"] == "5"
    assert row["verdict"] == "no significant difference (p=0.062)"
    assert "smallest possible two-sided p is 0.0625" in text
    assert "run more seeds" in text


def test_statistics_are_median_and_quartiles_over_seeds(tmp_path):
    write_sweep(tmp_path, azure_values=[1.0, 2.0, 3.0, 4.0, 5.0], adam_values=[1.0] * 5)
    report.write_report(tmp_path)
    rows = read_csv(tmp_path / "report.csv")
    err = next(r for r in rows if (r["optimizer"], r["quantity"]) == ("azure", "err"))
    assert [float(err[k]) for k in ("n", "median", "q1", "q3", "min", "max")] == [5, 3, 2, 4, 1, 5]
    quantities = {(r["optimizer"], r["quantity"]) for r in rows}
    assert ("azure", "stats.n_accepted") in quantities  # optimizer counters
    assert ("adam", "wall_time_s") in quantities and ("adam", "n_grad_evals") in quantities
    assert not any(q == "formula" for _, q in quantities)  # text metrics are not averaged


def test_tables_show_rates_text_metrics_costs_and_figures(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2, 0.9], adam_values=[0.9, 0.8, 0.7])
    (tmp_path / "heat_azure_0" / "solution.png").write_bytes(b"png")
    result = tmp_path / "heat_azure_0" / "result.json"
    result.write_text(json.dumps({**json.loads(result.read_text()), "figure": "solution.png"}))
    text = report.write_report(tmp_path).read_text()
    assert "| Azure | 3/3 | 0.2 [0.15, 0.55] | 2/3 (67%) |" in text  # err, then recovered rate
    assert "| Adam | 3/3 | 0.8 [0.75, 0.85] | 0/3 (0%) |" in text
    assert "loss evals | grad evals | wall s | SA proposals (accepted) |" in text
    assert "| 100 | 100 | 0.5 | 5 (3) |" in text and "| 100 | 100 | 0.5 | – |" in text
    assert "`x + 1`" in text  # the text metric, per run
    assert "![Azure seed 0](heat_azure_0/solution.png)" in text
    assert "![convergence](convergence.png)" in text
    assert (tmp_path / "convergence.png").stat().st_size > 0


def test_failed_missing_and_diverged_runs_are_listed_not_averaged(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2, 0.3], adam_values=[1.0, 1.0, 1.0])
    write_run(tmp_path, "heat_azure_3", seed=3, value=9.0, status="diverged", message="loss is nan")
    failed = {"status": "failed", "message": "RuntimeError('boom')"}
    write_run(tmp_path, "heat_adam_3", optimizer="adam", seed=3, **failed)
    write_missing_job(tmp_path, "heat_adam_4", seed=4)
    text = report.write_report(tmp_path).read_text()
    assert "9 runs — 6 ok, 1 diverged, 1 failed, 1 missing" in text
    assert "| Adam | 3/5 (1 failed, 1 missing) |" in text
    assert "| Azure | 4/4 (1 diverged) |" in text
    assert "## Runs not ok (3)" in text
    for expected in ("**diverged**", "loss is nan", "**failed**", "boom", "**missing**",
                     "`heat_adam_4`"):  # fmt: skip
        assert expected in text
    rows = read_csv(tmp_path / "report.csv")
    adam_err = next(r for r in rows if (r["optimizer"], r["quantity"]) == ("adam", "err"))
    assert adam_err["n"] == "3"  # the failed run's value is not in the statistics
    statuses = sorted(row["status"] for row in read_csv(tmp_path / "runs.csv"))
    assert statuses == ["diverged", "failed", "missing"] + ["ok"] * 6
    assert comparison_rows(tmp_path)["heat"]["n_pairs"] == "3"  # seed 3 lost its Adam partner


def test_infinite_scores_count_against_the_run(tmp_path):
    write_sweep(tmp_path, [math.inf, math.inf, 0.1, 0.2, 0.3, 0.4], [1.0, math.inf] + [0.5] * 4)
    text = report.write_report(tmp_path).read_text()
    row = comparison_rows(tmp_path)["heat"]
    assert (row["n_pairs"], row["better"], row["worse"], row["ties"]) == ("6", "4", "1", "1")
    assert "| Azure | 6/6 | 0.35 [0.225, inf] |" in text  # inf is not silently dropped


def test_unfair_comparisons_are_flagged(tmp_path):
    write_sweep(tmp_path, [0.1, 0.2], [1.0, 1.0])
    config = {"problem": {"steps": 20}, "dtype": "float32"}
    write_run(tmp_path, "again", seed=1, value=5.0, config=config)
    write_run(tmp_path, "other", optimizer="adam", seed=2, config={**config, "dtype": "float64"})
    text = report.write_report(tmp_path).read_text()
    assert "**Warning:** runs differ in `dtype` (2 variants)" in text
    assert "**Warning:** Azure ran seed(s) [1] more than once" in text
    assert comparison_rows(tmp_path)["heat"]["n_pairs"] == "2"  # one pair per seed


def test_unreadable_result_counts_as_failed(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1], adam_values=[1.0])
    (tmp_path / "heat_adam_0" / "result.json").write_text("{not json")
    text = report.write_report(tmp_path).read_text()
    assert "unreadable" in text and "1 failed" in text


def test_without_baseline_there_is_no_verdict(tmp_path):
    write_run(tmp_path, "a", optimizer="azure", seed=0)
    text = report.write_report(tmp_path).read_text()
    assert "No Adam runs to pair with, so no verdict." in text


def test_negative_losses_are_shifted_onto_the_log_axis(tmp_path):
    run_dir = write_run(tmp_path, "lj", problem="energy", value=0.3)
    data = json.loads((run_dir / "result.json").read_text())
    data["history"]["loss"] = [-10.0 - math.log(e) for e in data["history"]["evals"]]
    (run_dir / "result.json").write_text(json.dumps(data))
    report.write_report(tmp_path)
    assert (tmp_path / "convergence.png").exists()


def test_each_problem_gets_a_verdict(tmp_path):
    write_sweep(tmp_path, [0.1] * 3, [1.0] * 3, problem="heat")
    write_sweep(tmp_path, [1.0] * 3, [1.0] * 3, problem="ode")
    report.write_report(tmp_path)
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
    report.write_report(tmp_path)
    row = comparison_rows(tmp_path)["energy"]
    assert int(row["better"]) == 19  # Azure lower on fewer seeds ...
    assert row["verdict"].startswith("Azure better")  # ... but by far more


def test_console_script_writes_the_report(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    out = subprocess.run(
        ["azure-sciml-report", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(tmp_path / "report.md")
    for name in ("report.md", "report.csv", "comparison.csv", "runs.csv", "convergence.png"):
        assert (tmp_path / name).exists(), name


def test_cli_rejects_a_missing_dir(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "nope")])
    assert "is not a directory" in capsys.readouterr().err


# ---------------------------------------------------------------- targets


def write_targets(root, *targets):
    """The sweep's config as Hydra records it (``multirun.yaml``), with a ``targets`` list."""
    (root / "multirun.yaml").write_text(json.dumps({"seed": 0, "targets": list(targets)}))


def targets_table(text):
    section = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]


RATE = {"text": "recovers in 60% of runs", "problems": ["heat"], "kind": "rate_at_least",
        "metric": "recovered", "value": 0.6}  # fmt: skip


@pytest.mark.parametrize(("azure", "met"), [([0.1, 0.1, 0.1, 0.9, 0.9], "met"),
                                            ([0.1, 0.1, 0.9, 0.9, 0.9], "not met")])  # fmt: skip
def test_rate_target_is_judged_on_the_runs_with_the_counts(tmp_path, azure, met):
    write_sweep(tmp_path, azure_values=azure, adam_values=[0.9] * 5)  # recovered: value < 0.5
    write_targets(tmp_path, RATE)
    rows = targets_table(report.write_report(tmp_path).read_text())
    k = sum(v < 0.5 for v in azure)
    assert rows[1] == (
        f"| recovers in 60% of runs | Azure {k}/5 ({20.0 * k:.1f}%), Adam 0/5 (0.0%) | **{met}** |"
    )


def test_failed_runs_count_as_misses_in_a_rate(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.1, 0.1], adam_values=[0.9] * 3)
    write_run(tmp_path, "heat_azure_3", "heat", "azure", 3, 0.1, status="failed", metrics={})
    write_missing_job(tmp_path, "heat_azure_4", optimizer="azure", seed=4)
    write_targets(tmp_path, RATE)
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert "Azure 3/5 (60.0%)" in rows[1] and rows[1].endswith("**met** |")
    write_run(tmp_path, "heat_azure_5", "heat", "azure", 5, 0.1, status="failed", metrics={})
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert "Azure 3/6 (50.0%)" in rows[1] and rows[1].endswith("**not met** |")


def test_rate_above_baseline_is_summed_over_problems_and_a_tie_is_not_met(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.9], adam_values=[0.9, 0.1], problem="a")
    write_sweep(tmp_path, azure_values=[0.1, 0.9], adam_values=[0.9, 0.9], problem="b")
    above = {"text": "more recoveries", "kind": "rate_above_baseline", "metric": "recovered"}
    write_targets(tmp_path, {**above, "problems": ["a"]}, {**above, "problems": ["a", "b"]})
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert rows[1] == "| more recoveries | Azure 1/2 (50.0%), Adam 1/2 (50.0%) | **not met** |"
    assert rows[2] == "| more recoveries | Azure 2/4 (50.0%), Adam 1/4 (25.0%) | **met** |"


def test_median_ratio_target_compares_medians_of_the_headline_metric(tmp_path):
    write_sweep(tmp_path, azure_values=[1.0, 2.0, 9.0], adam_values=[3.0, 6.0, 6.0])
    third = {"text": "a third", "problems": ["heat"], "kind": "median_ratio_at_most"}
    write_targets(tmp_path, {**third, "value": 1 / 3}, {**third, "value": 0.34})
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert rows[1] == "| a third | heat: Azure 2, Adam 6 (0.333x) | **met** |"
    write_targets(tmp_path, {**third, "value": 0.33})
    assert targets_table(report.write_report(tmp_path).read_text())[1].endswith("**not met** |")


@pytest.mark.parametrize(("azure", "met"), [([2.0 + s for s in range(8)], "not met"),
                                            ([0.5, 2.0, 0.9, 1.1, 0.8, 1.3, 1.0, 1.0], "met"),
                                            ([0.1] * 8, "met")])  # fmt: skip
def test_not_worse_fails_only_when_adam_is_significantly_better(tmp_path, azure, met):
    write_sweep(tmp_path, azure_values=azure, adam_values=[1.0] * 8)
    write_targets(tmp_path, {"text": "no worse", "problems": ["heat"], "kind": "not_worse"})
    row = targets_table(report.write_report(tmp_path).read_text())[1]
    verdict = comparison_rows(tmp_path)["heat"]["verdict"]
    better = sum(a < 1 for a in azure)
    assert row == f"| no worse | heat: {verdict}, better on {better}/8 | **{met}** |"


def test_targets_of_problems_not_run_are_not_measured(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    write_targets(tmp_path, {**RATE, "problems": ["heat", "ode"]})
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert rows[1] == (
        "| recovers in 60% of runs | not run here (no Azure runs of ['ode']) | not judged |"
    )


def test_no_targets_no_section(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    assert "## Targets" not in report.write_report(tmp_path).read_text()
    write_targets(tmp_path)
    assert "## Targets" not in report.write_report(tmp_path).read_text()


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
    text = report.write_report(tmp_path).read_text()
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
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert rows[1] == "| more | no run reports `recoverd` | not judged |"
    assert rows[2] == "| more | Azure 2/4 (50.0%), Adam 2/5 (40.0%) | **met** |"


def test_a_rate_exactly_at_the_threshold_is_met(tmp_path):
    azure = [0.1] * 7 + [0.9] * 93  # 7/100: 0.07 * 100 is 7.000000000000001 in floating point
    write_sweep(tmp_path, azure_values=azure, adam_values=[0.9] * 100)
    write_targets(tmp_path, {**RATE, "value": 0.07})
    assert targets_table(report.write_report(tmp_path).read_text())[1].endswith("| **met** |")


def test_targets_are_judged_against_adam_whatever_the_report_baseline(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1] * 8, adam_values=[1.0] * 8)
    write_targets(tmp_path, {"text": "no worse", "problems": ["heat"], "kind": "not_worse"})
    rows = targets_table(report.write_report(tmp_path, baseline="azure").read_text())
    assert rows[1].startswith("| no worse | heat: Azure better (p=")
    assert rows[1].endswith("**met** |")


def test_failed_runs_are_the_worst_in_a_median_and_no_baseline_is_not_judged(tmp_path):
    write_sweep(tmp_path, azure_values=[0.01], adam_values=[6.0])
    for seed in range(1, 5):  # four of Azure's five runs failed: its median is no success
        write_run(tmp_path, f"heat_azure_{seed}", "heat", "azure", seed, 0.01, status="failed")
        write_run(tmp_path, f"heat_adam_{seed}", "heat", "adam", seed, 6.0)
    third = {"text": "a third", "kind": "median_ratio_at_most", "value": 1 / 3}
    write_targets(tmp_path, {**third, "problems": ["heat"]})
    rows = targets_table(report.write_report(tmp_path).read_text())
    assert rows[1] == "| a third | heat: Azure inf, Adam 6 (infx) | **not met** |"
    other = tmp_path / "all_adam_runs_failed"
    for seed in range(5):  # no ratio, no pairs
        write_run(other, f"azure_{seed}", "heat", "azure", seed, 0.01)
        write_run(other, f"adam_{seed}", "heat", "adam", seed, 6.0, status="failed")
    no_worse = {"text": "no worse", "problems": ["heat"], "kind": "not_worse"}
    write_targets(other, {**third, "problems": ["heat"]}, no_worse)
    rows = targets_table(report.write_report(other).read_text())
    assert rows[1] == "| a third | heat: Adam's median is inf: no ratio | not judged |"
    assert rows[2] == "| no worse | heat: no paired runs | not judged |"
