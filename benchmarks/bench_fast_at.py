"""Cost of a fast-AT step (FGSM-RS, N-FGSM) against a PGD-10 step, in one process, on one model and batch.

    python benchmarks/bench_fast_at.py [--model resnet18] [--size 32] [--batch 64] [--steps 10]
                                       [--repeats 7] [--device cpu] [--precision fp32] [--json out.json]

Each variant is :class:`rftbench.engine.FusedStep` with Classic AT, L∞ 8/255, SGD, at the same
precision and memory format, on its own copy of the same initial model; they differ only in the
training threat's attack: ``pgd`` with ``--steps`` steps (α = 2/255, random start), ``fgsm-rs``
and ``n-fgsm`` (one step, their papers' defaults); ``clean`` (CE, no attack) is shown beside.
Round-robin rounds, medians after two warm-up rounds, the load average printed (the machine may
be shared). The cost model (DESIGN.md) expects a single-step attack at (2·1 + 3)/(2k + 3) of
PGD-k's time: 5/23 ≈ 0.22 for k = 10; the measured ratio is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_fused_step import _cpu, make_model, time_variants  # noqa: E402
from rftbench.engine import FusedStep, Precision, choose_channels_last  # noqa: E402
from rftbench_plugins.losses import ClassicAT, CrossEntropy  # noqa: E402
from rftbench_plugins.threats import LinfParams, LpThreat  # noqa: E402

EPS, ALPHA = 8 / 255, 2 / 255


class Step:
    """One fused training step of ``loss`` against ``attack`` (None: clean CE)."""

    def __init__(self, model, attack: str | None, steps: int, precision: Precision, channels_last: bool):
        self.model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        threat = None
        if attack is not None:
            extra = {"steps": steps, "step_size": ALPHA} if attack == "pgd" else {}
            threat = LpThreat("linf", **LinfParams(eps=EPS, attack=attack, random_start=True, **extra).model_dump())
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        self.step = FusedStep(model, ClassicAT() if attack else CrossEntropy(), threat, opt, precision, channels_last=channels_last)

    def __call__(self, x, y) -> None:
        self.model.train()
        self.step.refresh()
        self.step(x, y, EPS)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="k of the PGD-k baseline")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16, fp16 (CUDA) or auto")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    from rftbench.engine import choose_precision

    precision = choose_precision(args.precision, device)
    channels_last = choose_channels_last("auto", make_model(args.model, 10, device), device) if args.precision == "auto" else False
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model} at {args.size}px, batch {args.batch}, {precision.name}{' + channels_last' if channels_last else ''}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.1f}; {_cpu()}", flush=True)
    baseline = f"pgd-{args.steps}"
    names = {baseline: "pgd", "fgsm-rs": "fgsm-rs", "n-fgsm": "n-fgsm", "clean (ce)": None}
    variants = {k: Step(make_model(args.model, 10, device), a, args.steps, precision, channels_last) for k, a in names.items()}
    times = time_variants(variants, x, y, args.repeats, device)
    base = statistics.median(times[baseline])
    expected = {baseline: 1.0, "fgsm-rs": 5 / (2 * args.steps + 3), "n-fgsm": 5 / (2 * args.steps + 3),
                "clean (ce)": 3 / (2 * args.steps + 3)}
    rows = {}
    print(f"{'variant':14s} {'median s':>9s} {'img/s':>8s} {f'× {baseline}':>10s} {'expected':>9s}")
    for name, values in times.items():
        med = statistics.median(values)
        rows[name] = {"median_s": med, "images_per_s": args.batch / med, "ratio": med / base, "expected": expected[name], "times": values}
        print(f"{name:14s} {med:9.3f} {args.batch / med:8.1f} {med / base:10.3f} {expected[name]:9.3f}", flush=True)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average after: {load_after:.1f}")
    result = {"setup": vars(args) | {"json": None, "cpu": _cpu(), "load_average": [load, load_after]}, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
