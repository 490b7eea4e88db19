"""The ``url`` architecture: original robust checkpoints (their key names) converted onto timm, offline."""

from __future__ import annotations

import hashlib

import pytest
import torch

from rftbench.cards import InputConfig
from rftbench.errors import RftbenchError
from rftbench.fetch import ChecksumError, read_lock
from rftbench_plugins import url_source

from _fabricate import hf_cache_repo, make_card, offline_hub

IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
MADRY_ARGS = {
    "checkpoint_key": "model",
    "keep_prefix": "module.model.",
    "normalizer": {"mean": "module.normalizer.new_mean", "std": "module.normalizer.new_std"},
}


def _madry_checkpoint(model: torch.nn.Module, mean=IMAGENET["mean"], std=IMAGENET["std"]) -> dict:
    """A MadryLab `robustness` checkpoint: DataParallel-wrapped AttackerModel with normaliser and attacker copy."""
    state = {}
    for prefix in ("module.model.", "module.attacker.model."):
        state.update({prefix + k: v.clone() for k, v in model.state_dict().items()})
    for prefix in ("module.normalizer.", "module.attacker.normalize."):
        state[prefix + "new_mean"] = torch.tensor(mean).view(3, 1, 1)
        state[prefix + "new_std"] = torch.tensor(std).view(3, 1, 1)
    return {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}, "schedule": None, "epoch": 90}


def _madry_card(**weights):
    return make_card("resnet_test.madry_linf4", "url", "test_resnet", args=MADRY_ARGS, input=InputConfig(resolution=32, **IMAGENET),
                     weights=weights or {"hub_id": "madrylab/robust-imagenet-models", "filename": "resnet50_linf_eps4.0.ckpt"})


@pytest.fixture
def reference():
    import timm

    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False).eval()  # with its classifier, as trained


def _expected(model, x, mean, std):
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.forward_head(model.forward_features((x - mean) / std), pre_logits=True)


def test_madrylab_checkpoint_from_the_hub(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    torch.save(_madry_checkpoint(reference), tmp_path / "ckpt")
    hf_cache_repo(tmp_path / "hub", "madrylab/robust-imagenet-models", {"resnet50_linf_eps4.0.ckpt": tmp_path / "ckpt"})
    offline_hub(monkeypatch, tmp_path / "hub")
    backbone = url_source.build(_madry_card(), pretrained=True).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone.forward_features(x), _expected(reference, x, **IMAGENET))


def test_url_download_verified_and_recorded(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    torch.save(_madry_checkpoint(reference), tmp_path / "served.ckpt")
    digest = hashlib.sha256((tmp_path / "served.ckpt").read_bytes()).hexdigest()
    card = _madry_card(url=(tmp_path / "served.ckpt").as_uri(), sha256=digest, filename="r.ckpt")
    url_source.build(card, pretrained=True)
    assert (tmp_path / "rft" / "weights" / card.id / "r.ckpt").is_file()
    # a card without a sha256: the first download's hash is recorded, then enforced
    unpinned = _madry_card(url=(tmp_path / "served.ckpt").as_uri(), filename="u.ckpt", trust_on_first_fetch=True)
    url_source.build(unpinned, pretrained=True)
    assert read_lock()[unpinned.id]["sha256"] == digest
    (tmp_path / "rft" / "weights" / card.id / "u.ckpt").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="was removed"):
        url_source.build(unpinned, pretrained=True)
    assert not (tmp_path / "rft" / "weights" / card.id / "u.ckpt").exists()


def test_url_sha256_mismatch_leaves_nothing(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    torch.save(_madry_checkpoint(reference), tmp_path / "served.ckpt")
    card = _madry_card(url=(tmp_path / "served.ckpt").as_uri(), sha256="0" * 64, filename="r.ckpt")
    with pytest.raises(ChecksumError, match="does not match"):
        url_source.build(card, pretrained=True)
    folder = tmp_path / "rft" / "weights" / card.id
    assert not any(folder.iterdir())  # neither the file nor a .partial left behind


def test_normaliser_disagreeing_with_card_is_an_error(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    torch.save(_madry_checkpoint(reference, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)), tmp_path / "ckpt")
    hf_cache_repo(tmp_path / "hub", "madrylab/robust-imagenet-models", {"resnet50_linf_eps4.0.ckpt": tmp_path / "ckpt"})
    offline_hub(monkeypatch, tmp_path / "hub")
    with pytest.raises(RftbenchError, match="trained with mean"):
        url_source.build(_madry_card(), pretrained=True)


def test_pickled_objects_are_refused(tmp_path, monkeypatch):
    import argparse

    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    torch.save({"model": {}, "args": argparse.Namespace(arch="resnet50")}, tmp_path / "ckpt")
    hf_cache_repo(tmp_path / "hub", "madrylab/robust-imagenet-models", {"resnet50_linf_eps4.0.ckpt": tmp_path / "ckpt"})
    offline_hub(monkeypatch, tmp_path / "hub")
    with pytest.raises(RftbenchError, match="cannot be loaded safely"):
        url_source.build(_madry_card(), pretrained=True)


def _singh_card(model, stem, **input_):
    args = {"strip_prefixes": ["base_model."], "stem": stem}
    if input_:
        args.update({"normalizer": {"mean": "base_model.normalize.mean", "std": "base_model.normalize.std"},
                     "strip_prefixes": ["base_model.", "model."], "drop_prefixes": ["normalize."]})
    return make_card(f"{model}_cvst.singh_linf4", "url", model, args=args,
                     input=InputConfig(resolution=32, **(input_ or {"mean": (0, 0, 0), "std": (1, 1, 1)})),
                     weights={"url": "https://example.invalid/ckpt.pt", "trust_on_first_fetch": True, "filename": "ckpt.pt"})


@pytest.mark.parametrize("model,stem,normalised", [
    ("test_convnext", {"at": "stem", "widths": [8, 24], "strides": [2, 2]}, False),  # ConvNeXt-T/B-CvSt layout, raw pixels
    ("test_vit", {"at": "patch_embed.proj", "widths": [8, 16, 32, 32], "strides": [2, 2, 2, 2], "out": 64}, True),  # ViT-S-CvSt, embedded normaliser
])
def test_singh_convstem_checkpoint(model, stem, normalised, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    card = _singh_card(model, stem, **(IMAGENET if normalised else {}))
    torch.manual_seed(0)
    trained = url_source.create(card)  # the architecture the checkpoint was trained as
    for p in trained.parameters():
        p.data.normal_(0, 0.05)
    state = {("base_model.model." if normalised else "base_model.") + k: v for k, v in trained.state_dict().items()}
    state["base_model.head.fc.weight" if model == "test_convnext" else "base_model.model.head.weight"] = torch.zeros(10, trained.num_features)
    if normalised:
        state["base_model.normalize.mean"] = torch.tensor(IMAGENET["mean"]).view(1, 3, 1, 1)
        state["base_model.normalize.std"] = torch.tensor(IMAGENET["std"]).view(1, 3, 1, 1)
    folder = tmp_path / "rft" / "weights" / card.id
    folder.mkdir(parents=True)
    torch.save(state, folder / "ckpt.pt")  # as `rftbench zoo fetch` leaves it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = url_source.build(card, pretrained=True).eval()
    x = torch.rand(2, 3, 32, 32)
    mean, std = (IMAGENET["mean"], IMAGENET["std"]) if normalised else ((0, 0, 0), (1, 1, 1))
    torch.testing.assert_close(backbone.forward_features(x), _expected(trained.eval(), x, mean, std))


def test_stem_keys_must_match(tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    card = _singh_card("test_convnext", {"at": "stem", "widths": [8, 24], "strides": [2, 2]})
    plain = url_source.create(card.model_copy(update={"args": {}}))  # no ConvStem: the patchify stem's keys
    folder = tmp_path / "rft" / "weights" / card.id
    folder.mkdir(parents=True)
    torch.save({"base_model." + k: v for k, v in plain.state_dict().items()}, folder / "ckpt.pt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RftbenchError, match="does not fit"):
        url_source.build(card, pretrained=True)
