"""Shared helpers of the benchmark scripts: machine description, problem discovery, tables."""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import platform
import shlex
import statistics
import sys
from pathlib import Path

import torch

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "azure_sciml"
# What ``azure_sciml.problems.ALL`` is expected to hold, for when the package does not import
# (a colleague's module missing): each is then loaded on its own from its file if it exists.
EXPECTED_PROBLEMS = (
    ("heat", "Heat"),
    ("ode", "NeuralODE"),
    ("symreg", "SymbolicRegression"),
    ("energy", "LennardJones"),
)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    return device


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = _cpu_model() or platform.processor() or "CPU"
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        f"device {device} ({what}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, python {platform.python_version()}, {when}"
    )


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def command(script: str, argv: list[str] | None) -> str:
    """The command line that produced the output (for the record)."""
    return shlex.join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values: list[float]) -> float:
    return statistics.median(values)


def discover_problems() -> tuple[list[type], list[str]]:
    """Problem classes (``azure_sciml.problems.ALL``, else those whose module exists) and notes."""
    try:
        from azure_sciml.problems import ALL

        return list(ALL), []
    except Exception as err:  # a module of the package is missing or broken
        reason = f"azure_sciml.problems does not import ({type(err).__name__}: {err})"
    classes, notes = [], [reason + "; loading its modules one by one"]
    for module, name in EXPECTED_PROBLEMS:
        cls, why = _load_problem(module, name)
        if cls is None:
            notes.append(f"skipped {name}: {why}")
        else:
            classes.append(cls)
    return classes, notes


def _load_problem(module: str, name: str):
    full = f"azure_sciml.problems.{module}"
    if full in sys.modules:
        return getattr(sys.modules[full], name, None), f"{full} has no {name}"
    path = PACKAGE_DIR / "problems" / f"{module}.py"
    if not path.exists():
        return None, f"module {full} is missing ({path.name} not written yet)"
    try:
        spec = importlib.util.spec_from_file_location(full, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[full] = mod
        spec.loader.exec_module(mod)
    except Exception as err:
        sys.modules.pop(full, None)
        return None, f"{full} does not import ({type(err).__name__}: {err})"
    cls = getattr(mod, name, None)
    return cls, (None if cls is not None else f"{full} has no {name}")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (first column left-aligned, the others right-aligned)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        pairs = enumerate(zip(cells, widths, strict=True))
        out = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(
        ["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]
    ) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])

