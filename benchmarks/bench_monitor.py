"""What the in-training evaluation and the cost counters cost: training time with and without them.

    OMP_NUM_THREADS=1 python benchmarks/bench_monitor.py [--epochs 2] [--repeats 3] [--set key=value ...] [--out FILE]

On the offline default configuration (``rftbench run`` with no arguments: ``mini_resnet.shapes_standard`` on
digits, TRADES, PGD training threat) with ``--epochs`` epochs, in one process, interleaved ``--repeats`` times:

- **plain**: the trainer as ``rftbench run`` uses it without a ``monitor:`` section (cost counters on: the
  forward hook counting passes, FLOPs counted on the first step of each signature);
- **no counters**: the same with the pass-counting hook removed and FLOP counting off (what training cost
  before ``rftbench.engine.cost``);
- **monitor**: the default ``monitor:`` section (100 val images, APGD-CE 5 steps, L∞ 4/255, every epoch).

First, the counters' own overhead: the fused step timed with and without them, alternating every step
(``--steps`` pairs), the median of the paired ratios; and a FLOP-counted step (run under FlopCounterMode, once
per signature) against a plain one. Then printed: the median wall time of each, the ratios monitor / plain and
plain / no counters (across separate runs: they swing with the load), and the load-robust figures: the
monitor's share of the same run's training time (issue 20's bound: ≤ 5%) and in FLOPs, and the FLOP
counting's share of training (counted steps × their extra time ÷ training seconds; with the pass hook's
per-step ratio, the counters' overhead: bound < 1.01), the CPU model and the load average. ``--set`` applies
config overrides to all three (e.g. ``--set representation=…``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _NoFlops:
    """FLOP counting off: the step runs as is."""

    def run(self, signature, batch, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        return fn(*args, **kwargs), 0


def train_seconds(overrides: list[str], variant: str) -> tuple[float, dict]:
    """Build the default config's model and data, train it, and return (wall seconds of fit(), cost/monitor info)."""
    from rftbench.config import load_config
    from rftbench.engine import Trainer
    from rftbench.plugins import get_manager
    from rftbench.runner import prepare

    manager = get_manager()
    extra = ["monitor={}"] if variant == "monitor" else []
    config = load_config(overrides=[*overrides, *extra], manager=manager)
    setup = prepare(config, manager)
    trainer = Trainer(config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
                      channels_last=setup.channels_last, run_dir=None, progress=False, manager=manager)
    if variant == "no counters":
        trainer.passes.remove()
        trainer.passes = None
        trainer.step_flops = _NoFlops()
    start = time.perf_counter()
    state = trainer.fit()
    wall = time.perf_counter() - start
    info = {"train_seconds": state.train_seconds, "monitor_seconds": sum(state.monitor.get("seconds") or []),
            "monitor_points": len(state.monitor.get("seconds") or []), "flops_signatures": len(getattr(trainer.step_flops, "by_signature", {})),
            "train_flops": int(state.cost["train"].get("flops") or 0), "monitor_flops": int((state.cost.get("monitor") or {}).get("flops") or 0)}
    return wall, info


def counter_overhead(overrides: list[str], steps: int) -> dict:
    """Per-step time of the fused step with and without the counters, alternating every step (load drift cancels)."""
    from rftbench.config import load_config
    from rftbench.engine import Trainer
    from rftbench.engine.cost import PassCounter
    from rftbench.plugins import get_manager
    from rftbench.runner import prepare

    manager = get_manager()
    config = load_config(overrides=overrides, manager=manager)
    setup = prepare(config, manager)
    trainer = Trainer(config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
                      channels_last=setup.channels_last, run_dir=None, progress=False, manager=manager)
    x, y = next(iter(setup.data.train_loader))
    x, y = x.to(setup.device), y.to(setup.device)
    eps = trainer.base_eps
    on_passes, on_flops = trainer.passes, trainer.step_flops
    timings: dict[str, list[float]] = {"on": [], "off": []}
    trainer._train_step(x, y, eps, True, 0)  # the one counted step of this signature, and warm-up
    for k in range(steps):
        for variant in (("on", "off") if k % 2 == 0 else ("off", "on")):
            if variant == "on":
                trainer.passes, trainer.step_flops = on_passes, on_flops
            else:
                trainer.passes, trainer.step_flops = None, _NoFlops()
            start = time.perf_counter()
            out = trainer._train_step(x, y, eps, True, 0)
            float(out.loss)  # the step is done
            timings[variant].append(time.perf_counter() - start)
    # the one-off: a step run under FlopCounterMode (once per signature) against a plain one, alternating
    from rftbench.engine.cost import count_flops

    counted, plain = [], []
    for _ in range(5):
        start = time.perf_counter()
        out, _ = count_flops(trainer.step, x, y, eps, update=True)
        float(out.loss)
        counted.append(time.perf_counter() - start)
        start = time.perf_counter()
        float(trainer.step(x, y, eps, update=True).loss)
        plain.append(time.perf_counter() - start)
    on_passes.remove()
    ratios = sorted(a / b for a, b in zip(timings["on"], timings["off"]))
    return {"steps": steps, "median_step_on": statistics.median(timings["on"]), "median_step_off": statistics.median(timings["off"]),
            "median_paired_ratio": statistics.median(ratios),
            "counted_step_extra_seconds": statistics.median(c - p for c, p in zip(counted, plain)),
            "counted_over_plain_step": statistics.median(c / p for c, p in zip(counted, plain))}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), platform.processor())
    except OSError:
        return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=30, help="paired steps of the counters' overhead measurement")
    parser.add_argument("--only-counters", action="store_true", help="measure only the counters' per-step overhead")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    overrides = [f"epochs={args.epochs}", *args.overrides]
    counters = counter_overhead(overrides, args.steps)
    print(f"counters: median step {counters['median_step_on'] * 1e3:.1f} ms on, {counters['median_step_off'] * 1e3:.1f} ms off; "
          f"median paired ratio {counters['median_paired_ratio']:.4f} over {args.steps} steps (bound 1.01); "
          f"a FLOP-counted step {counters['counted_over_plain_step']:.2f}x a plain one "
          f"(+{counters['counted_step_extra_seconds'] * 1e3:.0f} ms, once per signature)", flush=True)
    if args.only_counters:
        print(f"CPU: {cpu_model()}; load average {os.getloadavg()}")
        return 0
    variants = ("plain", "no counters", "monitor")
    times: dict[str, list[float]] = {v: [] for v in variants}
    infos: dict[str, dict] = {}
    monitor_shares: list[float] = []
    train_seconds(overrides, "plain")  # warm-up: weights built, data cached, kernels chosen
    for i in range(args.repeats):
        order = variants if i % 2 == 0 else variants[::-1]
        for variant in order:
            wall, info = train_seconds(overrides, variant)
            times[variant].append(wall)
            infos[variant] = info
            if variant == "monitor" and info["train_seconds"]:
                monitor_shares.append(info["monitor_seconds"] / info["train_seconds"])
            print(f"  repeat {i + 1} {variant:12s} {wall:7.2f} s  {info}", flush=True)
    med = {v: statistics.median(t) for v, t in times.items()}
    shares = [s for s in monitor_shares] or [float("nan")]
    result = {
        "cpu": cpu_model(), "load_average": os.getloadavg(), "threads": os.environ.get("OMP_NUM_THREADS"),
        "overrides": overrides, "repeats": args.repeats, "seconds": times, "median_seconds": med,
        "monitor_over_plain": med["monitor"] / med["plain"],
        "plain_over_no_counters": med["plain"] / med["no counters"],
        "monitor_points": infos["monitor"]["monitor_points"], "monitor_seconds": infos["monitor"]["monitor_seconds"],
        # the same run's evaluation seconds over its training seconds: both under the same load (the robust figure)
        "monitor_share_in_run": statistics.median(shares),
        # the same share in FLOPs (torch.utils.flop_counter): independent of the load, the figure the time share tends to
        "monitor_flop_share": infos["monitor"]["monitor_flops"] / max(infos["monitor"]["train_flops"], 1),
        "counters": counters,
        # what FLOP counting adds to the plain run: the counted steps' extra time over its training time
        "flop_counting_share": counters["counted_step_extra_seconds"] * infos["plain"]["flops_signatures"] / infos["plain"]["train_seconds"],
    }
    print(f"CPU: {result['cpu']}; load average {result['load_average']}")
    for v in variants:
        print(f"{v:12s} median {med[v]:7.2f} s over {args.repeats} ({', '.join(f'{t:.2f}' for t in times[v])})")
    print(f"monitor / plain        = {result['monitor_over_plain']:.3f}  (the default in-training evaluation; bound 1.10)")
    print(f"plain / no counters    = {result['plain_over_no_counters']:.3f}  (pass hook + FLOP counting, across runs: noisy under load; bound 1.01)")
    print(f"FLOP counting share    = {result['flop_counting_share']:.4f}  ({infos['plain']['flops_signatures']} counted step(s) "
          "x their extra time / training s)")
    print(f"monitor share in run   = {result['monitor_share_in_run']:.3f}  (evaluation s / training s of the same run; bound 0.05)")
    print(f"monitor FLOP share     = {result['monitor_flop_share']:.3f}  (evaluation FLOPs / training FLOPs: no load in it)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
