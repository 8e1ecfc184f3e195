"""The README's commands and quickstart are the real ones, and its results table the generated
one."""

import ast
import inspect
import re
import subprocess
from pathlib import Path

import pytest
import torch

from azure_sciml import Azure
from azure_sciml.report import main as report_main
from azure_sciml.report import summary

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def block_after(marker: str, page: str = "README.md") -> str:
    """The code block after ``<!-- marker -->`` in ``page`` (the README, or a page of docs/ that
    an example moved to)."""
    text = README if page == "README.md" else (ROOT / page).read_text()
    match = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```", text, re.S)
    assert match, f"{page} has no block after <!-- {marker} -->"
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


def test_readme_summary_is_the_generated_one(monkeypatch, capsys):
    """The README's results table (between ``<!-- summary:start -->`` and ``<!-- summary:end -->``)
    is what the command on its second line prints from the committed reports in docs/results;
    after a new result, rerun that command and paste its output."""
    blocks = summary.blocks_in(README)
    if not blocks:
        pytest.skip("README.md has no <!-- summary:start --> ... <!-- summary:end --> block: "
                    "paste the output of `azure-sciml-report docs/results --summary` there")
    monkeypatch.chdir(ROOT)
    for block in blocks:
        report_main(summary.command_of(block))
        assert capsys.readouterr().out == block, "rerun the command in the README's summary block"
