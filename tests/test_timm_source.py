"""The ``timm`` architecture: offline building, and loading from a fabricated Hub cache."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from rftbench.cards import InputConfig
from rftbench.errors import RftbenchError, UnknownNameError
from rftbench.fetch import FetchError, read_lock
from rftbench.model import Classifier
from rftbench_plugins import timm_source

from _fabricate import hf_cache_repo, json_text, offline_hub, make_card

MODEL = "test_vit.r160_in1k"  # timm's own tiny test model, same loader path as the ViTs of the zoo


def _card(**weights):
    return make_card(
        MODEL, "timm", MODEL, resolution=64, family="attention",
        weights={"hub_id": f"timm/{MODEL}", **weights},
        input=InputConfig(resolution=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    )


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hub cache holding timm/test_vit.r160_in1k as the Hub serves it (with its 1000-class head)."""
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    torch.manual_seed(0)
    reference = timm.create_model(MODEL, pretrained=False)  # full model, classifier included
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    config = {"architecture": "test_vit", "num_classes": 1000, "pretrained_cfg": {"tag": "r160_in1k"}}
    rev = hf_cache_repo(tmp_path / "hub", f"timm/{MODEL}", {"model.safetensors": tmp_path / "model.safetensors", "config.json": json_text(config)})
    offline_hub(monkeypatch, tmp_path / "hub")
    return reference, rev


def test_builds_without_weights_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = timm_source.build(_card(), pretrained=False)
    x = torch.rand(2, 3, 64, 64)
    assert backbone.forward_features(x).shape == (2, backbone.num_features)


def test_loads_hub_weights_offline_and_matches_the_source(hub):
    reference, rev = hub
    backbone = timm_source.build(_card(), pretrained=True).eval()
    reference.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features((x - 0.5) / 0.5), pre_logits=True)
        got = backbone.forward_features(x)
    torch.testing.assert_close(got, expected)
    classifier = Classifier(backbone, num_classes=7)
    assert classifier(x).shape == (2, 7)


def test_pinned_revision_is_used(hub, tmp_path):
    _, rev = hub
    timm_source.build(_card(revision=rev), pretrained=True)
    with pytest.raises(FetchError, match="not in"):
        timm_source.build(_card(revision="0" * 40), pretrained=True)


def test_offline_without_cache_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    offline_hub(monkeypatch, tmp_path / "empty")
    with pytest.raises(FetchError, match="rftbench zoo fetch"):
        timm_source.build(_card(), pretrained=True)


def test_non_safetensors_file_is_refused(hub, tmp_path):
    cache = tmp_path / "hub"
    hf_cache_repo(cache, f"timm/{MODEL}", {"pytorch_model.bin": b"not a pickle"}, revision="1" * 40)
    with pytest.raises(FetchError, match="safetensors"):
        timm_source.build(_card(revision="1" * 40, filename="pytorch_model.bin"), pretrained=True)


def test_wrong_weights_for_the_architecture(hub, tmp_path):
    other = timm.create_model("test_resnet.r160_in1k", pretrained=False)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, tmp_path / "other.safetensors")
    hf_cache_repo(tmp_path / "hub", f"timm/{MODEL}", {"model.safetensors": tmp_path / "other.safetensors"}, revision="2" * 40)
    with pytest.raises(RftbenchError, match="does not fit"):
        timm_source.build(_card(revision="2" * 40), pretrained=True)


def test_unknown_timm_model_lists_close_matches():
    card = make_card("x.y", "timm", "convnext_tinny.fb_in1k")
    with pytest.raises(UnknownNameError, match="convnext_tiny"):
        timm_source.build(card, pretrained=False)


def test_registered_as_architecture(builtins):
    assert builtins.get("architecture", "timm").factory is timm_source.build


def test_sha256_in_lock_is_checked(hub, tmp_path):
    from rftbench.fetch import record_pin

    record_pin(MODEL, sha256="f" * 64)
    with pytest.raises(FetchError, match="does not match"):
        timm_source.build(_card(), pretrained=True)
    assert MODEL in read_lock()
