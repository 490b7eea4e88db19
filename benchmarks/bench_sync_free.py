"""Same-process A/B of the sync-free training step against the step before it (issue 18 item 1).

    python benchmarks/bench_sync_free.py [--before REV] [--model resnet18] [--size 32] [--batch 64] [--repeats 7]

Times one :class:`FusedStep` (TRADES-KL + APGD-CE 10 steps, and Classic AT + PGD-10) with

- **before**: APGD from ``git show REV:rftbench/attacks/apgd.py`` (boolean-mask indexing,
  ``halve.any()``, ``x_fool`` tracked) and the per-step finite check (``bool(isfinite)``);
- **after**: this checkout's APGD (masked ``torch.where``) and ``check_finite=False`` (the
  trainer reads the losses every ``log_every`` steps instead),

round-robin, medians after two warm-up rounds, and prints the syncs each makes (CPU profiler
count). On a CPU the syncs cost nothing, so the ratio shows the masked arithmetic's own price
(it attacks every row where the old code copied the changed ones); on a GPU each sync stalls
the queue.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rftbench.attacks import apgd as apgd_now  # noqa: E402
from rftbench.engine import FusedStep, Precision  # noqa: E402
from rftbench.engine.syncs import count_syncs  # noqa: E402
from rftbench_plugins.losses import ClassicAT, Trades  # noqa: E402
from rftbench_plugins.threats import LinfParams, LpThreat  # noqa: E402


def old_apgd(rev: str):
    text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:rftbench/attacks/apgd.py"], check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "apgd_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("rftbench.attacks._apgd_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Variant:
    def __init__(self, model_name, loss, attack, apgd_module, check_finite):
        import timm

        torch.manual_seed(0)
        self.model = timm.create_model(model_name, pretrained=False, num_classes=10)
        threat = LpThreat("linf", **LinfParams(eps="8/255", attack=attack, steps=10).model_dump())
        self.apgd_module = apgd_module
        self.step = FusedStep(self.model, loss, threat, torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9),
                              Precision("fp32", "cpu"), check_finite=check_finite)

    def __call__(self, x, y):
        saved = apgd_now._apgd_once
        apgd_now._apgd_once = self.apgd_module._apgd_once  # apgd_ce of this checkout calls the chosen _apgd_once
        try:
            self.model.train()
            self.step.refresh()
            self.step(x, y, 8 / 255)
        finally:
            apgd_now._apgd_once = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="127989e")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    before = old_apgd(args.before)
    x, y = torch.rand(args.batch, 3, args.size, args.size), torch.randint(0, 10, (args.batch,))
    variants = {}
    for case, loss, attack in (("TRADES-KL + APGD-CE-10", Trades(6.0, "kl"), "apgd-ce"), ("Classic AT + PGD-10", ClassicAT(), "pgd")):
        variants[f"{case}: before"] = Variant(args.model, loss, attack, before, True)
        variants[f"{case}: after"] = Variant(args.model, loss, attack, apgd_now, False)
    load = os.getloadavg()[0]
    print(f"{args.model} {args.size}px batch {args.batch}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load {load:.1f}", flush=True)
    times = {k: [] for k in variants}
    for r in range(args.repeats + 2):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn(x, y)
            if r >= 2:
                times[name].append(time.perf_counter() - t0)
    for name, fn in variants.items():
        _, syncs = count_syncs(fn, x, y)
        med = statistics.median(times[name])
        pair = name.replace(": after", ": before")
        ratio = statistics.median(times[pair]) / med if name.endswith("after") else 1.0
        print(f"{name:36s} {med:8.3f} s {args.batch / med:8.1f} img/s  {syncs.total:4d} syncs  speed-up vs before {ratio:.2f}×",
              flush=True)


if __name__ == "__main__":
    main()
