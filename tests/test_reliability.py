"""Runs and sweeps never mislabel or lose a result (issue 15): config-checked resume and skip,
safe checkpoint loading, unique temporary files, typed configs refused up front by key, a failed
record (and a report) for every bad job, provenance in every record, sweep progress lines, and
config errors as one line."""

import json
import logging
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_app import QUIET, TESTS_DIR, USER_PROBLEM, cli, compose_config, read_result, run_app
from toy_problem import Toy

from azure_sciml import fit, runs
from azure_sciml.app import (
    CHECKPOINT_FILE,
    ConfigError,
    SweepJob,
    count_jobs,
    progress_line,
    setup,
)

TINY = [*USER_PROBLEM, "+problem.steps=60", "checkpoint_every=10", *QUIET]
ADAM = ["optimizer=adam"]


def interrupted(monkeypatch, app_module, after: int):
    """Make the app's fit() die (as a killed job) after ``after`` evaluations."""
    real_fit = app_module.fit

    def die(*args, **kwargs):
        real_fit(*args, **{**kwargs, "steps": after})
        raise KeyboardInterrupt

    monkeypatch.setattr(app_module, "fit", die)
    return real_fit


# ---------------------------------------------------------------- 1. config-checked resume


def test_relaunch_with_another_seed_never_resumes_the_old_checkpoint(tmp_path, monkeypatch,
                                                                      caplog):
    """The issue's case: a job killed mid-run with seed=0, its dir relaunched with seed=7."""
    from azure_sciml import app

    fresh_seed7 = run_app(tmp_path / "reference", *TINY, "seed=7")
    real_fit = interrupted(monkeypatch, app, after=30)
    with pytest.raises(KeyboardInterrupt):
        run_app(tmp_path / "job", *TINY, "seed=0")
    assert (tmp_path / "job" / CHECKPOINT_FILE).exists()
    monkeypatch.setattr(app, "fit", real_fit)
    with caplog.at_level(logging.WARNING):
        value = run_app(tmp_path / "job", *TINY, "seed=7")
    assert "seed: 0 -> 7" in caplog.text and "starting afresh" in caplog.text
    result = read_result(tmp_path / "job")
    assert result["seed"] == 7 and value == fresh_seed7  # seed 7's run, not seed 0's resumed
    assert result["history"] == read_result(tmp_path / "reference")["history"]


def app_process(run_dir: Path, *overrides: str, kill_at: int | None = None):
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "OMP_NUM_THREADS": "1"}
    env.pop("KILL_AT_EVAL", None)
    if kill_at is not None:
        env["KILL_AT_EVAL"] = str(kill_at)
    args = ["~problem", "+problem._target_=killable.Killable", "+problem.steps=60",
            "checkpoint_every=10", f"hydra.run.dir={run_dir}", *QUIET, *overrides]
    return subprocess.run(["azure-sciml", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_killed_run_relaunched_with_another_seed_is_that_seeds_run(tmp_path):
    """SIGKILL mid-run (seed 0), then the same run dir with seed 7: seed 7's own result."""
    run_app(tmp_path / "reference", "~problem", "+problem._target_=killable.Killable",
            "+problem.steps=60", "checkpoint_every=10", *QUIET, "seed=7")  # in-process, unkilled
    killed = app_process(tmp_path / "run", "seed=0", kill_at=35)
    assert killed.returncode == -9 and (tmp_path / "run" / CHECKPOINT_FILE).exists()
    relaunched = app_process(tmp_path / "run", "seed=7")
    assert relaunched.returncode == 0, relaunched.stderr
    assert "seed: 0 -> 7" in relaunched.stdout + relaunched.stderr
    result, reference = read_result(tmp_path / "run"), read_result(tmp_path / "reference")
    assert result["seed"] == 7 and result["metrics"] == reference["metrics"]
    assert result["history"] == reference["history"]


def test_relaunch_with_another_lr_starts_afresh_not_with_the_old_param_groups(tmp_path,
                                                                             monkeypatch):
    from azure_sciml import app

    reference = run_app(tmp_path / "reference", *TINY, *ADAM, "optimizer.lr=0.05")
    assert read_result(tmp_path / "reference")["config"]["optimizer"]["lr"] == 0.05
    real_fit = interrupted(monkeypatch, app, after=30)
    with pytest.raises(KeyboardInterrupt):
        run_app(tmp_path / "job", *TINY, *ADAM)  # lr 0.01, the problem's
    monkeypatch.setattr(app, "fit", real_fit)
    assert run_app(tmp_path / "job", *TINY, *ADAM, "optimizer.lr=0.05") == reference


def test_cosmetic_keys_neither_invalidate_a_checkpoint_nor_a_finished_result(tmp_path,
                                                                              monkeypatch):
    from azure_sciml import app

    reference = run_app(tmp_path / "reference", *TINY)
    real_fit = interrupted(monkeypatch, app, after=30)
    with pytest.raises(KeyboardInterrupt):
        run_app(tmp_path / "job", *TINY)
    monkeypatch.setattr(app, "fit", real_fit)
    problems = []
    monkeypatch.setattr(app, "fit", lambda p, *a, **k: problems.append(p) or real_fit(p, *a, **k))
    cosmetic = ["progress=true", "save_plot=true", "+targets=[]"]
    assert run_app(tmp_path / "job", *TINY, *cosmetic) == reference  # same numbers,
    assert problems[0].n_evals == 30  # and only the 30 evaluations left were run: resumed
    stamp = (tmp_path / "job" / "result.json").stat().st_mtime_ns
    relaunch = [*TINY, "progress=true", "save_plot=false", "checkpoint_every=7", "resume=true"]
    monkeypatch.setattr(app, "fit", pytest.fail)  # a skipped run trains nothing
    assert run_app(tmp_path / "job", *relaunch) == reference
    assert (tmp_path / "job" / "result.json").stat().st_mtime_ns == stamp


def test_a_finished_result_of_another_config_is_run_again_naming_the_keys(tmp_path, caplog):
    first = run_app(tmp_path, *TINY)
    with caplog.at_level(logging.WARNING):
        second = run_app(tmp_path, *TINY, "problem.steps=61")
    assert "problem.steps: 60 -> 61" in caplog.text and second != first
    assert read_result(tmp_path)["n_loss_evals"] == 61


def test_a_checkpoint_of_another_code_version_is_not_resumed(tmp_path, monkeypatch, caplog):
    from azure_sciml import app

    reference = run_app(tmp_path / "reference", *TINY)
    real_fit = interrupted(monkeypatch, app, after=30)
    real_version = app.code_version()
    monkeypatch.setattr(app, "code_version", lambda: {**real_version, "git_commit": "0" * 40})
    with pytest.raises(KeyboardInterrupt):
        run_app(tmp_path / "job", *TINY)
    monkeypatch.setattr(app, "fit", real_fit)
    monkeypatch.setattr(app, "code_version", lambda: real_version)
    with caplog.at_level(logging.WARNING):
        assert run_app(tmp_path / "job", *TINY) == reference
    assert "code.git_commit" in caplog.text


def test_fit_refuses_a_checkpoint_written_with_another_config(tmp_path):
    ckpt = tmp_path / "run.pt"
    adam = lambda params: torch.optim.Adam(params, lr=1e-2)  # noqa: E731
    fit(Toy(), adam, seed=0, steps=10, checkpoint=ckpt, config={"seed": 0, "lr": 0.01})
    with pytest.raises(ValueError, match=r"another config \(seed: 0 -> 7\)"):
        fit(Toy(), adam, seed=7, steps=20, checkpoint=ckpt, resume=True,
            config={"seed": 7, "lr": 0.01})
    resumed = fit(Toy(), adam, seed=0, steps=20, checkpoint=ckpt, resume=True,
                  config={"seed": 0, "lr": 0.01})
    assert resumed.n_loss_evals == 20 and resumed.history == fit(Toy(), adam, steps=20).history


# ---------------------------------------------------------------- 2. safe checkpoints, writers


class Payload:
    """Unpickling this object would create a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_malicious_checkpoint_cannot_run_code(tmp_path, caplog):
    proof = tmp_path / "code_ran"
    ckpt = tmp_path / "run.pt"
    torch.save({"format": 2, "config": None, "model": Payload(proof)}, ckpt)
    adam = lambda params: torch.optim.Adam(params, lr=1e-2)  # noqa: E731
    with pytest.raises(ValueError, match="not plain data"):
        fit(Toy(), adam, steps=10, checkpoint=ckpt, resume=True)
    assert not proof.exists()
    # the app: a run dir carrying such a file (copied from elsewhere) starts afresh, code unrun
    run_dir = tmp_path / "job"
    run_dir.mkdir()
    torch.save({"format": 2, "config": None, "model": Payload(proof)}, run_dir / CHECKPOINT_FILE)
    with caplog.at_level(logging.WARNING):
        run_app(run_dir, *TINY)
    assert not proof.exists() and "not plain data" in caplog.text
    assert read_result(run_dir)["status"] == "ok"


WRITER = """
import sys, torch
from toy_problem import Toy
from azure_sciml import fit
from azure_sciml.runs import write_json_atomic
from pathlib import Path
run_dir = Path(sys.argv[1])
for i in range(40):
    write_json_atomic(run_dir / "result.json", {"writer": sys.argv[2], "i": i})
fit(Toy(), lambda p: torch.optim.Adam(p, lr=1e-2), steps=150,
    checkpoint=run_dir / "checkpoint.pt", checkpoint_every=1)
"""


def test_two_writers_on_one_run_dir_do_not_collide(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name], env=env,
                         stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert json.loads((tmp_path / "result.json").read_text())["i"] == 39
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["format"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "result.json"]


def test_a_missing_multirun_yaml_is_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert runs.sweep_config(tmp_path) is None
        SweepJob(tmp_path, 0).finished({"problem": "heat", "status": "ok"}, 1.0, False)
    assert f"{tmp_path / 'multirun.yaml'} is missing" in caplog.text


# ---------------------------------------------------------------- 3. typed configs


BAD_TYPES = [
    (["++optimizer.seed=abc"], "optimizer.seed='abc': must be an integer or null"),
    (["++optimizer.betas=[0.9]"], "optimizer.betas=[0.9]: must have 2 entries"),
    (["optimizer.lr=inf"], "optimizer.lr=inf: must be finite"),
    (["problem.lr=inf"], "problem.lr=inf: must be finite"),
    (["++optimizer.sigma=nan"], "optimizer.sigma=nan: must be finite"),
    (["++optimizer.sa_interval=true"], "optimizer.sa_interval=True: must be an integer"),
    (["++optimizer.T0=abc"], "optimizer.T0='abc': must be a number"),
    (["problem.steps=1.5"], "problem.steps=1.5: must be an integer"),
    (["problem.n_interior=many"], "problem.n_interior='many': must be an integer"),
    (["optimizer=adam", "optimizer.betas=[0.9,nan]"], "optimizer.betas=[0.9, nan]: must be"),
    (["optimizer=adam", "optimizer.eps=abc"], "optimizer.eps='abc': must be a number"),
    (["seed=1.5"], "seed=1.5: must be an integer"),
    (["progress=maybe"], "progress='maybe': must be true or false"),
    (["checkpoint_every=-1"], "checkpoint_every=-1: must be >= 0"),
    (["clip_grad_norm=0"], "clip_grad_norm=0: must be > 0"),
    (["clip_grad_norm=inf"], "clip_grad_norm=inf: must be finite"),
    (["dtype=int8"], "dtype='int8': must be one of float32"),
    (["+lr=0.1"], "lr=0.1: not a run key"),
    (["scheduler=step_decay", "scheduler.gamma=abc"], "scheduler.gamma='abc': must be a number"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_TYPES)
def test_bad_types_and_ranges_fail_before_training_naming_the_key(overrides, message,
                                                                  tmp_path, monkeypatch):
    from azure_sciml import app

    monkeypatch.setattr(app, "fit", pytest.fail)
    with pytest.raises(ConfigError) as error:
        run_app(tmp_path, *QUIET, *overrides)
    assert str(error.value).startswith(message)
    assert not (tmp_path / "result.json").exists()


class Annotated:
    """A user's optimizer whose knobs are typed by annotations only (nothing in our schemas)."""

    def __init__(self, params, lr: float = 1e-3, relax: float | None = 0.125, k: int = 2):
        self.params = list(params)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("relax", "nan", "relax=nan: must be finite"), ("k", "true", "k=True: must be an integer"),
     ("relax", "abc", "relax='abc': must be a number or null")],
)
def test_any_optimizer_is_typed_by_its_signature(key, value, message):
    cfg = compose_config("~optimizer", "+optimizer._target_=test_reliability.Annotated",
                         "+optimizer._partial_=true", f"+optimizer.{key}={value}")
    with pytest.raises(ConfigError, match=f"^optimizer.{message}"):
        setup(cfg)


def test_good_values_pass_the_typed_checks():
    cfg = compose_config("problem=energy", "problem.steps=20", "++optimizer.seed=3",
                         "clip_grad_norm=2", "checkpoint_every=0", "scheduler=step_decay")
    problem, make = setup(cfg)
    assert problem.steps == 20 and make([torch.zeros(1, requires_grad=True)]).defaults["lr"]
    for optimizer in ("adam", "azure"):  # lists reach the constructor as plain lists
        cfg = compose_config(f"optimizer={optimizer}", "++optimizer.betas=[0.8,0.99]")
        betas = setup(cfg)[1]([torch.zeros(1, requires_grad=True)]).defaults["betas"]
        assert list(betas) == [0.8, 0.99]


# ---------------------------------------------------------------- 4. every sweep ends in a report


@pytest.mark.parametrize(
    "content",
    ["[1, 2, 3]", "null", '{"status": "ok", "metrics": [1, 2]}', '{"status": "ok", "metr',
     '{"status": "great"}', '{"seed": "zero"}'],
)
def test_wrong_shape_records_are_failed_records_naming_the_file(content, tmp_path):
    path = tmp_path / "result.json"
    path.write_text(content)
    record = runs.read_record(path)
    assert record["status"] == "failed" and record["invalid"] is True
    assert record["message"].startswith(f"{path}: ")
    with pytest.raises(runs.RecordError, match=str(path)):
        runs.load_record(path)


def test_a_wrong_shape_result_is_run_again(tmp_path, caplog):
    (tmp_path / "result.json").write_text("[1, 2, 3]")
    with caplog.at_level(logging.WARNING):
        run_app(tmp_path, *TINY)
    assert "not a run record (a JSON list)" in caplog.text and str(tmp_path) in caplog.text
    assert read_result(tmp_path)["status"] == "ok"


def test_a_bad_job_config_is_a_failed_record_not_a_stopped_sweep(tmp_path):
    value = run_app(tmp_path, *TINY, *ADAM, "optimizer.lr=-1", reraise=False)
    record = read_result(tmp_path)
    assert value == math.inf and record["status"] == "failed"
    assert record["message"].startswith("ConfigError: optimizer.lr=-1")
    assert record["optimizer"] == "adam" and record["seed"] == 0  # labelled for the report


def test_an_unwritable_run_dir_costs_the_record_not_the_sweep(tmp_path, monkeypatch, caplog):
    from azure_sciml import app

    def read_only(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(app, "write_json_atomic", read_only)
    with caplog.at_level(logging.ERROR):
        assert run_app(tmp_path, *TINY, reraise=False) == math.inf
    assert f"cannot write {tmp_path / 'result.json'}" in caplog.text


def test_a_sweep_with_a_bad_job_ends_with_every_record_a_report_and_progress(tmp_path):
    """The issue's ``optimizer.lr=0.01,-1`` sweep, relaunched over a wrong-shape result.json."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *USER_PROBLEM, "+problem.steps=20", "optimizer=adam", "optimizer.lr=0.01,-1",
            "seed=0,1", "hydra/launcher=basic", f"hydra.sweep.dir={sweep_dir}", *QUIET]
    first = cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (sweep_dir / "0" / "result.json").write_text("[1, 2, 3]")  # damaged between launches
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")}
    assert sorted(records) == ["0", "1", "2", "3"]
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert len(failed) == 2 and all("optimizer.lr=-1" in r["message"] for r in failed)
    assert records["0"]["status"] == "ok"  # the damaged record was run again
    assert (sweep_dir / "report.md").exists()
    log = out.stdout + out.stderr
    assert "not a run record (a JSON list)" in log
    # 6. one line per finished job: k/N, labels, metric, seconds, jobs left
    lines = [line for line in log.splitlines() if "] TinyFit adam seed=" in line]
    assert len(lines) == 4, log
    assert any("[4/4]" in line and "0 left" in line for line in lines)
    assert any("skipped, already complete" in line for line in lines)
    assert any("mse=" in line and " ok in " in line for line in lines)
    assert any("failed" in line and "optimizer.lr=-1" in line for line in lines)


# ---------------------------------------------------------------- 5. provenance


def test_every_record_says_what_produced_it(tmp_path):
    runs.code_version.cache_clear()  # others may have committed since this worker started
    run_app(tmp_path, *TINY, "dtype=float64")
    prov = read_result(tmp_path)["provenance"]
    assert prov["version"] == __import__("azure_sciml").__version__
    assert prov["torch"] == torch.__version__ and prov["threads"] == torch.get_num_threads()
    assert prov["device"] == "cpu" and prov["dtype"] == "float64" and prov["cpu"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(runs.__file__).parent,
                          capture_output=True, text=True)
    assert prov["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)


def test_provenance_differences_name_what_differs():
    a = {"provenance": {"torch": "2.13.0", "cpu": "Xeon", "threads": 2}}
    b = {"provenance": {"torch": "2.13.0", "cpu": "EPYC", "threads": 2}}
    assert runs.provenance_differences([a, b]) == {"cpu": ["EPYC", "Xeon"]}
    assert runs.provenance_differences([a, a]) == {}
    assert runs.provenance_differences([a, {}])["torch"] == ["2.13.0", None]


# ---------------------------------------------------------------- 6. sweep progress


def test_the_sweep_size_is_hydras_product_of_params_and_overrides():
    cfg = compose_config("experiment=quality", hydra_node=True)
    sweep = {"hydra": {"sweeper": dict(cfg.hydra.sweeper), "overrides": {"task": []}}}
    assert count_jobs(sweep) == 5 * 3 * 10
    sweep["hydra"]["overrides"]["task"] = ["problem=heat,ode", "seed=0,1", "problem.steps=200"]
    assert count_jobs(sweep) == 2 * 3 * 2  # the command line wins over the experiment's params
    assert count_jobs({"hydra": {"sweeper": {"_target_": "x.OptunaSweeper", "n_trials": 30}}}) == 30
    filtered = compose_config("experiment=compare", hydra_node=True)  # which jobs its filters
    assert count_jobs({"hydra": {"sweeper": dict(filtered.hydra.sweeper)}}) is None  # drop: unknown


def test_a_filtered_sweep_counts_the_jobs_it_launches(tmp_path):
    """hydra/sweeper=filtered (experiment=compare's): the job count after its filters reaches the
    progress lines, k/N with the time left, where the plain filter sweeper gave k/?."""
    sweep_dir = tmp_path / "sweep"
    args = ["experiment=compare", "problem=energy", "seed=0", "problem.steps=10",
            "hydra/launcher=basic", f"hydra.sweep.dir={sweep_dir}", *QUIET]
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    log = out.stdout + out.stderr
    lines = [line for line in log.splitlines() if "] energy " in line and " seed=0: " in line]
    # azure, adam, adam+lbfgs, basinhopping: the filters drop azure+lbfgs and basinhopping+lbfgs
    assert len(lines) == 4, log
    assert all(re.search(r"\[[1-4]/4\]", line) for line in lines), lines
    assert any("[4/4]" in line and "0 left" in line for line in lines), lines
    assert json.loads((sweep_dir / ".progress" / "size.json").read_text()) == {"jobs": 4}


def test_progress_line_names_the_run_and_the_time_left():
    record = {"problem": "energy", "optimizer": "azure", "seed": 3, "status": "ok",
              "headline_metric": "gap", "metrics": {"gap": 0.000645}}
    line = progress_line(record, 12.34, False, done=3, total=8, computed=3, elapsed=60.0)
    assert line == "[3/8] energy azure seed=3: gap=0.000645 ok in 12.3 s; 5 left, about 1m40s"
    unknown = progress_line(record, 12.34, False, done=3, total=None, computed=3, elapsed=61.0)
    assert unknown == "[3/?] energy azure seed=3: gap=0.000645 ok in 12.3 s; 3 done in 1m01s"


# ---------------------------------------------------------------- 7. one-line config errors


def test_a_users_module_that_is_not_importable_is_one_line_with_the_fix(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        ["azure-sciml", *USER_PROBLEM, "+problem.steps=5", f"hydra.run.dir={tmp_path}", *QUIET],
        cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300,
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("azure-sciml: error: problem._target_='user_problem.TinyFit': "
                                 "cannot import (No module named 'user_problem')")
    assert "PYTHONPATH=." in out.stderr


def test_an_unset_lr_says_where_to_set_it():
    cfg = compose_config("~problem", "+problem._target_=user_problem.TinyFit",
                         "optimizer.lr=${problem.nope}")
    with pytest.raises(ConfigError, match=r"^optimizer.lr=\$\{problem.nope\}: .*"
                       r"\(set problem.lr or optimizer.lr\)$"):
        setup(cfg)
    assert "\n" not in str(pytest.raises(ConfigError, setup, cfg).value)


def test_the_docs_own_problem_recipe_runs_as_written(tmp_path):
    from test_readme import block_after

    (tmp_path / "myproblem.py").write_text(block_after("own-problem", "docs/problems.md"))
    command = block_after("own-problem-cli", "docs/problems.md").splitlines()[0]
    env_part, *args = shlex.split(command)
    assert env_part == "PYTHONPATH=." and args[0] == "azure-sciml"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [*args, f"hydra.run.dir={tmp_path / 'run'}", *QUIET], cwd=tmp_path,
        env={**env, "PYTHONPATH": ".", "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = read_result(tmp_path / "run")
    assert result["problem"] == "Parabola" and result["status"] == "ok"
    assert result["n_loss_evals"] == 300 and result["metrics"]["error"] < 1e-2
