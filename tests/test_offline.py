"""plugins/offline.py and plugins/_recipes.py: offline datasets, mini backbones, pretraining recipes."""

from __future__ import annotations

import json

import pytest
import torch

import rftbench_plugins._recipes as recipes
from rftbench.model import build_classifier
from rftbench_plugins.offline import SHAPES, MiniResNet, generate_shapes, load_digits_images
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture


def test_cards_are_contributed(builtins):
    assert {"mini_resnet.scratch", "mini_resnet.shapes_standard", "mini_resnet.shapes_robust"} <= set(builtins.names("representation"))
    assert {"digits", "shapes"} <= set(builtins.names("dataset"))
    robust = builtins.get("representation", "mini_resnet.shapes_robust")
    assert robust.pretraining.strategy == "adversarially-robust" and robust.weights.recipe == "shapes_robust"
    assert builtins.get("representation", "mini_resnet.shapes_standard").pretraining.strategy == "supervised"
    assert builtins.plugin_of("dataset", "digits") == "offline"


def test_digits_splits_are_stratified_and_disjoint(engine_manager):
    from rftbench.data import load_splits

    splits = load_splits("digits", manager=engine_manager)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == pytest.approx(360, abs=10)
    x, y = splits["train"][0]
    assert x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1 and isinstance(y, int)
    counts = torch.bincount(splits["test"].tensors[1], minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38  # ≈ 20% of each class
    images, _ = load_digits_images(32)
    seen = [{tuple(t.flatten()[::97].tolist()) for t in s.tensors[0]} for s in splits.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2])
    assert images.shape == (1797, 3, 32, 32)


def test_shapes_are_deterministic_balanced_and_varied():
    x1, y1 = generate_shapes(64, 32, seed=3)
    x2, y2 = generate_shapes(64, 32, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(generate_shapes(64, 32, seed=4)[0], x1)
    assert torch.bincount(y1, minlength=len(SHAPES)).tolist() == [8] * 8
    assert x1.shape == (64, 3, 32, 32) and float(x1.std()) > 0.1
    # every class draws a visible shape: the image differs from its own background colour
    assert float((x1 - x1[:, :, :1, :1]).abs().amax((1, 2, 3)).min()) > 0.2


def test_mini_resnet_is_a_representation():
    net = MiniResNet()
    x = torch.rand(2, 3, 32, 32)
    assert net.forward_features(x).shape == (2, 64) and net.num_features == 64
    assert len(net.stages) == 3


def test_recipe_builds_once_caches_and_verifies(engine_manager, monkeypatch, tmp_path):
    tiny = {**recipes.RECIPES["shapes_standard"], "representation": "micro_resnet.test", "dataset": "digits_small",
            "epochs": 1, "batch_size": 32, "evaluation": []}
    monkeypatch.setitem(recipes.RECIPES, "shapes_standard", tiny)
    card = engine_manager.get("representation", "mini_resnet.shapes_standard").model_copy(update={"model": "micro_resnet"})
    runs = []
    real_build = recipes.build_weights
    monkeypatch.setattr(recipes, "build_weights", lambda c, p: runs.append(p) or real_build(c, p))
    state, sha = recipes.pretrained_weights(card)
    assert len(runs) == 1 and len(sha) == 64
    path = recipes.weights_file(card)
    assert path.is_file() and str(path).startswith(str(tmp_path / "cache"))
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["sha256"] == sha and info["recipe"] == "shapes_standard" and info["clean_acc"] is not None
    again, sha2 = recipes.pretrained_weights(card)
    assert len(runs) == 1 and sha2 == sha and all(torch.equal(state[k], again[k]) for k in state)
    model = build_classifier(card, 10, manager=engine_manager)
    assert model.backbone.weights_sha256 == sha
    torch.testing.assert_close(model.backbone.state_dict()["stem.0.weight"], state["stem.0.weight"])
    # a tampered file is refused, never loaded
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(Exception, match="checksum mismatch .* delete it and its .json to rebuild"):
        recipes.pretrained_weights(card)


def test_recipes_are_valid_run_configs(builtins, tmp_path):
    for name in recipes.RECIPES:
        config = recipes.recipe_config(name, tmp_path)
        assert config.representation == "mini_resnet.scratch" and config.dataset == "shapes"
    assert recipes.recipe_config("shapes_robust", tmp_path).loss.name == "classic_at"
