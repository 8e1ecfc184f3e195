"""Statistics over seeds: median, quartiles, min and max; inf kept, text metrics not averaged."""

import math

from report_runs import comparison_rows, read_csv, write_sweep

from azure_sciml.report import write_report


def test_statistics_are_median_and_quartiles_over_seeds(tmp_path):
    write_sweep(tmp_path, azure_values=[1.0, 2.0, 3.0, 4.0, 5.0], adam_values=[1.0] * 5)
    write_report(tmp_path)
    rows = read_csv(tmp_path / "report.csv")
    err = next(r for r in rows if (r["optimizer"], r["quantity"]) == ("azure", "err"))
    assert [float(err[k]) for k in ("n", "median", "q1", "q3", "min", "max")] == [5, 3, 2, 4, 1, 5]
    quantities = {(r["optimizer"], r["quantity"]) for r in rows}
    assert ("azure", "stats.n_accepted") in quantities  # optimizer counters
    assert ("adam", "wall_time_s") in quantities and ("adam", "n_grad_evals") in quantities
    assert not any(q == "formula" for _, q in quantities)  # text metrics are not averaged


def test_infinite_scores_count_against_the_run(tmp_path):
    write_sweep(tmp_path, [math.inf, math.inf, 0.1, 0.2, 0.3, 0.4], [1.0, math.inf] + [0.5] * 4)
    text = write_report(tmp_path).read_text()
    row = comparison_rows(tmp_path)["heat"]
    assert (row["n_pairs"], row["better"], row["worse"], row["ties"]) == ("6", "4", "1", "1")
    assert "| Azure | 6/6 | 0.35 [0.225, inf] |" in text  # inf is not silently dropped
