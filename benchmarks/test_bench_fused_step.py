"""pytest-benchmark suite of the fused adversarial step (``make bench``; skipped in normal test runs).

The same variants as ``benchmarks/bench_fused_step.py`` (ResNet-18, 32 px, batch 64, PGD-10),
one benchmark each, in one process; compare with ``--benchmark-compare`` or read the table.
The script prints the ratios (× floor, speed-up vs torchattacks) directly.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from benchmarks.bench_fused_step import build_variants, floor_of

pytestmark = pytest.mark.benchmark

ARGS = argparse.Namespace(model="resnet18", size=32, batch=64, steps=10)


@pytest.fixture(scope="module")
def variants():
    return build_variants(ARGS, torch.device("cpu"))


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    return torch.rand(ARGS.batch, 3, ARGS.size, ARGS.size), torch.randint(0, 10, (ARGS.batch,))


@pytest.mark.parametrize("name", ["floor fp32", "default floor", "torchattacks PGD + step (fp32)", "fused fp32", "default"])
def test_step(benchmark, variants, batch, name):
    if name == "default":
        name = next(k for k in variants if k.startswith("fused default"))
    elif name == "default floor":
        name = floor_of(next(k for k in variants if k.startswith("fused default")))
    benchmark.group = f"resnet18 32px batch 64 PGD-10"
    benchmark.name = name
    benchmark.pedantic(variants[name], args=batch, rounds=5, warmup_rounds=1)
