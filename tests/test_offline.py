"""plugins/offline.py and plugins/_recipes.py: offline datasets, mini backbones, pretraining recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rftbench_plugins._recipes as recipes
from rftbench.engine import sha256_file
from rftbench.errors import CardError
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
    card = _recipe_only(engine_manager.get("representation", "mini_resnet.shapes_standard"), model="micro_resnet")
    runs = []
    real_build = recipes.build_weights
    monkeypatch.setattr(recipes, "build_weights", lambda c, p, **kw: runs.append(p) or real_build(c, p, **kw))
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


def _recipe_only(card, **update):
    """The card without its shipped file: its weights come from the recipe."""
    weights = card.weights.model_copy(update={"filename": None, "sha256": None})
    return card.model_copy(update={"weights": weights, **update})


@pytest.mark.parametrize("card_id", ["mini_resnet.shapes_standard", "mini_resnet.shapes_robust"])
def test_shipped_weights_match_their_cards_and_load_without_building(builtins, monkeypatch, card_id):
    card = builtins.get("representation", card_id)
    path = recipes.shipped_weights_file(card)
    assert path.is_file() and path.stat().st_size < 1_000_000
    assert sha256_file(path) == card.weights.sha256
    monkeypatch.setattr(recipes, "build_weights", lambda *a, **k: pytest.fail("the recipe ran although weights are shipped"))
    model = build_classifier(card, 10, manager=builtins)
    assert model.backbone.weights_sha256 == card.weights.sha256


def test_a_shipped_file_that_does_not_match_its_card_is_refused_never_loaded(builtins, monkeypatch, tmp_path):
    card = builtins.get("representation", "mini_resnet.shapes_standard")
    shipped = tmp_path / "weights"
    shipped.mkdir()
    blob = bytearray(recipes.shipped_weights_file(card).read_bytes())
    blob[-3] ^= 0xFF
    (shipped / card.weights.filename).write_bytes(bytes(blob))
    monkeypatch.setattr(recipes, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(recipes, "load_file", lambda *a: pytest.fail("a mismatching file was loaded"))
    with pytest.raises(CardError) as err:
        recipes.pretrained_weights(card)
    message = str(err.value)
    assert card.weights.sha256 in message and sha256_file(shipped / card.weights.filename) in message
    assert "Reinstall rftbench" in message and "was not loaded" in message
    (shipped / card.weights.filename).unlink()
    with pytest.raises(CardError, match="is missing; reinstall rftbench"):
        recipes.pretrained_weights(card)


@pytest.mark.parametrize("name", ["../x.safetensors", "/etc/passwd", "a/b.safetensors", ".."])
def test_a_shipped_file_name_must_be_a_plain_name(builtins, name):
    card = builtins.get("representation", "mini_resnet.shapes_standard")
    card = card.model_copy(update={"weights": card.weights.model_copy(update={"filename": name})})
    with pytest.raises(CardError, match="must be a plain file name"):
        recipes.pretrained_weights(card)


def test_zoo_build_reruns_the_recipe_and_says_whether_it_reproduces(engine_manager, monkeypatch, tmp_path, capsys):
    from tests.cli_helpers import run_cli

    tiny = {**recipes.RECIPES["shapes_standard"], "representation": "micro_resnet.test", "dataset": "digits_small",
            "epochs": 1, "batch_size": 32, "evaluation": []}
    monkeypatch.setitem(recipes.RECIPES, "shapes_standard", tiny)
    card = _recipe_only(engine_manager.get("representation", "mini_resnet.shapes_standard"), model="micro_resnet")
    first = recipes.rebuild(card)
    assert first["reproduces"] is False and first["shipped_sha256"] is None  # nothing shipped to compare with
    # ship that build, pinned, then rebuild: the same machine and threads reproduce it bit for bit
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "micro.safetensors").write_bytes(Path(first["file"]).read_bytes())
    monkeypatch.setattr(recipes, "SHIPPED_DIR", shipped)
    pinned = card.model_copy(update={"weights": card.weights.model_copy(update={"filename": "micro.safetensors",
                                                                               "sha256": first["sha256"]})})
    monkeypatch.setattr(engine_manager, "get", lambda kind, name, _get=engine_manager.get: pinned
                        if (kind, name) == ("representation", "mini_resnet.shapes_standard") else _get(kind, name))
    code, out, err = run_cli(capsys, "zoo", "build", "mini_resnet.shapes_standard", "--json")
    assert code == 0, err
    (outcome,) = json.loads(out)
    assert outcome["reproduces"] is True, outcome
    assert outcome["max_abs_diff"] == 0.0 and outcome["sha256"] == first["sha256"]
    code, out, _ = run_cli(capsys, "zoo", "build", "mini_resnet.shapes_standard")
    assert code == 0 and "reproduces the shipped weights bit for bit" in out
    code, _, err = run_cli(capsys, "zoo", "build", "mini_resnet.scratch")
    assert code == 2 and "no pretraining recipe for mini_resnet.scratch" in err


def test_recipes_are_valid_run_configs(builtins, tmp_path):
    for name in ("shapes_standard", "shapes_robust"):
        config = recipes.recipe_config(name, tmp_path)
        assert config.representation == "mini_resnet.scratch" and config.dataset == "shapes"
    assert recipes.recipe_config("shapes_robust", tmp_path).loss.name == "classic_at"
    for card_id in SCENES_ZOO:
        config = recipes.recipe_config(card_id, tmp_path)
        arch = card_id.split(".")[0]
        assert config.dataset == "scenes" and builtins.get("representation", config.representation)  # its init card exists
        if card_id.endswith("robust"):  # Classic AT from the standard backbone of the same architecture
            assert config.loss.name == "classic_at" and config.representation == f"{arch}.scenes_standard"
            assert config.threat.params["eps"] == "4/255" and config.threat.params["steps"] == 2
        else:
            assert config.loss.name == "ce" and config.representation == f"{arch}.scratch"


# ---------------------------------------------------------------------------------- the scenes zoo

SCENES_ARCHS = ("mini_resnet", "mini_resnet_wide", "mini_convnext", "mini_convnext_wide", "mini_vit", "mini_vit_wide")
SCENES_ZOO = [f"{a}.scenes_{k}" for a in SCENES_ARCHS for k in ("standard", "robust")]
SCENES_SHIPPED = SCENES_ZOO  # every scenes backbone ships its weights


def test_scenes_are_deterministic_balanced_and_varied():
    from rftbench_plugins._scenes import MATERIALS, N_CLASSES, SCALES, class_names, class_table, generate_scenes

    x1, y1 = generate_scenes(128, 32, seed=3)
    x2, y2 = generate_scenes(128, 32, seed=3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(generate_scenes(128, 32, seed=4)[0], x1)
    assert not np.array_equal(generate_scenes(128, 32, seed=3, class_seed=1)[0], x1)  # other class hues
    assert x1.shape == (128, 3, 32, 32) and x1.dtype == np.float32 and 0 <= x1.min() and x1.max() <= 1
    assert np.bincount(y1, minlength=N_CLASSES).tolist() == [2] * N_CLASSES
    # every (material, scale, hue) triple is one class, and each factor alone is shared by many classes
    table = class_table()
    triples = {(r["material"], r["scale"], round(r["hue"], 6)) for r in table}
    assert len(triples) == N_CLASSES == 64
    assert sorted({r["material"] for r in table}) == list(range(len(MATERIALS)))
    assert all(SCALES[r["scale"]][0] <= r["freq"] <= SCALES[r["scale"]][1] for r in table)
    assert len(set(class_names())) == N_CLASSES
    # images of one class differ (nuisance variation), and images are not flat
    same = x1[y1 == y1[0]]
    assert float(np.abs(same[0] - same[1]).mean()) > 0.05 and float(x1.std((1, 2, 3)).min()) > 0.03


def test_scenes_card_loads_disjoint_splits(engine_manager):
    from rftbench.data import load_splits

    card = engine_manager.get("dataset", "scenes")
    small = card.model_copy(update={"args": {**card.args, "n_train": 128, "n_val": 64, "n_test": 64}})
    engine_manager_get = engine_manager.get
    try:
        engine_manager.get = lambda kind, name: small if (kind, name) == ("dataset", "scenes") else engine_manager_get(kind, name)
        splits = load_splits("scenes", manager=engine_manager)
    finally:
        engine_manager.get = engine_manager_get
    assert {k: len(v) for k, v in splits.items()} == {"train": 128, "val": 64, "test": 64}
    train, test = splits["train"].tensors[0], splits["test"].tensors[0]
    assert not any(torch.equal(train[i], test[j]) for i in range(8) for j in range(64))
    assert len(splits["train"].classes) == 64 and splits["train"].classes[0] == "ramps-coarse-h0"


@pytest.mark.parametrize("arch,features", [("mini_resnet_wide", 128), ("mini_convnext", 128), ("mini_convnext_wide", 256),
                                           ("mini_vit", 48), ("mini_vit_wide", 96)])
def test_scenes_zoo_architectures_build_with_their_cards_numbers(builtins, arch, features):
    from rftbench.model import build_backbone

    card = builtins.get("representation", f"{arch}.scratch")
    net = build_backbone(card, pretrained=False, manager=builtins)
    assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(card.params_m, abs=0.001)
    assert net.forward_features(torch.rand(2, 3, 32, 32)).shape == (2, features) and net.num_features == features
    from rftbench_plugins.protocols import find_blocks

    assert len(find_blocks(net)) >= 3  # partial-k fine-tuning has blocks to count

@pytest.mark.parametrize("dims", [(16, 32, 64, 128), (32, 64, 128, 256)])
def test_mini_convnext_stages_run_at_16_8_4_2_px(dims):
    """timm downsamples in stage 0 after a stride-2 stem; the mini ConvNeXts must not (the last 7×7 kernel saw 1 px)."""
    from rftbench_plugins._offline_nets import MiniConvNeXt

    net = MiniConvNeXt(dims=dims)
    sizes = []
    hooks = [stage.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for stage in net.convnext.stages]
    net.forward_features(torch.rand(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert sizes == [(dims[0], 16, 16), (dims[1], 8, 8), (dims[2], 4, 4), (dims[3], 2, 2)]


@pytest.mark.parametrize("arch", ["mini_vit", "mini_vit_wide"])
def test_mini_vit_is_a_timm_vit_whose_defaults_partial_k_and_lora_find(builtins, arch):
    """64 tokens of 4×4 patches, no class token; partial-k counts its 4 blocks, LoRA's defaults find timm's layers."""
    from rftbench.model import build_backbone
    from rftbench_plugins._peft import default_targets
    from rftbench_plugins.protocols import find_blocks

    net = build_backbone(builtins.get("representation", f"{arch}.scratch"), pretrained=False, manager=builtins)
    tokens = net.vit.patch_embed(torch.rand(1, 3, 32, 32))
    assert tokens.shape[1] == 64 and net.vit.cls_token is None
    assert [name for name, _ in find_blocks(net)] == [f"vit.blocks.{i}" for i in range(4)]
    family, targets = default_targets(net, "lora")
    assert "offline mini transformers" in family and len(targets) == 16
    assert {".".join(t.split(".")[-2:]) for t in targets} == {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"}


@pytest.mark.parametrize("card_id", SCENES_SHIPPED)
def test_scenes_zoo_cards_pin_shipped_weights_that_load(builtins, card_id):
    card = builtins.get("representation", card_id)
    assert card.weights.recipe == card_id and card_id in recipes.RECIPES
    assert card.pretraining.data == "scenes-offline"
    assert card.pretraining.strategy == ("adversarially-robust" if card_id.endswith("robust") else "supervised")
    path = recipes.shipped_weights_file(card)
    assert path is not None and path.is_file(), f"{card_id}: no shipped weights"
    assert sha256_file(path) == card.weights.sha256
    model = build_classifier(card, 20, manager=builtins)
    assert model.backbone.weights_sha256 == card.weights.sha256


def test_scenes_zoo_ships_at_most_20_mb():
    total = sum(p.stat().st_size for p in recipes.SHIPPED_DIR.glob("*.safetensors"))
    assert total <= 20_000_000, total


@pytest.mark.parametrize("arch", ["mini_convnext", "mini_resnet_wide", "mini_vit"])
def test_scenes_recipe_round_trips_on_a_tiny_budget(engine_manager, monkeypatch, arch):
    """The recipe machinery builds, saves and reloads each new architecture (tiny data, one epoch)."""
    card_id = f"{arch}.scenes_standard"
    tiny = {**recipes.RECIPES[card_id], "dataset": "digits_small", "epochs": 1, "batch_size": 32, "evaluation": [], "n_eval": None}
    monkeypatch.setitem(recipes.RECIPES, card_id, tiny)
    small = _recipe_only(engine_manager.get("representation", card_id))
    small = small.model_copy(update={"input": small.input.model_copy(update={"resolution": 16})}) if arch.startswith("mini_resnet") else small
    state, sha = recipes.pretrained_weights(small)
    again, sha2 = recipes.pretrained_weights(small)
    assert sha == sha2 and all(torch.equal(state[k], again[k]) for k in state)
    model = build_classifier(small, 10, manager=engine_manager)
    assert model.backbone.weights_sha256 == sha
    scratch = build_classifier(engine_manager.get("representation", f"{arch}.scratch"), 10, manager=engine_manager)
    assert set(scratch.backbone.state_dict()) == set(state)


@pytest.mark.slow
@pytest.mark.parametrize("card_id", SCENES_SHIPPED)
def test_linear_probe_runs_on_each_scenes_backbone(engine_manager, tmp_path, card_id):
    """`rftbench run` with protocol lp on textures (a subset, one epoch): the backbone stays frozen, the run records it."""
    from rftbench.config import RunConfig, resolve_config
    from rftbench.runner import run

    config = resolve_config(RunConfig.model_validate({
        "representation": card_id, "dataset": "textures", "protocol": "lp", "loss": "ce", "epochs": 1, "batch_size": 256,
        "evaluation": [], "n_eval": 200, "precision": "fp32", "output_dir": str(tmp_path / "runs"),
    }))
    record = run(config, progress=False)
    assert 0.0 <= record.metrics["clean_acc"] <= 1.0 and record.config["representation"] == card_id
    from safetensors.torch import load_file

    from rftbench.runner import load_model

    shipped = load_file(str(recipes.shipped_weights_file(engine_manager.get("representation", card_id))))
    trained = load_model(Path(record.run_dir)).backbone.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in shipped.items())  # LP left the backbone (and its BN stats) as shipped


def test_zoo_build_wildcard_skips_cards_without_a_recipe(builtins, monkeypatch, capsys):
    from tests.cli_helpers import run_cli

    built = []
    monkeypatch.setattr(recipes, "rebuild", lambda card: built.append(card.id) or {
        "card": card.id, "recipe": card.weights.recipe, "sha256": "0" * 64, "file": "x", "reproduces": False,
        "shipped_sha256": None, "clean_acc": 0.5, "robust_acc": {}, "dataset": "scenes"})
    code, out, err = run_cli(capsys, "zoo", "build", "mini_convnext.*", "--json")
    assert code == 0, err
    assert sorted(built) == ["mini_convnext.scenes_robust", "mini_convnext.scenes_standard"]  # not mini_convnext.scratch
    code, _, err = run_cli(capsys, "zoo", "build", "mini_convnext.scratch")
    assert code == 2 and "no pretraining recipe for mini_convnext.scratch" in err
    code, _, err = run_cli(capsys, "zoo", "build", "*.scratch")
    assert code == 2 and "no pretraining recipe for" in err and "mini_convnext.scratch" in err


def test_zoo_build_reaches_the_recipe_through_the_architecture_spec(builtins, monkeypatch, capsys):
    """`zoo build` asks the card's architecture spec to rebuild (as for a third party's recipe backbones), not the built-ins."""
    import rftbench.cli.zoo as zoo_cli
    from rftbench.plugins import get_manager
    from tests.cli_helpers import run_cli

    assert "rftbench_plugins" not in Path(zoo_cli.__file__).read_text()
    manager = get_manager()
    spec = manager.get("architecture", "recipe")
    assert spec.rebuild is not None
    calls = []
    outcome = {"recipe": "r", "sha256": "0" * 64, "file": "x", "reproduces": True, "shipped_sha256": "0" * 64,
               "max_abs_diff": 0.0, "clean_acc": 0.5, "robust_acc": {}, "dataset": "scenes"}
    theirs = spec.model_copy(update={"rebuild": lambda card, output: calls.append((card.id, output)) or dict(outcome)})
    monkeypatch.setattr(manager, "get", lambda kind, name, _get=manager.get: theirs
                        if (kind, name) == ("architecture", "recipe") else _get(kind, name))
    code, out, err = run_cli(capsys, "zoo", "build", "mini_resnet.scenes_standard", "--json")
    assert code == 0, err
    assert calls == [("mini_resnet.scenes_standard", None)] and json.loads(out)[0]["card"] == "mini_resnet.scenes_standard"
    theirs = spec.model_copy(update={"rebuild": None})  # an architecture that cannot rebuild: no recipe to run
    code, _, err = run_cli(capsys, "zoo", "build", "mini_resnet.scenes_standard")
    assert code == 2 and "no pretraining recipe for mini_resnet.scenes_standard" in err
