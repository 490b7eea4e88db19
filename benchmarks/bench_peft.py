"""Benchmark: LoRA against full fine-tuning (FFT) on the same backbone: step time and peak memory, as ratios.

    python benchmarks/bench_peft.py [--models vit_small_patch16_224,resnet50] [--size 224] [--batch 4]
                                    [--repeats 3] [--losses ce,classic_at] [--steps 2] [--r 8] [--no-memory]

Per backbone (timm, random init: the cost does not depend on the weights) and loss, two
classifiers from the same initial weights, trained as the engine trains them (the protocol's
``prepare`` and ``trainable``, :func:`rftbench.engine.freeze_for_epoch`, AdamW over the
trainable parameters, :class:`rftbench.engine.FusedStep`, fp32):

- **fft**: every parameter learns;
- **lora**: rftbench's ``lora`` protocol (rank ``--r``, the family's default targets: ViT
  ``attn.qkv``/``attn.proj``/``mlp.fc1``/``mlp.fc2``, ResNet the convolutions of every block), plus the head.

Step time: both variants in this process, round-robin (one step each per round, so a change of
machine load hits both), medians over ``--repeats`` rounds after one warm-up round. Peak memory:
on CUDA ``torch.cuda.max_memory_allocated``; on CPU (Linux) each variant runs in a fresh child
process, which returns freed heap to the OS (``malloc_trim``), resets its peak resident set
(``/proc/self/clear_refs``) just before the first step and reports how far the peak (``VmHWM``)
rose over two steps above the resident set then: activations, gradients and optimiser state,
the weights being counted before (what the allocator holds: glibc's arenas make it a coarse
number). Beside it, **state** counts those three on the tensors themselves: the activations
autograd saves in one training forward (``saved_tensors_hooks``), the gradients of the
trainable parameters and AdamW's state. With ``classic_at`` (PGD-``--steps``, L∞ 8/255) the attack back-propagates to the input
through the whole network whatever trains, so LoRA saves less there than with ``ce``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rftbench.config import OptimizerConfig  # noqa: E402
from rftbench.engine import FusedStep, build_optimizer, choose_precision, freeze_for_epoch, prepare_model  # noqa: E402
from rftbench.model import Classifier  # noqa: E402
from rftbench_plugins.losses import ClassicAT, CrossEntropy  # noqa: E402
from rftbench_plugins.threats import LinfParams, LpThreat  # noqa: E402

EPS, ALPHA = 8 / 255, 2 / 255
CLASSES = 10


class TimmFeatures(nn.Module):
    """A ``num_classes=0`` timm model as a representation (forward_features → pooled features)."""

    def __init__(self, name: str, size: int):
        super().__init__()
        import timm

        kwargs = {"img_size": size} if name.startswith(("vit", "deit")) else {}
        self.body = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
        self.num_features = self.body.num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def protocol_of(variant: str, r: int):
    from rftbench_plugins._peft import LoRA
    from rftbench_plugins.protocols import FullFineTuning

    return LoRA(r=r, alpha=float(r), dropout=0.0, target_modules=None) if variant == "lora" else FullFineTuning()


def build(model_name: str, variant: str, loss_name: str, args: argparse.Namespace, device: torch.device):
    """A classifier trained as the engine trains it under ``variant``; returns (step function, model, counts)."""
    torch.manual_seed(0)
    model = Classifier(TimmFeatures(model_name, args.size), CLASSES)
    protocol = protocol_of(variant, args.r)
    prepare_model(model, protocol)
    model.to(device)
    names = protocol.trainable(model, 0, 1)
    freeze_for_epoch(model, names)
    optimizer = build_optimizer(model, names, OptimizerConfig(lr_backbone=1e-4, lr_head=1e-3))
    precision = choose_precision("fp32", device)
    if loss_name == "ce":
        loss, threat = CrossEntropy(), None
    else:
        loss = ClassicAT()
        threat = LpThreat("linf", **LinfParams(eps=EPS, attack="pgd", steps=args.steps, step_size=ALPHA, random_start=True).model_dump())
    step = FusedStep(model, loss, threat, optimizer, precision)
    counts = {"trainable": sum(p.numel() for n, p in model.named_parameters() if n in names),
              "total": sum(p.numel() for p in model.parameters())}

    def run(x: torch.Tensor, y: torch.Tensor) -> None:
        step(x, y, EPS)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run.optimizer = optimizer
    return run, model, counts


def counted_state(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> dict[str, float]:
    """Bytes (MiB) of what training keeps, counted on the tensors: the activations autograd saves in one training
    forward (``saved_tensors_hooks``; unique storages, parameters excluded), the gradients and the optimiser state."""
    saved: dict[int, int] = {}
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    state = sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))
    mib = 2**20
    return {"activations": sum(saved.values()) / mib, "gradients": grads / mib, "optimizer": state / mib,
            "total": (sum(saved.values()) + grads + state) / mib}


def batch(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=gen)
    return x.to(device), torch.randint(0, CLASSES, (args.batch,), generator=gen).to(device)


def child(args: argparse.Namespace) -> None:
    """One variant's peak memory growth over two steps (printed as JSON): run in a fresh process."""
    device = torch.device(args.device)
    model_name, variant, loss_name = args.child
    run, _, _ = build(model_name, variant, loss_name, args, device)
    x, y = batch(args, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _reset_peak_rss()
    for _ in range(2):
        run(x, y)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _peak_rss()
    print(json.dumps({"growth_bytes": peak - base}))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> int:
    """Return freed heap to the OS, reset the peak resident set (Linux ``clear_refs`` 5); returns the resident set now."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _peak_rss() -> int:
    return _status("VmHWM")


def memory(model_name: str, variant: str, loss_name: str, args: argparse.Namespace) -> float:
    cmd = [sys.executable, __file__, "--child", model_name, variant, loss_name, "--size", str(args.size), "--batch", str(args.batch),
           "--steps", str(args.steps), "--r", str(args.r), "--device", args.device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])["growth_bytes"] / 2**20


def _cpu() -> str:
    from rftbench.engine.hardware import describe_device

    return f"{describe_device(torch.device('cpu'))}, ATen {torch.backends.cpu.get_cpu_capability()}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=lambda v: [m for m in v.split(",") if m], default=["vit_small_patch16_224", "resnet50"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--losses", type=lambda v: [m for m in v.split(",") if m], default=["ce", "classic_at"])
    parser.add_argument("--steps", type=int, default=2, help="PGD steps of classic_at")
    parser.add_argument("--r", type=int, default=8, help="LoRA rank (alpha = r)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "VARIANT", "LOSS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    if args.child:
        child(args)
        return {}
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    print(f"{args.size}px, batch {args.batch}, fp32, LoRA r={args.r}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {load:.1f}; {_cpu()}", flush=True)
    rows = []
    print(f"{'backbone':24s} {'loss':16s} {'trainable (LoRA / FFT)':>24s} {'FFT s':>7s} {'LoRA s':>7s} {'time ×':>7s} "
          f"{'state FFT/LoRA MiB':>19s} {'state ×':>8s} {'peak RSS FFT/LoRA MiB':>22s} {'RSS ×':>6s}")
    for model_name in args.models:
        for loss_name in args.losses:
            variants = {v: build(model_name, v, loss_name, args, device) for v in ("fft", "lora")}
            x, y = batch(args, device)
            times: dict[str, list[float]] = {v: [] for v in variants}
            for round_ in range(args.repeats + 1):
                for v, (run, _, _) in variants.items():
                    t0 = time.perf_counter()
                    run(x, y)
                    if round_:
                        times[v].append(time.perf_counter() - t0)
            counts = {v: c for v, (_, _, c) in variants.items()}
            state = {v: counted_state(m, run.optimizer, x) for v, (run, m, _) in variants.items()}
            del variants
            med = {v: statistics.median(t) for v, t in times.items()}
            mem = {v: None for v in med} if args.no_memory else {v: memory(model_name, v, loss_name, args) for v in med}
            loss_label = "ce" if loss_name == "ce" else f"classic_at PGD-{args.steps}"
            row = {"backbone": model_name, "loss": loss_label, "trainable": {v: counts[v]["trainable"] for v in counts},
                   "total": counts["lora"]["total"], "median_s": med, "times": times, "time_ratio": med["lora"] / med["fft"],
                   "peak_growth_mib": mem, "memory_ratio": (mem["lora"] / mem["fft"]) if mem["fft"] else None,  # None: not measured
                   "counted_state_mib": state, "state_ratio": state["lora"]["total"] / state["fft"]["total"]}
            rows.append(row)
            share = f"{counts['lora']['trainable'] / 1e6:.2f}M / {counts['fft']['trainable'] / 1e6:.1f}M"
            st = f"{state['fft']['total']:.0f} / {state['lora']['total']:.0f}"
            mem_cols = ("" if row["memory_ratio"] is None else f"{mem['fft']:.0f} / {mem['lora']:.0f}")
            rss = "" if row["memory_ratio"] is None else f"{row['memory_ratio']:6.2f}"
            print(f"{model_name:24s} {loss_label:16s} {share:>24s} {med['fft']:7.2f} {med['lora']:7.2f} {row['time_ratio']:7.2f} "
                  f"{st:>19s} {row['state_ratio']:8.2f} {mem_cols:>22s} {rss}", flush=True)
    result = {"setup": {k: v for k, v in vars(args).items() if k not in ("json", "child")} | {"cpu": _cpu(), "load_average": load,
                                                                                                "threads": torch.get_num_threads()},
              "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
