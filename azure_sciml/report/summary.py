"""``azure-sciml-report docs/results --summary [--pages a,b]``: one table over results pages.

A row per (page, problem) with Azure and Adam runs: the headline metric, Azure's and Adam's
median over seeds, the best alternative (any other optimizer but an Azure variant: Adam then
L-BFGS, basin-hopping, AdamW, ...) by its median, the verdict of Azure against Adam paired by
seed (:mod:`~azure_sciml.report.paired`, the report's rule) and a link to the page's report. Read
from each page's run table (``runs.jsonl``), as the page's own report is.

With ``--optimizers a,b,...`` the table has a column per named optimizer instead (its median,
"–" where the page has no run of it) and a row per (page, problem) with a run of any of them: the
finishers of ``frontier``, say, where no Azure-and-Adam pair exists.

The output is a block to paste into a markdown file as it is: between ``<!-- summary:start -->``
and ``<!-- summary:end -->``, its first line the command that regenerates it, so a test can
check that the file's copy is what the reports say (``tests/test_readme.py``: every block).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from azure_sciml.report.load import TABLE, TABLE_GZ, load_runs
from azure_sciml.report.paired import ALPHA, compare, paired_values
from azure_sciml.report.stats import (
    Run,
    flat,
    fmt,
    group_runs,
    headline,
    label,
    median,
    quantity,
    scored,
)
from azure_sciml.report.tables import md_table

START, END = "<!-- summary:start -->", "<!-- summary:end -->"
COMMAND = "azure-sciml-report"
AZURE, ADAM = "azure", "adam"
NAMES = {"basinhopping": "basin-hopping"}
HEADER = ["problem", "metric", "Azure", "Adam", "best alternative", "Azure vs Adam", "page"]


def pages(results: Path) -> list[str]:
    """The results pages below ``results`` that hold a run table, in name order."""
    return sorted(page.name for page in Path(results).iterdir()
                  if (page / TABLE).is_file() or (page / TABLE_GZ).is_file())  # fmt: skip


def summary_block(
    results: str,
    names: Sequence[str] | None = None,
    alpha: float = ALPHA,
    optimizers: Sequence[str] | None = None,
) -> str:
    """The block (markers, regenerating command, table) over ``names`` (default: every page)
    of the results dir ``results``, as typed: links are ``results/NAME/report.md``; with
    ``optimizers``, their medians side by side (:func:`median_rows`)."""
    chosen = list(names) if names else pages(Path(results))
    command = [COMMAND, results, "--summary"] + (["--pages", ",".join(names)] if names else [])
    if optimizers:
        command += ["--optimizers", ",".join(optimizers)]
        header = ["problem", "metric", *map(display, optimizers), "seeds", "page"]
        rows = [row for name in chosen for row in median_rows(results, name, optimizers)]
    else:
        header = HEADER
        rows = [row for name in chosen for row in page_rows(results, name, alpha)]
    table = [line for line in md_table(header, rows) if line]
    lines = [START, f"<!-- {shlex.join(command)} -->", "", *table, "", END]
    return "\n".join(lines) + "\n"


def page_problems(results: str, name: str):
    """(problem, runs by optimizer, headline metric, link to the report) of page ``name``, for
    each problem with a headline metric."""
    link = f"[{name}]({Path(results, name, 'report.md').as_posix()})"
    for problem, by_opt in group_runs(load_runs(Path(results, name))).items():
        metric = headline(flat(by_opt))
        if metric is not None:
            yield problem, by_opt, metric, link


def page_rows(results: str, name: str, alpha: float) -> list[list[str]]:
    rows = []
    for problem, by_opt, metric, link in page_problems(results, name):
        if AZURE not in by_opt or ADAM not in by_opt:
            continue
        pairs = paired_values(by_opt[AZURE], by_opt[ADAM], metric)
        c = compare(problem, AZURE, ADAM, metric, pairs, alpha)
        rows.append([problem, f"`{metric}`", fmt(median_of(by_opt[AZURE], metric)),
                     fmt(median_of(by_opt[ADAM], metric)), best_alternative(by_opt, metric),
                     f"{c.verdict}, better on {c.better}/{c.n_pairs}", link])  # fmt: skip
    return rows


def median_rows(results: str, name: str, optimizers: Sequence[str]) -> list[list[str]]:
    """A row per problem of page ``name`` with runs of any of ``optimizers``: each one's median
    of the headline metric ("–" without runs) and the seeds per optimizer (e.g. ``10`` or
    ``2-10``)."""
    rows = []
    for problem, by_opt, metric, link in page_problems(results, name):
        present = [opt for opt in optimizers if opt in by_opt]
        if not present:
            continue
        cells = [fmt(median_of(by_opt[o], metric)) if o in by_opt else "–" for o in optimizers]
        counts = sorted({len(by_opt[opt]) for opt in present})
        seeds = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        rows.append([problem, f"`{metric}`", *cells, seeds, link])
    return rows


def median_of(runs: list[Run], metric: str) -> float:
    return median(quantity(run, metric) for run in scored(runs))


def best_alternative(by_opt: dict[str, list[Run]], metric: str) -> str:
    """The other optimizer (not Adam, not an Azure variant) with the lowest median, or "–"."""
    others = {opt: median_of(runs, metric) for opt, runs in by_opt.items()
              if opt != ADAM and not opt.startswith(AZURE)}  # fmt: skip
    if not others:
        return "–"
    best = min(others, key=lambda opt: others[opt])
    return f"{display(best)} {fmt(others[best])}"


def display(optimizer: str) -> str:
    """``adam+lbfgs`` as ``Adam→L-BFGS``: a chain's parts in order."""
    return "→".join(NAMES.get(part, label(part)) for part in optimizer.split("+"))


def block_in(text: str) -> str | None:
    """The first summary block of a markdown text, markers included; None without the markers."""
    blocks = blocks_in(text)
    return blocks[0] if blocks else None


def blocks_in(text: str) -> list[str]:
    """Every summary block of a markdown text, markers included, in order."""
    blocks, start = [], text.find(START)
    while start >= 0 and (end := text.find(END, start)) >= 0:
        blocks.append(text[start : end + len(END)] + "\n")
        start = text.find(START, end)
    return blocks


def command_of(block: str) -> list[str]:
    """The arguments after ``azure-sciml-report`` on the block's command line."""
    line = block.splitlines()[1].removeprefix("<!--").removesuffix("-->")
    words = shlex.split(line)
    if not words or words[0] != COMMAND:
        raise ValueError(f"the summary block's second line is not a {COMMAND} command: {line!r}")
    return words[1:]
