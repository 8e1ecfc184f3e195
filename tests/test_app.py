"""The Hydra app: every config composes and instantiates, bad values fail with their key named
before training, runs write a complete result.json, sweeps (basic and submitit launchers) end in a
report, a user's own problem class joins, and the Optuna and submitit plugins stay optional."""

import csv
import inspect
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.errors import MissingConfigException
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import OmegaConf, open_dict

import azure_sciml.conf
from azure_sciml import app, fit, report
from azure_sciml.train import FitResult, Problem

CONF_DIR = Path(azure_sciml.conf.__file__).parent
TESTS_DIR = Path(__file__).parent
USER_PROBLEM = ["~problem", "+problem._target_=user_problem.TinyFit"]  # tests/user_problem.py
QUIET = ["progress=false", "save_plot=false"]


def config_names(group: str) -> list[str]:
    """Every config of a group, so a new yaml file is tested without touching this file."""
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def compose_config(*overrides: str, hydra_node: bool = False):
    with initialize_config_module("azure_sciml.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra_node)


def run_app(out_dir: Path, *overrides: str, reraise: bool = True) -> float:
    """The app's run() on a composed config, as main() calls it inside Hydra."""
    cfg = compose_config(*overrides, hydra_node=True)
    choices = dict(cfg.hydra.runtime.choices)
    task_overrides = OmegaConf.to_container(cfg.hydra.overrides.task)
    with open_dict(cfg):
        del cfg["hydra"]  # as Hydra hands the config to the task function
    return app.run(cfg, out_dir, choices, task_overrides, reraise=reraise)


def constructor_arguments(target: str) -> dict:
    """Keyword arguments of a ``_target_`` and their defaults."""
    parameters = inspect.signature(get_class(target)).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is not p.VAR_KEYWORD}


def read_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The console script in a subprocess that can import tests/user_problem.py; one torch thread,
    as the other pytest-xdist worker needs the other core."""
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        ["azure-sciml", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------- every config


@pytest.mark.parametrize("name", config_names("problem"))
def test_every_problem_config_instantiates(name):
    cfg = compose_config(f"problem={name}", "problem.steps=20")
    problem, make_optimizer = app.setup(cfg)
    assert isinstance(problem, Problem)
    assert problem.steps == 20  # problem.steps shrinks any run
    assert problem.lr > 0 and cfg.problem.lr in (problem.lr, None)  # null: the problem's own
    assert make_optimizer([torch.zeros(1, requires_grad=True)]).defaults["lr"] == problem.lr


@pytest.mark.parametrize("name", config_names("optimizer"))
def test_every_optimizer_config_trains(name, tmp_path):
    headline = run_app(tmp_path, *USER_PROBLEM, "+problem.steps=8", f"optimizer={name}", *QUIET)
    result = read_result(tmp_path)
    assert result["optimizer"] == name and result["status"] == "ok"
    assert result["n_loss_evals"] >= 8 and math.isfinite(headline)
    if "lr" in result["config"]["optimizer"]:  # every optimizer with an lr gets the problem's
        assert result["config"]["optimizer"]["lr"] == 0.01
    is_azure = result["config"]["optimizer"]["_target_"] == "azure_sciml.Azure"
    assert (result["optimizer_stats"] is not None) == is_azure  # Azure.stats()


def test_the_main_job_draws_the_figure_of_seed_0_only():
    """experiment=compare draws the problem's figure for the seed its report shows (0) only;
    save_plot=true draws every one."""
    drawn = {s: compose_config("experiment=compare", f"seed={s}").save_plot for s in (0, 3)}
    assert drawn == {0: True, 3: False}
    assert compose_config("experiment=compare", "seed=3", "save_plot=true").save_plot is True


@pytest.mark.parametrize("group_name", [f"problem={n}" for n in config_names("problem")])
def test_problem_configs_show_every_constructor_argument(group_name):
    node = compose_config(group_name).problem
    assert set(node) - {"_target_"} == set(constructor_arguments(node._target_))


@pytest.mark.parametrize("name", config_names("optimizer"))
def test_optimizer_configs_hold_only_constructor_arguments(name):
    node = compose_config(f"optimizer={name}").optimizer
    defaults = constructor_arguments(node._target_)
    assert set(node) - {"_target_", "_partial_"} <= set(defaults) - {"params"}


@pytest.mark.parametrize("name", config_names("experiment"))
def test_every_experiment_composes_as_a_multirun(name):
    if name == "tune_azure":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config(f"experiment={name}", hydra_node=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert cfg.hydra.sweeper.params


@pytest.mark.parametrize("name", config_names("experiment"))
def test_experiment_targets_are_valid_and_name_problems_the_sweep_runs(name):
    if name == "tune_azure":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config(f"experiment={name}", hydra_node=True)
    chosen = cfg.hydra.runtime.choices.problem  # the problem when the sweep does not vary it
    swept = set(str(cfg.hydra.sweeper.params.get("problem", chosen)).split(","))
    for target in OmegaConf.to_container(cfg.targets):
        assert set(report.check_target(target)["problems"]) <= swept, (name, target["text"])


def test_the_quality_experiments_judge_every_target_of_the_issue():
    kinds = defaultdict(set)  # (problems, baseline) -> kinds of target
    for name in ("compare", "quality", "lj_odds", "symreg_set"):
        for target in compose_config(f"experiment={name}").targets:
            kinds[tuple(target.problems), target.get("baseline", "adam")].add(target.kind)
    assert kinds[("energy",), "adam"] == kinds[("energy_lj19",), "adam"] == {"rate_at_least"}
    assert kinds[("rugged",), "adam"] == kinds[("rugged_ackley",), "adam"] == {
        "median_ratio_at_most"
    }
    assert kinds[("heat",), "adam"] == kinds[("ode",), "adam"] == {"not_worse"}
    symreg_set = [p for p, _ in kinds if len(p) == 6]
    assert symreg_set and kinds[symreg_set[0], "adam"] == {"rate_above_baseline"}
    # and Azure's gap to what users of each problem would pick instead
    assert kinds[("heat",), "adam+lbfgs"] == kinds[("ode",), "adam+lbfgs"] == {"not_worse"}
    for lj in ("energy", "energy_lj19"):
        assert kinds[(lj,), "basinhopping"] == {"rate_above_baseline"}


def test_compare_is_the_four_problems_by_azure_adam_and_the_field_baselines_by_ten_seeds():
    cfg = compose_config("experiment=compare", hydra_node=True)
    assert dict(cfg.hydra.sweeper.params) == {
        "problem": "heat,ode,symreg,energy",
        "optimizer": "azure,adam,basinhopping",
        "refine": "none,lbfgs",
        "seed": "range(10)",
    }
    # hydra-filter-sweeper's, counting its jobs for the progress lines; which rows: its filters
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.azure_sciml_sweeper.FilteredSweeper"
    assert cfg.scheduler._target_ == "torch.optim.lr_scheduler.MultiStepLR"  # one for both
    assert cfg.hydra.launcher.n_jobs == 2 and "joblib" in cfg.hydra.launcher._target_
    assert cfg.hydra.callbacks.report._target_ == "azure_sciml.report.ReportCallback"


def test_tune_azure_minimises_with_optuna():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config("experiment=tune_azure", hydra_node=True)
    assert cfg.hydra.sweeper.direction == "minimize" and cfg.optimizer._target_.endswith("Azure")
    assert all(key.startswith("optimizer.") for key in cfg.hydra.sweeper.params)


@pytest.mark.parametrize(
    ("launcher", "plugin", "target"),
    [
        ("parallel", "hydra_plugins.hydra_joblib_launcher", "JoblibLauncher"),
        ("slurm", "hydra_plugins.hydra_submitit_launcher", "SlurmLauncher"),
        ("submitit_local", "hydra_plugins.hydra_submitit_launcher", "LocalLauncher"),
    ],
)
def test_launchers_come_from_the_hydra_plugins(launcher, plugin, target):
    pytest.importorskip(plugin)
    cfg = compose_config(f"hydra/launcher={launcher}", hydra_node=True)
    assert cfg.hydra.launcher._target_.endswith(target)


@pytest.mark.parametrize(("group", "known"), [("problem", "heat"), ("optimizer", "adam")])
def test_unknown_choice_lists_the_options(group, known):
    with pytest.raises(MissingConfigException) as error:
        compose_config(f"{group}=nope")
    assert f"Available options in '{group}'" in str(error.value)
    assert known in str(error.value)


# ---------------------------------------------------------------- validation before training


BAD_VALUES = [
    (["optimizer.lr=-0.001"], "optimizer.lr=-0.001"),
    (["problem.lr=-1"], "problem.lr=-1"),
    (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas="),
    (["+optimizer.T0=-1"], "optimizer.T0=-1"),
    (["+optimizer.sa_interval=0"], "optimizer.sa_interval=0"),
    (["optimizer=sgd", "+optimizer.bogus=1"], "optimizer.bogus=1"),
    (["problem.n_interior=0"], "problem.n_interior=0"),
    (["problem.steps=0"], "problem.steps=0"),
    (["problem=ode", "problem.solver=nope"], "problem.solver='nope'"),
    (["problem._target_=no.such.Problem"], "problem._target_='no.such.Problem'"),
    (["dtype=int8"], "dtype='int8'"),
    (["device=tpu9"], "device='tpu9'"),
    pytest.param(
        ["device=cuda"],
        "device='cuda'",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available"),
    ),
    (["clip_grad_norm=-1"], "clip_grad_norm=-1"),
    (["seed=abc"], "seed='abc'"),
    (["threads=-1"], "threads=-1"),
    (["optimizer.T00=1"], "optimizer.T00=1: not an argument of azure_sciml.optim.Azure"),
    ([*USER_PROBLEM, "+problem.n_points=0"], "problem.n_points=0"),
    ([*USER_PROBLEM, "optimizer.lr=${problem.nope}"], "optimizer.lr=${problem.nope}"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD_VALUES)
def test_bad_value_fails_before_training_with_its_key(overrides, key, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "fit", pytest.fail)  # nothing may train
    with pytest.raises(app.ConfigError, match=re.escape(key)):
        run_app(tmp_path, *overrides, *QUIET)
    assert not (tmp_path / "result.json").exists()


def test_foreign_config_keys_get_a_hint_for_user_problems():
    with pytest.raises(app.ConfigError, match="problem.variant='sine'.*'~problem'"):
        app.setup(compose_config("problem._target_=user_problem.TinyFit"))


def test_cli_names_the_bad_key(tmp_path):
    out = cli("optimizer.lr=-0.1", f"hydra.run.dir={tmp_path}", *QUIET, cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.startswith("azure-sciml: error: optimizer.lr=-0.1: ")  # one line, no
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr  # traceback
    assert not (tmp_path / "result.json").exists()


# ---------------------------------------------------------------- one run


def test_result_json_is_complete_and_atomic(tmp_path):
    overrides = [*USER_PROBLEM, "+problem.steps=700", "seed=3", "progress=false"]
    headline = run_app(tmp_path, *overrides)
    result = read_result(tmp_path)
    assert result["problem"] == "TinyFit" and result["optimizer"] == "azure"
    assert result["seed"] == 3 and result["status"] == "ok"
    assert headline == result["metrics"]["mse"] and result["headline_metric"] == "mse"
    assert set(result["best_metrics"]) == {"mse", "max_err"}
    assert result["n_loss_evals"] == result["n_grad_evals"] == 700
    assert result["wall_time_s"] > 0
    history = result["history"]
    assert len(history["evals"]) == len(history["loss"]) <= 500
    assert history["evals"][0] == 1 and history["evals"][-1] == 700
    assert result["optimizer_stats"]["n_loss_evals"] == 700
    assert result["config"]["problem"]["steps"] == 700 and result["config"]["seed"] == 3
    assert "+problem.steps=700" in result["overrides"]
    assert result["figure"] == "solution.png" and (tmp_path / "solution.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "solution.png"]


def test_device_dtype_and_clipping_pass_through_to_fit(tmp_path, monkeypatch):
    seen = {}

    def fake_fit(problem, make_optimizer, **kwargs):
        seen.update(kwargs)
        return FitResult({"mse": 0.5}, {"mse": 0.4}, 1.0, 0.9, 1, 1, 1, 0.1, history=[(1, 1.0)])

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(app, "fit", fake_fit)
    overrides = ["device=cuda", "dtype=float64", "clip_grad_norm=1.5", "seed=7"]
    assert run_app(tmp_path, *USER_PROBLEM, *overrides, *QUIET) == 0.5
    assert seen["device"] == "cuda" and seen["dtype"] is torch.float64
    assert seen["clip_grad_norm"] == 1.5 and seen["seed"] == 7 and seen["progress"] is False


def test_divergence_is_recorded(tmp_path):
    run_app(tmp_path, *USER_PROBLEM, "+problem.steps=50", "+problem.nan_after=10", *QUIET)
    result = read_result(tmp_path)
    assert result["status"] == "diverged" and "nan" in result["message"]
    assert math.isfinite(result["metrics"]["mse"])  # scored at the last finite weights


def test_crash_fails_a_single_run_but_not_a_sweep(tmp_path):
    crash = [*USER_PROBLEM, "+problem.crash=true", *QUIET]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_app(tmp_path / "single", *crash)
    assert read_result(tmp_path / "single")["status"] == "failed"
    assert run_app(tmp_path / "sweep_job", *crash, reraise=False) == math.inf
    result = read_result(tmp_path / "sweep_job")
    assert result["status"] == "failed" and "simulated crash" in result["message"]


def test_user_problem_config_joins_through_the_searchpath(tmp_path):
    (tmp_path / "myconf" / "problem").mkdir(parents=True)
    (tmp_path / "myconf" / "problem" / "tiny.yaml").write_text(
        "_target_: user_problem.TinyFit\nsteps: 10\nn_points: 16\n"
    )
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'myconf'}]"
    run_app(tmp_path, searchpath, "problem=tiny", "optimizer=adam", *QUIET)
    result = read_result(tmp_path)
    assert result["problem"] == "tiny" and result["config"]["optimizer"]["lr"] == 0.01


# ---------------------------------------------------------------- command line


WITHOUT_EXTRAS = """
import sys, hydra_plugins
hydra_plugins.__path__ = [sys.argv.pop(1)]  # Hydra finds only the plugins in this dir
from hydra import compose, initialize_config_module
with initialize_config_module("azure_sciml.conf", version_base="1.3"):
    for choice in ("experiment=compare", "experiment=tune_azure", "hydra/launcher=slurm"):
        try:
            compose("config", [choice], return_hydra_config=True)
            print("composes:", choice)
        except Exception:
            print("fails:", choice)
from azure_sciml.app import main
main()
"""


def test_optuna_and_submitit_are_optional(tmp_path):
    """Without the extras only their choices fail; runs and the joblib sweep still work."""
    import hydra_plugins.filter as filter_plugin  # the core's plugins: joblib, filter
    import hydra_plugins.hydra_joblib_launcher as joblib_plugin

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "hydra_joblib_launcher").symlink_to(Path(joblib_plugin.__file__).parent)
    (tmp_path / "plugins" / "filter.py").symlink_to(filter_plugin.__file__)
    args = [*USER_PROBLEM, "+problem.steps=5", f"hydra.run.dir={tmp_path / 'run'}", *QUIET]
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, str(tmp_path / "plugins"), *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == [
        "composes: experiment=compare",
        "fails: experiment=tune_azure",
        "fails: hydra/launcher=slurm",
    ]
    assert read_result(tmp_path / "run")["status"] == "ok"


def test_compare_sweep_writes_results_and_report(tmp_path):
    sweep_dir = tmp_path / "sweep"
    out = cli(
        "experiment=compare",
        "problem=heat,energy",  # 2 problems x compare's rows x 2 seeds
        "seed=0,1",
        "problem.steps=5",
        "hydra/launcher=basic",  # one process: faster than joblib for tiny runs
        f"hydra.sweep.dir={sweep_dir}",
        *QUIET,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    results = [json.loads(p.read_text()) for p in sweep_dir.rglob("result.json")]
    runs = {(r["problem"], r["optimizer"], r["seed"]) for r in results}
    # the filters keep Adam then L-BFGS everywhere and basin-hopping alone, on the cluster only
    rows = {"heat": ("azure", "adam", "adam+lbfgs"),
            "energy": ("azure", "adam", "adam+lbfgs", "basinhopping")}  # fmt: skip
    assert runs == {(p, o, s) for p, names in rows.items() for o in names for s in (0, 1)}
    text = (sweep_dir / "report.md").read_text()
    assert re.search(r"\| heat \| Azure \| `rel_l2` \| 2 \| \d/2 \|", text)  # verdict
    assert re.search(r"\| energy \| basinhopping \| `gap` \| 2 \| \d/2 \|", text)
    assert "| Adam | 2/2 |" in text and "| Azure | 2/2 |" in text
    with (sweep_dir / "comparison.csv").open() as handle:
        pairs = {(r["problem"], r["optimizer"], r["n_pairs"]) for r in csv.DictReader(handle)}
    assert pairs == {(p, o, "2") for p, names in rows.items() for o in names if o != "adam"}
    assert (sweep_dir / "convergence.png").exists()


def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep_dir = tmp_path / "sweep"
    out = cli(
        "-m",
        "hydra/launcher=submitit_local",
        *USER_PROBLEM,  # a user's problem class, joined from the command line
        "+problem.steps=10",
        "seed=0,1",
        f"hydra.sweep.dir={sweep_dir}",
        *QUIET,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert len(list(sweep_dir.rglob("result.json"))) == 2
    assert "| Azure | 2/2 | 0." in (sweep_dir / "report.md").read_text()


# ---------------------------------------------------------------- interruption and resume


def test_complete_run_is_skipped_and_corrupt_result_rerun(tmp_path):
    overrides = [*USER_PROBLEM, "+problem.steps=40", *QUIET]
    first = run_app(tmp_path, *overrides)
    stamp = (tmp_path / "result.json").stat().st_mtime_ns
    assert run_app(tmp_path, *overrides) == first
    assert (tmp_path / "result.json").stat().st_mtime_ns == stamp  # nothing recomputed
    assert run_app(tmp_path, *overrides, "seed=1") != first  # another config is not skipped
    assert read_result(tmp_path)["seed"] == 1
    (tmp_path / "result.json").write_text('{"status": "ok", "metr')  # truncated by a crash
    assert run_app(tmp_path, *overrides) == first  # run again, same seed, same answer
    assert read_result(tmp_path)["status"] == "ok"


def test_checkpoint_left_by_an_interrupted_run_is_resumed(tmp_path, monkeypatch):
    overrides = [*USER_PROBLEM, "+problem.steps=60", "checkpoint_every=10", *QUIET]
    reference = run_app(tmp_path / "reference", *overrides)
    real_fit = app.fit

    def interrupted_fit(*args, **kwargs):  # the job dies after 30 evaluations
        real_fit(*args, **{**kwargs, "steps": 30})
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        run_app(tmp_path / "run", *overrides)
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    monkeypatch.setattr(app, "fit", real_fit)
    assert run_app(tmp_path / "run", *overrides) == reference
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_killed_sweep_relaunched_completes_without_recomputing(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *USER_PROBLEM, "+problem.steps=3000", "seed=0,1,2,3", "optimizer=adam",
            f"hydra.sweep.dir={sweep_dir}", *QUIET]
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(["azure-sciml", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(sweep_dir.rglob("result.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL, mid-sweep
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("result.json")}
    assert 1 <= len(finished) < 4
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    results = sorted(sweep_dir.rglob("result.json"))
    assert len(results) == 4
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items())
    assert {json.loads(p.read_text())["seed"] for p in results} == {0, 1, 2, 3}
    assert "0 failed, 0 missing" in (sweep_dir / "report.md").read_text()


def test_step_decay_schedule_follows_the_budget():
    cfg = compose_config("scheduler=step_decay", "problem=energy", "problem.steps=200")
    sched = app.scheduler_factory(cfg)(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1))
    assert dict(sched.milestones) == {180: 1, 190: 1} and sched.gamma == 0.1
    assert app.scheduler_factory(compose_config("problem=energy")) is None


def test_bad_scheduler_fails_before_training_naming_the_key():
    cfg = compose_config("scheduler=step_decay", "+scheduler.bogus=1")
    with pytest.raises(app.ConfigError, match="scheduler"):
        app.setup(cfg)


def test_validation_takes_the_dimension_from_the_command_line():
    cfg = compose_config("experiment=validation", "problem.dim=50", hydra_node=True)
    assert cfg.problem.dim == 50 and "rugged_levy" in cfg.hydra.sweeper.params.problem
    assert cfg.hydra.sweep.dir.startswith("multirun/validation/dim50/")


# ---------------------------------------------------------------- the plan, every argument


def plain_defaults(target: str) -> dict:
    """The constructor's defaults a command line can write (numbers, strings, null, lists)."""
    plain = (bool, int, float, str, type(None), tuple, list)
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in constructor_arguments(target).items()
            if k != "params" and v is not inspect.Parameter.empty and isinstance(v, plain)}


@pytest.mark.parametrize("name", config_names("optimizer"))
def test_every_argument_of_an_optimizer_is_settable_without_a_plus(name):
    """optimizer.KEY=value for every constructor argument, checked against the signature."""
    target = compose_config(f"optimizer={name}").optimizer._target_
    defaults = plain_defaults(target)
    overrides = [f"optimizer.{k}={json.dumps(v) if v is not None else 'null'}"
                 for k, v in defaults.items()]
    cfg = compose_config(*USER_PROBLEM, "+problem.steps=8", f"optimizer={name}", *overrides)
    plan = app.make_plan(cfg)
    assert {k: plan.config["optimizer"][k] for k in defaults} == defaults
    assert isinstance(plan.optimizer([torch.zeros(1, requires_grad=True)]), torch.optim.Optimizer)


@pytest.mark.parametrize("name", [n for n in config_names("refine") if n != "none"])
def test_every_argument_of_a_finisher_is_settable_without_a_plus(name):
    """refine.optimizer.KEY=value for every argument of the finisher (refine/*.yaml start from
    optimizer/_open too); a key it does not take fails in the app's check, not Hydra's struct."""
    target = compose_config(f"refine={name}").refine.optimizer._target_
    defaults = plain_defaults(target)
    overrides = [f"refine.optimizer.{k}={json.dumps(v) if v is not None else 'null'}"
                 for k, v in defaults.items()]
    cfg = compose_config(*USER_PROBLEM, "+problem.steps=8", f"refine={name}", *overrides)
    plan = app.make_plan(cfg)
    assert {k: plan.config["refine"]["optimizer"][k] for k in defaults} == defaults
    assert isinstance(plan.optimizer([torch.zeros(1, requires_grad=True)]), torch.optim.Optimizer)
    unknown = compose_config(*USER_PROBLEM, f"refine={name}", "refine.optimizer.T00=1")
    with pytest.raises(app.ConfigError, match=r"^refine.optimizer.T00=1: not an argument of "):
        app.make_plan(unknown)


@pytest.mark.parametrize("problem", ["heat", "symreg", "energy"])
def test_the_adam_row_is_torchs_default_adam_bit_for_bit(problem):
    """optimizer=adam runs torch's multi-tensor Adam (the faster path on CPU): the same runs as
    ``torch.optim.Adam``'s default single-tensor loop, so the reports' Adam rows do not move."""
    cfg = compose_config(f"problem={problem}", "problem.steps=40", "optimizer=adam", *QUIET)
    plan = app.make_plan(cfg)
    assert plan.config["optimizer"]["foreach"] is True
    runs = []
    for factory in (plan.optimizer, lambda ps: torch.optim.Adam(ps, lr=plan.problem.lr)):
        problem = app.make_plan(cfg).problem
        result = fit(problem, factory, seed=3, progress=False)
        runs.append((result.final_loss, [p.clone() for p in result.model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


def test_a_constructor_error_is_located_at_its_key_not_by_its_wording():
    with pytest.raises(app.ConfigError) as error:
        app.make_plan(compose_config("optimizer=adam", "optimizer.betas=[0.9,1.5]"))
    assert (error.value.key, error.value.value) == ("optimizer.betas", [0.9, 1.5])
    assert str(error.value).startswith("optimizer.betas=[0.9, 1.5]: ")


def test_the_plan_builds_once_and_fit_hands_the_run_length_over():
    from azure_sciml import fit

    plan = app.make_plan(compose_config(*USER_PROBLEM, "+problem.steps=40", "refine=lbfgs"))
    assert plan.keys.threads == 1 and plan.scheduler is None
    assert plan.config["optimizer"]["lr"] == 0.01  # the user problem's own lr, written in
    result = fit(plan.problem, plan.optimizer, **plan.fit_arguments())
    chain = result.optimizer  # Azure, then L-BFGS at refine.at=0.8 of problem.steps
    assert (chain.total_steps, chain.switch_at) == (40, 32)
    assert (chain.first.total_steps, chain.first.sa_steps) == (32, 28)


@pytest.mark.parametrize(("override", "line"), [
    ("optimizer.betas=[0.9]", "optimizer.betas=[0.9]: must have 2 entries, it has 1"),
    ("optimizer.T0=-1", "optimizer.T0=-1: Invalid T0 value: -1 (>= 0 and finite)"),
])  # fmt: skip
def test_the_readme_one_line_errors_are_true_as_written(override, line, tmp_path):
    out = cli(override, f"hydra.run.dir={tmp_path}", *QUIET, cwd=tmp_path)
    assert out.returncode == 1 and out.stderr == f"azure-sciml: error: {line}\n"


def test_python_dash_m_runs_the_app(tmp_path):
    out = subprocess.run([sys.executable, "-m", "azure_sciml.app", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "azure-sciml" in out.stdout


def test_a_run_uses_its_thread_count_and_records_it(tmp_path):
    before = torch.get_num_threads()
    try:
        run_app(tmp_path, *USER_PROBLEM, "+problem.steps=5", "threads=2", *QUIET)
        record = read_result(tmp_path)
        assert torch.get_num_threads() == 2 and record["config"]["threads"] == 2
        assert record["provenance"]["threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_a_schedule_without_the_run_length_names_its_key():
    cfg = compose_config(*USER_PROBLEM, "scheduler=step_decay")  # no problem.steps key
    with pytest.raises(app.ConfigError, match=r"^scheduler.milestones=.*problem.steps"):
        app.make_plan(cfg)
