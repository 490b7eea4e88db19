"""rftbench.engine.hardware and rftbench.engine.optim: precision, device, memory format, optimiser groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rftbench.config import OptimizerConfig
from rftbench.engine import build_optimizer, choose_channels_last, choose_precision, no_decay_names, param_groups, resolve_device, set_lr
from rftbench.engine import hardware
from rftbench.errors import ConfigError
from rftbench.model import Classifier
from rftbench_plugins.offline import MiniResNet


def test_auto_precision_follows_the_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert choose_precision("auto", cpu).name == "bf16"
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    assert choose_precision("auto", cpu).name == "fp32"
    assert choose_precision("fp32", cpu).autocast() is not None
    assert choose_precision("bf16", cpu).dtype == torch.bfloat16


def _fake_gpu(monkeypatch, capability):
    """A CUDA device of ``capability`` whose is_bf16_supported() counts emulation, as torch's does."""
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or capability >= (8, 0))


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"), ((6, 1), "fp16"),
                                                  ((8, 0), "bf16"), ((8, 6), "bf16"), ((9, 0), "bf16")],
                         ids=["V100", "T4", "P40", "A100", "A10", "H100"])
def test_auto_precision_takes_native_bf16_only_from_ampere_on(monkeypatch, capability, expected):
    _fake_gpu(monkeypatch, capability)
    chosen = choose_precision("auto", torch.device("cuda"))
    assert chosen.name == expected and chosen.use_scaler == (expected == "fp16")
    assert hardware.cuda_has_native_bf16(torch.device("cuda")) == (expected == "bf16")


def test_explicit_bf16_on_a_pre_ampere_gpu_warns(monkeypatch, caplog):
    _fake_gpu(monkeypatch, (7, 0))
    with caplog.at_level("WARNING", logger="rftbench"):
        assert choose_precision("bf16", torch.device("cuda")).name == "bf16"
    assert "bf16 is emulated below 8.0" in caplog.text and "precision=fp16" in caplog.text


def test_fp16_needs_cuda_and_cuda_needs_a_gpu(monkeypatch):
    with pytest.raises(ConfigError, match="precision = 'fp16' needs a CUDA GPU"):
        choose_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device = 'cuda', but no CUDA GPU is available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    assert choose_precision("fp16", torch.device("cuda")).use_scaler


def test_channels_last_for_conv_nets():
    assert choose_channels_last("auto", MiniResNet())
    assert not choose_channels_last("auto", nn.Linear(3, 3))
    assert choose_channels_last("on", nn.Linear(3, 3)) and not choose_channels_last("off", MiniResNet())


def test_param_groups_separate_backbone_and_head_and_skip_decay_on_biases_and_norms():
    model = Classifier(MiniResNet(), 10)
    cfg = OptimizerConfig(lr_backbone=1e-4, lr_head=1e-2, weight_decay_backbone=0.05, weight_decay_head=0.01)
    names = {n for n, _ in model.named_parameters()}
    groups = {g["group"]: g for g in param_groups(model, names, cfg)}
    assert set(groups) == {"backbone", "backbone/no_decay", "head", "head/no_decay"}
    assert groups["backbone"]["lr"] == 1e-4 and groups["backbone"]["weight_decay"] == 0.05
    assert groups["head"]["lr"] == 1e-2 and groups["head/no_decay"]["weight_decay"] == 0.0
    skip = no_decay_names(model)
    assert "backbone.stem.1.weight" in skip and "head.bias" in skip and "backbone.stem.0.weight" not in skip
    assert sum(len(g["params"]) for g in groups.values()) == len(names)
    only_head = param_groups(model, {"head.weight", "head.bias"}, cfg)
    assert {g["group"] for g in only_head} == {"head", "head/no_decay"}


def test_optimizers_and_lr_factor():
    model = Classifier(MiniResNet(), 3)
    names = [n for n, _ in model.named_parameters()]
    opt = build_optimizer(model, names, OptimizerConfig(name="sgd", momentum=0.9, nesterov=True))
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    adamw = build_optimizer(model, names, OptimizerConfig(betas=(0.9, 0.95)))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.9, 0.95)
    set_lr(adamw, 0.5)
    assert all(g["lr"] == g["base_lr"] * 0.5 for g in adamw.param_groups)
