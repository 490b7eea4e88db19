"""`rftbench report` on the 1,440 published results plus a local sweep: the command end to end, and its parts.

    python benchmarks/bench_report.py                       # a fabricated 28-run sweep beside guide2025
    python benchmarks/bench_report.py --sweep examples/studies/01-suboptimal-transfer/sweep.yaml --repeats 5
    python benchmarks/bench_report.py --studies --repeats 5   # guide2025 + every examples/studies/*/records* (target 15 s)

Prints medians over the repeats of: the whole command in a fresh process (wall and CPU seconds,
Python start-up and imports included: what a user waits for), and, in this process, reading the
inputs, the analyses with their figures, and rendering. Quote them with the CPU and load average
printed at the end; the target is under 15 s on 2 cores for guide2025 plus every shipped study (`--studies`).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "unknown CPU")
    return f"{name}, {'avx512f' if ' avx512f' in text else 'no avx512'}, {os.cpu_count()} logical CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="append", help="a sweep file or results folder (repeatable; default: 28 fabricated records)")
    parser.add_argument("--studies", action="store_true", help="every shipped study's records (examples/studies/*/records)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    if args.studies:
        args.sweep = [*(args.sweep or []), *(str(p) for p in sorted((ROOT / "examples" / "studies").glob("*/records*")))]
    if args.sweep:
        local = " ".join(args.sweep)
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from report_helpers import study

        local = str(study(work / "runs"))
    inputs = ["guide2025", *(args.sweep or [local])]

    walls, cpus = [], []
    for i in range(args.repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rftbench", "report", *inputs, "-o", str(work / f"cli{i}")], check=True,
                       stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    from rftbench.report import load_inputs
    from rftbench.report._analyses import Figures
    from rftbench.report._build import analyse, render_html, render_markdown

    t_load, t_analyse, t_render = [], [], []
    for i in range(args.repeats):
        t = time.perf_counter()
        loaded = load_inputs(inputs)
        t_load.append(time.perf_counter() - t)
        t = time.perf_counter()
        sections = analyse(loaded, Figures(work / f"inproc{i}"))
        t_analyse.append(time.perf_counter() - t)
        t = time.perf_counter()
        render_html(sections, title="bench", rows=len(loaded.rows), generated="now")
        render_markdown(sections, title="bench", rows=len(loaded.rows), generated="now")
        t_render.append(time.perf_counter() - t)

    med = statistics.median
    print(f"inputs: guide2025 (1,440 published) + {local} → {len(loaded.rows)} results")
    print(f"rftbench report, fresh process:  median wall {med(walls):.2f} s, CPU {med(cpus):.2f} s  (n={args.repeats}; target < 15 s with every study)")
    print(f"  in process: read inputs {med(t_load):.2f} s (first {t_load[0]:.2f} s: plugin cards), "
          f"analyses + figures {med(t_analyse):.2f} s, render HTML + Markdown {med(t_render) * 1000:.0f} ms")
    print(f"CPU: {_cpu()}; load average {os.getloadavg()[0]:.2f} (1 min); OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
