"""The README's commands and quickstart are the real ones."""

import ast
import inspect
import re
import subprocess
from pathlib import Path

import torch

from azure_sciml import Azure

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def block_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```", README, re.S)
    assert match, f"README has no block after <!-- {marker} -->"
    return match.group(1)


def test_quickstart_runs_and_trains():
    namespace: dict = {}
    exec(compile(block_after("quickstart"), "README-quickstart", "exec"), namespace)
    assert namespace["adam_loss"] > 0.4  # Adam stops in a wrong frequency's basin
    assert namespace["loss"] < 1e-3  # Azure finds the true one (3.7, 0.5)
    assert abs(namespace["w"][0] - 3.7) < 1e-2
    assert namespace["optimizer"].stats()["n_proposals"] > 0


def test_fit_example_runs():
    namespace: dict = {}
    exec(compile(block_after("fit-example"), "README-fit-example", "exec"), namespace)
    assert namespace["result"].n_loss_evals == 3000
    assert namespace["result"].metrics["gap"] < 1e-4  # Azure: LJ13's global minimum (seed 0)
    assert torch.allclose(namespace["own"].model.weight.squeeze(), namespace["target"], atol=1e-3)


def test_ci_runs_the_readme_test_command():
    """.ci/run extracts exactly the README's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    extract = re.search(r"command=\$\((.*)\)\n", ci).group(1)
    got = subprocess.run(["bash", "-c", extract], cwd=ROOT, capture_output=True, text=True).stdout
    assert got.strip() == block_after("test-command").strip()
    assert "pytest" in got
    assert "azure-sciml experiment=compare" in block_after("main-command")


def test_hyperparameter_table_shows_azures_defaults():
    """Each one-name row shows the signature's default: the value, or for a default of None that
    is derived from another argument (``sa_steps`` from ``total_steps``), how it is derived."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", README, re.M)
    assert len(rows) >= 8
    defaults = inspect.signature(Azure).parameters
    for name, shown in rows:
        try:
            value = ast.literal_eval(shown.strip())
        except (ValueError, SyntaxError):
            assert defaults[name].default is None and "`" in shown, (name, shown)
        else:
            assert value == defaults[name].default, name


def table_rows(text: str, heading: str) -> list[list[str]]:
    """Body rows of the first markdown table after ``heading``, as lists of cells."""
    table = re.search(r"^(\|.*\|\n)+", text.split(heading, 1)[1], re.M).group(0)
    rows = table.splitlines()[2:]  # after the header and the |---| line
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in rows]


def met_word(cell: str) -> str:
    for word in ("not met", "met"):
        if cell.startswith(f"**{word}**"):
            return word
    return "?"


def test_readme_targets_say_what_the_reports_say():
    """Each row of the README's targets table agrees with the Targets section of its report."""
    rows = table_rows(README, "### The solution-quality targets")
    assert len(rows) >= 6
    for target, report_cell, measured, met in rows:
        name = re.search(r"`(\w+)`", report_cell).group(1)
        text = (ROOT / "docs" / "results" / name / "report.md").read_text()
        judged = {row[0]: row[1:] for row in table_rows(text, "## Targets")}
        for piece in target.split(":")[0].split(", "):
            found = [cells for t, cells in judged.items() if t.startswith(piece)]
            assert {met_word(cells[1]) for cells in found} == {met_word(met)}, (target, judged)
            for cells in found:  # the counts and medians the report gives, copied
                numbers = re.findall(r"(?:Azure|Adam) (\d+/\d+|[-\d.e+]+)", cells[0])
                assert all(n in measured for n in numbers), (target, numbers, measured)
