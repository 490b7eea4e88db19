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
    assert p.name == ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16")


def _sync_case(case: str):
    if case == "trades+apgd-ce":
        return Trades(6.0, "kl"), LpThreat("linf", **LinfParams(eps="8/255", attack="apgd-ce", steps=10).model_dump())
    return ClassicAT(), LpThreat("linf", **LinfParams(eps="8/255", attack="pgd", steps=10).model_dump())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("case", ["trades+apgd-ce", "classic+pgd"])
def test_one_fused_step_never_synchronises_on_cuda(precision, case):
    """The ground truth for engine/syncs.py's CPU count: any synchronising CUDA call in the step raises."""
    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("no native bf16 on this GPU")
    loss, threat = _sync_case(case)
    model = _Net().cuda().to(memory_format=torch.channels_last)
    step = FusedStep(model, loss, threat, torch.optim.AdamW(model.parameters(), lr=1e-3), Precision(precision, "cuda"),
                     channels_last=True, check_finite=False)
    x, y = _batch()
    model.train()
    step(x, y, 8 / 255)  # warm-up: lazy optimiser state, cuDNN autotuning
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = step(x, y, 8 / 255)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_training_on_cuda_synchronises_at_most_twice_per_optimiser_step(engine_manager, tmp_path, precision):
    """A whole epoch through the Trainer, every synchronising CUDA call counted (fp16: the GradScaler's inf check)."""
    import warnings

    from rftbench.config import load_config
    from rftbench.engine.trainer import Trainer
    from rftbench.runner import prepare

    config = load_config(overrides=["representation=micro_resnet.test", "dataset=digits_small", "epochs=1", "batch_size=16",
                                    "loss=trades", "threat={name: linf, eps: 4/255}", "device=cuda", f"precision={precision}",
                                    "log_every=1", f"output_dir={tmp_path}"], manager=engine_manager)
    setup = prepare(config, engine_manager)
    trainer = Trainer(config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
                      channels_last=setup.channels_last, progress=False)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    steps = trainer.micro_per_epoch // trainer.accumulation
    assert len(syncs) <= 2 * steps, [str(w.message) for w in syncs[:5]]


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
