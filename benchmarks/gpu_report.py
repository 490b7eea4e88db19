"""One GPU report: syncs, data-path and fused-step images/s, floors, the 3/(2k+3) ceiling and MFU → one JSON + one Markdown table.

    python benchmarks/gpu_report.py --out gpu-check/          # on a CUDA GPU (what gpu_check.sh runs; ≤ 8 min on one GPU)
    python benchmarks/gpu_report.py --dry-run --out /tmp/r    # the same code on CPU at tiny size (CI runs it)

For ResNet-50 and ViT-S/16 at 224 px (``--dry-run``: ResNet-18 and ViT-Tiny at 32 px, batch 4) and each
of fp32, bf16, fp16 + GradScaler and compiled (the default precision under ``torch.compile``; CUDA
only, reported as skipped on CPU), PGD-``k`` (Classic AT, L∞ 8/255):

- **clean step**: forward, backward, SGD step at that precision and memory format; its images/s
  ``c`` gives the **ceiling** ``3 / (2k + 3) · c`` of an adversarial step whose attack takes
  input-only gradients (DESIGN.md's cost model);
- **floor**: ``k`` forward + input-gradient passes then one clean step (benchmarks/bench_fused_step.py's
  ``Floor``), the same precision and memory format;
- **fused**: :class:`rftbench.engine.FusedStep` (bench_fused_step.py's ``Fused``): images/s,
  ``× floor`` (time ratio, ≥ 1), ``of ceiling`` (images/s ratio, ≤ 1 up to noise), host–device
  **syncs** per step (:func:`rftbench.engine.syncs.count_syncs`) and **MFU**: the step's model FLOPs
  (``torch.utils.flop_counter.FlopCounterMode`` on a forward and on a clean step, :func:`step_flops`)
  over its time, against the device's
  dense peak for that precision (a table of known GPUs; ``--peak-tflops`` overrides; unknown: no MFU);
- **data path**: rftbench's training loader at the report's size from generated JPEGs with the
  study's augmentation, for 0 and ``--workers`` loader processes (benchmarks/bench_data.py).

Medians over ``--repeats`` timed steps after a warm-up; the variants of one model run round-robin.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_data  # noqa: E402
from bench_fused_step import EPS, Floor, Fused, make_model  # noqa: E402

from rftbench.engine import Precision, choose_channels_last, choose_precision  # noqa: E402
from rftbench.engine.syncs import count_syncs  # noqa: E402

#: Dense peak TFLOP/s (no sparsity) by device-name fragment: (fp32 without TF32, bf16/fp16 tensor cores).
PEAK_TFLOPS = {
    "H200": (67.0, 989.0), "H100 SXM": (67.0, 989.0), "H100 PCIe": (51.0, 756.0), "H100": (67.0, 989.0),
    "A100": (19.5, 312.0), "A10G": (31.2, 125.0), "A10": (31.2, 125.0), "L40S": (91.6, 362.0), "L4": (30.3, 121.0),
    "V100": (15.7, 125.0), "T4": (8.1, 65.0), "RTX 4090": (82.6, 165.0), "RTX 3090": (35.6, 71.0),
}


def peak_for(device: torch.device, precision: str, override: float | None) -> float | None:
    """The device's dense peak TFLOP/s at ``precision`` (``None`` where unknown, e.g. a CPU)."""
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (fp32, half) in PEAK_TFLOPS.items():
        if key in name:
            return fp32 if precision == "fp32" else half
    return None


class Clean:
    """One clean training step (forward, backward, SGD step) at a precision and memory format."""

    def __init__(self, model: torch.nn.Module, precision: Precision, channels_last: bool):
        self.model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.precision, self.channels_last = precision, channels_last
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        self.scaler = torch.amp.GradScaler("cuda") if precision.use_scaler else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.model.train()
        with self.precision.autocast():
            loss = F.cross_entropy(self.model(x).float(), y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_of(fn, x: torch.Tensor, y: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(x, y)
    return int(counter.get_total_flops())


def step_flops(clean: Clean, x: torch.Tensor, y: torch.Tensor, steps: int) -> int:
    """Model FLOPs of one PGD-k step: k × (forward + input-gradient backward ≈ 2 forwards) + one clean training step.

    Both parts are counted by FlopCounterMode (a forward under no_grad, a clean step); the attack's
    ``autograd.grad`` w.r.t. a leaf input cannot run under FlopCounterMode's module hooks (torch 2.x).
    """
    with torch.no_grad(), clean.precision.autocast():
        forward = flops_of(lambda a, b: clean.model(a), x, y)
    return 2 * steps * forward + flops_of(clean, x, y)


def model_rows(name: str, size: int, batch: int, steps: int, repeats: int, device: torch.device, peak_override: float | None,
               compile_ok: bool) -> list[dict]:
    kwargs = {"img_size": size} if name.startswith("vit") else {}
    make = lambda: make_timm(name, device, **kwargs)  # noqa: E731
    channels_last = choose_channels_last("auto", make(), device)
    auto = choose_precision("auto", device)
    settings = [("fp32", Precision("fp32", device.type), False), ("bf16", Precision("bf16", device.type), False),
                ("fp16 + GradScaler", Precision("fp16", device.type), False), (f"compiled ({auto.name})", auto, True)]
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    variants, rows = {}, []
    for label, precision, compiled in settings:
        cl = channels_last
        if compiled and not compile_ok:
            rows.append({"model": name, "setting": label, "skipped": "torch.compile runs on CUDA only"})
            continue
        if precision.name == "fp16" and device.type != "cuda":
            rows.append({"model": name, "setting": label, "skipped": "fp16 + GradScaler is the CUDA path"})
            continue
        variants[label] = {
            "clean": Clean(make(), precision, cl),
            "floor": Floor(make(), steps, precision, cl),
            "fused": Fused(make(), steps, precision, cl, compiled),
            "precision": precision.name, "channels_last": cl,
        }
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(repeats + 2):  # round-robin, two warm-up rounds (compilation happens there)
        for label, v in variants.items():
            for part in ("clean", "floor", "fused"):
                _sync(device)
                t0 = time.perf_counter()
                v[part](x, y)
                _sync(device)
                if round_ >= 2:
                    times.setdefault((label, part), []).append(time.perf_counter() - t0)
    for label, v in variants.items():
        clean, floor, fused = (statistics.median(times[(label, p)]) for p in ("clean", "floor", "fused"))
        _, syncs = count_syncs(v["fused"], x, y)
        flops = step_flops(v["clean"], x, y, steps)
        peak = peak_for(device, v["precision"], peak_override)
        ceiling = 3 / (2 * steps + 3) * batch / clean
        achieved = flops / fused / 1e12 if flops else None
        rows.append({
            "model": name, "setting": label, "precision": v["precision"], "channels_last": v["channels_last"],
            "clean_images_per_s": batch / clean, "floor_images_per_s": batch / floor, "fused_images_per_s": batch / fused,
            "ceiling_images_per_s": ceiling, "vs_floor": fused / floor, "of_ceiling": (batch / fused) / ceiling,
            "syncs_per_step": syncs.total, "step_tflop": flops / 1e12 if flops else None, "achieved_tflops": achieved,
            "peak_tflops": peak, "mfu": achieved / peak if achieved and peak else None,
        })
    return rows


def make_timm(name: str, device: torch.device, **kwargs) -> torch.nn.Module:
    if not kwargs:
        return make_model(name, 10, device)
    import timm

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=10, **kwargs).to(device)


def data_rows(size: int, images: int, batch: int, workers: list[int], repeats: int) -> list[dict]:
    fraction = max(0.05, 8 / images)  # at least two test images per class (the split needs them; they are not timed)
    rep, card = bench_data.cards(4, fraction)
    rep = rep.model_copy(update={"input": rep.input.model_copy(update={"resolution": size})})
    rows = []
    with tempfile.TemporaryDirectory(prefix="rftbench-gpu-report-") as folder:
        root = Path(folder)
        bench_data.write_folder(root, int(images / (1 - fraction)) + 1, (max(size * 3 // 2, 16), max(size * 2, 16)))
        for nw in workers:
            row = bench_data.time_loader(rep, card, root, workers=nw, cache=False, batch=batch, repeats=repeats)
            rows.append({k: row[k] for k in ("workers", "images_per_s", "per_worker")})
    return rows


def markdown(report: dict) -> str:
    s = report["setup"]
    lines = [f"# GPU report: {s['device_name']}", "",
             f"torch {s['torch']}, PGD-{s['steps']}, batch {s['batch']}, {s['size']} px, load average {s['load_average']:.1f}"
             + (" — **dry run on CPU at tiny size**" if s["dry_run"] else ""), "",
             "| model | setting | clean img/s | ceiling img/s | floor img/s | fused img/s | × floor | of ceiling | syncs/step | MFU |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["steps"]:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['setting']} | skipped: {r['skipped']} | | | | | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        lines.append(f"| {r['model']} | {r['setting']} | {r['clean_images_per_s']:.1f} | {r['ceiling_images_per_s']:.1f} | "
                     f"{r['floor_images_per_s']:.1f} | {r['fused_images_per_s']:.1f} | {r['vs_floor']:.2f} | "
                     f"{r['of_ceiling']:.2f} | {r['syncs_per_step']} | {mfu} |")
    lines += ["", "| data path: loader workers | images/s | per worker |", "| ---: | ---: | ---: |"]
    lines += [f"| {r['workers']} | {r['images_per_s']:.1f} | {r['per_worker']:.1f} |" for r in report["data"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for gpu_report.json and gpu_report.md")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models at 32 px, batch 4, 1 repeat (for CI)")
    parser.add_argument("--models", default="resnet50,vit_small_patch16_224")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="PGD steps k")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="loader processes of the data-path row (default: auto on CUDA)")
    parser.add_argument("--data-images", type=int, default=512)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense peak, where the table lacks it")
    args = parser.parse_args(argv)
    if args.dry_run:
        device = torch.device("cpu")
        args.models, args.size, args.batch, args.steps, args.repeats = "resnet18,vit_tiny_patch16_224", 32, 4, 2, 1
        args.data_images, workers = 16, [0, 1]
    else:
        if not torch.cuda.is_available():
            raise SystemExit("error: no CUDA GPU visible to torch; use --dry-run to exercise the report on CPU")
        device = torch.device("cuda")
        from rftbench.data import resolve_workers

        workers = [0, args.workers if args.workers is not None else resolve_workers("auto", "cuda")]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    setup = {"device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({bench_data._cpu()})",
             "torch": torch.__version__, "dry_run": args.dry_run, "size": args.size, "batch": args.batch, "steps": args.steps,
             "repeats": args.repeats, "load_average": os.getloadavg()[0], "eps": EPS}
    steps = []
    for name in [m for m in args.models.split(",") if m]:
        steps += model_rows(name, args.size, args.batch, args.steps, args.repeats, device, args.peak_tflops,
                            compile_ok=device.type == "cuda")
        print(f"{name}: done after {time.perf_counter() - t0:.0f} s", flush=True)
    data = data_rows(args.size, args.data_images, min(args.batch, 64), sorted(set(workers)), max(1, min(args.repeats, 2)))
    report = {"setup": setup | {"seconds": time.perf_counter() - t0}, "steps": steps, "data": data}
    (args.out / "gpu_report.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (args.out / "gpu_report.md").write_text(table)
    print(table)
    return report


if __name__ == "__main__":
    main()
