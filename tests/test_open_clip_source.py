"""The ``open_clip`` architecture, loaded from a fabricated LAION-style Hub repo offline."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from rftbench.cards import CLIP_MEAN, CLIP_STD, InputConfig
from rftbench.errors import RftbenchError, UnknownNameError
from rftbench_plugins import open_clip_source

from _fabricate import hf_cache_repo, make_card, offline_hub

NAME = "rftbench-test-convnext-clip"
#: Same structure as open_clip's convnext_base_w config (a timm ConvNeXt tower with a linear
#: projection), scaled down to timm's test_convnext.
CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"timm_model_name": "test_convnext", "timm_model_pretrained": False, "timm_pool": "", "timm_proj": "linear", "image_size": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}
REPO = "laion/CLIP-test-convnext"


@pytest.fixture(scope="module", autouse=True)
def tiny_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oc")
    (folder / f"{NAME}.json").write_text(json.dumps(CONFIG))
    open_clip.add_model_config(folder)


def _card(**weights):
    return make_card(
        "convnext_test.laion_test", "open_clip", NAME, family="convolutional",
        weights={"hub_id": REPO, "filename": "open_clip_pytorch_model.bin", **weights},
        input=InputConfig(resolution=32, mean=CLIP_MEAN, std=CLIP_STD),
        pretraining={"strategy": "clip", "data": "laion2b"},
    )


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    torch.manual_seed(0)
    reference = open_clip.create_model(NAME)
    torch.save(reference.state_dict(), tmp_path / "ckpt.bin")
    hf_cache_repo(
        tmp_path / "hub", REPO,
        {"open_clip_pytorch_model.bin": tmp_path / "ckpt.bin", "open_clip_config.json": json.dumps({"model_cfg": CONFIG})},
    )
    offline_hub(monkeypatch, tmp_path / "hub")
    return reference


def test_builds_without_weights():
    backbone = open_clip_source.build(_card(), pretrained=False)
    assert backbone.num_features == 16
    assert backbone.forward_features(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_loads_checkpoint_and_matches_encode_image(hub):
    reference = hub.eval()
    backbone = open_clip_source.build(_card(), pretrained=True).eval()
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(backbone.forward_features(x), reference.encode_image((x - mean) / std))


def test_pickled_objects_are_refused(hub, tmp_path):
    import argparse  # any non-tensor object: unpickling it could run code, so it is refused

    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1)}, tmp_path / "evil.bin")
    hf_cache_repo(tmp_path / "hub", REPO, {"open_clip_pytorch_model.bin": tmp_path / "evil.bin"}, revision="3" * 40)
    with pytest.raises(RftbenchError, match="safely"):
        open_clip_source.build(_card(revision="3" * 40), pretrained=True)


def test_unknown_model_config():
    card = make_card("x.y", "open_clip", "convnext_base_ww")
    with pytest.raises(UnknownNameError, match="convnext_base_w"):
        open_clip_source.build(card, pretrained=False)
