"""plugins/protocols.py: LP, FFT, LP-FT, partial-k and block discovery."""

from __future__ import annotations

import pytest
from torch import nn

from rftbench.errors import ConfigError
from rftbench.model import Classifier
from rftbench_plugins.protocols import FullFineTuning, LinearProbe, LPFT, Partial, find_blocks


class TinyBackbone(nn.Module):
    num_features = 8

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)) for _ in range(3)])
        self.norm = nn.BatchNorm2d(4)
        self.proj = nn.Linear(4, 8)

    def forward_features(self, x):
        return self.proj(self.norm(self.blocks(self.stem(x))).mean((2, 3)))


@pytest.fixture
def model():
    return Classifier(TinyBackbone(), 3)


def test_specs(builtins):
    assert set(builtins.names("protocol")) >= {"lp", "fft", "lp-ft", "partial"}
    assert builtins.get("protocol", "partial").validate_params({}).k == 1


def test_lp_and_fft(model):
    assert LinearProbe().trainable(model, 0, 5) == {"head.weight", "head.bias"}
    assert FullFineTuning().trainable(model, 0, 5) == {n for n, _ in model.named_parameters()}


def test_lp_ft_switches_after_the_probe(model):
    p = LPFT(lp_epochs="40%")
    assert p.trainable(model, 1, 5) == {"head.weight", "head.bias"}
    assert p.trainable(model, 2, 5) == {n for n, _ in model.named_parameters()}
    assert LPFT(lp_epochs=3).trainable(model, 2, 5) == {"head.weight", "head.bias"}


def test_partial_trains_the_last_blocks_what_follows_and_the_head(model):
    names = Partial(k=1).trainable(model, 0, 5)
    assert names == {
        "backbone.blocks.2.0.weight", "backbone.blocks.2.0.bias", "backbone.blocks.2.1.weight", "backbone.blocks.2.1.bias",
        "backbone.norm.weight", "backbone.norm.bias", "backbone.proj.weight", "backbone.proj.bias",
        "head.weight", "head.bias",
    }
    assert "backbone.blocks.1.0.weight" in Partial(k=2).trainable(model, 0, 5)
    assert Partial(k=0).trainable(model, 0, 5) == {"head.weight", "head.bias"}
    assert "backbone.stem.weight" not in Partial(k=3).trainable(model, 0, 5)


def test_partial_with_too_many_blocks_names_the_field(model):
    with pytest.raises(ConfigError, match=r"protocol.k = 4, .* has 3 blocks .*use k ≤ 3"):
        Partial(k=4).trainable(model, 0, 5)


def test_find_blocks_on_common_layouts():
    timm = pytest.importorskip("timm")
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=0)
    assert [n for n, _ in find_blocks(resnet)] == ["layer1", "layer2", "layer3", "layer4"]
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, depth=3)
    assert [n for n, _ in find_blocks(vit)] == ["blocks.0", "blocks.1", "blocks.2"]
    flat = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU(), nn.Conv2d(3, 3, 1))
    assert [n for n, _ in find_blocks(flat)] == ["0", "2"]
