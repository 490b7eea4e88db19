"""The CUDA paths: AMP (bf16, fp16 with a GradScaler), torch.compile, a run and an evaluation on the GPU.

Skipped without a CUDA GPU (CI has none); ``benchmarks/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rftbench.engine import FusedStep, Precision, choose_precision
from rftbench_plugins.losses import ClassicAT, Trades
from rftbench_plugins.offline import MiniResNet
from rftbench_plugins.threats import LinfParams, LpThreat
from tests.plugins.engine_cards import engine_manager  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run benchmarks/gpu_check.sh on one)")


def _threat() -> LpThreat:
    return LpThreat("linf", **LinfParams(eps="8/255", attack="apgd-ce", steps=5).model_dump())


def _batch(device: str = "cuda") -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(64, 3, 32, 32, generator=gen).to(device), torch.randint(0, 10, (64,), generator=gen).to(device)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone, self.head = MiniResNet(), nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.backbone(x))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("loss", [ClassicAT, lambda: Trades(1.0, "ce")])
def test_the_fused_step_trains_on_cuda_in_every_precision(precision, loss):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    model = _Net().cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    p = Precision(precision, "cuda")
    scaler = torch.amp.GradScaler("cuda") if p.use_scaler else None
    step = FusedStep(model, loss(), _threat(), opt, p, channels_last=True, scaler=scaler)
    x, y = _batch()
    losses = []
    for _ in range(15):
        model.train()
        step.refresh()
        losses.append(float(step(x, y, 8 / 255).loss))
    assert all(torch.isfinite(q).all() for q in model.parameters())
    assert losses[-1] < 0.8 * losses[0], losses


def test_auto_precision_on_cuda_is_amp():
    p = choose_precision("auto", torch.device("cuda"))
    assert p.name == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")


def test_a_compiled_run_on_cuda_completes_and_records_the_gpu(engine_manager, tmp_path):
    import rftbench

    record = rftbench.run({"representation": "micro_resnet.test", "dataset": "digits_small", "loss": "trades", "epochs": 2,
                           "device": "cuda", "compile": True, "output_dir": str(tmp_path / "runs"),
                           "evaluation": [{"name": "linf", "eps": "4/255", "attack": "apgd-ce"}]}, manager=engine_manager)
    assert record.provenance["device_type"] == "cuda"
    assert record.provenance["precision"] in ("bf16", "fp16")
    assert 0.0 < record.metrics["clean_acc"] <= 1.0


def test_evaluation_on_cuda_agrees_with_cpu(engine_manager):
    from torch.utils.data import TensorDataset

    from rftbench.evaluation import evaluate

    model = _Net().eval()
    x, y = _batch("cpu")
    data = TensorDataset(x, y)
    suite = [{"name": "linf", "eps": "2/255", "attack": "apgd-ce", "steps": 10}]
    cpu = evaluate(model, data, suite, device="cpu", manager=engine_manager, progress=False)
    gpu = evaluate(model.cuda(), data, suite, device="cuda", manager=engine_manager, progress=False)
    assert gpu["clean_acc"] == cpu["clean_acc"]
    (label,) = cpu["threats"]
    assert abs(gpu["threats"][label]["acc"] - cpu["threats"][label]["acc"]) <= 2 / 64  # float order may flip a point or two
