"""The ``hf`` architecture: transformers models from a fabricated Hub cache, offline."""

from __future__ import annotations

import pytest
import torch
from transformers import EfficientNetConfig, EfficientNetForImageClassification, MobileViTConfig, MobileViTForImageClassification

from rftbench.cards import InputConfig
from rftbench.errors import RftbenchError
from rftbench.fetch import FetchError
from rftbench_plugins import hf_source

from _fabricate import hf_cache_repo, make_card, offline_hub

# Tiny versions of google/efficientnet-b0 and apple/mobilevit-small (same classes, same loader path).
EFFNET = dict(width_coefficient=0.25, depth_coefficient=0.2, image_size=32, hidden_dim=320, num_labels=5)  # hidden_dim = round_filters(1280)
MOBILEVIT = dict(image_size=64, hidden_sizes=[16, 16, 16], neck_hidden_sizes=[8, 8, 16, 16, 16, 16, 32], num_attention_heads=2, num_labels=5)


def _card(model, repo, config, **extra):
    return make_card(f"{model}.test", "hf", model, weights={"hub_id": repo, "filename": "model.safetensors"}, args={"config": config}, **extra)


def _fabricate(tmp_path, monkeypatch, repo, model):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    folder = tmp_path / "saved"
    model.save_pretrained(folder)  # what the Hub repo holds: config.json + model.safetensors
    hf_cache_repo(tmp_path / "hub", repo, {p.name: p for p in folder.iterdir()})
    offline_hub(monkeypatch, tmp_path / "hub")


def test_efficientnet_loads_offline_and_matches(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = EfficientNetForImageClassification(EfficientNetConfig(**EFFNET)).eval()
    _fabricate(tmp_path, monkeypatch, "google/efficientnet-test", reference)
    card = _card("efficientnet", "google/efficientnet-test", EFFNET)
    backbone = hf_source.build(card, pretrained=True).eval()
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(card.input.mean).view(1, 3, 1, 1)
    std = torch.tensor(card.input.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference.efficientnet(pixel_values=(x - mean) / std).pooler_output
        torch.testing.assert_close(backbone.forward_features(x), expected)
    assert backbone.num_features == expected.shape[1]


def test_mobilevit_flips_channels_like_its_processor(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = MobileViTForImageClassification(MobileViTConfig(**MOBILEVIT)).eval()
    _fabricate(tmp_path, monkeypatch, "apple/mobilevit-test", reference)
    card = _card("mobilevit", "apple/mobilevit-test", MOBILEVIT,
                 input=InputConfig(resolution=64, mean=(0, 0, 0), std=(1, 1, 1), channel_order="bgr"))
    backbone = hf_source.build(card, pretrained=True).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference.mobilevit(pixel_values=x.flip(1)).pooler_output
        torch.testing.assert_close(backbone.forward_features(x), expected)


def test_builds_from_card_config_without_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = hf_source.build(_card("efficientnet", "google/none", EFFNET), pretrained=False)
    assert backbone.forward_features(torch.rand(1, 3, 32, 32)).shape == (1, backbone.num_features)


def test_wrong_model_type_and_missing_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    _fabricate(tmp_path, monkeypatch, "google/efficientnet-test", EfficientNetForImageClassification(EfficientNetConfig(**EFFNET)))
    with pytest.raises(RftbenchError, match="holds a 'efficientnet' model"):
        hf_source.build(_card("mobilevit", "google/efficientnet-test", MOBILEVIT), pretrained=True)
    with pytest.raises(FetchError, match="rftbench zoo fetch"):
        hf_source.build(_card("efficientnet", "google/absent", EFFNET), pretrained=True)
    with pytest.raises(RftbenchError, match="no model type"):
        hf_source.build(_card("efficientnett", "google/absent", {}), pretrained=False)


def test_pytorch_model_bin_as_the_registry_cards_name_it(tmp_path, monkeypatch):
    """google/efficientnet-b0 and apple/mobilevit-small serve config.json + pytorch_model.bin (loaded weights_only)."""
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    torch.manual_seed(0)
    reference = EfficientNetForImageClassification(EfficientNetConfig(**EFFNET)).eval()
    reference.config.save_pretrained(tmp_path / "saved")
    torch.save(reference.state_dict(), tmp_path / "saved" / "pytorch_model.bin")
    hf_cache_repo(tmp_path / "hub", "google/efficientnet-test", {p.name: p for p in (tmp_path / "saved").iterdir()})
    offline_hub(monkeypatch, tmp_path / "hub")
    card = make_card("efficientnet.test", "hf", "efficientnet", weights={"hub_id": "google/efficientnet-test", "filename": "pytorch_model.bin"},
                     args={"config": EFFNET})
    backbone = hf_source.build(card, pretrained=True).eval()
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor(card.input.mean).view(1, 3, 1, 1)
    std = torch.tensor(card.input.std).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(backbone.forward_features(x), reference.efficientnet(pixel_values=(x - mean) / std).pooler_output)
