"""report.md's words: provenance, ratios that cannot be taken, gaps below 0, figure names."""

from report_runs import write_run, write_sweep

from azure_sciml.report import write_report

PROVENANCE = {"version": "0.1.0", "git_commit": "abc", "torch": "2.13.0", "threads": 2}


def provenance_sweep(root, threads=(2, 2)):
    for seed, n in enumerate(threads):
        for optimizer in ("azure", "adam"):
            prov = {**PROVENANCE, "threads": n}
            write_run(root, f"{optimizer}_{seed}", optimizer=optimizer, seed=seed, provenance=prov)


def test_provenance_is_shown_and_a_difference_is_flagged(tmp_path):
    provenance_sweep(tmp_path / "same")
    text = write_report(tmp_path / "same").read_text()
    assert "## Provenance" in text and "| `torch` | 2.13.0 |" in text
    assert "differ" not in text.split("## Verdict")[0]
    provenance_sweep(tmp_path / "mixed", threads=(2, 16))
    text = write_report(tmp_path / "mixed").read_text()
    assert "| `threads` | **differs**: 16 (2 runs); 2 (2 runs) |" in text
    assert "**Warning:** the runs differ in what produced them" in text


def test_runs_without_provenance_have_no_section_and_partial_ones_are_counted(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1], adam_values=[1.0])
    assert "## Provenance" not in write_report(tmp_path).read_text()
    write_run(tmp_path, "late", seed=3, provenance=PROVENANCE)
    assert "2 of 3 runs record no provenance." in write_report(tmp_path).read_text()


def test_a_ratio_of_non_positive_values_says_why_it_is_missing(tmp_path):
    write_sweep(tmp_path, azure_values=[-1e-7, 0.1, 0.2], adam_values=[2.0, 3.0, 3.0])
    text = write_report(tmp_path).read_text()
    assert "| n/a (values ≤ 0) |" in text
    assert "given only where every paired value is above 0" in text


def test_gaps_below_zero_within_the_reference_rounding_are_explained(tmp_path):
    write_sweep(tmp_path, [-4.2e-7, -4.1e-7, 0.3], [2.0, 3.0, 3.0], problem="energy")
    for path in tmp_path.glob("*/result.json"):  # the energy problem's headline metric
        path.write_text(path.read_text().replace('"err"', '"gap"'))
    text = write_report(tmp_path).read_text()
    assert "`gap` below 0 on 2 runs (down to -4.2e-07): the reference minimum is tabulated" in text
    write_run(tmp_path, "low", problem="energy", seed=7, headline_metric="gap",
              metrics={"gap": -0.01})  # fmt: skip
    text = write_report(tmp_path).read_text()
    assert "**Warning:** `gap` below 0 on 3 runs (down to -0.01)" in text


def test_solution_figures_are_named_by_optimizer_and_seed(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    for name in ("heat_azure_1", "heat_adam_0"):
        run = tmp_path / name
        (run / "x.png").write_bytes(b"png")
        text = (run / "result.json").read_text().replace('"status"', '"figure": "x.png", "status"')
        (run / "result.json").write_text(text)
    text = write_report(tmp_path).read_text()
    assert "| Adam, seed 0 | Azure, seed 1 |" in text
    assert "![Azure, seed 1](heat_azure_1/x.png)" in text
