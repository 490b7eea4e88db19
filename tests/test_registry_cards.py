"""Every card in registry/ validates, names a real architecture, and builds offline with the card's numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from rftbench.cards import DatasetCard, RepresentationCard, load_cards
from rftbench.model import build_backbone
from rftbench_registry import DATASETS_DIR, REPRESENTATIONS_DIR

REPRESENTATIONS = load_cards(REPRESENTATIONS_DIR, "representation")
DATASETS = load_cards(DATASETS_DIR, "dataset") if DATASETS_DIR.is_dir() else []
ZOO_SOURCES = ("timm", "open_clip", "hf", "url")  # the cards this suite checks; others belong to their plugins' tests
ZOO = [c for c in REPRESENTATIONS if c.source in ZOO_SOURCES]
STUDY_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "guide2025_results.csv"


def _id(card) -> str:
    return card.id


@pytest.mark.parametrize("card", ZOO, ids=_id)
def test_card_names_a_real_model(card: RepresentationCard):
    """Fast typo check: the architecture and pretrained tag exist in the source library."""
    if card.source == "timm":
        from timm.models import get_pretrained_cfg, is_model

        assert is_model(card.model), card.model
        cfg = get_pretrained_cfg(card.model)
        assert cfg is not None and cfg.hf_hub_id == card.weights.hub_id, (cfg and cfg.hf_hub_id, card.weights.hub_id)
    elif card.source == "open_clip":
        import open_clip

        assert card.weights.tag in open_clip.list_pretrained_tags_by_model(card.model)
        hf_hub = open_clip.get_pretrained_cfg(card.model, card.weights.tag)["hf_hub"]
        assert hf_hub.rstrip("/") == card.weights.hub_id
    elif card.source == "hf":
        from transformers import AutoConfig

        AutoConfig.for_model(card.model, **card.args.get("config", {}))
    else:
        import timm

        assert timm.is_model(card.model)
        assert card.weights.url or card.weights.hub_id
    assert card.weights.revision or card.weights.sha256 or "rftbench zoo fetch" in (card.provenance.notes or ""), "unpinned card must say how it is pinned"


def _slow_unless_small(cards):
    """Medium and large backbones take seconds each to build on a CPU: they run with the slow tests."""
    fast = ("tiny", "small")
    return [pytest.param(c, id=c.id) if c.size in fast else pytest.param(c, id=c.id, marks=pytest.mark.slow) for c in cards]


@pytest.fixture(scope="module")
def manager():
    from rftbench.plugins import PluginManager

    loaded = PluginManager()
    loaded.load_entrypoints()
    return loaded


@pytest.mark.parametrize("card", _slow_unless_small(ZOO))
def test_card_builds_offline_with_its_numbers(card: RepresentationCard, manager, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = build_backbone(card, pretrained=False, manager=manager)
    params = sum(p.numel() for p in backbone.parameters()) / 1e6
    assert params == pytest.approx(card.params_m, abs=0.01), f"params_m: card {card.params_m}, built {params:.2f}"
    assert backbone.num_features == card.num_features


@pytest.mark.slow
@pytest.mark.parametrize("card", ZOO, ids=_id)
def test_card_forward_gives_its_features(card: RepresentationCard, manager, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = build_backbone(card, pretrained=False, manager=manager).eval()
    with torch.no_grad():
        out = backbone.forward_features(torch.rand(1, 3, card.input.resolution, card.input.resolution))
    assert out.shape == (1, card.num_features)


def test_the_reference_studys_40_backbones_are_all_there():
    names = {c.study_name for c in REPRESENTATIONS if c.study_name}
    assert len(names) == 40
    if STUDY_CSV.is_file():
        with STUDY_CSV.open() as fh:
            published = {row["backbone"] for row in csv.DictReader(fh)}
        assert names == published


def test_every_card_is_contributed_without_problems(builtins):
    assert not [p for p in builtins.problems if "card" in p]
    for card in REPRESENTATIONS:
        assert builtins.get("representation", card.id) == card


@pytest.mark.parametrize("card", DATASETS, ids=_id)
def test_dataset_card_has_a_source(card: DatasetCard, builtins):
    source = builtins.get("dataset_source", card.source)
    assert source.name == card.source
