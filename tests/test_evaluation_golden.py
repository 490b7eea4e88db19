"""Evaluation prepared once gives what evaluation re-decoding every pass gave (fixture from main, issue 18 item 4)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from rftbench.evaluation.context import EvalContext, prepare_points

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "eval_default.json"


def _script():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_eval_golden
    finally:
        sys.path.pop(0)
    return make_eval_golden


@pytest.mark.slow
def test_the_default_suite_gives_the_numbers_and_outcomes_of_before():
    golden = json.loads(GOLDEN.read_text())
    now = _script().evaluate_default()
    from rftbench.engine.guards import onednn_isa_cap

    # the fixture was made with no oneDNN cap: a capped oneDNN (ONEDNN_MAX_CPU_ISA=AVX2) runs other kernels
    same_cpu = now["cpu"] == golden["cpu"] and onednn_isa_cap() is None
    old, new = golden["result"], now["result"]
    assert now["per_point"]["clean"] == golden["per_point"]["clean"]
    assert new["clean_acc"] == old["clean_acc"]
    assert new["threats"].keys() == old["threats"].keys()
    if same_cpu:  # bit for bit: every number and every point's outcome
        assert new == old
        assert now["per_point"] == golden["per_point"]
    else:  # another CPU's kernels round sums differently: a point or two may flip under attack
        n = old["n_examples"]
        for label, record in old["threats"].items():
            assert abs(new["threats"][label]["acc"] - record["acc"]) <= 2 / n, label


def test_points_are_prepared_once_and_every_pass_slices_them():
    calls = []

    class Counting(TensorDataset):
        def __getitem__(self, i):
            calls.append(i)
            return super().__getitem__(i)

    gen = torch.Generator().manual_seed(0)
    data = Counting(torch.rand(10, 3, 4, 4, generator=gen), torch.arange(10) % 3)
    ctx = EvalContext(model=torch.nn.Identity(), data=data, batch_size=4, device=torch.device("cpu"), seed=0)
    first = [(x.clone(), y.clone(), i.clone()) for x, y, i in ctx.batches()]
    again = list(ctx.batches(torch.tensor([7, 2, 9]), batch_size=2))
    assert len(calls) == 10  # each point decoded once, for both passes
    assert [len(y) for _, y, _ in first] == [4, 4, 2]
    torch.testing.assert_close(torch.cat([x for x, _, _ in first]), data.tensors[0], rtol=0, atol=0)
    assert torch.equal(again[0][0], data.tensors[0][[7, 2]]) and again[1][2].tolist() == [9]
    first_x = next(ctx.batches())[0]
    first_x.zero_()  # a pass changing its batch in place does not reach the prepared points
    assert torch.equal(next(ctx.batches())[0], data.tensors[0][:4])


def test_large_8_bit_images_are_kept_as_uint8_and_come_back_exactly():
    u8 = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    images = u8.float().div(255)  # what to_tensor gives for PIL images
    data = TensorDataset(images, torch.zeros(6, dtype=torch.long))
    small = prepare_points(data)  # under the size threshold: fp32
    large = prepare_points(data, uint8_above=0)
    assert small.images.dtype == torch.float32 and large.images.dtype == torch.uint8
    assert torch.equal(large.take(torch.arange(6)), images)
    noisy = TensorDataset(images + 1e-3, torch.zeros(6, dtype=torch.long))  # not 8-bit: stays fp32 whatever its size
    assert prepare_points(noisy, uint8_above=0).images.dtype == torch.float32
