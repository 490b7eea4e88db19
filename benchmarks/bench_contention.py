"""The offline default's training time quiet, beside busy competitor processes, and under a 1-CPU quota.

    python benchmarks/bench_contention.py [--rounds 2] [--competitors 2] [--set k=v …] [--json out.json]

Scenarios, each run in a fresh ``rftbench.run()`` subprocess (the child of ``bench_default_run.py``,
which times ``Trainer.fit``), round-robin over ``--rounds`` rounds, medians reported. The config is
the offline default shortened by ``--set`` (default ``epochs=1 threat.steps=3 n_eval=40``: the
training part alone is timed):

- ``quiet``: threads ``auto`` (what the threads module chooses), nothing else started;
- ``busy``: the same beside ``--competitors`` busy processes (``python -c 'while True: pass'``,
  started before the run and killed after it), threads ``auto``;
- ``busy-1thread``: beside the competitors with ``OMP_NUM_THREADS=1``, for comparison;
- ``busy-passive``: beside the competitors, threads ``auto``, ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP
  threads sleep instead of spinning while they wait for each other);
- ``quiet-passive``: nothing else started, ``OMP_WAIT_POLICY=PASSIVE`` (what sleeping costs when
  the cores are free);
- ``quota``: inside a cgroup with a CPU quota of 1 CPU (cgroup v2 ``cpu.max`` = ``100000 100000``
  or v1 ``cpu.cfs_quota_us`` = ``cpu.cfs_period_us``, created under ``/sys/fs/cgroup`` and removed
  after), threads ``auto`` (the threads module reads the quota: 1 thread);
- ``quota-2threads``: the same cgroup with ``OMP_NUM_THREADS`` = the affinity mask's CPUs
  (what a thread choice from the core count gives: oversubscribed).

Where no cgroup can be made (no write access), the quota scenarios are emulated with
``taskset -c 0`` (an affinity mask of one CPU, which the threads module also reads) and the
result says ``"quota_kind": "taskset"``. Ratios are against ``quiet``; the issue's bound is 3×.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_default_run import CHILD, FIELDS, MARK, load  # noqa: E402
from rftbench.engine.hardware import cpu_name  # noqa: E402

CGROUP = Path("/sys/fs/cgroup")
DEFAULT_SET = ["epochs=1", "threat.steps=3", "n_eval=40"]


def make_cgroup(cpus: float = 1.0) -> tuple[Path | None, str]:
    """A fresh cgroup with a CPU quota of ``cpus`` (v2, else v1 ``cpu``), or ``(None, why not)``."""
    name = f"rftbench-bench-{os.getpid()}"
    period = 100_000
    try:
        if (CGROUP / "cgroup.controllers").exists():  # v2
            path = CGROUP / name
            path.mkdir()
            (path / "cpu.max").write_text(f"{int(cpus * period)} {period}\n")
            return path, "cgroup v2 cpu.max"
        base = CGROUP / "cpu"
        if (base / "cpu.cfs_quota_us").exists():  # v1
            path = base / name
            path.mkdir()
            (path / "cpu.cfs_period_us").write_text(f"{period}\n")
            (path / "cpu.cfs_quota_us").write_text(f"{int(cpus * period)}\n")
            return path, "cgroup v1 cpu.cfs_quota_us"
    except OSError as err:
        return None, f"no cgroup ({err})"
    return None, "no cgroup CPU controller under /sys/fs/cgroup"


def run_child(overrides: list[str], env_threads: str | None, cgroup: Path | None, taskset: bool,
              timeout: float, extra_env: dict[str, str] | None = None) -> dict:
    """One offline-default run (``bench_default_run.CHILD``) with the given thread setting and confinement."""
    env = dict(os.environ)
    env.pop("RFTBENCH_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    if env_threads is not None:
        env["OMP_NUM_THREADS"] = env_threads
    env.update(extra_env or {})
    cmd = [sys.executable, "-c", CHILD, json.dumps(overrides)]
    if taskset:
        cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd]

    def enter() -> None:  # in the child, before exec: join the cgroup
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir(),
                          preexec_fn=enter if cgroup is not None else None)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"the run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def start_competitors(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--competitors", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="K=V",
                        help=f"config overrides (default: {' '.join(DEFAULT_SET)})")
    parser.add_argument("--scenarios", default="quiet,busy,busy-1thread,busy-passive,quota,quota-2threads")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the competitors and the cgroup are cleaned up
    overrides = DEFAULT_SET if args.overrides is None else args.overrides
    scenarios = [s for s in args.scenarios.split(",") if s]
    mask = len(os.sched_getaffinity(0))
    cgroup, quota_kind = (None, "")
    if any(s.startswith("quota") for s in scenarios):
        cgroup, quota_kind = make_cgroup(1.0)
        if cgroup is None:
            if shutil.which("taskset") is None:
                raise SystemExit(f"error: {quota_kind}, and no taskset to emulate a 1-CPU quota")
            print(f"{quota_kind}: emulating the 1-CPU quota with taskset -c 0", flush=True)
            quota_kind = "taskset"
    runs: dict[str, list[dict]] = {s: [] for s in scenarios}
    loads = [load()]
    try:
        for r in range(args.rounds):
            for s in scenarios:
                threads = {"busy-1thread": "1", "quota-2threads": str(mask)}.get(s)
                extra = {"OMP_WAIT_POLICY": "PASSIVE"} if s.endswith("passive") else {}
                procs = start_competitors(args.competitors) if s.startswith("busy") else []
                try:
                    time.sleep(0.5 if procs else 0)
                    out = run_child(overrides, threads, cgroup if s.startswith("quota") else None,
                                    quota_kind == "taskset" and s.startswith("quota"), args.timeout, extra)
                finally:
                    stop(procs)
                loads.append(load())
                runs[s].append(out)
                print(f"round {r + 1} {s:15s}: train {out['train_wall']:6.1f} s wall {out['train_cpu']:6.1f} s CPU · "
                      f"{out['threads']} threads · load {loads[-1][0]:.2f}", flush=True)
    finally:
        if cgroup is not None:
            try:
                cgroup.rmdir()
            except OSError as err:  # pragma: no cover - a child still inside
                print(f"could not remove {cgroup}: {err}", file=sys.stderr)
    median = {s: {k: statistics.median(o[k] for o in runs[s]) for k in FIELDS} for s in scenarios}
    base = median.get("quiet")
    ratio = {s: median[s]["train_wall"] / base["train_wall"] for s in scenarios} if base else {}
    result = {
        "benchmark": "bench_contention", "cpu": cpu_name(), "affinity_cpus": mask, "rounds": args.rounds,
        "competitors": args.competitors, "overrides": overrides, "quota_kind": quota_kind,
        "load_average_1m": [round(x[0], 2) for x in loads if x], "median_seconds": median,
        "train_wall_ratio_to_quiet": ratio, "threads": {s: [o["threads"] for o in runs[s]] for s in scenarios},
        "runs": runs,
    }
    print(f"{cpu_name()}, {mask} CPUs, {args.rounds} rounds, quota: {quota_kind or '-'}, load {loads[0][0]:.2f} → {loads[-1][0]:.2f}")
    for s in scenarios:
        print(f"  {s:15s} train {median[s]['train_wall']:7.2f} s wall {median[s]['train_cpu']:7.2f} s CPU"
              + (f"   × quiet {ratio[s]:.2f}" if ratio else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
