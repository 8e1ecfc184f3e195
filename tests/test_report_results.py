"""The committed results pages (docs/results) are what the report code rebuilds from their
compact tables: same report.md, report.csv and comparison.csv."""

import shutil
from pathlib import Path

import pytest

from azure_sciml.report import write_report

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
PAGES = sorted(path.parent for path in RESULTS.rglob("report.md"))
BUILT_ELSEWHERE = {"ablation/vs_azure": ("ablation", "azure")}  # page: (its table's page, baseline)
QUICK = {"compare", "lj_odds"}  # the others take 5-20 s each on 2 cores: -m slow


def name(page: Path) -> str:
    return page.relative_to(RESULTS).as_posix()


def test_every_page_has_a_table_and_keeps_only_the_figures_it_shows():
    assert {name(p) for p in PAGES} >= {"compare", "quality", "ablation", "lj_odds", "symreg_set"}
    for page in PAGES:
        table = RESULTS / BUILT_ELSEWHERE.get(name(page), (name(page),))[0] / "runs.jsonl"
        assert table.is_file() or table.with_name("runs.jsonl.gz").is_file(), name(page)
        assert not list(page.rglob("result.json")), f"{name(page)} keeps run dirs"
        text = (page / "report.md").read_text()
        for figure in (page / "figures").glob("*.png"):
            assert f"(figures/{figure.name})" in text, (name(page), figure.name)


def test_the_docs_stay_small():
    size = sum(path.stat().st_size for path in RESULTS.parent.rglob("*") if path.is_file())
    assert size <= 5_000_000, f"docs/ holds {size / 1e6:.2f} MB"


@pytest.mark.parametrize(
    "page", [p if name(p) in QUICK else pytest.param(p, marks=pytest.mark.slow) for p in PAGES],
    ids=name,
)
def test_a_page_is_rebuilt_from_its_table(tmp_path, page):
    source, baseline = BUILT_ELSEWHERE.get(name(page), (name(page), "adam"))
    copy = tmp_path / source
    shutil.copytree(RESULTS / source, copy, ignore=shutil.ignore_patterns("*.md", "*.csv"))
    out = tmp_path / name(page)
    write_report(copy, baseline=baseline, out=out)
    for file in ("report.md", "report.csv", "comparison.csv"):
        assert (out / file).read_text() == (page / file).read_text(), (name(page), file)
