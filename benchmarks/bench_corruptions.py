"""The corruption pass before and after a change, in one process: medians and their ratio.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_corruptions.py            # against def756b
    .venv/bin/python benchmarks/bench_corruptions.py --baseline REV --images 1000 --size 224 --repeats 3

The pass is the reference study's: every test image gets one of the 11 study types, round robin,
at severity 3, in batches (as the evaluator runs it). The baseline is
``rftbench/evaluation/corruptions.py`` as it was at git revision ``--baseline`` (default
``def756b``, before pixelate/snow/elastic followed imagecorruptions and outputs became 8-bit),
loaded from git next to the current module; both see the same images, alternately, and the
script prints the median time of each, per type and in total, with the ratio current/baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_baseline(rev: str) -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:rftbench/evaluation/corruptions.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("rftbench.evaluation._corruptions_baseline")
    module.__package__ = "rftbench.evaluation"
    exec(compile(source, f"{rev}:corruptions.py", "exec"), module.__dict__)
    return module


def images(n: int, size: int, batch: int) -> list[torch.Tensor]:
    """Smooth random colour fields with texture, on the 8-bit grid, in batches."""
    g = torch.Generator().manual_seed(0)
    out = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        coarse = torch.rand(b, 3, 8, 8, generator=g)
        x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        x = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        out.append(torch.floor(x * 255) / 255)
    return out


def corruption_pass(module: types.ModuleType, batches: list[torch.Tensor], batch: int) -> dict[str, float]:
    """Seconds spent per type on one round-robin pass over all batches."""
    spent = dict.fromkeys(module.STUDY_TYPES, 0.0)
    kinds = module.STUDY_TYPES
    for b, x in enumerate(batches):
        index = torch.arange(b * batch, b * batch + len(x))
        names = [kinds[int(i) % len(kinds)] for i in index]
        for name in kinds:
            rows = torch.tensor([n == name for n in names])
            if rows.any():
                start = time.perf_counter()
                module.corrupt(x[rows], name, 3, seed=0, index=index[rows])
                spent[name] += time.perf_counter() - start
    return spent


def cpu_description() -> str:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        avx512 = "avx512f" in flags
    except OSError:
        avx512 = False
    return f"{model}; avx512: {'yes' if avx512 else 'no'}; torch threads: {torch.get_num_threads()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="def756b", help="git revision of the baseline corruptions.py")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from rftbench.evaluation import corruptions as current

    baseline = load_baseline(args.baseline)
    batches = images(args.images, args.size, args.batch)
    print(f"CPU: {cpu_description()}; load average before: {os.getloadavg()}")
    print(f"{args.images} images at {args.size} px, batches of {args.batch}, study types round robin at severity 3, "
          f"{args.repeats} repeats; baseline {args.baseline}")
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
    for _ in range(args.repeats):
        for label, module in (("baseline", baseline), ("current", current)):
            runs[label].append(corruption_pass(module, batches, args.batch))
    print(f"{'type':20s} {'baseline s':>11s} {'current s':>10s} {'ratio':>6s}")
    for name in current.STUDY_TYPES + ("total",):
        med = {
            label: statistics.median(sum(r.values()) if name == "total" else r[name] for r in rs)
            for label, rs in runs.items()
        }
        print(f"{name:20s} {med['baseline']:11.3f} {med['current']:10.3f} {med['current'] / med['baseline']:6.2f}")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
