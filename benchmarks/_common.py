"""Shared helpers of the benchmark scripts: machine description, problem discovery, tables."""

from __future__ import annotations

import datetime
import platform
import shlex
import sys

import torch

from azure_sciml.runs import cpu_model


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
        what = cpu_model()
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        f"device {device} ({what}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, python {platform.python_version()}, {when}"
    )


def command(script: str, argv: list[str] | None) -> str:
    """The command line that produced the output (for the record)."""
    return shlex.join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def seed_ranges(items: list[str]) -> list[int]:
    """Seeds from command-line items, each a seed or an inclusive range: ["0-2", "7"] -> 0 1 2 7."""
    out = []
    for item in items:
        lo, _, hi = item.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def float64_objective(energy):
    """``energy`` (a torch function of a float64 tensor) as scipy's ``fun(x) -> (f, gradient)``
    for ``jac=True`` minimisers."""

    def fun(x):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        value = energy(t)
        value.backward()
        return float(value.detach()), t.grad.numpy().copy()

    return fun


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values: list[float]) -> float:
    """The package's one median (``azure_sciml.report.stats``: linear-interpolation quantile)."""
    from azure_sciml.report.stats import median as report_median

    return report_median(values)


def discover_problems() -> tuple[list[type], list[str]]:
    """Every shipped problem class (``azure_sciml.problems.ALL``) and an empty list of notes."""
    from azure_sciml.problems import ALL

    return list(ALL), []


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

