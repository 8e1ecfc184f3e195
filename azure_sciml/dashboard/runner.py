"""Running a comparison live: each job through :func:`azure_sciml.fit` in a worker thread, its
progress and its stop through ``fit``'s ``callback`` (called after every step with the loss and
the evaluations spent; returning True stops the run there)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure_sciml.dashboard.planner import Job

log = logging.getLogger(__name__)

REFRESH_S = 0.5  # seconds between page updates during a run
STOPPED = "stopped from the page"


@dataclass
class Run:
    """One (optimizer, seed) run of a comparison, as the page shows it."""

    job: Job
    cancel: threading.Event
    curve: list[tuple[int, float]] = field(default_factory=list)  # (loss evaluations, loss)
    result: Any = None  # FitResult once finished
    error: str = ""

    @property
    def done(self) -> bool:
        return self.result is not None or bool(self.error)

    def progress(self, progress) -> bool:
        """``fit``'s callback: records the point, says whether to stop."""
        self.curve.append((progress.n_loss_evals, progress.loss))
        return self.cancel.is_set()


@dataclass
class Progress:
    runs: list[Run]
    message: str
    finished: bool = False


def run_live(jobs: Sequence[Job], refresh_s: float = REFRESH_S,
             cancel: threading.Event | None = None) -> Iterator[Progress]:
    """Run ``jobs`` one after another with :func:`fit`, each in a worker thread, yielding a
    :class:`Progress` every ``refresh_s`` seconds and after each run. Closing the generator (the
    page's Stop, a closed tab) stops the running job after its current step."""
    cancel = cancel or threading.Event()
    runs: list[Run] = []
    try:
        for index, job in enumerate(jobs):
            run = Run(job, cancel)
            runs.append(run)
            worker = threading.Thread(target=train, args=(run,), daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(refresh_s)
                yield Progress(runs, status(index, len(jobs), run))
            if cancel.is_set():
                break
        message = f"done: {len(runs)} runs" if not cancel.is_set() else "stopped"
        yield Progress(runs, message, finished=True)
    finally:
        cancel.set()


def train(run: Run) -> None:
    """:func:`fit` as the app runs the job's plan, reporting to ``run``."""
    from azure_sciml import fit

    plan = run.job.plan
    try:
        result = fit(plan.problem, plan.optimizer, **{**plan.fit_arguments(), "progress": False},
                     callback=run.progress)  # fmt: skip
    except Exception as err:  # shown on the page; the traceback goes to the server's log
        log.exception("run %s seed %s failed", run.job.optimizer, run.job.seed)
        run.error = f"{type(err).__name__}: {err}"
        return
    if result.status == "stopped":  # a partial run: not compared
        run.error = STOPPED
    else:
        run.result = result


def status(index: int, total: int, run: Run) -> str:
    spent = run.curve[-1][0] if run.curve else 0
    return (f"run {index + 1}/{total}: {run.job.optimizer}, seed {run.job.seed}: "
            f"{spent}/{run.job.problem.steps} loss evaluations")  # fmt: skip
