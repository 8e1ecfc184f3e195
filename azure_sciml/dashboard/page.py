"""The Gradio page alone: its widgets and how they call the planner, the runner, the views and
the results browser; and ``main``, the ``azure-sciml-dashboard`` command."""

from __future__ import annotations

import argparse
import csv
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from azure_sciml.dashboard.inputs import InputError
from azure_sciml.dashboard.planner import MAX_SEEDS, MAX_STEPS, config_names, plan
from azure_sciml.dashboard.results import list_sweeps, open_sweep, read_table
from azure_sciml.dashboard.runner import run_live
from azure_sciml.dashboard.views import (
    convergence_figure,
    paths_figure,
    results_rows,
    summary_text,
)

log = logging.getLogger(__name__)

DEFAULT_RESULTS = Path("multirun")  # where azure-sciml -m writes sweeps
NO_RESULTS = "To browse sweeps, start `azure-sciml-dashboard DIR` (e.g. `docs/results`)."


def build_app(root: Path | None):
    """The Gradio page (``gradio.Blocks``) reading results below ``root`` (None: the Run tab
    only; the Results tab says how to name a results dir)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    root = None if root is None else Path(root).resolve()
    problems, optimizers = config_names("problem"), config_names("optimizer")
    where = f"Results dir: `{root}`" if root else f"No results dir. {NO_RESULTS}"
    with gr.Blocks(title="azure-sciml dashboard", analytics_enabled=False) as page:
        gr.Markdown(f"# azure-sciml dashboard\n{where}")
        with gr.Tab("Run"):
            with gr.Row():
                with gr.Column(scale=1):
                    problem = gr.Dropdown(problems, value="himmelblau", label="problem",
                                          elem_id="problem")  # fmt: skip
                    problem_settings = gr.Textbox(label="problem settings (key=value ...)",
                                                  placeholder="e.g. start=[1,1]  tol=0.05",
                                                  elem_id="problem_settings")  # fmt: skip
                    steps = gr.Textbox("500", label=f"loss evaluations per run (1-{MAX_STEPS})",
                                       elem_id="steps")  # fmt: skip
                    seeds = gr.Textbox("3", label=f"paired seeds 0..n-1 (n: 1-{MAX_SEEDS})",
                                       elem_id="seeds")  # fmt: skip
                    chosen = gr.CheckboxGroup(optimizers, value=["azure", "adam", "adamw"],
                                              label="optimizers", elem_id="optimizers")
                    settings = gr.Textbox(
                        label="hyperparameters, one line per optimizer (keys of its config)",
                        placeholder="azure: T0=0.5 sigma=2\nadam: lr=0.02", lines=3,
                        elem_id="settings",
                    )
                    with gr.Row():
                        start = gr.Button("Run", variant="primary", elem_id="run")
                        stop = gr.Button("Stop", elem_id="stop")
                with gr.Column(scale=2):
                    status = gr.Markdown("Choose a problem and press Run.", elem_id="status")
                    summary = gr.Markdown(elem_id="summary")
                    curves = gr.Plot(label="convergence", elem_id="curves", format="png")
                    paths = gr.Plot(label="paths on the contour (2-D problems)",
                                    elem_id="paths", format="png")  # fmt: skip
                    table = gr.Dataframe(label="runs", elem_id="runs", interactive=False)
        with gr.Tab("Results"):
            with gr.Row():
                sweep = gr.Dropdown(list_sweeps(root), label="sweep dir (below the results dir)",
                                    allow_custom_value=True, elem_id="sweep")  # fmt: skip
                show = gr.Button("Open", variant="primary", elem_id="open")
                reload = gr.Button("Rescan", elem_id="rescan")
            note = gr.Markdown("" if root else NO_RESULTS, elem_id="note")
            report = gr.Markdown(elem_id="report")
            table_name = gr.Dropdown([], label="table", elem_id="table_name")
            table_view = gr.Dataframe(label="table", interactive=False, elem_id="table_view")
            figures = gr.Gallery(label="figures", columns=3, object_fit="contain", height="auto",
                                 preview=False, elem_id="figures")  # fmt: skip

        def comparison(problem_, chosen_, settings_, problem_settings_, steps_, seeds_):
            yield "checking the configs ...", "", None, None, None
            try:
                jobs = plan(problem_, chosen_, settings_, problem_settings_, steps_, seeds_)
            except InputError as err:
                yield f"**Not run:** {err}", "", None, None, None
                return
            except Exception as err:  # the page never shows a traceback
                log.exception("planning failed")
                yield f"**Not run:** {type(err).__name__}: {err}", "", None, None, None
                return
            last = 0.0
            for progress in run_live(jobs):
                if not progress.finished and time.monotonic() - last < 1.0:
                    yield progress.message, gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    continue
                last = time.monotonic()
                header, rows = results_rows(progress.runs)
                errors = [f"{r.job.optimizer} seed {r.job.seed}: {r.error}"
                          for r in progress.runs if r.error]  # fmt: skip
                message = progress.message + "".join(f"\n\n**Failed:** {e}" for e in errors)
                yield (message, summary_text(progress.runs), convergence_figure(progress.runs),
                       paths_figure(progress.runs), {"headers": header, "data": rows})

        def show_sweep(typed):
            empty = gr.update(choices=[], value=None)
            try:
                view = open_sweep(root, typed)
            except InputError as err:
                return f"**Cannot open:** {err}", "", empty, None, []
            except Exception as err:
                log.exception("opening %r failed", typed)
                return f"**Cannot open:** {type(err).__name__}: {err}", "", empty, None, []
            first = view.tables[0] if view.tables else None
            images = [(_image(path), caption) for path, caption in view.figures]
            return (f"`{typed}`: {len(view.tables)} tables, {len(images)} figures", view.report,
                    gr.update(choices=view.tables, value=first), _table(typed, first), images)

        def _table(typed, name):
            if not name:
                return None
            try:
                header, rows = read_table(root, typed, name)
            except (InputError, OSError, csv.Error) as err:
                return {"headers": ["error"], "data": [[str(err)]]}
            width = len(header)
            rows = [(row + [""] * width)[:width] for row in rows]
            return {"headers": header, "data": rows}

        run_event = start.click(
            comparison, [problem, chosen, settings, problem_settings, steps, seeds],
            [status, summary, curves, paths, table],
        )  # fmt: skip
        stop.click(None, None, None, cancels=[run_event])
        gr.on([sweep.select, show.click], show_sweep, sweep,
              [note, report, table_name, table_view, figures])
        table_name.change(_table, [sweep, table_name], table_view)
        reload.click(lambda: gr.update(choices=list_sweeps(root)), None, sweep)
    return page


def _image(path: Path):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="azure-sciml-dashboard",
        description="Run small paired comparisons live and browse sweeps below RESULTS_DIR.",
    )
    parser.add_argument("results", nargs="?", type=Path,
                        help="the results dir whose sweeps the page may read (default: multirun, "
                             "if there is one here; without one the page only runs comparisons)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on")
    args = parser.parse_args(argv)
    if args.results is not None and not args.results.is_dir():
        parser.error(f"results dir {args.results} is not a directory (name one, e.g. "
                     "docs/results, or none to only run comparisons)")  # fmt: skip
    root = args.results or (DEFAULT_RESULTS if DEFAULT_RESULTS.is_dir() else None)
    logging.basicConfig(level=logging.INFO)
    page = build_app(root)
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, show_error=False, inbrowser=False,
    )


if __name__ == "__main__":
    main()
