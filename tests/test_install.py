"""The install layout: problems/ and conf/ sit at the top of the tree and install as
azure_sciml.problems and azure_sciml.conf, so Hydra composes the app's config from an installed
copy run from any directory: a non-editable wheel and the editable install alike."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "azure_sciml", "problems", "conf",
           "hydra_plugins")
NOT_SOURCE = shutil.ignore_patterns("__pycache__")
CHECK = """
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_module
from hydra.core.plugins import Plugins

SWEEPER = "hydra_plugins.azure_sciml_sweeper.FilteredSweeper"  # hydra/sweeper=filtered
scanned = SWEEPER in Plugins.instance().class_name_to_class  # found by Hydra's own plugin scan

import azure_sciml, azure_sciml.conf, azure_sciml.problems, azure_sciml.report

for module in (azure_sciml, azure_sciml.conf, azure_sciml.problems, azure_sciml.report):
    assert Path(module.__file__).is_relative_to(sys.argv[1]), module.__file__
with initialize_config_module("azure_sciml.conf", version_base="1.3"):
    cfg = compose("config", overrides=["experiment=compare", "problem=ode"],
                  return_hydra_config=True)
problem = hydra.utils.get_class(cfg.problem._target_)
assert Path(sys.modules[problem.__module__].__file__).is_relative_to(sys.argv[1])
import azure_sciml.app

registered = SWEEPER in Plugins.instance().class_name_to_class
print(cfg.problem._target_, cfg.optimizer._target_, len(cfg.targets), cfg.hydra.sweeper._target_)
print(f"scanned={scanned} registered={registered}")
"""
EXPECTED = ("azure_sciml.problems.ode.NeuralODE azure_sciml.Azure 7 "
            "hydra_plugins.azure_sciml_sweeper.FilteredSweeper")


def run_check(cwd: Path, home: Path, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK, str(home)], cwd=cwd, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_editable_install_composes_from_another_directory(tmp_path):
    composed, plugin = run_check(tmp_path, ROOT).splitlines()
    assert composed == EXPECTED
    assert plugin.endswith("registered=True")  # Hydra's scan misses it here; the app registers it


def test_a_wheel_installs_problems_and_conf_and_composes_from_another_directory(tmp_path):
    source, site, elsewhere = tmp_path / "source", tmp_path / "site", tmp_path / "elsewhere"
    source.mkdir()
    for name in SOURCES:  # a clean copy: building writes build/ and *.egg-info next to the code
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=NOT_SOURCE)
        else:
            shutil.copyfile(ROOT / name, source / name)
    # The PEP 517 backend itself, which pip calls: `pip wheel` 23.2 with setuptools 80.9 or 84.2
    # fails inside bdist_wheel (AttributeError) on any project, while the backend works.
    build = f"import setuptools.build_meta as b; print(b.build_wheel({str(tmp_path)!r}))"
    wheel = subprocess.run([sys.executable, "-c", build], cwd=source, capture_output=True,
                           text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                    str(site), str(tmp_path / wheel)], check=True)  # fmt: skip
    assert (site / "azure_sciml" / "conf" / "experiment" / "compare.yaml").is_file()
    assert (site / "azure_sciml" / "problems" / "heat.py").is_file()
    assert not (site / "problems").exists() and not (site / "conf").exists()
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the editable install's finder
    plugin = "scanned=True registered=True"  # a wheel's plugin is found by Hydra's own scan
    assert run_check(elsewhere, site, env).splitlines() == [EXPECTED, plugin]
    script = subprocess.run([str(site / "bin" / "azure-sciml"), "--cfg", "job", "problem=energy"],
                            cwd=elsewhere, env=env, capture_output=True, text=True)  # fmt: skip
    assert script.returncode == 0, script.stderr
    assert "_target_: azure_sciml.problems.energy.LennardJones" in script.stdout
