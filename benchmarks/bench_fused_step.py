"""Benchmark of rftbench's fused adversarial step, in one process, on one model, batch and k.

    python benchmarks/bench_fused_step.py [--model resnet18] [--size 32] [--batch 64] [--steps 10]
                                          [--repeats 7] [--device cpu] [--accuracy]

Variants (PGD-k, L∞ 8/255, random start, Classic AT, SGD), timed per training step:

1. **floor**: k forward + input-gradient passes (eval mode, parameters frozen) plus one clean
   training step (forward, backward, SGD step): the cost model's (2k + 3) forward-equivalents,
   measured in each precision and memory format a fused variant uses, so that each variant's
   "× floor" compares like with like (fp32 with the fp32 floor, bf16 + channels_last with the
   bf16 + channels_last floor);
2. **torchattacks**: the baseline a user writes today: ``torchattacks.PGD`` then a standard
   optimiser step, fp32;
3. **fused fp32**: :class:`rftbench.engine.FusedStep`, fp32, contiguous memory;
4. **fused default**: the precision and memory format ``auto`` picks on this hardware
   (bf16 + channels_last on a CPU with AVX512-BF16), and the variants around it.

The variants run round-robin (one step each per round) so that a change of machine load hits
them alike; medians over ``--repeats`` rounds after two warm-up rounds; the load average is
printed, since the machine may be shared. ``--accuracy`` also trains the offline default config
(TRADES, APGD-CE 10 steps, 4/255) in fp32 and in the default precision and compares the
robust accuracies. With ``--device cuda`` and ``--model resnet50 --size 224``: images/s and peak
memory of the fused AMP step against the fp32 torchattacks baseline; ``--precisions fp32,bf16,fp16``
adds those precisions, ``--compile`` the default variant wrapped in ``torch.compile`` (CUDA).
The ``syncs`` column counts the host–device synchronisations of one step of each variant
(:func:`rftbench.engine.syncs.count_syncs`; 0 for the fused step, which the trainer reads every
``log_every`` steps instead). ``--attack apgd-ce`` times the fused step with APGD-CE instead of PGD.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rftbench.attacks import attack_mode  # noqa: E402
from rftbench.engine import FusedStep, Precision, choose_channels_last, choose_precision  # noqa: E402
from rftbench.engine.syncs import count_syncs  # noqa: E402
from rftbench_plugins.losses import ClassicAT  # noqa: E402
from rftbench_plugins.threats import LinfParams, LpThreat  # noqa: E402

EPS, ALPHA = 8 / 255, 2 / 255


def make_model(name: str, classes: int, device: torch.device) -> nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=classes).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Floor:
    """k forward + input-gradient passes, then one clean training step, at a precision and memory format."""

    def __init__(self, model: nn.Module, steps: int, precision: Precision, channels_last: bool):
        self.model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.steps, self.precision, self.channels_last = steps, precision, channels_last
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        self.scaler = torch.amp.GradScaler("cuda") if precision.use_scaler else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with attack_mode(self.model), self.precision.autocast():
            for _ in range(self.steps):
                xa = x.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(self.model(xa).float(), y), xa)
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


class TorchattacksBaseline:
    """``torchattacks.PGD`` then CE on the adversarial batch and an SGD step (fp32)."""

    def __init__(self, model: nn.Module, steps: int):
        import torchattacks

        self.model = model
        self.attack = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=steps, random_start=True)
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.train()
        x_adv = self.attack(x, y)
        F.cross_entropy(self.model(x_adv), y).backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


class Fused:
    """rftbench's fused step (Classic AT, PGD-k) at a given precision and memory format."""

    def __init__(self, model: nn.Module, steps: int, precision: Precision, channels_last: bool, compiled: bool = False,
                 attack: str = "pgd"):
        self.model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        if attack == "pgd":
            params = LinfParams(eps=EPS, attack="pgd", steps=steps, step_size=ALPHA, random_start=True)
        else:  # APGD's own step-size rule, no random start (the study)
            params = LinfParams(eps=EPS, attack=attack, steps=steps)
        threat = LpThreat("linf", **params.model_dump())
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        scaler = torch.amp.GradScaler("cuda") if precision.use_scaler else None
        self.step = FusedStep(model, ClassicAT(), threat, opt, precision, channels_last=channels_last, scaler=scaler,
                              compiled=torch.compile(model) if compiled else None, check_finite=False)  # as the trainer

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.train()
        self.step.refresh()
        self.step(x, y, EPS)


def label(p: Precision, cl: bool) -> str:
    return f"{p.name}{' + channels_last' if cl else ''}"


def build_variants(args: argparse.Namespace, device: torch.device) -> dict[str, Callable]:
    """Each variant gets its own copy of the same initial model; a floor for each (precision, memory format) used."""
    model = lambda: make_model(args.model, 10, device)  # noqa: E731
    auto = choose_precision("auto", device)
    cl_auto = choose_channels_last("auto", model(), device)
    fp32 = Precision("fp32", device.type)
    fused: dict[str, tuple[Precision, bool, bool]] = {"fused fp32": (fp32, False, False),
                                                      f"fused default: {label(auto, cl_auto)}": (auto, cl_auto, False)}
    for cl in (False, True):  # the alternatives `auto` chose between
        for p in {auto.name: auto, "fp32": fp32}.values():
            if (p.name, cl) not in ((auto.name, cl_auto), ("fp32", False)):
                fused[f"fused {label(p, cl)}"] = (p, cl, False)
    for name in getattr(args, "precisions", None) or []:
        p = Precision(name, device.type)
        if all((p.name, cl_auto) != (q.name, c) for q, c, _ in fused.values()):
            fused[f"fused {label(p, cl_auto)}"] = (p, cl_auto, False)
    if getattr(args, "compile", False):
        fused[f"fused default + compile: {label(auto, cl_auto)}"] = (auto, cl_auto, True)
    variants: dict[str, Callable] = {}
    for p, cl in dict.fromkeys((p, cl) for p, cl, _ in fused.values()):
        variants[f"floor {label(p, cl)}"] = Floor(model(), args.steps, p, cl)
    variants["torchattacks PGD + step (fp32)"] = TorchattacksBaseline(model(), args.steps)
    for name, (p, cl, compiled) in fused.items():
        variants[name] = Fused(model(), args.steps, p, cl, compiled, attack=getattr(args, "attack", "pgd"))
    return variants


def floor_of(name: str) -> str:
    """The floor a variant is compared with: the one in its own precision and memory format (fp32 for torchattacks)."""
    if name.startswith("floor ") or name.startswith("torchattacks"):
        return "floor fp32" if name.startswith("torchattacks") else name
    return "floor " + name.split(": ", 1)[1] if ": " in name else "floor " + name.removeprefix("fused ")


def time_variants(variants: dict[str, Callable], x: torch.Tensor, y: torch.Tensor, repeats: int, device: torch.device) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in variants}
    for round_ in range(repeats + 2):
        for name, fn in variants.items():
            _sync(device)
            t0 = time.perf_counter()
            fn(x, y)
            _sync(device)
            if round_ >= 2:
                times[name].append(time.perf_counter() - t0)
    return times


def peak_memory(fn: Callable, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    fn(x, y)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(device) / 2**30


def accuracy_check(output_dir: Path, epochs: int) -> dict[str, dict]:
    """Train the offline default config in fp32 and in the default precision; compare robust accuracy."""
    from rftbench import run

    out = {}
    for precision in ("fp32", "auto"):
        record = run(overrides=[f"precision={precision}", f"epochs={epochs}", f"output_dir={output_dir}"], rerun=True)
        out[precision] = {
            "precision_used": record.provenance["precision"],
            "clean_acc": record.metrics["clean_acc"],
            "robust_acc": {k: v["acc"] for k, v in record.metrics["threats"].items()},
            "train_images_per_s": record.timings["train_images_per_s"],
        }
    return out


def _cpu() -> str:
    from rftbench.engine.guards import onednn_isa_cap
    from rftbench.engine.hardware import describe_device

    return f"{describe_device(torch.device('cpu'))}, ATen {torch.backends.cpu.get_cpu_capability()}, oneDNN cap {onednn_isa_cap()}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--attack", default="pgd", choices=["pgd", "apgd-ce"], help="the fused step's attack (the baseline stays PGD)")
    parser.add_argument("--precisions", type=lambda v: [p for p in v.split(",") if p], default=[],
                        help="more precisions of the fused step to time, e.g. fp32,bf16,fp16 (fp16 needs CUDA)")
    parser.add_argument("--compile", action="store_true", help="also time the default variant under torch.compile (CUDA)")
    parser.add_argument("--accuracy", action="store_true", help="also compare robust accuracy, fp32 vs default precision")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the accuracy check")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model} at {args.size}px, batch {args.batch}, PGD-{args.steps}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {load:.1f}; {_cpu()}", flush=True)
    variants = build_variants(args, device)
    times = time_variants(variants, x, y, args.repeats, device)
    base = statistics.median(times["torchattacks PGD + step (fp32)"])
    rows = {}
    print(f"{'variant':52s} {'median s':>9s} {'img/s':>8s} {'× own floor':>12s} {'vs torchattacks':>16s} {'syncs':>6s} {'peak GiB':>9s}")
    for name, values in times.items():
        med = statistics.median(values)
        floor = statistics.median(times[floor_of(name)])
        peak = peak_memory(variants[name], x, y, device)
        _, syncs = count_syncs(variants[name], x, y)  # host–device syncs of one step (CPU profiler count)
        rows[name] = {"median_s": med, "images_per_s": args.batch / med, "floor": floor_of(name), "vs_floor": med / floor,
                      "speedup_vs_torchattacks": base / med, "times": values, "peak_gib": peak, "syncs_per_step": syncs.total}
        print(f"{name:52s} {med:9.3f} {args.batch / med:8.1f} {med / floor:12.2f} {base / med:15.2f}× {syncs.total:6d} "
              f"{'' if peak is None else f'{peak:9.2f}'}", flush=True)
    result = {"setup": vars(args) | {"json": None, "cpu": _cpu(), "load_average": load, "threads": torch.get_num_threads()}, "rows": rows}
    if args.accuracy:
        result["accuracy"] = accuracy_check(REPO / "runs" / "bench-accuracy", args.epochs)
        for k, v in result["accuracy"].items():
            print(f"trained with precision={k} ({v['precision_used']}): clean {v['clean_acc']:.3f}, robust {v['robust_acc']}, "
                  f"{v['train_images_per_s']:.0f} img/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
