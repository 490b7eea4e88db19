"""Benchmark of per-example outcomes: cost of writing them, their size, and the speed of ``compare``.

    python benchmarks/bench_outcomes.py [--n 1000] [--repeats 5] [--threads 1] [--out figures.json]

1. Overhead: ``rftbench.evaluation.evaluate`` on a small conv net (3×16×16 images, 10 classes)
   under a fast suite (L∞ and L2 APGD-CE, 10 steps; corruptions severity 3), with
   ``output_dir`` so the per-example file is written. The time spent building and writing the
   file (``_write_outcomes``, timed by a wrapper) is divided by the evaluation's total; the
   budget is 2%. The fast suite is the hard case: AutoAttack or the study's suite make the
   evaluation far longer while the file costs the same.
2. Size: bytes of that file per 1,000 points per threat model (budget 50 kB), and of a
   synthetic worst case (random outcomes, 4 threats, AutoAttack codes) at 10,000 points.
3. ``compare`` on two 10,000-point results (5 threat models, one with AutoAttack codes), from
   the record files on disk: reading both files with their sha256 check, the point identity
   check, and the paired tests; the Python API, the command in-process (table printed to a
   buffer) and the command as a new process (interpreter start-up and imports included), next
   to ``rftbench --help`` as a new process (the command line's start-up alone). The budget is 1 s.
4. Recipe-level ``compare`` of two groups of 5 runs × 10,000 points (5 threat models): a results
   folder of 10 records split with ``--group-by recipe``, in Python and as a new process
   (``--only-groups`` times this alone). The budget is 1 s.

Medians over ``--repeats``; the load average is printed, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout, redirect_stderr
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

print = functools.partial(print, flush=True)  # noqa: A001

SUITE = [
    {"name": "linf", "eps": "4/255", "attack": "apgd-ce", "steps": 10},
    {"name": "l2", "eps": 0.5, "attack": "apgd-ce", "steps": 10},
    {"name": "corruptions", "severity": 3},
]


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))

    def forward(self, x):
        return self.net(x)


def data(n: int, seed: int = 0, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(classes, 3, 16, 16, generator=torch.Generator().manual_seed(123))
    y = torch.randint(0, classes, (n,), generator=g)
    x = (templates[y] + 0.15 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)
    return x, y


def train(steps: int = 150) -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for step in range(steps):
        x, y = data(128, seed=1000 + step)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def overhead(n: int, repeats: int) -> dict:
    from rftbench.evaluation import evaluate

    ev = sys.modules["rftbench.evaluation.evaluate"]  # the module (the package exports the function under the same name)

    model = train()
    x, y = data(n, seed=7)
    dataset = TensorDataset(x, y)
    spent: list[float] = []
    original = ev._write_outcomes

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = original(*args, **kwargs)
        spent.append(time.perf_counter() - t0)
        return out

    ev._write_outcomes = timed
    totals, shares, sizes = [], [], []
    try:
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                result = evaluate(model, dataset, SUITE, batch_size=256, output_dir=tmp, progress=False, points={"dataset": "bench"})
                total = time.perf_counter() - t0
            totals.append(total)
            shares.append(spent[-1] / total)
            sizes.append(result["outcomes"]["bytes"])
    finally:
        ev._write_outcomes = original
    threats = len(result["threats"])
    return {
        "n": n,
        "threats": list(result["threats"]),
        "eval_seconds_median": statistics.median(totals),
        "write_seconds_median": statistics.median(spent),
        "write_share_median": statistics.median(shares),
        "file_bytes": sizes[-1],
        "bytes_per_1000_points_per_threat": sizes[-1] / (n / 1000) / threats,
        "clean_acc": result["clean_acc"],
        "accuracies": {k: v["acc"] for k, v in result["threats"].items()},
    }


def synthetic(n: int, seed: int, threats: int = 5, shift: float = 0.0):
    from rftbench.outcomes import Outcomes, labels_digest

    rng = np.random.default_rng(seed)
    shared = np.random.default_rng(0)
    label = shared.integers(0, 10, n)
    difficulty = shared.random(n)
    noise = lambda: rng.random(n)  # noqa: E731
    clean = np.where(rng.random(n) < 0.7, difficulty, noise()) < 0.8 + shift
    correct = {f"t{i}": clean & (np.where(rng.random(n) < 0.7, difficulty, noise()) < 0.45 + shift) for i in range(threats - 1)}
    correct["linf:4/255"] = clean & (noise() < 0.4)
    codes = np.where(clean, np.where(correct["linf:4/255"], -1, rng.integers(1, 5, n)), 0).astype(np.int8)
    index = np.arange(n)
    points = {"dataset": "bench", "card_sha256": "0" * 64, "split": "test", "subsample": "first", "subsample_seed": None,
              "n": n, "labels_sha256": labels_digest(index, label)}
    return Outcomes(index=index, label=label, clean=clean, margin=rng.normal(size=n).astype(np.float32), correct=correct,
                    broken_by={"linf:4/255": (codes, ["apgd-ce", "apgd-t", "fab-t", "square"])}, points=points)


def write_record_pair(root: Path, n: int) -> list[Path]:
    from rftbench.outcomes import write_outcomes
    from rftbench.results import ResultRecord, write_record

    paths = []
    for name, seed, shift in (("a", 1, 0.02), ("b", 2, 0.0)):
        out = synthetic(n, seed, shift=shift)
        (root / name).mkdir()
        ref = write_outcomes(out, root / name)
        ref["file"] = f"{name}/{ref['file']}"
        metrics = {"clean_acc": float(out.clean.mean()), "n_examples": n,
                   "threats": {t: {"acc": float(v.mean()), "n": n} for t, v in out.correct.items()}, "outcomes": ref}
        write_record(ResultRecord(id=name, config={"dataset": "bench"}, metrics=metrics), root / f"{name}.json")
        paths.append(root / f"{name}.json")
    return paths


def write_groups(root: Path, n: int, runs: int) -> Path:
    """Two recipes (TRADES, Classic AT) × ``runs`` seeds, each a record with its per-example file, in ``root``."""
    from rftbench.outcomes import write_outcomes
    from rftbench.results import ResultRecord, write_record

    for r, (loss, shift) in enumerate((("trades", 0.02), ("classic_at", 0.0))):
        for seed in range(runs):
            name = f"{r}{seed:015d}"
            out = synthetic(n, 100 * r + seed, shift=shift)
            (root / name).mkdir()
            ref = write_outcomes(out, root / name)
            ref["file"] = f"{name}/{ref['file']}"
            metrics = {"clean_acc": float(out.clean.mean()), "n_examples": n,
                       "threats": {t: {"acc": float(v.mean()), "n": n} for t, v in out.correct.items()}, "outcomes": ref}
            config = {"dataset": "bench", "loss": loss, "seed": seed, "epochs": 10}
            write_record(ResultRecord(id=name, config=config, metrics=metrics), root / f"{name}.json")
    return root


def group_compare_speed(n: int, runs: int, repeats: int) -> dict:
    """Recipe-level ``compare`` of two groups of ``runs`` runs × ``n`` points (5 threat models), from a results folder."""
    from rftbench.comparison import compare_many
    from rftbench.groups import group_runs

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_groups(Path(tmp), n, runs)
        api, proc, baseline = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            groups = group_runs(folder, ["recipe"])
            result = compare_many(groups[0], groups[1:])
            api.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "rftbench", "compare", str(folder), "-g", "recipe"], capture_output=True, text=True)
            proc.append(time.perf_counter() - t0)
            assert done.returncode == 0, done.stderr
            assert "Two recipes" in done.stdout, done.stdout
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rftbench", "--help"], capture_output=True, check=True)
            baseline.append(time.perf_counter() - t0)
    return {
        "n": n, "runs_per_group": runs, "threats": len(result[0].differences), "level": result[0].level,
        "api_seconds_median": statistics.median(api),
        "cli_new_process_seconds_median": statistics.median(proc),
        "cli_help_new_process_seconds_median": statistics.median(baseline),
    }


def compare_speed(n: int, repeats: int) -> dict:
    from rftbench.cli import main
    from rftbench.comparison import compare_many, load_source

    with tempfile.TemporaryDirectory() as tmp:
        a, b = write_record_pair(Path(tmp), n)
        sizes = [p.with_suffix("").glob("outcomes-*.npz") for p in (a, b)]
        file_bytes = [next(s).stat().st_size for s in sizes]
        api, cli, proc, baseline = [], [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = compare_many(load_source(a), [load_source(b)])
            api.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                try:
                    main(["compare", str(a), str(b)])
                except SystemExit as exit_:
                    assert not exit_.code, exit_.code
            cli.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "rftbench", "compare", str(a), str(b)], capture_output=True, text=True)
            proc.append(time.perf_counter() - t0)
            assert done.returncode == 0, done.stderr
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rftbench", "--help"], capture_output=True, check=True)
            baseline.append(time.perf_counter() - t0)
    return {
        "n": n,
        "threats": len(result[0].differences),
        "file_bytes": file_bytes,
        "bytes_per_1000_points_per_threat": file_bytes[0] / (n / 1000) / 5,
        "api_seconds_median": statistics.median(api),
        "cli_in_process_seconds_median": statistics.median(cli),
        "cli_new_process_seconds_median": statistics.median(proc),
        "cli_help_new_process_seconds_median": statistics.median(baseline),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n-compare", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--group-runs", type=int, default=5, help="runs per group in the recipe-level compare timing")
    parser.add_argument("--only-groups", action="store_true", help="time the recipe-level compare only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from rftbench.plugins import get_manager

    get_manager()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    figures = {"load_average_start": os.getloadavg()}
    if args.only_groups:
        gp = group_compare_speed(args.n_compare, args.group_runs, args.repeats)
        print(f"recipe-level compare, two groups of {args.group_runs} runs × {args.n_compare} points: API {1000 * gp['api_seconds_median']:.0f} ms, "
              f"new process {gp['cli_new_process_seconds_median']:.2f} s (budget 1 s), `rftbench --help` {gp['cli_help_new_process_seconds_median']:.2f} s; "
              f"load average {os.getloadavg()}")
        return
    print(f"1-2. evaluation of {args.n} points with per-example outcomes written ({args.repeats} repeats)…")
    figures["overhead"] = ov = overhead(args.n, args.repeats)
    print(f"   evaluation {ov['eval_seconds_median']:.2f} s, writing the file {1000 * ov['write_seconds_median']:.1f} ms: "
          f"{100 * ov['write_share_median']:.2f}% of the evaluation (budget 2%)")
    print(f"   file {ov['file_bytes']} bytes for {len(ov['threats'])} threats: {ov['bytes_per_1000_points_per_threat'] / 1000:.2f} kB "
          "per 1,000 points per threat (budget 50 kB)")
    print(f"3. compare on two {args.n_compare}-point results ({args.repeats} repeats)…")
    figures["compare"] = cp = compare_speed(args.n_compare, args.repeats)
    print(f"   files {cp['file_bytes']} bytes ({cp['bytes_per_1000_points_per_threat'] / 1000:.2f} kB per 1,000 points per threat, "
          "random outcomes: the worst case for compression)")
    print(f"   API {1000 * cp['api_seconds_median']:.1f} ms, command in-process {1000 * cp['cli_in_process_seconds_median']:.1f} ms, "
          f"command as a new process {cp['cli_new_process_seconds_median']:.2f} s (budget 1 s); "
          f"`rftbench --help` as a new process (start-up alone) {cp['cli_help_new_process_seconds_median']:.2f} s")
    print(f"4. recipe-level compare of two groups of {args.group_runs} runs × {args.n_compare} points ({args.repeats} repeats)…")
    figures["group_compare"] = gp = group_compare_speed(args.n_compare, args.group_runs, args.repeats)
    print(f"   API (reading the folder, grouping, the tests) {1000 * gp['api_seconds_median']:.0f} ms, "
          f"`rftbench compare FOLDER -g recipe` as a new process {gp['cli_new_process_seconds_median']:.2f} s (budget 1 s); "
          f"`rftbench --help` {gp['cli_help_new_process_seconds_median']:.2f} s")
    figures["load_average_end"] = os.getloadavg()
    print(f"load average {os.getloadavg()}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
