"""Host–device synchronisations per optimiser step of the default training paths (CPU profiler count).

    python benchmarks/bench_syncs.py [--repo PATH] [--steps 10] [--json out.json]

Counts, with :mod:`rftbench.engine.syncs` (loaded from *this* checkout, so that the same counter
measures another checkout given by ``--repo``, e.g. ``--repo /work/main`` for the "before"):

- one :class:`FusedStep` (a small conv net, batch 32, 8 px), TRADES + APGD-CE and Classic AT + PGD,
  k = ``--steps``, as the trainer builds it (``check_finite=False`` where the checkout has it);
- a whole training epoch through :class:`rftbench.engine.trainer.Trainer` (offline micro-ResNet,
  digits, batch 16, fp32), divided by its optimiser steps: what a GPU run would wait for.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _counter():
    spec = importlib.util.spec_from_file_location("_rft_syncs", HERE / "rftbench" / "engine" / "syncs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout to measure (default: this one)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.repo.resolve()))
    syncs = _counter()
    import torch
    from torch import nn

    from rftbench.engine import FusedStep, Precision
    from rftbench_plugins.losses import ClassicAT, Trades
    from rftbench_plugins.threats import LinfParams, LpThreat

    fp32 = Precision("fp32", "cpu")
    result: dict = {"repo": str(args.repo), "fused_step": {}, "trainer": {}}
    lean = "check_finite" in inspect.signature(FusedStep).parameters
    for name, loss, attack in (("trades+apgd-ce", Trades(6.0, "kl"), "apgd-ce"), ("classic+pgd", ClassicAT(), "pgd")):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))
        threat = LpThreat("linf", **LinfParams(eps="4/255", attack=attack, steps=args.steps).model_dump())
        extra = {"check_finite": False} if lean else {}
        step = FusedStep(model, loss, threat, torch.optim.AdamW(model.parameters(), lr=1e-3), fp32, **extra)
        x, y = torch.rand(32, 3, 8, 8), torch.randint(0, 10, (32,))
        step(x, y, 4 / 255)
        _, count = syncs.count_syncs(step, x, y, 4 / 255)
        result["fused_step"][name] = {"total": count.total, "by_op": dict(count.by_op)}
        print(f"one FusedStep, {name}-{args.steps}: {count}", flush=True)

    from rftbench.config import load_config
    from rftbench.engine.trainer import Trainer
    from rftbench.runner import prepare

    for name, loss, threat in (("trades+apgd-ce", "trades", "{name: linf, eps: 4/255}"),
                               ("classic+pgd", "classic_at", f"{{name: linf, eps: 4/255, attack: pgd, steps: {args.steps}}}")):
        with tempfile.TemporaryDirectory() as tmp:
            overrides = ["representation=mini_resnet.shapes_standard", "dataset=digits", "epochs=1", "batch_size=64",
                         f"loss={loss}", f"threat={threat}", f"output_dir={tmp}", "device=cpu", "precision=fp32"]
            config = load_config(overrides=overrides)
            setup = prepare(config, __import__("rftbench.plugins", fromlist=["get_manager"]).get_manager())
            trainer = Trainer(config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
                              channels_last=setup.channels_last, progress=False)
            trainer.micro_per_epoch = min(trainer.micro_per_epoch, 8)
            with syncs.sync_counter() as count:
                trainer.fit()
            steps = trainer.micro_per_epoch // trainer.accumulation
        result["trainer"][name] = {"total": count.total, "optimiser_steps": steps, "per_step": count.total / steps,
                                   "by_op": dict(count.by_op)}
        print(f"Trainer epoch of {steps} optimiser steps, {name}: {count} → {count.total / steps:.1f} per step", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
