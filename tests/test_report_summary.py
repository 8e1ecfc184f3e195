"""The summary over results pages: medians, the best alternative, the paired verdict, the block a
README holds and the command that regenerates it."""

from report_runs import write_run, write_sweep

from azure_sciml.report import main, summary, write_report


def page(results, name, azure, adam, problem="heat", others=None):
    """A results page: a sweep of Azure and Adam (and ``others``: name -> values) with its
    report and run table."""
    root = results / name
    write_sweep(root, azure, adam, problem=problem)
    for optimizer, values in (others or {}).items():
        for seed, value in enumerate(values):
            write_run(root, f"{problem}_{optimizer}_{seed}", problem, optimizer, seed, value)
    write_report(root)


def test_a_row_per_page_and_problem_with_the_paired_verdict(tmp_path, monkeypatch):
    results = tmp_path / "results"
    page(results, "a", [0.01 * (s + 1) for s in range(8)], [1.0] * 8,
         others={"adam+lbfgs": [0.5] * 8, "basinhopping": [0.2] * 8, "azure_momentum": [1e-9] * 8})
    page(results, "b", [19.15 + 1e-9 * s for s in range(3)], [19.15 + 2e-9 * s for s in range(3)])
    (results / "notes").mkdir()  # no run table: not a page
    monkeypatch.chdir(tmp_path)
    block = summary.summary_block("results")
    rows = [line for line in block.splitlines() if line.startswith("| heat")]
    assert rows == [
        "| heat | `err` | 0.045 | 1 | basin-hopping 0.2 | Azure better (p=0.0078), better on 8/8 "
        "| [a](results/a/report.md) |",
        # three seeds, Azure lower by 1e-9 on two: never significant, whatever the counts say
        "| heat | `err` | 19.2 | 19.2 | – | no significant difference (p=0.5), better on 2/3 "
        "| [b](results/b/report.md) |",
    ]
    assert summary.display("adam+lbfgs") == "Adam→L-BFGS"


def test_the_block_carries_the_command_that_regenerates_it(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    page(results, "a", [0.1, 0.2, 0.3], [1.0, 2.0, 3.0])
    page(results, "b", [1.0, 2.0, 3.0], [0.1, 0.2, 0.3])
    monkeypatch.chdir(tmp_path)
    block = summary.summary_block("results", ["b"])
    assert block.startswith(summary.START) and block.endswith(summary.END + "\n")
    assert "[b](results/b/report.md)" in block and "[a]" not in block
    readme = f"# title\n\ntext\n\n{block}\nmore text\n"
    found = summary.block_in(readme)
    assert found == block
    assert summary.command_of(found) == ["results", "--summary", "--pages", "b"]
    main(summary.command_of(found))
    assert capsys.readouterr().out == block
    assert summary.block_in("# no markers\n") is None


def test_optimizers_side_by_side_where_a_page_has_no_azure_and_adam_pair(tmp_path, monkeypatch,
                                                                         capsys):
    """--optimizers: the finishers' medians, one column each ("–" where a page has none), the
    seeds per optimizer; every block of a README is found and regenerates."""
    results = tmp_path / "results"
    page(results, "f", [0.3] * 3, [0.4] * 3,
         others={"adam+lbfgs": [1e-3, 2e-3, 3e-3], "adam+ssbroyden": [1e-7, 2e-7]})
    monkeypatch.chdir(tmp_path)
    block = summary.summary_block("results", ["f"], optimizers=["adam+ssbroyden", "adam+bfgs",
                                                                "adam+lbfgs"])
    assert "| problem | metric | Adam→SSBroyden | Adam→BFGS | Adam→L-BFGS | seeds | page |" in block
    assert "| heat | `err` | 1.5e-07 | – | 0.002 | 2-3 | [f](results/f/report.md) |" in block
    readme = f"{summary.summary_block('results', ['f'])}\ntext\n\n{block}"
    found = summary.blocks_in(readme)
    assert len(found) == 2 and found[1] == block
    main(summary.command_of(found[1]))
    assert capsys.readouterr().out == block
