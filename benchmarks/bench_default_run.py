"""The offline default's training time, this checkout against another, interleaved in one benchmark run.

    python benchmarks/bench_default_run.py --repo OLD_CHECKOUT [--rounds 3] [--set k=v …] [--json out.json]

Each round runs ``rftbench.run()`` of the offline default (plus ``--set`` overrides) once per
checkout, in a fresh subprocess of that checkout's interpreter (``REPO/.venv/bin/python`` when it
exists, else ``--python``), in alternating order (ABBA…) so that a change of the machine's load
falls on both sides alike. It records the wall and process CPU seconds of ``Trainer.fit`` (the
training part) and of the whole run, and prints the medians and the ratios now ÷ other. The
machine is usually shared: the CPU time is the steadier figure with ``--threads 1``
(``OMP_NUM_THREADS=1`` in the children, default), wall time the one a user sees with the default
threads (``--threads auto``: the children get no thread setting, each checkout chooses its own).

The other checkout needs an interpreter that imports *its* rftbench, e.g.
``git worktree add /tmp/old 127989e`` then ``python -m venv /tmp/old/.venv`` and
``pip install --no-deps -e /tmp/old`` with that venv (or a light venv over the same
site-packages, as ``/work/mkwt.sh`` makes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rftbench.engine import hardware

HERE = Path(__file__).resolve().parents[1]
MARK = "BENCH_DEFAULT_RUN "

#: Runs in the child: time Trainer.fit (wall and process CPU) around one rftbench.run() in a temporary folder.
CHILD = r"""
import json, os, sys, tempfile, time
overrides = json.loads(sys.argv[1])
import torch
import rftbench
from rftbench.engine import trainer as T
os.chdir(tempfile.mkdtemp(prefix="bench_default_run"))
fit = {}
original = T.Trainer.fit
def timed(self):
    w, c = time.perf_counter(), time.process_time()
    try:
        return original(self)
    finally:
        fit.update(train_wall=time.perf_counter() - w, train_cpu=time.process_time() - c)
T.Trainer.fit = timed
w, c = time.perf_counter(), time.process_time()
record = rftbench.run(None, overrides=overrides or None, rerun=True)
out = {"total_wall": time.perf_counter() - w, "total_cpu": time.process_time() - c, **fit,
       "threads": torch.get_num_threads(), "clean_acc": record.metrics.get("clean_acc"),
       "rftbench": os.path.dirname(rftbench.__file__)}
print("BENCH_DEFAULT_RUN " + json.dumps(out), flush=True)
"""

FIELDS = ("train_wall", "train_cpu", "total_wall", "total_cpu")


def interpreter(repo: Path, python: str | None) -> str:
    """The Python that imports ``repo``'s rftbench: ``python``, else ``repo/.venv/bin/python``, else this one."""
    if python:
        return python
    venv = repo / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def run_once(python: str, overrides: list[str], threads: str, timeout: float) -> dict:
    """One offline-default run in a child process; its timings (see ``CHILD``)."""
    env = dict(os.environ)
    env.pop("RFTBENCH_THREADS", None)
    if threads == "auto":
        env.pop("OMP_NUM_THREADS", None)
    else:
        env["OMP_NUM_THREADS"] = threads
    # cwd outside any checkout: ``python -c`` puts the cwd first on sys.path, and a checkout's
    # ``rftbench/`` there would shadow the interpreter's own
    done = subprocess.run([python, "-c", CHILD, json.dumps(overrides)], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=tempfile.gettempdir())
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"{python}: the run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def load() -> list[float]:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else []


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="the other checkout (the 'before')")
    parser.add_argument("--python", help="its interpreter (default: REPO/.venv/bin/python)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per checkout (default 3)")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the children, or auto (default 1)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one run may take")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    sides = {"now": interpreter(HERE, None), "other": interpreter(args.repo.resolve(), args.python)}
    runs: dict[str, list[dict]] = {"now": [], "other": []}
    loads = [load()]
    for r in range(args.rounds):
        order = ("other", "now") if r % 2 == 0 else ("now", "other")
        for side in order:
            out = run_once(sides[side], args.overrides, args.threads, args.timeout)
            expected = HERE if side == "now" else args.repo.resolve()
            if Path(out["rftbench"]).resolve().parent != expected:
                raise SystemExit(f"error: {sides[side]} imported rftbench from {out['rftbench']}, not from {expected}; "
                                 f"give --python an interpreter that imports {expected}'s rftbench")
            runs[side].append(out)
            loads.append(load())
            print(f"round {r + 1} {side:5s}: train {out['train_wall']:6.1f} s wall {out['train_cpu']:6.1f} s CPU · "
                  f"total {out['total_wall']:6.1f} s wall · {out['threads']} threads · load {loads[-1][0]:.2f}",
                  flush=True)
    median = {side: {k: statistics.median(o[k] for o in runs[side]) for k in FIELDS} for side in runs}
    ratio = {k: median["now"][k] / median["other"][k] for k in FIELDS}
    result = {
        "benchmark": "bench_default_run", "cpu": hardware.cpu_name(), "threads": args.threads, "rounds": args.rounds,
        "overrides": args.overrides, "now": str(HERE), "other": str(args.repo), "interpreters": sides,
        "load_average_1m": [round(x[0], 2) for x in loads if x], "median_seconds": median,
        "ratio_now_over_other": ratio, "runs": runs,
    }
    print(f"{hardware.cpu_name()}, OMP_NUM_THREADS={args.threads}, {args.rounds} rounds, load {loads[0][0]:.2f} → {loads[-1][0]:.2f}")
    for k in FIELDS:
        print(f"  {k:10s} other {median['other'][k]:7.2f} s   now {median['now'][k]:7.2f} s   now/other {ratio[k]:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
