"""The direction of dependence docs/architecture.md states, checked on the source and in a fresh
interpreter: the optimizer needs only torch, problems use the package and never the reverse, only
the app, the report and the dashboard import hydra, omegaconf, matplotlib and gradio."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "azure_sciml"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
OPTIMIZER = ("optim", "_adam", "_anneal", "_buffers", "_checks", "_noise", "_distributed",
             "_relax", "_quasi_newton")
KERNEL = "_noise_kernel"  # the optional CUDA kernel (triton), imported only on CUDA
FRONT_ENDS = {"app", "config", "dashboard", "report"}  # may import the heavy libraries
HEAVY = {"hydra", "omegaconf", "matplotlib", "gradio"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute module names ``path`` imports (only those at module level, if asked)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("name", OPTIMIZER)
def test_the_optimizer_imports_only_torch(name):
    outside = roots(imports(MODULES[name])) - STDLIB - {"torch", "azure_sciml"}
    assert outside == set(), name
    ours = {n for n in imports(MODULES[name]) if n.startswith("azure_sciml.")}
    assert {n.split(".")[1] for n in ours} <= {*OPTIMIZER, KERNEL}, (name, ours)


def test_the_package_never_imports_a_problem_outside_the_front_ends():
    for name, path in MODULES.items():
        if name.split(".")[0] not in FRONT_ENDS:
            assert not any(n.startswith("azure_sciml.problems") for n in imports(path)), name


def test_only_the_front_ends_import_hydra_matplotlib_gradio_at_module_level():
    for name, path in MODULES.items():
        if name.split(".")[0] not in FRONT_ENDS:
            assert roots(imports(path, top_level_only=True)) & HEAVY == set(), name
    for path in sorted((ROOT / "problems").glob("*.py")):
        heavy = roots(imports(path, top_level_only=True)) & HEAVY
        assert heavy == set(), path.name  # matplotlib only inside plot()


def test_the_run_length_protocol_needs_nothing_but_the_standard_library():
    assert roots(imports(MODULES["run_length"])) <= STDLIB


def test_the_writer_and_the_reader_of_records_do_not_import_each_other():
    app_modules = [p for name, p in MODULES.items() if name.split(".")[0] == "app"]
    assert len(app_modules) > 1  # the app's package, every module of it
    app = {n for p in app_modules for n in imports(p) if n.startswith("azure_sciml.report")}
    report = {n for p in MODULES if p.startswith("report") for n in imports(MODULES[p])}
    assert app == set() and not any(n.startswith("azure_sciml.app") for n in report)


@pytest.mark.parametrize(("module", "absent"), [
    ("azure_sciml", {"hydra", "omegaconf", "matplotlib", "torchdiffeq", "gradio", "scipy"}),
    ("azure_sciml.problems", {"hydra", "omegaconf", "matplotlib", "gradio"}),
])  # fmt: skip
def test_importing_pulls_in_none_of(module, absent):
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout.strip()))
    assert "torch" in loaded  # the check sees real imports
    assert loaded & absent == set(), module
