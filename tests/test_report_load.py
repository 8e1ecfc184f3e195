"""Loading runs: run dirs, or the compact table ``runs.jsonl`` a report can be rebuilt from."""

import json
import shutil

import pytest
from report_runs import write_missing_job, write_run, write_sweep, write_targets

from azure_sciml.report import load, write_report
from azure_sciml.report.cli import export, main


def test_the_table_has_one_compact_line_per_run(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    write_run(tmp_path, "c", seed=5, config={"seed": 5, "dtype": "float32", "targets": [1, 2]})
    write_report(tmp_path)
    records = load.read_table(tmp_path / "runs.jsonl")
    assert len(records) == 5 and {r["sweep"] for r in records} == {str(tmp_path)}
    assert all(len(r["history"]["evals"]) <= load.HISTORY_POINTS + 1 for r in records)
    config = next(r["config"] for r in records if r["dir"] == "c")
    assert config == {"seed": 5, "dtype": "float32"}  # the sweep-level targets are dropped


def test_downsampling_keeps_the_ends_the_lowest_loss_and_float32_values():
    evals = list(range(1, 501))
    loss = [float(f"{1 / e:.7g}") for e in evals]
    loss[333] = 1e-9  # a spike down between two kept points
    history = load.downsample({"evals": evals, "loss": loss})
    assert history["evals"][0] == 1 and history["evals"][-1] == 500
    assert 334 in history["evals"] and min(history["loss"]) == 1e-9
    assert len(history["evals"]) <= load.HISTORY_POINTS + 1
    assert all(loss[e - 1] == v for e, v in zip(history["evals"], history["loss"], strict=True))
    short = {"evals": [1, 2], "loss": [0.1, 0.2]}
    assert load.downsample(short) == short


def test_a_report_rebuilt_from_the_table_says_what_the_sweeps_said(tmp_path):
    sweep, page = tmp_path / "sweep", tmp_path / "page"
    write_sweep(sweep, azure_values=[0.01 * (s + 1) for s in range(6)], adam_values=[1.0] * 6)
    write_run(sweep, "heat_adam_9", optimizer="adam", seed=9, status="failed", message="boom")
    (sweep / "heat_azure_0" / "solution.png").write_bytes(png_bytes())
    result = sweep / "heat_azure_0" / "result.json"
    result.write_text(json.dumps({**json.loads(result.read_text()), "figure": "solution.png"}))
    write_targets(sweep, {"text": "no worse", "problems": ["heat"], "kind": "not_worse"})
    original = write_report(sweep).read_text().splitlines()
    main([str(sweep), "--export", str(page)])
    rebuilt = (page / "report.md").read_text().splitlines()
    assert rebuilt[2] == f"`{sweep}` (read from its table, `runs.jsonl`): 13 runs — " + (
        "12 ok, 0 diverged, 1 failed, 0 missing."
    )
    differ = [(a, b) for a, b in zip(original, rebuilt, strict=True) if a != b]
    assert differ == [
        (original[2], rebuilt[2]),
        ("| ![Azure, seed 0](heat_azure_0/solution.png) |",
         "| ![Azure, seed 0](figures/heat_azure_seed0.png) |"),
    ]  # fmt: skip
    assert sorted(p.name for p in page.iterdir()) == [
        "comparison.csv", "convergence.png", "figures", "multirun.yaml", "report.csv",
        "report.md", "runs.jsonl",
    ]  # fmt: skip
    again = tmp_path / "again"  # the page alone rebuilds it: table, config and figures
    shutil.copytree(page, again)
    (again / "report.md").unlink()
    assert write_report(again).read_text().splitlines() == rebuilt


def test_a_report_can_be_written_elsewhere_with_links_back(tmp_path):
    page = tmp_path / "page"
    write_sweep(tmp_path / "sweep", azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    run = tmp_path / "sweep" / "heat_adam_0"
    (run / "solution.png").write_bytes(png_bytes())
    record = json.loads((run / "result.json").read_text())
    (run / "result.json").write_text(json.dumps({**record, "figure": "solution.png"}))
    export(tmp_path / "sweep", page)
    text = write_report(page, baseline="azure", out=page / "vs_azure").read_text()
    assert "## Verdict: paired with Azure by seed" in text
    assert "(../figures/heat_adam_seed0.png)" in text
    assert not (page / "vs_azure" / "runs.jsonl").exists()  # the table stays where it was


def test_a_bad_table_line_is_named(tmp_path):
    (tmp_path / "runs.jsonl").write_text('{"problem": "heat"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"runs.jsonl:2: not a run record \(list\)"):
        load.load_runs(tmp_path)


def png_bytes(size=1.0):
    import io

    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    Figure(figsize=(size, size)).savefig(buffer, format="png")
    return buffer.getvalue()


def test_a_wrong_shape_record_is_a_failed_run_named_by_file_and_labelled_by_its_job(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1], adam_values=[1.0])
    write_missing_job(tmp_path, "heat_adam_4", seed=4)
    (tmp_path / "heat_adam_4" / "result.json").write_text("[1, 2, 3]")
    run = next(r for r in load.load_runs(tmp_path) if r["dir"] == "heat_adam_4")
    assert (run["status"], run["optimizer"], run["seed"]) == ("failed", "adam", 4)
    assert "heat_adam_4/result.json: not a run record" in run["message"]


def test_an_export_keeps_only_the_figures_its_report_shows(tmp_path):
    sweep, page = tmp_path / "sweep", tmp_path / "page"
    write_sweep(sweep, azure_values=[0.1, 0.2], adam_values=[1.0, 1.0])
    for name in ("heat_azure_0", "heat_adam_1"):  # Adam's figure: seed 1; seed 0's file is gone
        record = json.loads((sweep / name / "result.json").read_text())
        (sweep / name / "result.json").write_text(json.dumps({**record, "figure": "s.png"}))
    (sweep / "heat_azure_0" / "s.png").write_bytes(png_bytes())
    (sweep / "heat_adam_1" / "s.png").write_bytes(png_bytes(size=1.5))
    (page / "figures").mkdir(parents=True)
    (page / "figures" / "old_adam_seed3.png").write_bytes(png_bytes())
    export(sweep, page)
    names = sorted(p.name for p in (page / "figures").iterdir())
    assert names == ["heat_adam_seed1.png", "heat_azure_seed0.png"]
    (sweep / "heat_adam_1" / "s.png").unlink()
    export(sweep, page)  # a figure that is not there: none shown, nothing fails
    assert sorted(p.name for p in (page / "figures").iterdir()) == ["heat_azure_seed0.png"]


def test_identical_figures_are_stored_once_and_both_runs_show_it(tmp_path):
    sweep, page = tmp_path / "sweep", tmp_path / "page"
    write_sweep(sweep, azure_values=[0.1], adam_values=[0.1])  # identical runs, as on the PINN
    for name in ("heat_azure_0", "heat_adam_0"):
        record = json.loads((sweep / name / "result.json").read_text())
        (sweep / name / "result.json").write_text(json.dumps({**record, "figure": "s.png"}))
        (sweep / name / "s.png").write_bytes(png_bytes())
    export(sweep, page)
    (kept,) = (page / "figures").iterdir()
    figures = {r["optimizer"]: r["figure"] for r in load.load_runs(page)}
    assert figures == {"azure": f"figures/{kept.name}", "adam": f"figures/{kept.name}"}
    assert write_report(page).read_text().count(f"(figures/{kept.name})") == 2


def test_a_large_table_is_written_gzipped_and_read_back(tmp_path, monkeypatch):
    from azure_sciml.report import load

    runs = [{"problem": "p", "optimizer": "adam", "seed": k, "status": "ok",
             "metrics": {"x": float(k)}} for k in range(50)]
    monkeypatch.setattr(load, "GZIP_ABOVE", 100)
    written = load.write_table(tmp_path / load.TABLE, runs, sweep="s")
    assert written.name == "runs.jsonl.gz" and not (tmp_path / load.TABLE).exists()
    assert [r["seed"] for r in load.load_runs(tmp_path)] == list(range(50))
    monkeypatch.setattr(load, "GZIP_ABOVE", 10**9)  # small again: plain text, the .gz removed
    assert load.write_table(tmp_path / load.TABLE, runs, sweep="s").name == "runs.jsonl"
    assert not written.exists()
