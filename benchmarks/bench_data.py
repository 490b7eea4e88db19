"""Benchmark of the training data path at 224 px against the fused step, in one process, on this machine.

    OMP_NUM_THREADS=1 python benchmarks/bench_data.py [--images 256] [--source-size 375x500] [--workers 0,1,2]
                                                      [--model resnet50] [--batch 8] [--steps 10] [--json out.json]

What is timed:

1. **data path**: rftbench's training loader (:func:`rftbench.data.build_data` on a generated
   imagefolder of JPEGs, ``--source-size`` pixels, the ImageNet-like size of the study's datasets):
   decode, crop/resize to 224 px, the study's per-example augmentation (flip, ColorJitter(0.25),
   RandomRotation(2°)), collate, for each ``--workers`` count, with the decoded uint8 cache off
   (every epoch decodes) and on (decoded once); images/s per worker and in total, median of
   ``--repeats`` epochs after one warm-up epoch (which also starts the persistent workers);
2. **device augmentation**: :class:`rftbench.data.DeviceAugment` on a batch on ``--device``;
3. **fused step**: :class:`rftbench.engine.FusedStep` (TRADES + APGD-CE ``--steps``, the default
   recipe) on timm ``--model`` at 224 px, batch ``--batch``, the precision ``auto`` picks, on
   ``--device``: its images/s, the rate the data path has to beat (the issue asks for 4×).

The machine's CPU and load average are printed: on a shared machine the worker rates fall with
the load. Workers run one intra-op thread each (torch's DataLoader sets it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rftbench.cards import DatasetCard, RepresentationCard  # noqa: E402
from rftbench.data import DeviceAugment, build_data  # noqa: E402

INPUT = {"resolution": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "interpolation": "bicubic", "crop_pct": 0.95}


def _cpu() -> str:
    from rftbench.engine.hardware import cpu_name

    return cpu_name()


def write_folder(root: Path, n: int, size: tuple[int, int], classes: int = 4) -> None:
    """``n`` random-texture JPEGs of ``size`` (h, w) in ``classes`` class folders (quality 90)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    for i in range(n):
        folder = root / "bench" / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        small = np.roll(base, i, axis=1)
        Image.fromarray(small).resize((size[1], size[0]), Image.BILINEAR).save(folder / f"{i}.jpg", quality=90)


def cards(n_classes: int, test_fraction: float = 0.05) -> tuple[RepresentationCard, DatasetCard]:
    rep = RepresentationCard(id="bench.rep", source="timm", model="resnet50", family="convolutional", size="medium",
                             params_m=23.5, input=INPUT, pretraining={"strategy": "none", "data": "none"},
                             provenance={"license": "apache-2.0"})
    card = DatasetCard(id="bench", source="imagefolder", args={"folder": "bench"}, num_classes=n_classes, resolution=256,
                       splits={"train": {"rule": "stratified"}, "test": {"rule": "stratified", "fraction": test_fraction}},
                       provenance={"license": "CC0-1.0"})
    return rep, card


def time_loader(rep, card, root: Path, *, workers: int, cache: bool, batch: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    data = build_data(rep, card, batch_size=batch, root=root, num_workers=workers, cache=cache)
    setup = time.perf_counter() - t0
    rates = []
    try:
        for epoch in range(repeats + 1):
            data.train_batches.set_epoch(epoch)
            t = time.perf_counter()
            n = sum(len(y) for _, y in data.train_loader)
            if epoch:  # the first epoch starts the workers
                rates.append(n / (time.perf_counter() - t))
    finally:
        data.close()
    total = statistics.median(rates)
    return {"workers": workers, "cache": cache, "setup_s": setup, "images_per_s": total,
            "per_worker": total / max(workers, 1), "rates": rates}


def time_device_augment(device: torch.device, batch: int, repeats: int) -> float:
    x = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8, device=device)
    aug = DeviceAugment(0)
    aug(x, 0, 0)
    times = []
    for r in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        aug(x, 0, r)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def time_fused_step(model_name: str, device: torch.device, batch: int, steps: int, repeats: int) -> dict:
    import timm

    from rftbench.engine import FusedStep, choose_channels_last, choose_precision
    from rftbench_plugins.losses import Trades
    from rftbench_plugins.threats import LinfParams, LpThreat

    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False, num_classes=10).to(device)
    precision = choose_precision("auto", device)
    channels_last = choose_channels_last("auto", model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    threat = LpThreat("linf", **LinfParams(eps=4 / 255, attack="apgd-ce", steps=steps).model_dump())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    step = FusedStep(model, Trades(beta=6.0, inner="ce"), threat, opt, precision, channels_last=channels_last,
                     scaler=torch.amp.GradScaler(device.type) if precision.use_scaler else None)
    x = torch.rand(batch, 3, 224, 224, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    model.train()
    step(x, y, 4 / 255)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = step(x, y, 4 / 255)
        float(out.loss)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"model": model_name, "precision": precision.name, "channels_last": channels_last, "batch": batch,
            "attack": f"apgd-ce-{steps}", "median_s": med, "images_per_s": batch / med}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256, help="train images generated (JPEG)")
    parser.add_argument("--source-size", default="375x500", help="HxW of the generated JPEGs")
    parser.add_argument("--workers", type=lambda v: [int(w) for w in v.split(",")], default=None,
                        help="worker counts to time (default 0, 1 and each power of two up to the usable cores)")
    parser.add_argument("--batch", type=int, default=32, help="loader batch size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="resnet50", help="timm model of the fused step ('' skips it)")
    parser.add_argument("--step-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="APGD-CE steps of the fused step")
    parser.add_argument("--step-repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from rftbench.config import usable_cores

    cores = usable_cores()
    workers = args.workers or sorted({0, 1, *[2**k for k in range(1, int(math.log2(max(cores, 1))) + 1)]})
    h, w = (int(v) for v in args.source_size.split("x"))
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    print(f"data path at 224 px from {h}x{w} JPEGs, batch {args.batch}; {cores} usable cores, load average {load:.1f}; {_cpu()}",
          flush=True)
    result: dict = {"setup": vars(args) | {"json": None, "cpu": _cpu(), "cores": cores, "load_average": load}, "loader": []}
    with tempfile.TemporaryDirectory(prefix="rftbench-bench-data-") as folder:
        root = Path(folder)
        n_total = int(args.images / 0.95) + 1
        write_folder(root, n_total, (h, w))
        rep, card = cards(4)
        print(f"{'workers':>7s} {'cache':>6s} {'img/s':>8s} {'per worker':>11s} {'setup s':>8s}")
        for cache in (False, True):
            for nw in workers:
                row = time_loader(rep, card, root, workers=nw, cache=cache, batch=args.batch, repeats=args.repeats)
                result["loader"].append(row)
                print(f"{nw:7d} {str(cache):>6s} {row['images_per_s']:8.1f} {row['per_worker']:11.1f} {row['setup_s']:8.1f}",
                      flush=True)
    result["device_augment_images_per_s"] = time_device_augment(device, args.batch, max(args.repeats, 5))
    print(f"device augmentation on {device.type}: {result['device_augment_images_per_s']:.0f} img/s")
    if args.model:
        step = time_fused_step(args.model, device, args.step_batch, args.steps, args.step_repeats)
        result["fused_step"] = step
        best = max(r["images_per_s"] for r in result["loader"] if not r["cache"])
        print(f"fused step {args.model} TRADES + APGD-CE-{args.steps} at 224 px, batch {args.step_batch}, {step['precision']}: "
              f"{step['images_per_s']:.2f} img/s; best uncached data path {best:.1f} img/s = "
              f"{best / step['images_per_s']:.1f}× the step")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
