"""Sweeps through a real SLURM: ``azure-sciml -m ... hydra/launcher=slurm`` submits its jobs with
``sbatch`` (submitit), every result equals the same sweep under joblib, and a job cancelled with
``scancel`` mid-run resumes from its checkpoint when the sweep is relaunched.

Needs a one-node cluster on this host (``.ci/slurm-up``, which CI starts; docs/slurm.md); skips,
saying why, where there is none. One node, because the jobs write into pytest's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from azure_sciml.runs import result_config

pytestmark = pytest.mark.slurm

LONG_STEPS = 40000  # the job cancelled mid-run: on an idle box 4000 steps of 5-D Rastrigin
# ended before the scancel after its first checkpoint took effect
SWEEP = [  # 4 jobs; Azure proposes in both of its (Rastrigin in 5-D)
    "-m", "problem=rugged", "problem.dim=5", "optimizer=azure,adam",
    f"problem.steps=300,{LONG_STEPS}", "seed=0", "checkpoint_every=100", "save_plot=false",
]
CANCELLED_JOB = 1  # azure, problem.steps=LONG_STEPS (Hydra numbers the jobs in sweep order)
ON_SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10", "progress=true"]  # the bar shows where a run starts
ON_JOBLIB = ["hydra/launcher=parallel", "progress=false"]
# what a run computes; wall time, provenance and the launcher-only keys may differ
COMPUTED = ("status", "metrics", "best_metrics", "final_loss", "best_loss", "n_loss_evals",
            "n_grad_evals", "n_steps", "history", "optimizer_stats")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cluster_unavailable() -> str | None:
    """Why the test cannot run here, or None."""
    if shutil.which("sinfo") is None:
        return "no SLURM client (sinfo); start a local cluster with .ci/slurm-up (docs/slurm.md)"
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        return "hydra-submitit-launcher is not installed (pip install -e '.[slurm]')"
    try:
        nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%n %T"], capture_output=True,
                               text=True, timeout=20)
    except subprocess.TimeoutExpired:  # it retries a controller that does not answer
        return "sinfo got no answer in 20 s: SLURM is not up; start it with .ci/slurm-up"
    if nodes.returncode != 0:
        return f"SLURM is not up ({nodes.stderr.strip()}); start it with .ci/slurm-up"
    states = dict(line.split() for line in nodes.stdout.splitlines() if line.strip())
    here = socket.gethostname().split(".")[0]
    if set(states) != {here}:
        return f"the test needs a one-node cluster on this host ({here}), not {sorted(states)}"
    if not states[here].startswith(("idle", "mix", "alloc")):
        return f"node {here} is {states[here]}; restart it with .ci/slurm-up"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    reason = cluster_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def cleanup(tmp_path):
    """Whatever the test leaves behind is stopped: its launcher processes, its SLURM jobs."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for array_id in array_ids(tmp_path / "slurm"):
        subprocess.run(["scancel", array_id], check=False)


def launch(sweep_dir: Path, launcher: list[str], cwd: Path) -> subprocess.Popen:
    """The console script in a subprocess, its output in a log file next to the sweep dir."""
    script = Path(sys.executable).with_name("azure-sciml")
    args = [str(script), *SWEEP, *launcher, f"hydra.sweep.dir={sweep_dir}"]
    log = cwd / f"{sweep_dir.name}.{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout: float) -> None:
    rc = proc.wait(timeout=timeout)
    assert rc == 0, f"{proc.log.name} failed: {log_text(proc)}"


def log_text(proc: subprocess.Popen) -> str:
    return proc.log.read_text()[-3000:]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def array_ids(sweep_dir: Path) -> list[str]:
    """SLURM array job ids of the sweep's launches, oldest first (submitit's folders are
    ``<array id>_<task>``, the task being Hydra's job number)."""
    names = [f.name for f in (sweep_dir / ".submitit").glob("*_*")]
    return sorted({m.group(1) for m in map(re.compile(r"(\d+)_\d+$").match, names) if m}, key=int)


def slurm_states(array_id: str) -> dict[int, str]:
    """Task -> JobState as SLURM's controller reports it (it keeps finished jobs a while)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", array_id], capture_output=True,
                         text=True, check=True).stdout
    return {int(task): state for task, state in
            re.findall(r"ArrayTaskId=(\d+) .*?JobState=(\w+)", out)}


def queued(array_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", array_id], capture_output=True, text=True)
    return bool(out.stdout.strip())


def task_log(sweep_dir: Path, array_id: str, task: int, stream: str) -> str:
    return (sweep_dir / ".submitit" / f"{array_id}_{task}" /
            f"{array_id}_{task}_0_log.{stream}").read_text()


def results(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text())
            for p in sweep_dir.glob("*/result.json")}


def test_sweep_through_sbatch_equals_joblib_and_resumes_a_cancelled_job(tmp_path, cleanup):
    slurm_dir, joblib_dir = tmp_path / "slurm", tmp_path / "joblib"
    joblib = launch(joblib_dir, ON_JOBLIB, tmp_path)
    sweep = launch(slurm_dir, ON_SLURM, tmp_path)
    cleanup += [joblib, sweep]
    run_dir = slurm_dir / str(CANCELLED_JOB)
    checkpoint = run_dir / "checkpoint.pt"
    wait_for(lambda: checkpoint.exists() or sweep.poll() is not None, 180, "a checkpoint")
    assert sweep.poll() is None, log_text(sweep)
    (first,) = array_ids(slurm_dir)
    subprocess.run(["scancel", f"{first}_{CANCELLED_JOB}"], check=True)
    wait_for(lambda: not queued(first), 300, "the first launch's jobs to leave the queue")
    # Without accounting (sacct) submitit cannot see a cancelled job end, so the launcher
    # waits: stop it as a user would (with sacct it exits by itself, failing the sweep).
    if sweep.poll() is None:
        sweep.send_signal(signal.SIGINT)
        try:
            sweep.wait(timeout=60)
        except subprocess.TimeoutExpired:  # still cleaning up (seen once under load): Ctrl-C again
            sweep.terminate()
            sweep.wait(timeout=60)

    states = slurm_states(first)
    assert states[CANCELLED_JOB] == "CANCELLED"
    assert all(states[task] == "COMPLETED" for task in states if task != CANCELLED_JOB)
    assert len(states) == 4
    assert not (run_dir / "result.json").exists()
    stopped_at = torch.load(checkpoint, weights_only=True)["counter"]["n_loss"]
    assert 0 < stopped_at < LONG_STEPS  # cancelled mid-run
    finished = {p: p.stat().st_mtime_ns for p in slurm_dir.glob("*/result.json")}
    assert len(finished) == 3

    relaunch = launch(slurm_dir, ON_SLURM, tmp_path)
    cleanup.append(relaunch)
    finish(relaunch, timeout=300)
    second = array_ids(slurm_dir)[-1]
    assert second != first
    # the launcher exits once the results are written; SLURM may list a task as RUNNING
    # (completing) a moment longer, so wait for the array to leave the queue before reading
    wait_for(lambda: not queued(second), 60, f"array {second} to leave the queue")
    assert set(slurm_states(second).values()) == {"COMPLETED"}
    bar = task_log(slurm_dir, second, CANCELLED_JOB, "err")
    assert re.search(rf"\b(\d+)/{LONG_STEPS}\b", bar).group(1) == str(stopped_at)  # resumed
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items())  # skipped
    assert all("skipped, already complete" in task_log(slurm_dir, second, task, "out")
               for task in range(4) if task != CANCELLED_JOB)
    assert "0 failed, 0 missing" in (slurm_dir / "report.md").read_text()

    finish(joblib, timeout=300)
    on_slurm, on_joblib = results(slurm_dir), results(joblib_dir)
    assert sorted(on_slurm) == sorted(on_joblib) == [0, 1, 2, 3]
    for num, record in on_slurm.items():
        reference = on_joblib[num]
        assert result_config(record["config"]) == result_config(reference["config"])
        assert {k: record[k] for k in COMPUTED} == {k: reference[k] for k in COMPUTED}, num
    assert on_slurm[CANCELLED_JOB]["optimizer_stats"]["n_proposals"] > 0
