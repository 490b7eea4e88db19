"""Start-up time of the commands that only list or print, as a ratio to `python -c pass` in the same run.

    python benchmarks/bench_startup.py [--repeats 7] [--out startup.json] [--before OTHER/.venv/bin/python]

Each command runs in a fresh interpreter (``python -m rftbench …``), as a user types it; the
baseline is ``python -c pass`` (the interpreter and site start-up every command pays), and
``python -c "import torch"`` is shown for scale (what these commands no longer import). The
commands and the baseline alternate, so a change of machine load touches all of them alike;
medians over ``--repeats``. The CPU model and the load average are printed, since the machine
may be shared. ``--before PYTHON`` also times each command with another installation (e.g. a
checkout without the lazy imports), interleaved with this one, so the speed-up is measured
under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "rftbench --help": ["-m", "rftbench", "--help"],
    "rftbench plugins": ["-m", "rftbench", "plugins"],
    "rftbench zoo list": ["-m", "rftbench", "zoo", "list"],
    "rftbench config show": ["-m", "rftbench", "config", "show"],
    "rftbench results DIR": ["-m", "rftbench", "results", "{results}"],
}
BASELINE = ("python -c pass", ["-c", "pass"])
REFERENCE = ("python -c 'import torch'", ["-c", "import torch"])


def cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    return f"{model} ({'avx512' if 'avx512f' in flags else 'no avx512'}, {os.cpu_count()} CPUs)"


CPU: dict[str, list[float]] = {}


def timed(args: list[str], env: dict[str, str], python: str = sys.executable, cwd: str | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + sys: what load changes least) go to :data:`CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # A neutral working directory: `python -m` puts it first on sys.path, and a source checkout
    # there would shadow the installation being timed.
    subprocess.run([python, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(" ".join([python, *args]), []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, help="also write the medians as JSON")
    parser.add_argument("--no-torch-reference", action="store_true", help="skip timing `import torch`")
    parser.add_argument("--before", help="another installation's python: time its `rftbench` commands too")
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("RFTBENCH_LOAD_PLUGINS", None)
    env.pop("RFTBENCH_DISABLE_PLUGINS", None)
    with tempfile.TemporaryDirectory() as results:
        runs = {name: [a.replace("{results}", results) for a in argv] for name, argv in COMMANDS.items()}
        pythons = {name: sys.executable for name in runs}
        if args.before:
            for name, argv in list(runs.items()):
                runs[f"{name} (before)"], pythons[f"{name} (before)"] = argv, args.before
        runs = {BASELINE[0]: BASELINE[1], **runs}
        if not args.no_torch_reference:
            runs[REFERENCE[0]] = REFERENCE[1]
        for name, argv in runs.items():  # warm the file cache once
            timed(argv, env, pythons.get(name, sys.executable), results)
        CPU.clear()
        times: dict[str, list[float]] = {name: [] for name in runs}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for name, argv in runs.items():
                times[name].append(timed(argv, env, pythons.get(name, sys.executable), results))
        load_after = os.getloadavg()
    base = statistics.median(times[BASELINE[0]])
    print(f"CPU: {cpu()}")
    print(f"load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, after {tuple(round(x, 2) for x in load_after)}")
    print(f"{args.repeats} runs each, interleaved; Python {platform.python_version()}")
    print(f"{'command':<41} {'median s':>9} {'min s':>7} {'× python -c pass':>17} {'CPU s (median)':>15}")
    medians, cpu_medians = {}, {}
    for name, values in times.items():
        med = statistics.median(values)
        medians[name] = med
        key = " ".join([pythons.get(name, sys.executable), *runs[name]])
        cpu_medians[name] = statistics.median(CPU[key])
        print(f"{name:<41} {med:9.3f} {min(values):7.3f} {med / base:17.1f} {cpu_medians[name]:15.3f}")
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu(), "load_before": load_before, "load_after": load_after,
                                        "repeats": args.repeats, "median_s": medians, "cpu_median_s": cpu_medians,
                                        "times_s": times}, indent=2))


if __name__ == "__main__":
    main()
