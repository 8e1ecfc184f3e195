"""The dashboard: path safety, input checks and live runs without a browser; then the real page
in headless Chromium (skipped where gradio, playwright or chromium is missing)."""

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest

from azure_sciml import dashboard
from azure_sciml.dashboard import InputError, open_sweep, plan, read_table, run_live, safe_path

PNG = (  # a 1x1 PNG
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x9a\xa0\xa0\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def results(tmp_path):
    """A results dir with one sweep (report, table, figures) and a secret file beside it."""
    root = tmp_path / "results"
    sweep = root / "two_d" / "2026-01-01"
    (sweep / "0").mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    (sweep / "0" / "solution.png").write_bytes(PNG)
    (sweep / "convergence.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    (tmp_path / "secret.txt").write_text("do not read")
    (sweep / "report.md").write_text(
        "# azure_sciml report\n\nHimmelblau verdict: **not worse**\n\n"
        "![conv](convergence.png) ![azure seed 0](0/solution.png) ![leak](../../../secret.png)\n"
    )
    (sweep / "runs.csv").write_text("optimizer,seed,gap\nazure,0,1e-9\nadam,0,2e-9\n")
    (sweep / "runs.jsonl").write_text(
        '{"optimizer": "azure", "seed": 0, "metrics": {"gap": 1e-9}, "history": {"loss": [1]}}\n'
        '{"optimizer": "adam", "seed": 0, "status": "ok", "metrics": {"gap": 2e-9}}\n'
    )
    (sweep / "leak.png").symlink_to(tmp_path / "secret.png")
    (root / "outside").symlink_to(tmp_path)
    return root


# ---------------------------------------------------------------- paths


def test_safe_path_accepts_paths_inside_however_written(results):
    sweep = results / "two_d" / "2026-01-01"
    assert safe_path(results, "two_d/2026-01-01") == sweep.resolve()
    assert safe_path(results, str(sweep / "runs.csv")) == (sweep / "runs.csv").resolve()
    assert safe_path(results, "two_d/../two_d/2026-01-01/0") == (sweep / "0").resolve()
    assert safe_path(results, ".") == results.resolve()


@pytest.mark.parametrize(
    "typed",
    ["..", "../secret.txt", "two_d/../../secret.txt", "outside", "outside/secret.txt",
     "two_d/2026-01-01/leak.png", "/etc/passwd", "/", "~/secret.txt"],
)  # fmt: skip
def test_safe_path_refuses_everything_outside(results, typed):
    with pytest.raises(InputError):
        safe_path(results, typed)


def test_safe_path_refuses_an_absolute_path_outside_and_odd_input(results, tmp_path):
    for typed in [str(tmp_path / "secret.txt"), "", "   ", "a\x00b", "nope/missing", "x" * 5000]:
        with pytest.raises(InputError):
            safe_path(results, typed)


def test_list_sweeps_finds_sweep_dirs_and_does_not_follow_symlinks(results):
    (results / "two_d" / "2026-01-02").mkdir()
    (results / "two_d" / "2026-01-02" / "report.md").write_text("# r\n")
    (results.parent / "multirun.yaml").write_text("outside: true\n")  # reached only via symlink
    assert dashboard.list_sweeps(results) == ["two_d/2026-01-01", "two_d/2026-01-02"]


def test_open_sweep_shows_the_report_tables_and_only_figures_inside(results):
    view = open_sweep(results, "two_d/2026-01-01")
    assert "not worse" in view.report and "](" not in view.report  # links become captions
    names = sorted(path.name for path, _ in view.figures)
    assert names == ["convergence.png", "solution.png"]  # not ../secret.png, not leak.png
    assert view.tables == ["runs.csv", "runs.jsonl"]
    header, rows = read_table(results, "two_d/2026-01-01", "runs.csv")
    assert header == ["optimizer", "seed", "gap"] and rows[1] == ["adam", "0", "2e-9"]
    header, rows = read_table(results, "two_d/2026-01-01", "runs.jsonl")  # the compact run table
    assert header == ["optimizer", "seed", "metrics.gap", "status"]
    assert rows == [["azure", "0", "1e-09", ""], ["adam", "0", "2e-09", "ok"]]
    with pytest.raises(InputError):
        read_table(results, "two_d/2026-01-01", "../../../secret.txt")
    with pytest.raises(InputError):
        open_sweep(results, "two_d/2026-01-01/runs.csv")  # not a directory


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(problem="nope"), "problem 'nope'"),
        (dict(optimizers=[]), "at least one optimizer"),
        (dict(optimizers=["adam", "rmsprop"]), "optimizer 'rmsprop'"),
        (dict(steps="abc"), "not a number"),
        (dict(steps="0"), "from 1 to"),
        (dict(steps="2.5"), "whole number"),
        (dict(steps="1e9"), "from 1 to"),
        (dict(seeds="0"), "paired seeds"),
        (dict(seeds="10", optimizers=["azure", "adam", "adamw", "sgd", "lbfgs"]), "at most"),
        (dict(settings="adam lr=0.1"), "write 'optimizer: key=value"),
        (dict(settings="sgd: lr=0.1"), "not one of the chosen optimizers"),
        (dict(settings="adam: nope=1"), "optimizer.nope=1: not an argument"),  # the app's check
        (dict(settings="adam: _target_=os.system"), "not a setting name"),
        (dict(settings="adam: lr=${oc.env:HOME}"), "use a number"),
        (dict(settings="adam: lr=0.1,0.2"), "use a number"),
        (dict(settings="adam: lr"), "cannot read"),
        (dict(settings="adam: lr=-1"), "optimizer.lr=-1"),  # the app's own check, key named
        (dict(problem_settings="name=nope"), "problem.name='nope'"),
        (dict(problem_settings="start=[1]"), "start"),
        (dict(problem_settings="hydra=1"), "problem.hydra=1: not an argument"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(kwargs, words):
    args = dict(problem="himmelblau", optimizers=["adam"], steps="20", seeds="1")
    args.update(kwargs)
    with pytest.raises(InputError, match=None) as info:
        plan(args.pop("problem"), args.pop("optimizers"), **args)
    assert words in str(info.value)


def test_settings_reach_the_configs_each_optimizer_its_own():
    jobs = plan("himmelblau", ["adam", "adamw"], "adam: eps=1e-6 amsgrad=true\nadamw: lr=0.02",
                "start=[1,1]", steps="40", seeds="2")  # fmt: skip
    assert [(j.optimizer, j.seed) for j in jobs] == [
        ("adam", 0), ("adamw", 0), ("adam", 1), ("adamw", 1)]
    adam, adamw = jobs[0].cfg, jobs[1].cfg
    assert adam.optimizer.eps == 1e-6 and adam.optimizer.amsgrad is True  # amsgrad: a keyword
    assert adamw.optimizer.lr == 0.02
    assert jobs[0].plan.config["optimizer"]["lr"] == 0.05  # the problem's lr, as the app runs it
    assert adamw.problem.steps == 40 and list(adamw.problem.start) == [1, 1]


# ---------------------------------------------------------------- live runs


def test_a_live_comparison_runs_paired_seeds_through_fit():
    jobs = plan("himmelblau", ["azure", "adam"], steps="30", seeds="2")
    updates = list(run_live(jobs, refresh_s=0.05))
    assert updates[-1].finished and updates[-1].message == "done: 4 runs"
    runs = updates[-1].runs
    assert all(r.result.status == "ok" and r.result.n_loss_evals == 30 for r in runs)
    assert all(r.curve[-1][0] == 30 for r in runs)  # every step seen, to the last evaluation
    assert all(len(r.curve) == r.result.n_steps for r in runs)
    starts = {(r.job.optimizer, r.job.seed): r.job.problem.path()[0].tolist() for r in runs}
    assert starts["azure", 0] == starts["adam", 0] != starts["adam", 1] == starts["azure", 1]
    header, rows = dashboard.results_rows(runs)
    assert header[:4] == ["optimizer", "seed", "status", "gap"] and len(rows) == 4
    assert "vs adam, same seeds" in dashboard.summary_text(runs)
    assert len(dashboard.convergence_figure(runs).axes[0].get_lines()) == 4
    assert len(dashboard.paths_figure(runs).axes) == 2  # a panel per optimizer


def test_closing_a_live_run_stops_its_training():
    jobs = plan("himmelblau", ["adam"], steps="20000", seeds="1")
    updates = run_live(jobs, refresh_s=0.05)
    progress = next(updates)
    while not progress.runs[0].curve:
        progress = next(updates)
    updates.close()  # what the page's Stop does
    losses = progress.runs[0].curve
    time.sleep(0.5)
    count = len(losses)
    time.sleep(0.5)
    assert len(losses) == count < 20000
    assert progress.runs[0].error == "stopped from the page"


def test_no_contour_for_a_problem_that_is_not_2d():
    jobs = plan("rugged", ["adam"], steps="5", seeds="1")
    runs = list(run_live(jobs, refresh_s=0.05))[-1].runs
    assert dashboard.paths_figure(runs) is None
    assert len(dashboard.convergence_figure(runs).axes[0].get_lines()) == 1


def test_import_azure_sciml_does_not_import_gradio():
    code = "import sys, azure_sciml, azure_sciml.dashboard; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_main_refuses_a_results_dir_that_does_not_exist(tmp_path, capsys):
    with pytest.raises(SystemExit):
        dashboard.main([str(tmp_path / "missing")])
    assert "not a directory" in capsys.readouterr().err


def test_main_starts_in_an_empty_directory(tmp_path, monkeypatch):
    """No ``multirun`` here: the page serves its Run tab; the Results tab opens nothing."""
    gr = pytest.importorskip("gradio")
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: calls.append(kwargs))
    dashboard.main([])
    assert len(calls) == 1 and list(tmp_path.iterdir()) == []
    assert dashboard.list_sweeps(None) == []
    with pytest.raises(InputError, match="no results dir"):
        open_sweep(None, ".")


# ---------------------------------------------------------------- the page, in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(results):
    """The page served in this process (a second process would import torch and gradio again)."""
    pytest.importorskip("gradio")
    page = dashboard.build_app(results)
    page.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    yield page.local_url
    page.close()


def test_main_serves_on_localhost_by_default(results, monkeypatch):
    gr = pytest.importorskip("gradio")
    calls = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: calls.append(kwargs))
    dashboard.main([str(results)])
    dashboard.main([str(results), "--host", "0.0.0.0", "--port", "8123"])
    assert [(c["server_name"], c["server_port"]) for c in calls] == [
        ("127.0.0.1", 7860), ("0.0.0.0", 8123)]


@pytest.fixture
def browser_page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no chromium installed (apt-get install chromium)")
    blocked: list[str] = []

    def local_only(route):  # the page must need nothing from outside this machine
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", local_only)
        page.goto(server)
        page.locator("#run").wait_for(timeout=60_000)
        yield page, blocked
        browser.close()


def field(page, elem_id):
    return page.locator(f"#{elem_id}").locator("textarea, input").first


def open_sweep_as_typed(page, sweep, typed, tries=4):
    """Type a sweep dir and press Open until the note names it. The dropdown commits a typed
    value on Enter or blur; on a loaded box the click's request can still carry the previous
    value (CI saw that once), so a click whose note names another value is retried."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    sweep.fill(typed)
    sweep.press("Enter")
    note = page.locator("#note").get_by_text(typed).first
    for _ in range(tries):
        page.locator("#open").click()
        try:
            note.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            continue
    note.wait_for(timeout=1)  # fails, naming what the note never showed


@pytest.mark.filterwarnings("ignore:::gradio.queueing")  # gradio's own pandas deprecations
def test_the_page_in_a_real_browser(browser_page, server, results):
    """One server and one browser for every check (each start costs ~20 s on 2 cores)."""
    page, blocked = browser_page
    # Gradio's file route serves no file the page did not hand out, inside the dir or not
    for target in ("/etc/passwd", results.parent / "secret.txt", results / "two_d"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server}gradio_api/file={target}", timeout=10)
        assert refused.value.code in (403, 404)
    # bad input: a message, never a traceback
    field(page, "steps").fill("lots")
    page.locator("#run").click()
    status = page.locator("#status")
    status.get_by_text("Not run").wait_for(timeout=30_000)
    assert "not a number" in status.inner_text() and "Traceback" not in page.content()
    # a paired comparison, live: progress, curves, paths on the contour, the runs table
    field(page, "steps").fill("80")
    field(page, "seeds").fill("2")
    page.locator("#run").click()
    status.get_by_text("done: 6 runs").wait_for(timeout=120_000)
    page.locator("#paths img").wait_for(timeout=30_000)
    page.locator("#curves img").wait_for(timeout=30_000)
    assert page.locator("#paths img").evaluate("img => img.naturalWidth") > 300
    table = page.locator("#runs").inner_text()
    assert "azure" in table and "adamw" in table and "gap" in table
    assert "better on" in page.locator("#summary").inner_text()
    # a long run streams progress and leaves the Results tab usable
    field(page, "steps").fill("20000")
    field(page, "seeds").fill("1")
    page.locator("#run").click()
    status.get_by_text("run 1/3").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Results").click()
    sweep = field(page, "sweep")
    open_sweep_as_typed(page, sweep, "two_d/2026-01-01")
    page.locator("#report").get_by_text("not worse").wait_for(timeout=30_000)  # while it runs
    page.locator("#figures img").first.wait_for(timeout=30_000)
    assert page.locator("#figures img").count() == 2  # not the two outside the results dir
    page.locator("#table_view").get_by_text("adam").first.wait_for(timeout=30_000)
    # nothing outside the results dir, however typed
    for typed in ("../", "outside", "/etc"):
        open_sweep_as_typed(page, sweep, typed)
        assert "Cannot open" in page.locator("#note").inner_text()
    assert "do not read" not in page.content()
    # Stop ends the long run
    page.get_by_role("tab", name="Run").click()
    page.locator("#stop").click()
    page.wait_for_timeout(1500)
    before = status.inner_text()
    page.wait_for_timeout(1500)
    assert status.inner_text() == before and "20000/20000" not in before
    assert blocked == []  # the page asked nothing of any host but this one
