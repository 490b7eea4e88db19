"""Parameter-efficient protocols (plugins/_peft.py): lora, lp-lora, bitfit, adapter, generic peft.

Targets per architecture family, what learns, bad input before training, and end to end:
record counts, exact resume, load_model, `rftbench eval`, AutoAttack and the metrics on a LoRA model.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from rftbench import load_model, run
from rftbench.engine import RunInterrupted, prepare_model
from rftbench.errors import ConfigError
from rftbench.model import Classifier
from rftbench_plugins import _peft
from rftbench_plugins._offline_nets import MiniResNet
from tests.cli_helpers import run_cli
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture
from tests.test_run import tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class NoBias(nn.Module):
    """A backbone without any bias (convolutions without bias, no normalisation)."""

    num_features = 4

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.Conv2d(4, 4, 3, bias=False))

    def forward_features(self, x):
        return self.blocks(x).mean((2, 3))


def mini() -> Classifier:
    torch.manual_seed(0)
    return Classifier(MiniResNet(), 5)


def build(builtins, name: str, **params):
    return builtins.get("protocol", name).build(**params)


# --------------------------------------------------------------------------- specs and bad parameters


def test_the_protocols_are_builtin_specs(builtins):
    assert set(builtins.names("protocol")) >= {"lora", "lp-lora", "bitfit", "adapter", "peft"}
    assert builtins.get("protocol", "lora").validate_params({}).r == 8
    assert builtins.get("protocol", "peft").validate_params({"method": "LoHa", "config": {"r": 4}}).method == "loha"


@pytest.mark.parametrize("params, field", [({"r": 0}, "r"), ({"r": True}, "r"), ({"alpha": 0}, "alpha"),
                                           ({"target_modules": []}, "target_modules")])
def test_lora_parameters_are_validated(builtins, params, field):
    with pytest.raises(ValidationError, match=field):
        builtins.get("protocol", "lora").validate_params(params)


def test_an_unknown_peft_method_lists_close_matches(builtins):
    with pytest.raises(ValidationError, match=r"peft knows no method 'lorra'; did you mean: lora"):
        builtins.get("protocol", "peft").validate_params({"method": "lorra"})


def test_a_peft_config_is_validated_against_peft_s_class(builtins):
    spec = builtins.get("protocol", "peft")
    with pytest.raises(ValidationError, match=r"config.lora_alfa: LoraConfig has no field 'lora_alfa'; did you mean: lora_alpha"):
        spec.validate_params({"method": "lora", "config": {"lora_alfa": 4}})
    with pytest.raises(ValidationError, match=r"config.r: .*integer"):
        spec.validate_params({"method": "lora", "config": {"r": "four"}})
    with pytest.raises(ValidationError, match=r"config.target_modules: not settable here"):
        spec.validate_params({"method": "lora", "config": {"target_modules": ["qkv"]}})
    with pytest.raises(ValidationError, match=r"prompt-learning method"):
        spec.validate_params({"method": "prompt_tuning"})
    assert spec.validate_params({"method": "lora", "config": {"r": "4"}}).config == {"r": 4}


@pytest.mark.parametrize("name, params", [("lora", {}), ("lp-lora", {}), ("peft", {"method": "lora"})])
def test_peft_not_installed_gives_the_pip_command(builtins, monkeypatch, name, params):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    with pytest.raises(ValidationError, match=r"needs the Hugging Face peft library.*pip install 'peft>=0.13'"):
        builtins.get("protocol", name).validate_params(params)
    with pytest.raises(ConfigError, match=r"pip install 'peft>=0.13'"):
        _peft.import_peft(name)


# --------------------------------------------------------------------------- target modules per family


def _timm(name, **kw):
    import timm

    return timm.create_model(name, pretrained=False, num_classes=0, **kw)


def test_default_targets_per_family():
    vit = _timm("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2)
    family, names = _peft.default_targets(vit, "lora")
    assert family.startswith("ViT") and names == [f"blocks.{i}.{m}" for i in range(2) for m in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")]
    assert "patch_embed.proj" not in names  # `proj` alone would catch the patch embedding
    assert _peft.default_targets(vit, "adapter")[1] == ["blocks.0.attn.proj", "blocks.0.mlp.fc2", "blocks.1.attn.proj", "blocks.1.mlp.fc2"]
    convnext = _timm("convnext_atto")
    family, names = _peft.default_targets(convnext, "lora")
    assert family.startswith("ViT, DeiT, ConvNeXt") and all(n.endswith(("mlp.fc1", "mlp.fc2")) for n in names) and len(names) == 24
    resnet = _timm("resnet18")
    family, names = _peft.default_targets(resnet, "lora")
    assert family.startswith("ResNets") and "conv1" not in names and "layer1.0.conv1" in names and len(names) == 16
    assert not any("downsample" in n for n in names)
    assert _peft.default_targets(resnet, "adapter")[1][:2] == ["layer1.0.conv2", "layer1.1.conv2"]
    family, names = _peft.default_targets(MiniResNet(), "lora")
    assert family.startswith("ResNets") and names == ["stages.0.0.conv1", "stages.0.0.conv2", "stages.1.0.conv1",
                                                      "stages.1.0.conv2", "stages.2.0.conv1", "stages.2.0.conv2"]
    family, names = _peft.default_targets(NoBias(), "lora")
    assert family == "generic" and names == ["blocks.0", "blocks.1"]


def test_default_targets_for_open_clip_and_hf():
    from open_clip.transformer import VisionTransformer
    from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTModel

    clip = VisionTransformer(image_size=32, patch_size=8, width=32, layers=2, heads=2, mlp_ratio=2.0, output_dim=16)
    family, names = _peft.default_targets(clip, "lora")
    assert family == "open_clip ViT" and names[:3] == ["transformer.resblocks.0.attn", "transformer.resblocks.0.mlp.c_fc",
                                                       "transformer.resblocks.0.mlp.c_proj"]
    vit = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8))
    family, names = _peft.default_targets(vit, "lora")
    assert len(names) == 12 and not any("pooler" in n or "patch" in n for n in names)
    assert {n.rsplit(".", 1)[-1] for n in names} in ({"q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"},  # transformers ≥ 5
                                                     {"query", "key", "value", "dense"})
    resnet = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"))
    family, names = _peft.default_targets(resnet, "lora")
    assert family.startswith("ResNets") and names and all(".layers." in n and n.endswith("convolution") for n in names)


def test_lora_injects_into_the_backbone_and_trains_adapters_and_head(builtins):
    model = mini()
    x = torch.rand(4, 3, 32, 32)
    model.eval()
    before = model(x)
    protocol = build(builtins, "lora", r=4)
    added = prepare_model(model, protocol)
    assert added > 0 and prepare_model(model, protocol) == 0  # once only
    assert torch.equal(model(x), before)  # B = 0: the prepared model computes what the pretrained one does
    names = protocol.trainable(model, 0, 3)
    assert {"head.weight", "head.bias"} <= names
    adapters = names - {"head.weight", "head.bias"}
    assert adapters and all(".lora_A." in n or ".lora_B." in n for n in adapters)
    assert isinstance(model.head, nn.Linear)  # the head is never wrapped
    assert sum(model.get_parameter(n).numel() for n in adapters) == added


def test_lp_lora_probes_first(builtins):
    model = mini()
    protocol = build(builtins, "lp-lora", r=2, lp_epochs=2)
    prepare_model(model, protocol)
    assert protocol.trainable(model, 1, 4) == {"head.weight", "head.bias"}
    assert len(protocol.trainable(model, 2, 4)) > 2


def test_a_target_matching_nothing_names_the_layers_that_exist(builtins):
    with pytest.raises(ConfigError, match=r"target_modules: 'qkv' matches no layer .* Layers that exist .*stages\.0\.0\.conv1"):
        prepare_model(mini(), build(builtins, "lora", target_modules=["qkv"]))
    model = mini()
    prepare_model(model, build(builtins, "lora", r=2, target_modules=["conv2", r"stages\.2\.0\.conv1"]))
    wrapped = {n.split(".lora_")[0] for n, _ in model.named_parameters() if ".lora_" in n}
    assert wrapped == {"backbone.stages.0.0.conv2", "backbone.stages.1.0.conv2", "backbone.stages.2.0.conv2", "backbone.stages.2.0.conv1"}


def test_a_rank_above_a_layer_s_width_is_refused(builtins):
    with pytest.raises(ConfigError, match=r"protocol.r = 32 is larger than the width .* stages.0.0.conv1 \(width 16\); use r ≤ 16"):
        prepare_model(mini(), build(builtins, "lora", r=32))
    with pytest.raises(ConfigError, match=r"protocol.bottleneck = 20 .* use bottleneck ≤ 16"):
        prepare_model(mini(), build(builtins, "adapter", bottleneck=20))


def test_bitfit_trains_biases_and_refuses_a_backbone_without(builtins):
    model = mini()
    names = build(builtins, "bitfit").trainable(model, 0, 2)
    assert names == {n for n, _ in model.named_parameters() if n.endswith("bias")} | {"head.weight"}  # BN biases (convs have none), head
    with pytest.raises(ConfigError, match=r"'bitfit' .* MiniResNet has no bias outside its normalisation layers; set protocol.include_norm=true"):
        build(builtins, "bitfit", include_norm=False).trainable(model, 0, 2)
    with pytest.raises(ConfigError, match=r"'bitfit' .* NoBias has no bias; choose lora, adapter or lp"):
        build(builtins, "bitfit").trainable(Classifier(NoBias(), 3), 0, 2)


def test_adapters_start_as_the_identity_and_train(builtins):
    vit = _timm("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2)
    vit.forward_features_timm = vit.forward_features
    model = Classifier(_Wrap(vit), 3).eval()
    x = torch.rand(2, 3, 32, 32)
    before = model(x)
    protocol = build(builtins, "adapter", bottleneck=8)
    prepare_model(model, protocol)
    assert torch.allclose(model(x), before, atol=1e-6)
    names = protocol.trainable(model, 0, 1)
    assert "backbone.vit.blocks.0.attn.proj.up.weight" in names and "backbone.vit.blocks.0.attn.proj.base.weight" not in names
    conv = mini().eval()
    y = conv(torch.rand(2, 3, 32, 32))
    prepare_model(conv, build(builtins, "adapter", bottleneck=4))
    assert conv.backbone.stages[0][0].conv2.out_channels == 16  # attributes reach the wrapped layer
    assert isinstance(conv.backbone.stages[0][0].conv2, _peft.BottleneckAdapter)
    assert conv(torch.rand(2, 3, 32, 32)).shape == y.shape


class _Wrap(nn.Module):
    def __init__(self, vit):
        super().__init__()
        self.vit = vit
        self.num_features = vit.num_features

    def forward_features(self, x):
        return self.vit(x)


@pytest.mark.parametrize("method, config", [("loha", {"r": 2}), ("lokr", {"r": 2}), ("ia3", {})])
def test_generic_peft_methods_on_a_conv_backbone(builtins, method, config):
    model = mini().eval()
    x = torch.rand(2, 3, 32, 32)
    protocol = build(builtins, "peft", method=method, config=config)
    prepare_model(model, protocol)
    names = protocol.trainable(model, 0, 1)
    assert len(names) > 2 and {"head.weight", "head.bias"} <= names
    loss = model(x).square().sum()
    loss.backward()
    assert all(model.get_parameter(n).grad is not None for n in names if n.startswith("backbone."))


def test_generic_peft_refusals_become_config_errors(builtins):
    # VeRA adapts Linear layers only: on a ResNet's convolutions peft refuses, named
    with pytest.raises(ConfigError, match=r"peft's 'vera' cannot adapt this backbone"):
        prepare_model(mini(), build(builtins, "peft", method="vera", config={"r": 4}))


# --------------------------------------------------------------------------- end to end


def _lora(tmp_path, **extra):
    values = {"protocol": "{name: lora, r: 2}", **extra}
    return tiny(tmp_path, **values)


def test_a_lora_run_records_counts_and_loads_back(engine_manager, tmp_path, capsys):
    record = run(overrides=_lora(tmp_path), manager=engine_manager)
    counts = record.parameters
    assert 0 < counts["trainable"] < counts["total"] and counts["added"] > 0
    assert counts["share"] == pytest.approx(counts["trainable"] / counts["total"], abs=1e-6)
    run_dir = tmp_path / "runs" / record.id
    info = json.loads((run_dir / "model.json").read_text())
    assert info["protocol"] == {"name": "lora", "r": 2, "alpha": 8.0, "dropout": 0.0, "target_modules": None}
    model = load_model(run_dir, manager=engine_manager)
    assert any(".lora_A." in n for n, _ in model.named_parameters())  # unmerged: the adapters as trained
    code, out, err = run_cli(capsys, "eval", str(run_dir), "-t", "linf:4/255:pgd", "-n", "32", "--json")
    assert code == 0, err
    assert json.loads(out)["clean_acc"] == pytest.approx(record.metrics["clean_acc"], abs=1e-9)
    code, out, err = run_cli(capsys, "eval", str(run_dir / "model.safetensors"), "-t", "linf:4/255:pgd", "-n", "32", "--json")
    assert code == 0, err  # the weights file beside its model.json: the LoRA layers are added before loading
    assert json.loads(out)["clean_acc"] == pytest.approx(record.metrics["clean_acc"], abs=1e-9)
    from rftbench.cli.run import summary_table
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(summary_table(record, None, 120))
    import re

    assert re.search(rf"trainable parameters\s*│\s*{counts['trainable']:,} of {counts['total']:,} \(", console.export_text())
    fft = run(overrides=tiny(tmp_path), manager=engine_manager)
    assert fft.parameters["trainable"] == fft.parameters["total"] and fft.parameters["added"] == 0


def test_a_lora_run_resumes_exactly(engine_manager, tmp_path):
    whole = run(overrides=_lora(tmp_path / "a"), manager=engine_manager)

    def ctrl_c(trainer, epoch, step):
        if (epoch, step) == (0, 2):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RunInterrupted):
        run(overrides=_lora(tmp_path / "b"), manager=engine_manager, callback=ctrl_c)
    ckpt = next((tmp_path / "b" / "runs").glob("*/checkpoints"))
    from safetensors.torch import load_file

    latest = ckpt / (ckpt / "LATEST").read_text().strip() / "model.safetensors"
    assert any(".lora_B." in k for k in load_file(str(latest)))  # the checkpoint holds the adapter weights
    resumed = run(overrides=_lora(tmp_path / "b"), manager=engine_manager)
    assert resumed.provenance["resumed_from_steps"]
    assert resumed.provenance["model_sha256"] == whole.provenance["model_sha256"]
    assert resumed.curves["train_loss"] == whole.curves["train_loss"]


def test_bad_lora_input_stops_before_training(engine_manager, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", *sum((["--set", s] for s in _lora(tmp_path, protocol="{name: lora, r: 64}")), []))
    assert code == 2 and "error:" in err and "protocol.r = 64" in err and "Traceback" not in err
    assert not list((tmp_path / "runs").glob("*.json"))
    code, _, err = run_cli(capsys, "run", *sum((["--set", s] for s in _lora(tmp_path, protocol="{name: lora, r: 0}")), []))
    assert code == 2 and "error:" in err and "protocol.r" in err
    code, _, err = run_cli(capsys, "run", *sum((["--set", s] for s in _lora(tmp_path, protocol="{name: peft, method: lorra}")), []))
    assert code == 2 and "did you mean: lora" in err


@pytest.mark.slow
def test_autoattack_and_every_metric_run_on_a_lora_model(engine_manager, tmp_path):
    suite = ("[{name: linf, eps: 4/255, attack: autoattack, steps: 3}, {name: l2, eps: 0.25, steps: 3}, expected_robustness, "
             "adversarial_sensitivity, {name: margin_consistency, fab_steps: 10, n: 8}]")
    record = run(overrides=_lora(tmp_path, evaluation=suite, n_eval=8, epochs=1), manager=engine_manager)
    threats = record.metrics["threats"]
    assert threats["linf:4/255"]["attack"] == "autoattack" and "l2:0.25" in threats
    labels = sorted(record.metrics["metrics"])
    assert [label.split(":")[0] for label in labels] == ["adversarial_sensitivity", "expected_robustness", "margin_consistency"]


@pytest.mark.parametrize("name, params", [("lora", {"r": 2}), ("lp-lora", {"r": 2, "lp_epochs": 0}), ("bitfit", {}),
                                          ("adapter", {"bottleneck": 2}), ("peft", {"method": "loha", "config": {"r": 2}})])
def test_each_protocol_passes_the_plugin_contract_check(tmp_path, monkeypatch, name, params):
    from rftbench.testing import check

    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = check("protocol", name, params, workdir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert report.ok, str(report)


def test_the_docs_table_names_every_family():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert all(f"| {family.name} |" in text for family in _peft.FAMILIES)


class _Features(nn.Module):
    """A library model as a representation: its pooled output (a tuple's first item, HF's pooler_output) flattened."""

    def __init__(self, body, num_features):
        super().__init__()
        self.body, self.num_features = body, num_features

    def forward_features(self, x):
        out = self.body(x)
        out = out[0] if isinstance(out, tuple) else getattr(out, "pooler_output", out)
        return out.flatten(1)


def _family_backbones():
    import timm
    from open_clip.transformer import VisionTransformer
    from transformers import ConvNextConfig, ConvNextModel, ResNetConfig, ResNetModel, ViTConfig, ViTModel

    return {
        "open_clip-vit": _Features(VisionTransformer(image_size=32, patch_size=8, width=32, layers=2, heads=2, mlp_ratio=2.0,
                                                     output_dim=16), 16),
        "timm-convnext": _Features(timm.create_model("convnext_atto", pretrained=False, num_classes=0), 320),
        "hf-vit": _Features(ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                               image_size=32, patch_size=8)), 32),
        "hf-resnet": _Features(ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")), 16),
        "hf-convnext": _Features(ConvNextModel(ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)), 16),
    }


@pytest.mark.parametrize("name", ["lora", "adapter"])
def test_lora_and_adapters_work_on_every_family(builtins, name):
    """Injected with the defaults, the model computes what it did, and every added parameter gets a gradient."""
    params = {"r": 2} if name == "lora" else {"bottleneck": 2}
    for family, backbone in _family_backbones().items():
        torch.manual_seed(0)
        model = Classifier(backbone, 3).eval()
        x = torch.rand(2, 3, 32, 32)
        before = model(x)
        protocol = build(builtins, name, **params)
        assert prepare_model(model, protocol) > 0, family
        out = model(x)
        assert torch.allclose(out, before, atol=1e-5), family
        names = protocol.trainable(model, 0, 1)
        out.sum().backward()
        late = [n for n in names if ".lora_B." in n or ".up." in n]  # zero-initialised: they get the first gradients
        assert late and all(model.get_parameter(n).grad is not None for n in late), family
