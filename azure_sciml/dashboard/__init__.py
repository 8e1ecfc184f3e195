"""``azure-sciml-dashboard [RESULTS_DIR]``: a Gradio page to run small paired comparisons live and
browse finished sweeps (``pip install "azure_sciml[dashboard]"``).

*Run*: pick a problem config, optimizer configs and their hyperparameters (``azure: T0=0.5``, one
line per optimizer: any argument of the optimizer's constructor, as ``optimizer.KEY=value`` on the
app's command line), a budget and a number of paired seeds. Each (seed, optimizer) run is planned
by the app (its configs, its checks, the same seed for every optimizer) and trained by
:func:`azure_sciml.fit` in a worker thread while the page streams progress, convergence curves
and, on 2-D problems, each optimizer's path on the contour; the summary gives the report's
verdict against Adam. *Results*: open a sweep directory below ``RESULTS_DIR`` (default
``multirun`` where there is one; without a results dir the page only runs comparisons) and read
its report, tables and figures; nothing outside that directory can be read. It serves on
127.0.0.1 unless ``--host`` says otherwise.

Modules by concern: :mod:`~azure_sciml.dashboard.inputs` (typed values, read by Hydra's override
parser), ``planner`` (the app's composition and plan per run), ``runner`` (``fit`` in a thread,
progress and stop through its callback), ``views`` (table, summary, figures), ``results`` (the
results browser), ``page`` (the Gradio page and ``main``). Everything but
:func:`~azure_sciml.dashboard.page.build_app` and ``main`` works without Gradio, for tests.
"""

from azure_sciml.dashboard.inputs import InputError
from azure_sciml.dashboard.page import build_app, main
from azure_sciml.dashboard.planner import Job, config_names, plan
from azure_sciml.dashboard.results import list_sweeps, open_sweep, read_table, safe_path
from azure_sciml.dashboard.runner import Progress, Run, run_live
from azure_sciml.dashboard.views import convergence_figure, paths_figure, results_rows, summary_text

__all__ = [
    "InputError", "Job", "Progress", "Run", "build_app", "config_names", "convergence_figure",
    "list_sweeps", "main", "open_sweep", "paths_figure", "plan", "read_table", "results_rows",
    "run_live", "safe_path", "summary_text",
]
