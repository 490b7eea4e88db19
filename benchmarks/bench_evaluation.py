"""Benchmark of the evaluation suite, in one process, on a small standard (non-robust) trained model.

    python benchmarks/bench_evaluation.py [--n 1000] [--repeats 3] [--threads 1] [--out figures.json]

The model: a small conv net trained with plain cross-entropy (a "standard fine-tuned" model, not
robust) on 3×16×16 images of 10 classes (a fixed random template per class plus Gaussian noise).

1. AutoAttack standard (L∞, ε below): ``rftbench.evaluation.evaluate`` with the ``linf`` threat
   model and ``attack=autoattack``, against pyautoattack's ``AutoAttack.run_standard_evaluation``
   called directly on the same points (the library rftbench uses). Overhead = ours / library − 1.
2. The fast path: APGD-CE and PGD (10 steps) with early stopping through ``threat.perturb``, against
   their *ideal*: one forward + input-gradient pass per point still alive per step, timed on the
   exact batch sizes the attack used (recorded by a wrapper); and against torchattacks' PGD with the
   same steps (which attacks every point for every step).
3. The subset estimate (``n_subset`` points attacked with AutoAttack, logit-margin threshold) against
   the full AutoAttack evaluation: speed-up and error in accuracy points; then (3b) the estimator's
   error over 100 random subsets of several sizes, from one set of per-point AutoAttack outcomes.

Medians over ``--repeats``, ours and the reference alternating; the load average is printed,
since the machine may be shared.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

print = functools.partial(print, flush=True)  # noqa: A001 - progress lines as they come
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rftbench.evaluation import evaluate  # noqa: E402
from rftbench.plugins import get_manager  # noqa: E402

CLASSES, SIZE = 10, 16


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(64, CLASSES)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def data(n: int, seed: int, noise: float = 0.15, spread: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """Class templates close to mid-grey (0.5 ± spread) plus noise: a standard model is not robust at 4/255."""
    g = torch.Generator().manual_seed(1234)
    templates = 0.5 + spread * (torch.rand(CLASSES, 3, SIZE, SIZE, generator=g) * 2 - 1)
    g.manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    return (templates[y] + noise * torch.randn(n, 3, SIZE, SIZE, generator=g)).clamp(0, 1), y


def train(steps: int = 200) -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        x, y = data(64, 10_000 + step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class Recorder(nn.Module):
    """Records the batch size of every forward pass that builds a graph (an attack step)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.sizes = model, []

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            self.sizes.append(len(x))
        return self.model(x)


def ideal_seconds(model, x, y, sizes) -> float:
    """Time of one forward + input-gradient pass on each recorded batch size (what an ideal attack costs)."""
    t0 = time.perf_counter()
    for b in sizes:
        xb = x[:b].clone().requires_grad_(True)
        loss = F.cross_entropy(model(xb), y[:b], reduction="sum")
        torch.autograd.grad(loss, xb)
    return time.perf_counter() - t0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eps", type=str, default="4/255")
    ap.add_argument("--n-subset", type=int, default=200)
    ap.add_argument("--fast-eps", nargs="*", default=["8/255"], help="more budgets for the fast-path comparison")
    ap.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 2 (part 3 needs part 1)")
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (with cuda, only part 1: AutoAttack through rftbench vs pyautoattack)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared, oversubscribed CPU, 2 threads spin against each other)")
    args = ap.parse_args()
    if args.device != "cpu" and args.parts != "1":
        ap.error("--device other than cpu runs part 1 only: add --parts 1")
    torch.set_num_threads(args.threads)
    logging.getLogger("rftbench").setLevel(logging.WARNING)
    from rftbench.specs import parse_number

    eps = float(parse_number(args.eps))
    manager = get_manager()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    device = torch.device(args.device)
    model = train().to(device)
    x, y = data(args.n, 99)
    dataset = TensorDataset(x, y)
    with torch.no_grad():
        clean = (model(x.to(device)).argmax(1).cpu() == y).float().mean().item()
    print(f"model: clean accuracy {clean:.3f} on {args.n} points, L∞ ε = {args.eps}")
    figures: dict = {"n": args.n, "eps": args.eps, "clean_acc": clean, "load_start": os.getloadavg()}

    parts = {int(p) for p in args.parts.split(",")}
    # 1. AutoAttack standard: ours vs the library directly -------------------------------------
    import pyautoattack

    suite = [{"name": "linf", "eps": eps, "attack": "autoattack"}]
    ours_t, lib_t, ours_acc, lib_acc = [], [], None, None
    for _ in range(args.repeats if 1 in parts else 0):
        t, result = timed(lambda: evaluate(model, dataset, suite, batch_size=args.batch_size, manager=manager, progress=False,
                                           device=device))
        ours_t.append(t)
        ours_acc = next(iter(result["threats"].values()))["acc"]
        aa = pyautoattack.AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=0, device=args.device)
        aa.verbose = False
        t, (x_adv, y_adv) = timed(lambda: aa.run_standard_evaluation(x.to(device), y.to(device), batch_size=args.batch_size))
        lib_t.append(t)
        lib_acc = (y_adv.cpu() == y).float().mean().item()
    if 1 in parts:
        report_autoattack(figures, ours_t, lib_t, ours_acc, lib_acc)
    ours_m = statistics.median(ours_t) if ours_t else None
    if 2 in parts:
        fast_path(figures, args, model, x, y, manager)
    if 3 in parts and ours_m is not None:
        subset_part(figures, args, model, x, y, dataset, suite, manager, eps, ours_m, ours_acc)
    figures["load_end"] = os.getloadavg()
    print(f"load average at the end {os.getloadavg()}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


def report_autoattack(figures, ours_t, lib_t, ours_acc, lib_acc) -> None:
    ours_m, lib_m = statistics.median(ours_t), statistics.median(lib_t)
    print(f"[1] AutoAttack standard: rftbench {ours_m:.1f} s (acc {ours_acc:.3f}), pyautoattack direct {lib_m:.1f} s "
          f"(acc {lib_acc:.3f}); overhead {100 * (ours_m / lib_m - 1):+.1f}%  (runs: {[round(v, 1) for v in ours_t]} vs {[round(v, 1) for v in lib_t]})")
    figures["autoattack"] = {"ours_s": ours_m, "library_s": lib_m, "overhead": ours_m / lib_m - 1, "ours_acc": ours_acc,
                             "library_acc": lib_acc, "ours_runs": ours_t, "library_runs": lib_t}


def fast_path(figures, args, model, x, y, manager) -> None:
    from rftbench.specs import parse_number

    # 2. The fast path: early-stopping attacks vs their ideal and vs torchattacks' PGD ---------------
    import torchattacks

    fast = {}
    for fast_eps_text in dict.fromkeys([args.eps, *args.fast_eps]):
        fast_eps = float(parse_number(fast_eps_text))
        row = fast[fast_eps_text] = {}
        for attack in ("apgd-ce", "pgd"):
            threat = manager.get("threat_model", "linf").build(eps=fast_eps, attack=attack, steps=10, seed=0)
            actual, ideal = [], []
            for _ in range(args.repeats):
                rec = Recorder(model)
                t, x_adv = timed(lambda: torch.cat([threat.perturb(rec, x[i:i + args.batch_size], y[i:i + args.batch_size], early_stop=True)
                                                    for i in range(0, args.n, args.batch_size)]))
                actual.append(t)
                ideal.append(ideal_seconds(model, x, y, rec.sizes))
            acc = (model(x_adv).argmax(1) == y).float().mean().item()
            row[attack] = {"actual_s": statistics.median(actual), "ideal_s": statistics.median(ideal), "acc": acc,
                           "point_steps": sum(rec.sizes)}
        ta_t = []
        for _ in range(args.repeats):
            ta = torchattacks.PGD(model, eps=fast_eps, alpha=2.5 * fast_eps / 10, steps=10, random_start=True)
            t, x_ta = timed(lambda: torch.cat([ta(x[i:i + args.batch_size], y[i:i + args.batch_size]) for i in range(0, args.n, args.batch_size)]))
            ta_t.append(t)
        ta_acc = (model(x_ta).argmax(1) == y).float().mean().item()
        row["torchattacks_pgd"] = {"actual_s": statistics.median(ta_t), "acc": ta_acc}
        for name in ("apgd-ce", "pgd"):
            f = row[name]
            print(f"[2] ε={fast_eps_text} {name}-10 early stop: {f['actual_s']:.2f} s, ideal {f['ideal_s']:.2f} s → {f['actual_s'] / f['ideal_s']:.2f}× ideal; "
                  f"{row['torchattacks_pgd']['actual_s'] / f['actual_s']:.1f}× faster than torchattacks PGD-10 "
                  f"({row['torchattacks_pgd']['actual_s']:.2f} s); acc {f['acc']:.3f} vs {ta_acc:.3f}; {f['point_steps']} point-steps of {10 * args.n}")
    figures["fast"] = fast


def subset_part(figures, args, model, x, y, dataset, suite, manager, eps, ours_m, ours_acc) -> None:
    # 3. The subset estimate vs the full AutoAttack evaluation ---------------------------------
    sub_t, est = [], None
    sub_suite = [{"name": "subset_estimate", "threat": suite[0], "n": args.n_subset}]
    for _ in range(args.repeats):
        t, result = timed(lambda: evaluate(model, dataset, sub_suite, batch_size=args.batch_size, manager=manager, progress=False))
        sub_t.append(t)
        est = next(iter(result["metrics"].values()))
    sub_m = statistics.median(sub_t)
    print(f"[3] subset estimate (n={args.n_subset}): {sub_m:.1f} s vs full {ours_m:.1f} s → {ours_m / sub_m:.1f}× faster; "
          f"estimate {est['value']:.3f} ± {est['std']:.3f} vs measured {ours_acc:.3f}: error {100 * (est['value'] - ours_acc):+.1f} points")
    figures["subset"] = {"seconds": sub_m, "speedup": ours_m / sub_m, "estimate": est["value"], "std": est["std"],
                         "measured": ours_acc, "error_points": 100 * (est["value"] - ours_acc), "runs": sub_t}
    # 3b. the estimator's error over many subsets, from one set of per-point AutoAttack outcomes
    from rftbench.attacks.autoattack import AutoAttack
    from rftbench.evaluation.margins import logit_margins, random_subset, subset_estimate

    robust = AutoAttack("linf", eps).run(model, x, y, batch_size=args.batch_size).robust.numpy()
    with torch.no_grad():
        logits = model(x)
    margin, correct = logit_margins(logits).numpy(), (logits.argmax(1) == y).numpy()
    errors = {}
    for n_sub in sorted({args.n_subset, 100, 200, 300, 500} - {args.n}):
        errs = []
        for seed in range(100):
            subset = random_subset(args.n, n_sub, seed).numpy()
            errs.append(subset_estimate(margin, correct, subset, robust[subset], n_boot=10, seed=seed)["value"] - robust.mean())
        errs = [100 * e for e in errs]
        errors[n_sub] = {"mean_abs": statistics.fmean(abs(e) for e in errs), "p95_abs": sorted(abs(e) for e in errs)[94],
                         "within_2": sum(abs(e) <= 2 for e in errs) / len(errs)}
        print(f"[3b] n_subset={n_sub}: |error| mean {errors[n_sub]['mean_abs']:.2f} points, 95th percentile "
              f"{errors[n_sub]['p95_abs']:.2f}, within 2 points in {100 * errors[n_sub]['within_2']:.0f}% of 100 subsets")
    figures["subset_errors"] = errors


if __name__ == "__main__":
    main()
