"""The report on synthetic run dirs: tables, runs that are not ok, the console script."""

import json
import math
import subprocess

import pytest
from report_runs import comparison_rows, read_csv, write_missing_job, write_run, write_sweep

from azure_sciml import report


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
    assert "![Azure, seed 0](heat_azure_0/solution.png)" in text
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
    table = (tmp_path / "runs.jsonl").read_text().splitlines()
    statuses = sorted(json.loads(line)["status"] for line in table)
    assert statuses == ["diverged", "failed", "missing"] + ["ok"] * 6
    assert comparison_rows(tmp_path)["heat"]["n_pairs"] == "3"  # seed 3 lost its Adam partner


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


def test_console_script_writes_the_report(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    out = subprocess.run(
        ["azure-sciml-report", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(tmp_path / "report.md")
    for name in ("report.md", "report.csv", "comparison.csv", "runs.jsonl", "convergence.png"):
        assert (tmp_path / name).exists(), name


def test_cli_rejects_a_missing_dir(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "nope")])
    assert "is not a directory" in capsys.readouterr().err
