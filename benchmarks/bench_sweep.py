"""Benchmark of the sweep machinery: per-run overhead of each executor, and 1 vs 2 Ray workers.

Runs are synthetic (``rftbench.sweep.synthetic:synthetic_run``): no model, so what is measured is
the executor, the claim/record protocol and the runner. Run it as a script, in one process::

    python benchmarks/bench_sweep.py [--repeats 3] [--work 3000000]

1. Per-run overhead: for each executor, the wall time of a sweep of N1 and of N2 empty runs;
   the marginal cost per run is (T(N2) − T(N1)) / (N2 − N1) and the fixed cost T(N1) − N1 × that.
   Ray's own cluster start is timed once, apart (the executor reuses a running Ray).
2. 1 vs 2 Ray workers: a sweep of CPU-bound runs (a pure-Python loop of ``--work`` iterations) on
   a local Ray with ``num_cpus=1`` and with ``num_cpus=2``; the speed-up is T(1) / T(2).

Medians over ``--repeats``; the load average is printed, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rftbench.plugins import set_manager  # noqa: E402
from rftbench.sweep import build_executor, load_sweep, run_sweep  # noqa: E402
from rftbench.sweep.synthetic import synthetic_run  # noqa: E402
from tests.sweep_helpers import sweep_manager, write_sweep  # noqa: E402


def sweep_seconds(folder: Path, n: int, executor: str, params: dict, work: int = 0) -> float:
    """Wall time of one sweep of ``n`` synthetic runs into a fresh results directory."""
    folder.mkdir(parents=True)
    sweep = load_sweep(write_sweep(folder, n))
    runner = build_executor(sweep, executor, params)
    start = time.perf_counter()
    summary = run_sweep(sweep, runner, run=functools.partial(synthetic_run, work=work), progress="none", poll=0.02)
    seconds = time.perf_counter() - start
    assert summary.complete and summary.done_now == n, summary
    return seconds


def overhead(root: Path, tag: str, name: str, params: dict, n1: int, n2: int, repeats: int) -> tuple[float, float]:
    """(fixed seconds, marginal seconds per run) of executor ``name``, medians over repeats."""
    fixed, marginal = [], []
    for r in range(repeats):
        t1 = sweep_seconds(root / f"{tag}-{r}-a", n1, name, params)
        t2 = sweep_seconds(root / f"{tag}-{r}-b", n2, name, params)
        per_run = (t2 - t1) / (n2 - n1)
        marginal.append(per_run)
        fixed.append(t1 - n1 * per_run)
    return statistics.median(fixed), statistics.median(marginal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=int, default=3_000_000, help="loop iterations of each CPU-bound run")
    parser.add_argument("--runs", type=int, default=8, help="CPU-bound runs in the 1 vs 2 workers sweep")
    args = parser.parse_args()

    import ray

    set_manager(sweep_manager())
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for label, name, params, n1, n2 in (
            ("local, in-process", "local", {"processes": 0}, 4, 24),
            ("local, 2 processes (spawn)", "local", {"processes": 2}, 4, 24),
            ("slurm via submitit, cluster: local", "slurm", {"cluster": "local"}, 2, 6),
        ):
            fixed, per_run = overhead(root, f"x{len(rows)}", name, params, n1, n2, args.repeats)
            rows.append((label, fixed, per_run))
            print(f"{label}: fixed {fixed:.3f} s, per run {1000 * per_run:.1f} ms", flush=True)

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
        ray_start = time.perf_counter() - start
        fixed, per_run = overhead(root, "ray", "ray", {}, 4, 24, args.repeats)
        rows.append(("ray, local cluster (2 CPUs)", fixed, per_run))
        print(f"ray: cluster start {ray_start:.2f} s; fixed {fixed:.3f} s, per run {1000 * per_run:.1f} ms", flush=True)
        ray.shutdown()

        # CPU-bound runs: one in-process for the reference time, then Ray with 1 and 2 workers
        one = statistics.median(sweep_seconds(root / f"ref-{r}", 1, "local", {}, args.work) for r in range(args.repeats))
        workers = {}
        for cpus in (1, 2):
            ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False, log_to_driver=False)
            sweep_seconds(root / f"warm-{cpus}", cpus, "ray", {}, 0)  # start the worker processes
            workers[cpus] = statistics.median(
                sweep_seconds(root / f"w{cpus}-{r}", args.runs, "ray", {}, args.work) for r in range(args.repeats)
            )
            ray.shutdown()
            print(f"ray with {cpus} worker(s): {args.runs} runs in {workers[cpus]:.2f} s", flush=True)

    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("| executor | fixed cost per sweep (s) | overhead per run (ms) |")
    print("| --- | ---: | ---: |")
    for label, fixed, per_run in rows:
        print(f"| {label} | {fixed:.2f} | {1000 * per_run:.1f} |")
    print(f"\nRay cluster start (ray.init, 2 CPUs): {ray_start:.1f} s, paid once per process.\n")
    print(f"| Ray workers | {args.runs} CPU-bound runs (s) | speed-up |")
    print("| --- | ---: | ---: |")
    print(f"| 1 | {workers[1]:.2f} | 1.00 |")
    print(f"| 2 | {workers[2]:.2f} | {workers[1] / workers[2]:.2f} |")
    print(f"\nOne such run alone, in-process: {one:.2f} s (sweep of 1 run, including the runner's fixed cost).")


if __name__ == "__main__":
    main()
