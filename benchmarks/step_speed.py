"""Time one ``step()`` of Azure against torch.optim.Adam, gradients pre-filled.

    python benchmarks/step_speed.py                 # CUDA when present, else CPU
    python benchmarks/step_speed.py --device cpu --threads 2
    python benchmarks/step_speed.py --smoke         # tiny sizes, a few seconds

Parameter sets: 10 x 1M, 200 x 1k and 4 x 25M float32 tensors, plus the problems' models (heat PINN
MLP 2-20-20-20-1, ODE MLP 2-50-2) when their modules import. Optimizers: Adam single-tensor
(``foreach=False``), multi-tensor (``foreach=True``) and fused (``fused=True``); Azure during its
simulated-annealing phase (``step(loss=1.0)`` with ``sa_patience=0``: a constant loss, so every
proposal is judged and accepted, one per ``sa_interval`` steps) and after
it, each with its default Adam path and with ``fused=True``. On CUDA also "Azure fused SA (buffer)":
the SA phase with the proposal's normals drawn into a buffer (``normal_`` + ``_foreach_add_``)
instead of Azure's Triton kernel, which makes them in registers.

Method: every optimizer of a row steps the same parameters (each keeps its own state), in the same
process. A timed block is ``--interval`` consecutive steps (default: Azure's default
``sa_interval``), and Azure's ``sa_interval`` is set to that number, so a block of its SA phase
holds exactly one annealing proposal: its cost is amortised as in training. ms/step = block time /
``--interval``; the figure is the median over ``--repeats`` blocks, the optimizers alternating
block by block (order reversed every other round). One warm-up block each first (which also takes
the "after SA" optimizers past their SA phase). On CUDA the device is synchronised before and after
every block. GB/s: 28 bytes per float32 parameter and step for Adam (read p, g, m, v; write p, m,
v), plus, in Azure's SA phase, once per proposal: 8 bytes (read and write p) when the noise is made
in the kernel, 16 when it goes through a buffer (write it, read it, read and write p). On CUDA the
script also measures a device-to-device copy (bytes read + written per second) and reports each
GB/s as a fraction of it: the memory-bandwidth floor.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    command,
    discover_problems,
    machine,
    median,
    resolve_device,
    sync,
    table,
)

from azure_sciml import Azure, _noise  # noqa: E402

SA_INTERVAL = inspect.signature(Azure).parameters["sa_interval"].default
SHAPES = [(10, 1_000_000), (200, 1_000), (4, 25_000_000)]
SMOKE_SHAPES = [(10, 1_000), (200, 10), (4, 2_500)]
MODELS = [("heat", "Heat", "heat MLP 2-20-20-20-1"), ("ode", "NeuralODE", "ODE MLP 2-50-2")]
ADAM = ["Adam single", "Adam foreach", "Adam fused"]
RATIOS = [
    ("Azure SA", "Adam foreach"),
    ("Azure", "Adam foreach"),
    ("Azure fused SA", "Adam fused"),
    ("Azure fused", "Adam fused"),
    ("Azure fused SA (buffer)", "Adam fused"),
]


def size_label(n: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n >= scale and n % (scale // 10) == 0:
            return f"{n / scale:g}{unit}"
    return str(n)


def shape_label(count: int, size: int) -> str:
    return f"{count}x{size_label(size)}"


def synthetic(count: int, size: int, device: torch.device, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(seed)
    params = []
    for _ in range(count):
        p = torch.randn(size, generator=gen, device=device).requires_grad_()
        p.grad = torch.randn(size, generator=gen, device=device)
        params.append(p)
    return params


def model_params(device: torch.device) -> tuple[list[tuple[str, list[torch.Tensor]]], list[str]]:
    """The problems' real models, with random gradients; notes say what was skipped."""
    classes, notes = discover_problems()
    by_name = {cls.__name__: cls for cls in classes}
    rows = []
    for _, cls_name, label in MODELS:
        cls = by_name.get(cls_name)
        if cls is None:
            notes.append(f"skipped row '{label}': problem {cls_name} not available")
            continue
        torch.manual_seed(0)
        try:
            model = cls().build(device, torch.float32)
        except Exception as err:
            notes.append(f"skipped row '{label}': {cls_name}.build failed ({err})")
            continue
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p)
        rows.append((label, params))
    return rows, notes


def variants(interval: int, device: torch.device, baseline: type | None) -> dict:
    """name -> (factory, azure phase) where phase is None (Adam), "sa" or "after"."""
    sa = dict(sa_steps=10**9, sa_interval=interval, sa_patience=0, seed=0)  # always annealing
    after = dict(sa_steps=interval, sa_interval=interval, seed=0)  # done within the warm-up
    out = {
        "Adam single": (lambda ps: torch.optim.Adam(ps, foreach=False), None),
        "Adam foreach": (lambda ps: torch.optim.Adam(ps, foreach=True), None),
        "Adam fused": (lambda ps: torch.optim.Adam(ps, fused=True), None),
        "Azure SA": (lambda ps: Azure(ps, **sa), "sa"),
        "Azure": (lambda ps: Azure(ps, **after), "after"),
    }
    out["Azure fused SA"] = (lambda ps: Azure(ps, fused=True, **sa), "sa")
    out["Azure fused"] = (lambda ps: Azure(ps, fused=True, **after), "after")
    if device.type == "cuda":
        out["Azure fused SA (buffer)"] = (lambda ps: BufferNoiseAzure(ps, fused=True, **sa), "sa")
    if baseline is not None:
        out["baseline SA"] = (lambda ps: baseline(ps, **sa), "sa")
        out["baseline"] = (lambda ps: baseline(ps, **after), "after")
    return out


class BufferNoiseAzure(Azure):
    """Azure with its proposal's normals drawn into a buffer on every device (no Triton kernel)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._noise._add_in_kernel = lambda bucket, size: False


def noise_in_kernel(name: str, device: torch.device) -> bool:
    """Whether the variant's proposals make their noise inside a kernel (no buffer traffic)."""
    if device.type != "cuda" or "buffer" in name:
        return False
    probe = torch.zeros(1, device=device)
    return _noise._kernel_for([probe]) is not None


def copy_gbps(device: torch.device, n: int = 100_000_000, repeats: int = 9) -> float | None:
    """Device-to-device copy rate (bytes read + written per second) on CUDA, else None."""
    if device.type != "cuda":
        return None
    src = torch.empty(n, device=device)
    dst = torch.empty_like(src)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        times.append(time.perf_counter() - start)
    return 8 * n / median(times[1:]) / 1e9


def time_row(params, interval, repeats, device, baseline, only=None) -> dict[str, float]:
    """Median ms/step of every optimizer (or those named in ``only``) on ``params``."""
    opts = {}
    for name, (factory, phase) in variants(interval, device, baseline).items():
        if only and name not in only:
            continue
        opt = factory(params)
        _block(opt, interval, device)  # warm-up; the "after" optimizers finish their SA phase
        if phase == "after":
            assert opt._controller.done, name
        opts[name] = opt
    times: dict[str, list[float]] = {name: [] for name in opts}
    names = list(opts)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(_block(opts[name], interval, device) / interval)
    del opts
    gc.collect()
    return {name: 1e3 * median(ts) for name, ts in times.items()}


def _block(opt, steps: int, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    judged = isinstance(opt, Azure)  # Azure gets a loss to judge its proposals by
    for _ in range(steps):
        opt.step(loss=1.0) if judged else opt.step()
    sync(device)
    return time.perf_counter() - start


def gbps(ms: float, n_params: int, name: str, interval: int, in_kernel: bool) -> float:
    extra = 0.0
    if " SA" in name:
        extra = (8.0 if in_kernel else 16.0) / interval
    return n_params * (28.0 + extra) / (ms * 1e-3) / 1e9


def load_baseline(path: str) -> type:
    spec = importlib.util.spec_from_file_location("azure_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Azure


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and few repeats")
    ap.add_argument("--repeats", type=int, default=None, help="timed blocks per optimizer (9)")
    ap.add_argument("--interval", type=int, default=None,
                    help=f"steps per timed block = Azure's sa_interval (default {SA_INTERVAL})")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--shapes", default=None,
                    help="comma-separated COUNTxSIZE (e.g. 10x1000000,200x1000); default: all")
    ap.add_argument("--no-models", action="store_true", help="skip the problems' models")
    ap.add_argument("--variants", default=None,
                    help="comma-separated optimizer names (columns) to time; default: all")
    ap.add_argument("--baseline", default=None,
                    help="a file defining another Azure (e.g. an older optim.py) to time too")
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (2 if args.smoke else 9)
    args.interval = args.interval or (3 if args.smoke else SA_INTERVAL)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.shapes:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    else:
        shapes = SMOKE_SHAPES if args.smoke else SHAPES
    baseline = load_baseline(args.baseline) if args.baseline else None
    only = set(args.variants.split(",")) if args.variants else None
    print(f"# Azure vs Adam: ms per step() ({'smoke, ' if args.smoke else ''}"
          f"median of {args.repeats} blocks of {args.interval} steps)")
    print(f"# {machine(device)}")
    print(f"# command: {command('step_speed.py', argv)}")

    rows: list[tuple[str, int, dict[str, float]]] = []
    for count, size in shapes:
        params = synthetic(count, size, device)
        rows.append((shape_label(count, size), count * size,
                     time_row(params, args.interval, args.repeats, device, baseline, only)))
        del params
        gc.collect()
    notes = []
    if not args.no_models:
        models, notes = model_params(device)
        for label, params in models:
            n = sum(p.numel() for p in params)
            ms = time_row(params, args.interval, args.repeats, device, baseline, only)
            rows.append((label, n, ms))

    names = list(rows[0][2]) if rows else []
    print()
    print(table(["shape", "params", *names],
                [[label, f"{n:,}", *(_ms(ms[k]) for k in names)] for label, n, ms in rows]))
    pairs = RATIOS + [("Azure SA", "baseline SA"), ("Azure", "baseline")]
    ratios = [(a, b) for a, b in pairs if a in names and b in names]
    if ratios:
        print()
        print("Ratios (time / time; < 1 is faster):")
        print()
        cells = [[label, *(f"{ms[a] / ms[b]:.2f}" for a, b in ratios)] for label, _, ms in rows]
        print(table(["shape", *(f"{a} / {b}" for a, b in ratios)], cells))
    kernel = {k: noise_in_kernel(k, device) for k in names}
    achieved = [[gbps(ms[k], n, k, args.interval, kernel[k]) for k in names] for _, n, ms in rows]
    print()
    print("Achieved GB/s (28 B per float32 parameter and step; SA phase + 8/interval B with the")
    print("noise made in the kernel, + 16/interval B through a buffer):")
    print()
    print(table(["shape", *names], [[row[0], *(f"{v:.1f}" for v in vals)]
                                    for row, vals in zip(rows, achieved, strict=True)]))
    peak = copy_gbps(device)
    if peak:
        print()
        print(f"Fraction of the device-to-device copy rate ({peak:.0f} GB/s, read + write):")
        print()
        print(table(["shape", *names],
                    [[row[0], *(f"{v / peak:.0%}" for v in vals)]
                     for row, vals in zip(rows, achieved, strict=True)]))
    for note in notes:
        print(f"\nnote: {note}")
    return 0


def _ms(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
