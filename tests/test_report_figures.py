"""The convergence figure: shifted panels for energies, identical runs named, compact PNGs."""

import json
import math

from PIL import Image
from report_runs import write_run, write_sweep

from azure_sciml.report import write_report
from azure_sciml.report.figures import compact_png, plot_convergence
from azure_sciml.report.load import load_runs
from azure_sciml.report.stats import group_runs


def test_negative_losses_are_shifted_onto_the_log_axis_and_the_caption_says_by_what(tmp_path):
    run_dir = write_run(tmp_path, "lj", problem="energy", value=0.3)
    data = json.loads((run_dir / "result.json").read_text())
    data["history"]["loss"] = [-10.0 - math.log(e) for e in data["history"]["evals"]]
    (run_dir / "result.json").write_text(json.dumps(data))
    convergence = plot_convergence(group_runs(load_runs(tmp_path)), tmp_path / "c.png")
    lowest = -10.0 - math.log(100)
    assert convergence.offsets["energy"] == lowest - 1e-6 * abs(lowest)
    text = write_report(tmp_path).read_text()
    shift = f"energy: the loss goes below 0 (an energy), so the panel plots loss − ({lowest:.6g})"
    assert shift in text
    assert "bands: the middle half of the seeds (quartiles 1 to 3)" in text


def test_identical_runs_are_named_not_hidden(tmp_path):
    write_sweep(tmp_path, azure_values=[0.5, 0.7], adam_values=[0.5, 0.7], problem="heat")
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[0.5, 0.7], problem="ode")
    convergence = plot_convergence(group_runs(load_runs(tmp_path)), tmp_path / "c.png")
    assert convergence.identical == {"heat": [("azure", "adam")]}  # not ode: Azure differs
    text = write_report(tmp_path).read_text()
    assert "heat: Azure's runs are identical to Adam's (drawn dashed, over it)." in text
    assert "ode: Azure's runs are identical" not in text


def test_pngs_are_written_with_a_palette(tmp_path):
    write_sweep(tmp_path, azure_values=[0.1, 0.2], adam_values=[0.5, 0.7])
    write_report(tmp_path)
    with Image.open(tmp_path / "convergence.png") as image:
        assert image.mode == "P" and image.size[0] >= 400  # a 4.8-inch panel at DPI
    compact_png(tmp_path / "convergence.png", tmp_path / "copy.png")
    with Image.open(tmp_path / "copy.png") as image:
        assert image.mode == "P"
