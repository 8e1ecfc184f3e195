"""Two Moons and digits: data, split, metrics, minibatches, resume, the scikit-learn extra."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from azure_sciml import Azure, fit
from azure_sciml.problems.classify import Classification, Digits, TwoMoons

pytest.importorskip("sklearn")

CPU = torch.device("cpu")


def adam(lr=1e-3):
    return functools.partial(torch.optim.Adam, lr=lr)


def built(problem, seed=0):
    torch.manual_seed(seed)
    return problem.build(CPU, torch.float32)


def test_two_moons_is_the_original_benchmark_split_80_20():
    problem = TwoMoons()
    built(problem)
    assert problem.x_train.shape == (4000, 2) and problem.x_val.shape == (1000, 2)
    assert problem.n_classes == 2
    assert 0.45 < problem.y_val.double().mean() < 0.55  # make_moons: balanced classes


def test_digits_are_the_bundled_8x8_images_in_ten_classes():
    problem = Digits()
    built(problem)
    assert problem.x_train.shape[1] == 64 and problem.n_classes == 10
    assert len(problem.y_train) + len(problem.y_val) == 1797
    assert len(problem.y_val) == round(0.2 * 1797)
    assert set(problem.y_val.tolist()) == set(range(10))


def test_split_is_disjoint_and_features_are_scaled_on_the_training_split():
    problem = Digits()
    built(problem)
    rows = lambda x: {tuple(r) for r in x.tolist()}  # noqa: E731
    assert len(rows(problem.x_train) & rows(problem.x_val)) < 5  # digits has a few duplicates
    assert problem.x_train.mean(0).abs().max() < 1e-4
    assert abs(float(problem.x_train.std()) - 1.0) < 1e-3
    assert problem.x_val.abs().max() < 20  # one scale: no near-constant pixel blows up


def test_the_seed_draws_the_moons_and_the_split():
    a, b, c = TwoMoons(), TwoMoons(), TwoMoons()
    built(a, 1), built(b, 1), built(c, 2)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_val, c.x_val)


def test_adam_learns_two_moons_and_the_metrics_agree():
    problem = TwoMoons(steps=300, lr=1e-2)
    result = fit(problem, adam(1e-2), seed=0)
    m = result.metrics
    assert m["val_accuracy"] > 0.93  # noise 0.2: ~97% is the best a classifier gets
    assert m["val_error"] == pytest.approx(1.0 - m["val_accuracy"])
    assert m["best_val_loss"] <= m["val_loss"] < 0.25
    assert m["train_loss"] == pytest.approx(result.final_loss, rel=0.05)


def test_best_val_loss_is_the_minimum_over_the_tracked_checks():
    problem = TwoMoons(steps=50, track_every=1)
    model = built(problem)
    seen = []
    for _ in range(5):
        with torch.no_grad():
            seen.append(float(torch.nn.functional.cross_entropy(model(problem.x_val),
                                                                problem.y_val)))
        problem.loss(model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    assert problem.tracked_val_loss == pytest.approx(min(seen))
    assert problem.evaluate(model)["best_val_loss"] <= problem.tracked_val_loss


def test_full_batch_loss_is_deterministic_and_minibatches_are_not():
    full, mini = TwoMoons(), TwoMoons(batch_size=32)
    model_full, model_mini = built(full), built(mini)
    assert torch.equal(full.loss(model_full), full.loss(model_full))
    assert not torch.equal(mini.loss(model_mini), mini.loss(model_mini))


def test_minibatch_runs_repeat_with_the_seed():
    runs = [fit(TwoMoons(batch_size=64), adam(), seed=3, steps=30) for _ in range(2)]
    assert runs[0].history == runs[1].history


def test_azure_explores_full_batch_two_moons_with_the_metropolis_test():
    problem = TwoMoons()
    azure = functools.partial(Azure, lr=1e-3, sa_steps=180, sa_patience=0, sa_interval=10)
    result = fit(problem, azure, seed=0, steps=200)
    stats = result.optimizer.stats()
    assert stats["n_proposals"] > 5
    assert stats["n_accepted"] + stats["n_rejected"] >= stats["n_proposals"] - 1
    assert result.metrics["val_accuracy"] > 0.8


def test_resume_continues_exactly_with_the_tracked_minimum(tmp_path):
    path = tmp_path / "ckpt.pt"
    straight = fit(TwoMoons(track_every=3), adam(), seed=0, steps=40)
    fit(TwoMoons(track_every=3), adam(), seed=0, steps=20, checkpoint=path)
    resumed = fit(TwoMoons(track_every=3), adam(), seed=0, steps=40, checkpoint=path, resume=True)
    assert resumed.history == straight.history
    assert resumed.metrics == straight.metrics


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"dataset": "mnist"}, "dataset"),
        ({"n_samples": 5}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"width": 0}, "width"),
        ({"batch_size": 0}, "batch_size"),
        ({"track_every": 0}, "track_every"),
        ({"steps": True}, "steps"),
        ({"lr": 0}, "lr"),
    ],
)
def test_bad_arguments_name_the_key_and_value(kwargs, key):
    with pytest.raises(ValueError, match=key):
        Classification(**kwargs)


def test_missing_scikit_learn_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn raises ImportError
    with pytest.raises(ImportError, match=r"azure_sciml\[classify\]"):
        TwoMoons()


@pytest.mark.parametrize("cls", [TwoMoons, Digits])
def test_plot_writes_a_png(cls, tmp_path):
    problem = cls()
    model = built(problem)
    problem.plot(model, tmp_path / "solution.png")
    assert (tmp_path / "solution.png").read_bytes()[:4] == b"\x89PNG"


def test_importing_the_problems_does_not_import_scikit_learn():
    code = "import sys, azure_sciml.problems; sys.exit('sklearn' in sys.modules)"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0


# ------------------------------------------------------ docs/classify.md numbers = the report's

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "results" / "classify" / "report.md"


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of a markdown table's rows (header first, the separator row left out)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return [r for r in rows if not set("".join(r)) <= set("-: ")]


def report_cells(report: str, problem: str) -> dict[str, dict[str, str]]:
    """``{optimizer: {column: cell}}`` of the report's table for ``problem``."""
    section = report.split(f"\n## {problem}\n", 1)[1].split("\n## ", 1)[0]
    first_table = section[section.index("\n|") :].split("\n\n", 1)[0]
    header, *rows = table_rows(first_table.strip().splitlines())
    return {row[0]: dict(zip(header, row, strict=False)) for row in rows if row[0] in OPTIMIZERS}


OPTIMIZERS = ("Adam", "AdamW", "Azure")


@pytest.mark.skipif(not REPORT.exists(), reason="no committed classify report")
def test_readme_classification_numbers_are_the_reports():
    """The tables of docs/classify.md (the README links there) are the committed report's."""
    page = (REPO / "docs" / "classify.md").read_text()
    section = page.split("<!-- classify-results -->", 1)[1].split("\n## ", 1)[0]
    report = REPORT.read_text()
    checked = 0
    for problem in ("two_moons", "digits"):
        block = section.split(f"<!-- {problem} -->", 1)[1].split("\n\n", 1)[0]
        header, *rows = table_rows([line for line in block.splitlines() if line.startswith("|")])
        ours = report_cells(report, problem)
        for row in rows:
            if not row[0].startswith("ours, "):
                continue
            optimizer = row[0].removeprefix("ours, ")
            for column, cell in zip(header[1:], row[1:], strict=True):
                assert cell == ours[optimizer][column], (problem, optimizer, column)
                checked += 1
    assert checked == 2 * 3 * 3  # two problems x three optimizers x three metrics
