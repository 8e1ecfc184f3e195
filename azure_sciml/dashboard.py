"""``azure-sciml-dashboard [RESULTS_DIR]``: a Gradio page to run small paired comparisons live and
browse finished sweeps (``pip install "azure_sciml[dashboard]"``).

*Run*: pick a problem config, optimizer configs and their hyperparameters (``azure: T0=0.5``, one
line per optimizer, keys of ``conf/optimizer/<name>.yaml``), a budget and a number of paired seeds;
each (seed, optimizer) run goes through :func:`azure_sciml.fit` exactly as the app runs it (the
app's checks, the same seed for every optimizer), in a worker thread while the page streams
progress, convergence curves and, on 2-D problems, each optimizer's path on the contour.
*Results*: open a sweep directory below ``RESULTS_DIR`` (default ``multirun``) and read its
report, tables and figures. The page reads files below that directory only: every path typed or
picked is resolved (``..``, absolute paths and symlinks included) and refused unless it stays
inside. It serves on 127.0.0.1 unless ``--host`` says otherwise.

Everything but :func:`build_app` and :func:`main` works without Gradio, for tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

MAX_STEPS = 20_000  # loss evaluations per run
MAX_SEEDS = 10
MAX_RUNS = 40  # seeds x optimizers per comparison
REFRESH_S = 0.5  # seconds between page updates during a run
MAX_TABLE_ROWS = 2000
MAX_FIGURES = 60
MAX_SWEEPS = 500
MAX_DEPTH = 4  # directory levels searched for sweeps
KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
VALUE = re.compile(r"[A-Za-z0-9_.+\-]+|\[[A-Za-z0-9_.+\-, ]*\]")  # no ${...}, no sweeps, no quotes
PAIR = re.compile(r"\s*([^=\s]+)=(\[[^\]]*\]|\S+)\s*")
IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


class InputError(ValueError):
    """A value typed into the page that cannot work; the message says which and why."""


def _conf_dir() -> Path:
    import azure_sciml.conf

    return Path(azure_sciml.conf.__file__).resolve().parent


def config_names(group: str) -> list[str]:
    """The configs of a group (``problem``, ``optimizer``) the app knows."""
    return sorted(path.stem for path in (_conf_dir() / group).glob("*.yaml"))


# ---------------------------------------------------------------- files under the results dir


def safe_path(root: Path, typed: str) -> Path:
    """``typed`` (relative to ``root``, or absolute) resolved, symlinks followed; InputError
    unless it exists and stays inside ``root``."""
    if not isinstance(typed, str) or not typed.strip():
        raise InputError("no path given")
    if "\x00" in typed:
        raise InputError(f"{typed!r} is not a valid path")
    base = Path(root).resolve(strict=True)
    try:
        path = (base / typed.strip()).resolve(strict=True)
    except (OSError, RuntimeError) as err:  # missing, a symlink loop, too long
        raise InputError(f"{typed!r}: no such file or directory below the results dir") from err
    if path != base and base not in path.parents:
        raise InputError(f"{typed!r} is outside the results dir {base}")
    return path


def list_sweeps(root: Path) -> list[str]:
    """Directories below ``root`` (itself included) holding a ``report.md`` or Hydra's
    ``multirun.yaml``, relative to it; symlinks are not followed."""
    base = Path(root).resolve()
    found: list[str] = []
    for current, dirs, files in os.walk(base):
        here = Path(current)
        depth = len(here.relative_to(base).parts)
        if "report.md" in files or "multirun.yaml" in files:
            found.append(here.relative_to(base).as_posix() or ".")
            dirs[:] = [d for d in dirs if not d.isdigit()]  # a sweep's job dirs hold no sweeps
        if depth >= MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        if len(found) >= MAX_SWEEPS:
            break
    return found


@dataclass
class SweepView:
    """What the Results tab shows of one sweep dir."""

    report: str  # report.md with its image links replaced by captions (the images: ``figures``)
    tables: list[str]  # CSV files in the sweep dir
    figures: list[tuple[Path, str]]  # (resolved path, caption)


def open_sweep(root: Path, typed: str) -> SweepView:
    sweep = safe_path(root, typed)
    if not sweep.is_dir():
        raise InputError(f"{typed!r} is not a directory")
    report_file = sweep / "report.md"
    report = ""
    figures: list[tuple[Path, str]] = []
    if report_file.is_file():
        report = safe_path(root, str(report_file)).read_text(errors="replace")
        for caption, link in IMAGE_LINK.findall(report):
            image = _inside(root, sweep, link)
            if image is not None and image.suffix.lower() in (".png", ".jpg", ".jpeg", ".svg"):
                figures.append((image, f"{caption} ({link})"))
        report = IMAGE_LINK.sub(lambda m: f"*[figure: {m.group(1)}, in Figures below]*", report)
    else:
        report = (f"No report.md in `{typed}` yet: `azure-sciml-report {typed}` writes one "
                  "from its runs.")  # fmt: skip
    for image in sorted(sweep.glob("*.png")):
        image = _inside(root, sweep, image.name)
        if image is not None and all(image != path for path, _ in figures):
            figures.append((image, image.name))
    tables = sorted(p.name for p in [*sweep.glob("*.csv"), *sweep.glob("*.jsonl")]
                    if _inside(root, sweep, p.name))  # fmt: skip
    return SweepView(report=report, tables=tables, figures=figures[:MAX_FIGURES])


def read_table(root: Path, sweep: str, name: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (at most MAX_TABLE_ROWS) of a CSV file of the sweep dir, or of its run
    table ``runs.jsonl`` (one row per run: labels, status, cost and metrics)."""
    path = safe_path(root, str(Path(sweep) / name))
    if path.suffix not in (".csv", ".jsonl") or not path.is_file():
        raise InputError(f"{name!r} is not a table (.csv, .jsonl) of {sweep!r}")
    with path.open(newline="", errors="replace") as handle:
        if path.suffix == ".jsonl":
            return _run_rows(line for _, line in zip(range(MAX_TABLE_ROWS), handle, strict=False))
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = [row for _, row in zip(range(MAX_TABLE_ROWS), reader, strict=False)]
    return header, rows


def _run_rows(lines) -> tuple[list[str], list[list[str]]]:
    """A run record per line: its plain top-level fields and ``metrics`` as columns."""
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {number} is not JSON: {err}") from err
        if isinstance(record, dict):
            flat = {k: v for k, v in record.items() if isinstance(v, str | int | float | None)}
            metrics = record.get("metrics")
            flat.update({f"metrics.{k}": v for k, v in (metrics or {}).items()}
                        if isinstance(metrics, dict) else {})  # fmt: skip
            records.append(flat)
    header = list(dict.fromkeys(key for record in records for key in record))
    return header, [["" if r.get(k) is None else str(r.get(k)) for k in header] for r in records]


def _inside(root: Path, sweep: Path, link: str) -> Path | None:
    try:
        path = safe_path(root, str(sweep / link))
    except InputError:
        return None
    return path if path.is_file() else None


# ---------------------------------------------------------------- what to run


@dataclass(frozen=True)
class Job:
    """One run of a comparison: the composed config and what :func:`app.setup` made of it."""

    optimizer: str
    seed: int
    cfg: Any
    problem: Any
    make_optimizer: Any


def parse_settings(text: str, optimizers: Sequence[str]) -> dict[str, list[str]]:
    """``"azure: T0=0.5 sigma=2"`` lines into ``{"azure": ["T0=0.5", "sigma=2"]}`` (checked)."""
    settings: dict[str, list[str]] = {name: [] for name in optimizers}
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon:
            raise InputError(
                f"hyperparameters line {number} {line!r}: write 'optimizer: key=value ...'"
            )
        if name not in settings:
            raise InputError(
                f"hyperparameters line {number}: {name!r} is not one of the chosen optimizers "
                f"({', '.join(optimizers)})"
            )
        settings[name] += parse_pairs(rest, f"{name} hyperparameters")
    return settings


def parse_pairs(text: str, what: str) -> list[str]:
    """``"a=1 b=[1, 2]"`` into ``["a=1", "b=[1, 2]"]``; keys and values checked by form."""
    pairs, pos = [], 0
    text = text or ""
    while pos < len(text.rstrip()):
        match = PAIR.match(text, pos)
        if match is None:
            raise InputError(f"{what}: cannot read {text[pos:].strip()!r} (write key=value)")
        key, value = match.groups()
        if not KEY.fullmatch(key):
            raise InputError(f"{what}: {key!r} is not a setting name")
        if not VALUE.fullmatch(value):
            raise InputError(f"{what}: {key}={value!r}: use a number, a word or a [list]")
        pairs.append(f"{key}={value}")
        pos = match.end()
    return pairs


def plan(
    problem: str,
    optimizers: Sequence[str],
    settings: str = "",
    problem_settings: str = "",
    steps: Any = 500,
    seeds: Any = 3,
) -> list[Job]:
    """The runs of a paired comparison, every config checked by the app before any training;
    :class:`InputError` (or the app's ``ConfigError``) names the first bad input."""
    problems, known = config_names("problem"), config_names("optimizer")
    if problem not in problems:
        raise InputError(f"problem {problem!r} is not one of {', '.join(problems)}")
    optimizers = list(dict.fromkeys(optimizers or []))
    if not optimizers:
        raise InputError("choose at least one optimizer")
    for name in optimizers:
        if name not in known:
            raise InputError(f"optimizer {name!r} is not one of {', '.join(known)}")
    steps = _whole(steps, "loss evaluations per run", 1, MAX_STEPS)
    seeds = _whole(seeds, "paired seeds", 1, MAX_SEEDS)
    if seeds * len(optimizers) > MAX_RUNS:
        raise InputError(
            f"{seeds} seeds x {len(optimizers)} optimizers = {seeds * len(optimizers)} runs: "
            f"at most {MAX_RUNS} here (run bigger studies with azure-sciml -m)"
        )
    per_optimizer = parse_settings(settings, optimizers)
    problem_pairs = parse_pairs(problem_settings, "problem settings")
    jobs = []
    for seed in range(seeds):
        for name in optimizers:
            overrides = [f"problem={problem}", f"optimizer={name}", f"seed={seed}",
                         f"problem.steps={steps}", "progress=false", "save_plot=false"]  # fmt: skip
            cfg = _compose(overrides, problem_pairs, per_optimizer[name], name)
            made, make_optimizer = _setup(cfg)
            jobs.append(Job(name, seed, cfg, made, make_optimizer))
    return jobs


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, str):
        value = value.strip()
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"{what}: {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{what}: {value!r} is not a number")
    if value != int(value) or not low <= value <= high:
        raise InputError(f"{what}: {value!r} must be a whole number from {low} to {high}")
    return int(value)


_HYDRA_LOCK = threading.Lock()  # Hydra's compose API keeps global state


def _compose(overrides: list[str], problem_pairs: list[str], optimizer_pairs: list[str],
             optimizer: str):
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with _HYDRA_LOCK, initialize_config_module("azure_sciml.conf", version_base="1.3"):
        base = compose("config", overrides=overrides)
        extra = _checked(base.problem, problem_pairs, "problem", "problem settings")
        extra += _checked(base.optimizer, optimizer_pairs, "optimizer",
                          f"{optimizer} hyperparameters")  # fmt: skip
        try:
            return compose("config", overrides=overrides + extra)
        except (HydraException, OmegaConfBaseException, ValueError) as err:
            raise InputError(f"{' '.join(extra)}: {err}") from err


def _checked(node, pairs: list[str], group: str, what: str) -> list[str]:
    """Hydra overrides for each pair whose key the config node has or its ``_target_`` takes as
    a keyword (``+group.key=value``); never a ``_``-key such as ``_target_``."""
    known = [k for k in node if not k.startswith("_")]
    extra = [k for k in _keywords(node.get("_target_")) if k not in known]
    out = []
    for pair in pairs:
        key = pair.split("=", 1)[0]
        if key not in known and key not in extra:
            names = ", ".join(sorted(known + extra))
            raise InputError(f"{what}: {key!r} is not a setting here; known: {names}")
        out.append(f"{group}.{pair}" if key in known else f"+{group}.{pair}")
    return out


def _keywords(target: str | None) -> list[str]:
    """Keyword parameters of a config's ``_target_`` (a class or function), but ``params``."""
    if not target:
        return []
    import inspect

    from hydra.utils import get_object

    try:
        parameters = inspect.signature(get_object(target)).parameters.values()
    except (ImportError, ValueError, TypeError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds and p.name not in ("self", "params")]


def _setup(cfg):
    from azure_sciml import app

    try:
        return app.setup(cfg)
    except app.ConfigError as err:
        raise InputError(str(err)) from err


# ---------------------------------------------------------------- running, live


class Cancelled(Exception):
    """Raised inside a run's loss when the page stopped the comparison."""


class _Watched:
    """The problem as :func:`fit` sees it, counting and recording loss evaluations as they
    happen so the page can show a run in progress; raises :class:`Cancelled` when asked to."""

    def __init__(self, problem, cancel: threading.Event):
        self.problem, self.cancel = problem, cancel
        self.losses: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self.problem, name)

    def loss(self, model):
        if self.cancel.is_set():
            raise Cancelled("stopped from the page")
        loss = self.problem.loss(model)
        self.losses.append(float(loss.detach()))
        return loss


@dataclass
class Run:
    """One (optimizer, seed) run of a comparison, as the page shows it."""

    job: Job
    watched: _Watched
    result: Any = None  # FitResult once finished
    error: str = ""

    @property
    def done(self) -> bool:
        return self.result is not None or bool(self.error)


@dataclass
class Progress:
    runs: list[Run]
    message: str
    finished: bool = False


def run_live(jobs: Sequence[Job], refresh_s: float = REFRESH_S,
             cancel: threading.Event | None = None) -> Iterator[Progress]:
    """Run ``jobs`` one after another with :func:`fit`, each in a worker thread, yielding a
    :class:`Progress` every ``refresh_s`` seconds and after each run. Closing the generator (the
    page's Stop, a closed tab) stops the running job at its next loss evaluation."""
    cancel = cancel or threading.Event()
    runs: list[Run] = []
    try:
        for index, job in enumerate(jobs):
            run = Run(job, _Watched(job.problem, cancel))
            runs.append(run)
            worker = threading.Thread(target=_train, args=(run,), daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(refresh_s)
                yield Progress(runs, _status(index, len(jobs), run))
            if run.error and cancel.is_set():
                break
        message = f"done: {len(runs)} runs" if not cancel.is_set() else "stopped"
        yield Progress(runs, message, finished=True)
    finally:
        cancel.set()


def _train(run: Run) -> None:
    from azure_sciml import fit

    cfg = run.job.cfg
    try:
        from azure_sciml.app import scheduler_factory

        run.result = fit(
            run.watched,
            run.job.make_optimizer,
            seed=cfg.seed,
            device=cfg.device,
            dtype=getattr(torch, cfg.dtype),
            clip_grad_norm=cfg.clip_grad_norm,
            scheduler=scheduler_factory(cfg),
        )
    except Cancelled as err:
        run.error = str(err)
    except Exception as err:  # shown on the page; the traceback goes to the server's log
        log.exception("run %s seed %s failed", run.job.optimizer, run.job.seed)
        run.error = f"{type(err).__name__}: {err}"


def _status(index: int, total: int, run: Run) -> str:
    steps = run.job.problem.steps
    return (f"run {index + 1}/{total}: {run.job.optimizer}, seed {run.job.seed}: "
            f"{len(run.watched.losses)}/{steps} loss evaluations")  # fmt: skip


# ---------------------------------------------------------------- what the page shows


def results_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[Any]]]:
    """One row per finished run: optimizer, seed, status and the problem's numeric metrics."""
    finished = [run for run in runs if run.done]
    names: list[str] = []
    for run in finished:
        if run.result is not None:
            names += [k for k, v in run.result.metrics.items()
                      if isinstance(v, int | float) and k not in names]  # fmt: skip
    header = ["optimizer", "seed", "status", *names, "loss evals", "wall s"]
    rows = []
    for run in finished:
        r = run.result
        if r is None:
            rows.append([run.job.optimizer, run.job.seed, run.error, *[""] * (len(names) + 2)])
            continue
        metrics = [_num(r.metrics.get(name)) for name in names]
        rows.append([run.job.optimizer, run.job.seed, r.status, *metrics, r.n_loss_evals,
                     round(r.wall_time_s, 2)])  # fmt: skip
    return header, rows


def summary_text(runs: Sequence[Run], baseline: str = "adam") -> str:
    """Median headline metric per optimizer and, paired by seed, on how many seeds each beat the
    baseline (lower is better)."""
    done = [run for run in runs if run.result is not None]
    if not done:
        return ""
    metric = done[0].job.problem.metric
    by_opt: dict[str, dict[int, float]] = {}
    for run in done:
        by_opt.setdefault(run.job.optimizer, {})[run.job.seed] = run.result.metrics[metric]
    lines = [f"Headline metric `{metric}` (lower is better), median over seeds:"]
    for name, values in by_opt.items():
        paired = _paired(values, by_opt.get(baseline), name, baseline)
        median = _num(_median(list(values.values())))
        lines.append(f"- **{name}**: {median} ({len(values)} seeds){paired}")
    return "\n".join(lines)


def _paired(mine: Mapping[int, float], theirs: Mapping[int, float] | None, name: str,
            baseline: str) -> str:
    if theirs is None or name == baseline:
        return ""
    seeds = sorted(set(mine) & set(theirs))
    better = sum(mine[s] < theirs[s] for s in seeds)
    worse = sum(mine[s] > theirs[s] for s in seeds)
    return f"; vs {baseline}, same seeds: better on {better}, worse on {worse} of {len(seeds)}"


def _median(values: list[float]) -> float:
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def _num(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) and math.isfinite(value) else value


def convergence_figure(runs: Sequence[Run]):
    """Loss against loss evaluations, one line per run, one colour per optimizer; for 2-D
    problems ``f - f*``, on a log axis where every value is positive."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    colors: dict[str, str] = {}
    positive = True
    for run in runs:
        losses = list(run.watched.losses)
        if not losses:
            continue
        if _is_two_d(run.job.problem):  # f - f* >= 0 up to rounding: floored for the log axis
            values = [max(loss - run.job.problem.spec.minimum, 1e-12) for loss in losses]
        else:
            values = losses
        positive &= min(values) > 0
        color = colors.setdefault(run.job.optimizer, f"C{len(colors)}")
        label = run.job.optimizer if run.job.seed == min(r.job.seed for r in runs) else None
        ax.plot(range(1, len(values) + 1), values, color=color, lw=1, alpha=0.8, label=label)
    if positive and colors:
        ax.set_yscale("log")
    two_d = bool(runs) and _is_two_d(runs[0].job.problem)
    ax.set_xlabel("loss evaluations")
    ax.set_ylabel("f - f*" if two_d else "loss")
    ax.set_title("convergence (one line per seed)", fontsize=10)
    if colors:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def paths_figure(runs: Sequence[Run]):
    """For a 2-D problem: one panel per optimizer, every seed's evaluated path on the contour
    (same seed, same start, same colour in every panel); None for other problems."""
    if not runs or not _is_two_d(runs[0].job.problem):
        return None
    from matplotlib.figure import Figure

    optimizers = list(dict.fromkeys(run.job.optimizer for run in runs))
    fig = Figure(figsize=(4.2 * len(optimizers), 4.0))
    for i, name in enumerate(optimizers):
        ax = fig.add_subplot(1, len(optimizers), i + 1)
        mine = [run for run in runs if run.job.optimizer == name]
        paths = {f"seed {run.job.seed}": run.job.problem.path() for run in mine}
        run_problem = mine[0].job.problem
        run_problem.draw(ax, paths, {}, legend=len(paths) > 1, colorbar=False)
        ax.set_title(f"{name}: {ax.get_title()}", fontsize=8)
    fig.tight_layout()
    return fig


def _is_two_d(problem) -> bool:
    from azure_sciml.problems.two_d import TwoDFunction

    return isinstance(problem, TwoDFunction)


# ---------------------------------------------------------------- the page


def build_app(root: Path):
    """The Gradio page (``gradio.Blocks``) reading results below ``root``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    root = Path(root).resolve()
    problems, optimizers = config_names("problem"), config_names("optimizer")
    with gr.Blocks(title="azure-sciml dashboard", analytics_enabled=False) as page:
        gr.Markdown(f"# azure-sciml dashboard\nResults dir: `{root}`")
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
            note = gr.Markdown(elem_id="note")
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
    parser.add_argument("results", nargs="?", default="multirun", type=Path,
                        help="the results dir whose sweeps the page may read (default: multirun)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        parser.error(f"results dir {args.results} is not a directory (run a sweep first, or "
                     "name one, e.g. docs/results)")  # fmt: skip
    logging.basicConfig(level=logging.INFO)
    page = build_app(args.results)
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, show_error=False, inbrowser=False,
    )


if __name__ == "__main__":
    main()
